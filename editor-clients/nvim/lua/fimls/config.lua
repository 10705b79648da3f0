-- Options of require('fimls').setup() and their defaults.
local M = {}

---@class fimls.Keymaps
---@field accept? string|string[]|false       accept the whole suggestion (else the key's own meaning)
---@field accept_word? string|string[]|false  accept the next word of it
---@field accept_line? string|string[]|false  accept the rest of its current line
---@field dismiss? string|string[]|false      hide it until the next edit
---@field next? string|string[]|false         next suggestion (asks the server again if there is one)
---@field prev? string|string[]|false         previous suggestion

---@class fimls.Options
---@field keymaps? fimls.Keymaps|false  insert-mode keys (buffer-local, where fimls is attached); false: none
---@field debounce? integer             ms between the last keystroke and the request (0.10/0.11 path)
---@field filetypes? table<string, boolean>  ghost text per filetype; `['*']` is the default
---@field settings? table               fimls server settings (camelCase, without the `fimls.` prefix)
---@field backend? 'auto'|'native'|'extmark'  ghost text: Neovim's own (0.12+) or fimls's extmarks
---@field server? table                 Neovim 0.10 only: overrides for lsp/fimls.lua (e.g. cmd)

---@type fimls.Options
M.defaults = {
  keymaps = {
    accept = '<Tab>',
    accept_word = { '<M-w>', '<C-Right>' },
    accept_line = '<M-l>',
    dismiss = '<C-]>',
    next = '<M-]>',
    prev = '<M-[>',
  },
  debounce = 150,
  filetypes = { ['*'] = true },
  settings = {},
  backend = 'auto',
  server = {},
}

---@type fimls.Options
M.options = vim.deepcopy(M.defaults)

--- Raise a readable error for an option of the wrong type (nil is fine: the default).
local function expect(name, value, types)
  if value ~= nil and not vim.tbl_contains(types, type(value)) then
    error(('fimls.setup: %s must be a %s, got %s'):format(name, table.concat(types, ' or '), type(value)), 4)
  end
end

---@param opts? fimls.Options
function M.set(opts)
  opts = opts or {}
  expect('keymaps', opts.keymaps, { 'table', 'boolean' })
  expect('debounce', opts.debounce, { 'number' })
  expect('filetypes', opts.filetypes, { 'table' })
  expect('settings', opts.settings, { 'table' })
  expect('server', opts.server, { 'table' })
  if opts.backend ~= nil and not vim.tbl_contains({ 'auto', 'native', 'extmark' }, opts.backend) then
    error("fimls.setup: backend must be 'auto', 'native' or 'extmark'", 3)
  end
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace, they do not merge by index.
  if type(opts.keymaps) == 'table' then
    for name, lhs in pairs(opts.keymaps) do
      merged.keymaps[name] = lhs
    end
  elseif opts.keymaps == false then
    merged.keymaps = false
  end
  if opts.settings then
    merged.settings = vim.deepcopy(opts.settings)
  end
  M.options = merged
end

--- Whether ghost text is on for a buffer's filetype.
---@param bufnr integer
function M.enabled_for(bufnr)
  local fts = M.options.filetypes or {}
  local on = fts[vim.bo[bufnr].filetype]
  if on == nil then
    on = fts['*']
  end
  return on ~= false
end

--- 'native' (vim.lsp.inline_completion) or 'extmark' (lua/fimls/ghost.lua).
function M.backend()
  local want = M.options.backend or 'auto'
  local native = vim.lsp.inline_completion ~= nil
  if want == 'native' and native then
    return 'native'
  elseif want == 'auto' and native then
    return 'native'
  end
  return 'extmark'
end

return M
