-- Buffer-local Insert-mode keys. A key that has nothing to do (no suggestion shown) keeps
-- its meaning: the mapping it replaced, else the key itself (a real <Tab>).
local api = vim.api

local M = {}

local DESC = 'fimls: '

-- Buffer-local mappings replaced by ours, restored when fimls leaves the buffer.
---@type table<integer, table[]>
local replaced = {}

--- The Insert-mode mapping of `lhs` in `bufnr` before ours (buffer-local or global).
local function previous(bufnr, lhs)
  local map = api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg(lhs, 'i', false, true)
  end)
  if vim.tbl_isempty(map) or (map.desc and vim.startswith(map.desc, DESC)) then
    return nil
  end
  return map
end

--- The global Insert-mode mapping of `lhs` now (a plugin may map it after fimls did).
local function global(lhs)
  local want = vim.fn.keytrans(vim.keycode(lhs))
  for _, map in ipairs(api.nvim_get_keymap('i')) do
    if vim.fn.keytrans(vim.keycode(map.lhs)) == want then
      return map
    end
  end
  return nil
end

--- Keys for an <expr> mapping that do what `lhs` did before fimls mapped it.
local function fallback(prev, lhs)
  if not prev then
    return vim.keycode(lhs)
  end
  if prev.callback then
    if prev.expr == 1 then
      local keys = prev.callback() or ''
      return prev.replace_keycodes == 1 and vim.keycode(keys) or keys
    end
    vim.schedule(prev.callback) -- it may edit the buffer, which an <expr> mapping cannot
    return ''
  end
  local rhs = prev.rhs or ''
  if prev.expr == 1 then
    rhs = api.nvim_eval(rhs)
    return rhs
  end
  api.nvim_feedkeys(vim.keycode(rhs), prev.noremap == 1 and 'in' or 'im', false)
  return ''
end

local function as_list(lhs)
  if not lhs then
    return {}
  end
  return type(lhs) == 'table' and lhs or { lhs }
end

---@param bufnr integer
---@param keymaps fimls.Keymaps|false
---@param backend table native or ghost module
function M.set(bufnr, keymaps, backend)
  M.unset(bufnr) -- set again (a client re-attached): start from the user's own mappings
  if not keymaps then
    return
  end
  ---@param lhs string
  ---@param desc string
  ---@param act fun(): boolean  true when it did something
  local function map(lhs, desc, act)
    -- A buffer-local mapping we replace is kept; a global one is looked up when needed.
    local prev = previous(bufnr, lhs)
    if prev and prev.buffer ~= 1 then
      prev = nil
    end
    if prev then
      replaced[bufnr] = replaced[bufnr] or {}
      table.insert(replaced[bufnr], prev)
    end
    vim.keymap.set('i', lhs, function()
      if act() then
        return ''
      end
      return fallback(prev or global(lhs), lhs)
    end, { buffer = bufnr, expr = true, replace_keycodes = false, silent = true, desc = DESC .. desc })
  end
  for _, lhs in ipairs(as_list(keymaps.accept)) do
    map(lhs, 'accept suggestion', function()
      return backend.accept(bufnr, 'full')
    end)
  end
  for _, lhs in ipairs(as_list(keymaps.accept_word)) do
    map(lhs, 'accept next word of suggestion', function()
      return backend.accept(bufnr, 'word')
    end)
  end
  for _, lhs in ipairs(as_list(keymaps.accept_line)) do
    map(lhs, 'accept next line of suggestion', function()
      return backend.accept(bufnr, 'line')
    end)
  end
  for _, lhs in ipairs(as_list(keymaps.dismiss)) do
    map(lhs, 'dismiss suggestion', function()
      return backend.dismiss(bufnr)
    end)
  end
  for _, lhs in ipairs(as_list(keymaps.next)) do
    map(lhs, 'next suggestion', function()
      return backend.cycle(bufnr, 1)
    end)
  end
  for _, lhs in ipairs(as_list(keymaps.prev)) do
    map(lhs, 'previous suggestion', function()
      return backend.cycle(bufnr, -1)
    end)
  end
end

--- Remove fimls's mappings from a buffer and give back the ones they replaced.
function M.unset(bufnr)
  local prevs = replaced[bufnr] or {}
  replaced[bufnr] = nil
  if not api.nvim_buf_is_valid(bufnr) then
    return
  end
  for _, map in ipairs(api.nvim_buf_get_keymap(bufnr, 'i')) do
    if map.desc and vim.startswith(map.desc, DESC) then
      pcall(vim.keymap.del, 'i', map.lhs, { buffer = bufnr })
    end
  end
  api.nvim_buf_call(bufnr, function()
    for _, prev in ipairs(prevs) do
      pcall(vim.fn.mapset, 'i', false, prev)
    end
  end)
end

return M
