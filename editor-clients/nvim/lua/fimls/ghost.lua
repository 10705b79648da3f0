-- Ghost text drawn by fimls itself (Neovim 0.10/0.11, which have no inline completion
-- client): textDocument/inlineCompletion requests after a pause in typing, the suggestion
-- as extmarks (virt_text for the rest of the cursor line, virt_lines below it).
local api = vim.api
local uv = vim.uv or vim.loop
local util = require('fimls.util')
local config = require('fimls.config')

local M = {}

--- The extmark namespace of the suggestion.
M.ns = api.nvim_create_namespace('fimls')

local INVOKED, AUTOMATIC = 1, 2 -- lsp.InlineCompletionTriggerKind
local REQUEST_CANCELLED, CONTENT_MODIFIED = -32800, -32801

---@class fimls.Suggestion
---@field row integer        0-based line of the cursor
---@field col integer        0-based byte column of the cursor, where `text` goes
---@field text string        what is still to insert (what is shown)
---@field after string       the line's text after the cursor when it was shown
---@field replace integer    bytes after the cursor the item's range replaces (0 for fimls)
---@field item lsp.InlineCompletionItem
---@field taken integer      characters of this item already accepted word/line-wise

---@class fimls.GhostState
---@field bufnr integer
---@field client_id integer
---@field augroup integer
---@field timer uv.uv_timer_t?
---@field pending {client_id: integer, id: integer}?
---@field items lsp.InlineCompletionItem[]?
---@field index integer
---@field sugg fimls.Suggestion?
---@field seen {tick: integer, row: integer, col: integer}?

---@type table<integer, fimls.GhostState>
local buffers = {}

local function cursor_of(win)
  local c = api.nvim_win_get_cursor(win)
  return c[1] - 1, c[2]
end

local function get_line(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

--- Tabs in virtual text are not expanded by Neovim: show them as spaces to the next stop.
local function expand_tabs(text, vcol, ts)
  if not text:find('\t', 1, true) then
    return text
  end
  return (text:gsub('()([^\t]*)\t', function(_, before)
    vcol = vcol + vim.fn.strdisplaywidth(before)
    local pad = ts - vcol % ts
    vcol = vcol + pad
    return before .. (' '):rep(pad)
  end))
end

local function hide(s)
  if api.nvim_buf_is_valid(s.bufnr) then
    api.nvim_buf_clear_namespace(s.bufnr, M.ns, 0, -1)
  end
end

local function forget(s)
  s.sugg = nil
  s.items = nil
  hide(s)
end

local function cancel_pending(s)
  local p = s.pending
  s.pending = nil
  if p then
    local client = vim.lsp.get_client_by_id(p.client_id)
    if client and not util.is_stopped(client) then
      util.cancel_request(client, p.id)
    end
  end
end

local function stop_timer(s)
  if s.timer and not s.timer:is_closing() then
    s.timer:stop()
  end
end

--- Draw s.sugg: the first line inline at the cursor, the others as virtual lines below.
local function render(s)
  hide(s)
  local g = s.sugg
  if not g or g.text == '' then
    return
  end
  local ts = vim.bo[s.bufnr].tabstop
  local lines = util.lines(g.text)
  local line = get_line(s.bufnr, g.row)
  local vcol = vim.fn.strdisplaywidth(line:sub(1, g.col))
  local opts = { hl_mode = 'combine', priority = 200 }
  if lines[1] ~= '' then
    opts.virt_text = { { expand_tabs(lines[1], vcol, ts), 'FimlsSuggestion' } }
    opts.virt_text_pos = 'inline'
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { expand_tabs(lines[i], 0, ts), 'FimlsSuggestion' } }
    end
  end
  api.nvim_buf_set_extmark(s.bufnr, M.ns, g.row, g.col, opts)
end

