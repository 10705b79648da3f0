-- fimls: local AI code completion. Loaded at start-up; does nothing costly.
-- Ghost text and keys come with require('fimls').setup(); the server with vim.lsp.enable('fimls').
if vim.g.loaded_fimls then
  return
end
vim.g.loaded_fimls = true

if vim.fn.has('nvim-0.10') == 0 then
  vim.notify_once('fimls: Neovim 0.10 or newer is needed', vim.log.levels.WARN)
  return
end

-- "Rewrite selection…" asks the user for an instruction (LSP has no input box).
vim.lsp.commands['fimls.rewrite'] = function(command, ctx)
  require('fimls.commands').rewrite(command, ctx)
end

-- The extmark ghost text's colour (Neovim 0.12's own uses ComplHint).
local function highlights()
  local hint = vim.fn.hlexists('ComplHint') == 1 and 'ComplHint' or 'Comment'
  vim.api.nvim_set_hl(0, 'FimlsSuggestion', { link = hint, default = true })
end
highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('fimls.highlights', { clear = true }),
  callback = highlights,
})
