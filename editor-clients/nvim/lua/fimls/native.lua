-- Ghost text by Neovim itself (0.12+: vim.lsp.inline_completion). Neovim requests,
-- debounces (200 ms) and draws; fimls adds the keys: accepting exactly what is shown,
-- a word or a line of it (reported to the server as a partial accept), dismissing, and
-- asking again.
local api = vim.api
local util = require('fimls.util')

local M = {}

local INVOKED = 1 -- lsp.InlineCompletionTriggerKind

local function ic()
  return vim.lsp.inline_completion
end

--- The namespace Neovim draws inline completions in.
function M.namespace()
  return api.nvim_get_namespaces()['nvim.lsp.inline_completion']
end

--- Neovim's per-buffer inline completion state. Internal to Neovim (vim.lsp._capability):
--- used only for what the public API lacks (dismiss, asking again), with fallbacks.
local function completor(bufnr)
  local ok, cap = pcall(function()
    return vim.lsp._capability.all.inline_completion.active[bufnr]
  end)
  return ok and type(cap) == 'table' and cap or nil
end

-- Neovim builds before the fix of neovim/neovim#35965 (0.12-dev until 2025-09-30) create
-- the inline completion autocommands without `buffer`: every buffer that has it enabled then
-- sends requests on every keystroke in any buffer, with the current cursor position. So it
-- is on only in the buffer being edited, which is also all it is needed for.
local augroups = {} ---@type table<integer, integer>

---@param bufnr integer
function M.attach(bufnr)
  M.detach(bufnr)
  local group = api.nvim_create_augroup('fimls.native.' .. bufnr, { clear = true })
  augroups[bufnr] = group
  api.nvim_create_autocmd('BufEnter', {
    group = group,
    buffer = bufnr,
    callback = function()
      ic().enable(true, { bufnr = bufnr })
    end,
  })
  api.nvim_create_autocmd('BufLeave', {
    group = group,
    buffer = bufnr,
    callback = function()
      ic().enable(false, { bufnr = bufnr })
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
  ic().enable(api.nvim_get_current_buf() == bufnr, { bufnr = bufnr })
end

---@param bufnr integer
function M.detach(bufnr)
  if augroups[bufnr] then
    pcall(api.nvim_del_augroup_by_id, augroups[bufnr])
    augroups[bufnr] = nil
  end
  if api.nvim_buf_is_valid(bufnr) then
    ic().enable(false, { bufnr = bufnr })
  end
end

--- What Neovim shows now: its position and lines, read from its extmark (the text after
--- the part of the item already typed; the " (1/2)" index hint left out).
---@return {row: integer, col: integer, lines: string[]}?
function M.shown(bufnr)
  local ns = M.namespace()
  if not ns or not api.nvim_buf_is_valid(bufnr) then
    return nil
  end
  local marks = api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  local mark = marks[1]
  if not mark then
    return nil
  end
  local details = mark[4]
  local function text_of(chunks)
    local parts = {}
    for _, chunk in ipairs(chunks or {}) do
      if chunk[2] ~= 'ComplHintMore' then
        parts[#parts + 1] = chunk[1]
      end
    end
    return table.concat(parts)
  end
  local lines = { text_of(details.virt_text) }
  for _, vl in ipairs(details.virt_lines or {}) do
    lines[#lines + 1] = text_of(vl)
  end
  if #lines == 1 and lines[1] == '' then
    return nil
  end
  return { row = mark[2], col = mark[3], lines = lines }
end

function M.visible(bufnr)
  return M.shown(bufnr) ~= nil
end

--- Accept what is shown, or its next word or line; false when nothing is shown.
---@param bufnr integer
---@param kind 'full'|'word'|'line'
function M.accept(bufnr, kind)
  local shown = M.shown(bufnr)
  if not shown then
    return false
  end
  local tick = api.nvim_buf_get_changedtick(bufnr)
  return ic().get({
    bufnr = bufnr,
    -- Called on the next tick, after Neovim cleared its ghost text.
    on_accept = function(item)
      local win = util.win_of(bufnr)
      if not win or api.nvim_buf_get_changedtick(bufnr) ~= tick then
        return
      end
      local client = vim.lsp.get_client_by_id(item.client_id)
      if type(item.insert_text) ~= 'string' then
        -- A snippet (not from fimls): as Neovim does it.
        vim.snippet.expand(item.insert_text.value)
        util.report_accept(client, item.command, bufnr, nil)
        return
      end
      local text = table.concat(shown.lines, '\n')
      local part = kind == 'word' and util.next_word(text) or kind == 'line' and util.next_line(text) or text
      util.insert(win, shown.row, shown.col, part)
      local partial = part ~= text and util.chars(part) or nil
      util.report_accept(client, item.command, bufnr, partial)
    end,
  })
end

--- Hide the suggestion until the next edit; false when none was shown.
function M.dismiss(bufnr)
  if not M.shown(bufnr) then
    return false
  end
  vim.schedule(function()
    local c = completor(bufnr)
    if c and type(c.abort) == 'function' then
      c:abort()
    else
      -- Public fallback: switching it off and on drops the shown item.
      ic().enable(false, { bufnr = bufnr })
      ic().enable(true, { bufnr = bufnr })
    end
  end)
  return true
end

--- Next/previous item; with one or none, ask the server again (Invoked).
function M.cycle(bufnr, step)
  vim.schedule(function()
    local c = completor(bufnr)
    local many = c and c.current and type(c.count_items) == 'function' and c:count_items() > 1
    if not many and c and type(c.request) == 'function' then
      c:request(INVOKED)
    else
      ic().select({ bufnr = bufnr, count = step })
    end
  end)
  return true
end

return M