--- Show item `index` of s.items at the cursor, if it still fits the text there.
local function show_item(s, index)
  s.sugg = nil
  hide(s)
  local item = s.items and s.items[index]
  local client = vim.lsp.get_client_by_id(s.client_id)
  local win = util.win_of(s.bufnr)
  if not item or not client or not win then
    return
  end
  s.index = index
  local row, col = cursor_of(win)
  local line = get_line(s.bufnr, row)
  local text = item.insertText
  local start, stop = col, col
  local range = item.range
  if range then
    if range.start.line ~= row or range['end'].line ~= row then
      return -- fimls answers at the cursor; a range elsewhere cannot be shown here
    end
    start = util.byte_col(line, range.start.character, client.offset_encoding)
    stop = util.byte_col(line, range['end'].character, client.offset_encoding)
    if start > col or stop < col then
      return
    end
  end
  -- The range may start before the cursor: that part must already be the item's start.
  local typed = line:sub(start + 1, col)
  if text:sub(1, #typed) ~= typed then
    return
  end
  text = text:sub(#typed + 1)
  if text == '' then
    return
  end
  s.sugg = {
    row = row,
    col = col,
    text = text,
    after = line:sub(col + 1),
    replace = stop - col,
    item = item,
    taken = 0,
  }
  render(s)
end

--- After an edit or a cursor move: keep the suggestion if the user typed its start
--- (showing the rest), else drop it.
local function follow(s, row, col)
  local g = s.sugg
  if not g then
    return
  end
  if row == g.row and col >= g.col then
    local line = get_line(s.bufnr, row)
    local typed = line:sub(g.col + 1, col)
    if
      line:sub(col + 1) == g.after
      and #typed < #g.text
      and g.text:sub(1, #typed) == typed
      and not typed:find('\n', 1, true)
    then
      if typed ~= '' then
        g.text = g.text:sub(#typed + 1)
        g.col = col
        render(s)
      end
      return
    end
  end
  forget(s)
end

local function on_result(s, id, snapshot, err, result)
  if not s.pending or s.pending.id ~= id then
    return -- superseded or cancelled: a stale answer
  end
  s.pending = nil
  if err then
    if err.code ~= REQUEST_CANCELLED and err.code ~= CONTENT_MODIFIED then
      vim.lsp.log.warn('fimls: textDocument/inlineCompletion failed:', err)
    end
    return
  end
  if not api.nvim_buf_is_valid(s.bufnr) or api.nvim_get_current_buf() ~= s.bufnr or not util.in_insert() then
    return
  end
  local row, col = cursor_of(0)
  if api.nvim_buf_get_changedtick(s.bufnr) ~= snapshot.tick or row ~= snapshot.row or col ~= snapshot.col then
    return -- the user typed on or moved: a newer request follows
  end
  local items = {}
  for _, item in ipairs(type(result) == 'table' and (result.items or result) or {}) do
    -- Snippet items (a StringValue) are not produced by fimls; plain text only.
    if type(item.insertText) == 'string' and item.insertText ~= '' then
      items[#items + 1] = item
    end
  end
  s.items = items
  if #items == 0 then
    s.sugg = nil
    hide(s)
    return
  end
  show_item(s, 1)
end

--- Send textDocument/inlineCompletion for the cursor position now.
---@param s fimls.GhostState
---@param kind integer trigger kind
local function request(s, kind)
  if api.nvim_get_current_buf() ~= s.bufnr or not util.in_insert() then
    return
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if not client or util.is_stopped(client) then
    return
  end
  cancel_pending(s)
  local win = api.nvim_get_current_win()
  local row, col = cursor_of(win)
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  params.context = { triggerKind = kind }
  local snapshot = { tick = api.nvim_buf_get_changedtick(s.bufnr), row = row, col = col }
  local id
  local ok
  ok, id = util.request(client, 'textDocument/inlineCompletion', params, function(err, result)
    on_result(s, id, snapshot, err, result)
  end, s.bufnr)
  if ok and id then
    s.pending = { client_id = client.id, id = id }
  end
end

local function schedule_request(s, kind, delay)
  stop_timer(s)
  if not s.timer or s.timer:is_closing() then
    s.timer = uv.new_timer()
  end
  s.timer:start(
    delay,
    0,
    vim.schedule_wrap(function()
      if buffers[s.bufnr] == s then
        request(s, kind)
      end
    end)
  )
end

--- TextChangedI / CursorMovedI (both fire for one keystroke: act once per state).
local function on_edit(s)
  local win = util.win_of(s.bufnr)
  if not win or api.nvim_win_get_buf(api.nvim_get_current_win()) ~= s.bufnr then
    return
  end
  local row, col = cursor_of(win)
  local tick = api.nvim_buf_get_changedtick(s.bufnr)
  local seen = s.seen
  if seen and seen.tick == tick and seen.row == row and seen.col == col then
    return
  end
  s.seen = { tick = tick, row = row, col = col }
  follow(s, row, col)
  -- The answer to the request in flight is for text that is gone.
  cancel_pending(s)
  schedule_request(s, AUTOMATIC, config.options.debounce or 150)
end

local function clear(s)
  stop_timer(s)
  cancel_pending(s)
  forget(s)
  s.seen = nil
end

---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  local s = buffers[bufnr]
  if s then
    s.client_id = client_id
    return
  end
  s = { bufnr = bufnr, client_id = client_id, index = 1 }
  s.augroup = api.nvim_create_augroup('fimls.ghost.' .. bufnr, { clear = true })
  buffers[bufnr] = s
  api.nvim_create_autocmd('InsertEnter', {
    group = s.augroup,
    buffer = bufnr,
    callback = function()
      s.seen = nil
      vim.schedule(function()
        if buffers[bufnr] == s then
          on_edit(s)
        end
      end)
    end,
  })
  api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP', 'CursorMovedI' }, {
    group = s.augroup,
    buffer = bufnr,
    callback = function()
      on_edit(s)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = s.augroup,
    buffer = bufnr,
    callback = function()
      clear(s)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = s.augroup,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
  if api.nvim_get_current_buf() == bufnr and util.in_insert() then
    on_edit(s)
  end
end

function M.detach(bufnr)
  local s = buffers[bufnr]
  if not s then
    return
  end
  buffers[bufnr] = nil
  clear(s)
  if s.timer and not s.timer:is_closing() then
    s.timer:close()
  end
  pcall(api.nvim_del_augroup_by_id, s.augroup)
end

--- Whether a suggestion is shown in the buffer.
function M.visible(bufnr)
  local s = buffers[bufnr]
  return s ~= nil and s.sugg ~= nil and s.sugg.text ~= ''
end

--- Accept the suggestion, or its next word or line. Returns false when none is shown
--- (so that a key can keep its own meaning). The edit is made on the next tick, so this
--- can be called from an <expr> mapping.
---@param bufnr integer
---@param kind 'full'|'word'|'line'
function M.accept(bufnr, kind)
  local s = buffers[bufnr]
  if not M.visible(bufnr) then
    return false
  end
  local g = s.sugg --[[@as fimls.Suggestion]]
  local tick = api.nvim_buf_get_changedtick(bufnr)
  vim.schedule(function()
    local win = util.win_of(bufnr)
    if s.sugg ~= g or not win or api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return -- the buffer changed since the key was pressed
    end
    local part = kind == 'word' and util.next_word(g.text) or kind == 'line' and util.next_line(g.text) or g.text
    local rest = g.text:sub(#part + 1)
    local client = vim.lsp.get_client_by_id(s.client_id)
    util.insert(win, g.row, g.col, part, rest == '' and g.col + g.replace or nil)
    if rest == '' then
      forget(s)
      -- Whole item: its command as it came; the rest after a partial accept: a partial one.
      util.report_accept(client, g.item.command, bufnr, g.taken > 0 and util.chars(part) or nil)
    else
      local row, col = cursor_of(win)
      g.row, g.col, g.text = row, col, rest
      g.taken = g.taken + util.chars(part)
      render(s)
      util.report_accept(client, g.item.command, bufnr, util.chars(part))
    end
  end)
  return true
end

--- Hide the suggestion until the next edit. Returns false when none was shown.
function M.dismiss(bufnr)
  local s = buffers[bufnr]
  if not s then
    return false
  end
  local shown = M.visible(bufnr)
  stop_timer(s)
  cancel_pending(s)
  vim.schedule(function()
    forget(s)
  end)
  return shown
end

--- Show the next (+1) or previous (-1) suggestion; with one or none, ask the server
--- again as an explicit (Invoked) request, which also completes in comments and strings.
function M.cycle(bufnr, step)
  local s = buffers[bufnr]
  if not s then
    return false
  end
  vim.schedule(function()
    if s.items and #s.items > 1 and s.sugg then
      show_item(s, (s.index - 1 + step) % #s.items + 1)
    else
      stop_timer(s)
      request(s, INVOKED)
    end
  end)
  return true
end

--- Whether the extmark path runs in this buffer.
function M.attached(bufnr)
  return buffers[bufnr] ~= nil
end

return M
