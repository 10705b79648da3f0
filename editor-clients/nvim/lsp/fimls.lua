-- fimls: local AI code completion (inline ghost text, code actions) over LSP.
--
-- Neovim 0.11+ finds this file on 'runtimepath' for `vim.lsp.enable('fimls')`; override
-- any field with `vim.lsp.config('fimls', { ... })`. It has the same shape as
-- nvim-lspconfig's `lsp/*.lua` configs, so it can be copied there as it is.

-- LSP languageIds fimls knows under another name than Neovim's filetype.
local language_ids = { cs = 'csharp' }

---@type vim.lsp.Config
return {
  cmd = { 'fimls', '--stdio' },
  -- The languages fimls parses with tree-sitter (others complete too, without the syntax
  -- rules: add their filetypes with vim.lsp.config).
  filetypes = {
    'python',
    'javascript',
    'javascriptreact',
    'typescript',
    'typescriptreact',
    'go',
    'rust',
    'c',
    'cpp',
    'cs',
    'java',
    'ruby',
    'lua',
    'sh',
    'bash',
    'zsh',
    'php',
    'kotlin',
    'swift',
    'scala',
    'haskell',
    'zig',
  },
  root_markers = {
    '.git',
    '.hg',
    'pyproject.toml',
    'setup.py',
    'setup.cfg',
    'package.json',
    'tsconfig.json',
    'go.mod',
    'Cargo.toml',
    'build.zig',
    'pom.xml',
    'build.gradle',
    'build.gradle.kts',
    'Gemfile',
    'composer.json',
    'Package.swift',
    'build.sbt',
    'stack.yaml',
    'CMakeLists.txt',
    'Makefile',
  },
  get_language_id = function(_, filetype)
    return language_ids[filetype] or filetype
  end,
  -- fimls settings (the `fimls.*` table of its README, without the prefix):
  -- `init_options` is read at start-up, `settings.fimls` answers workspace/configuration.
  -- require('fimls').setup({ settings = { ... } }) fills both. (vim.empty_dict(): an empty
  -- Lua table would reach the server as a JSON array.)
  init_options = vim.empty_dict(),
  settings = { fimls = vim.empty_dict() },
  -- Declaring inline completion tells fimls to answer textDocument/inlineCompletion only
  -- (Neovim 0.12 declares it itself; the fimls plugin sends these requests on 0.10/0.11),
  -- instead of also offering its suggestion as a textDocument/completion item.
  capabilities = {
    textDocument = { inlineCompletion = { dynamicRegistration = false } },
  },
  handlers = {
    -- Model state: loading / ready / busy / error. Kept by the fimls plugin for statuslines.
    ['fimls/status'] = function(err, result, ctx)
      local ok, status = pcall(require, 'fimls.status')
      if ok then
        status.on_status(err, result, ctx)
      end
    end,
  },
  on_exit = function(code, signal, client_id)
    local ok, status = pcall(require, 'fimls.status')
    if ok then
      status.on_exit(code, signal, client_id)
    end
  end,
}
