-- fimls for Neovim: ghost text from the fimls language server, the keys to take it,
-- the server's status, and its settings.
--
--   vim.lsp.enable('fimls')      -- Neovim 0.11+ (the config is lsp/fimls.lua)
--   require('fimls').setup({})   -- keys, ghost text, settings (see lua/fimls/config.lua)
local api = vim.api
local config = require('fimls.config')
local status = require('fimls.status')

local M = {}

local NAME = 'fimls'

---@type table<integer, {backend: 'native'|'extmark', client_id: integer}>
local attached = {}

local function backend_module(name)
  return name == 'native' and require('fimls.native') or require('fimls.ghost')
end

local function detach(bufnr)
  local a = attached[bufnr]
  if not a then
    return
  end
  attached[bufnr] = nil
  backend_module(a.backend).detach(bufnr)
  require('fimls.keymaps').unset(bufnr)
end

---@param bufnr integer
---@param client vim.lsp.Client
local function attach(bufnr, client)
  if not api.nvim_buf_is_valid(bufnr) or not config.enabled_for(bufnr) then
    return
  end
  local name = config.backend()
  detach(bufnr)
  local backend = backend_module(name)
  backend.attach(bufnr, client.id)
  attached[bufnr] = { backend = name, client_id = client.id }
  require('fimls.keymaps').set(bufnr, config.options.keymaps, backend)
end

--- The config Neovim 0.10 starts the server with (0.11+ uses vim.lsp.config).
local function config_010(settings)
  local file = api.nvim_get_runtime_file('lsp/fimls.lua', false)[1]
  if not file then
    return nil
  end
  local cfg = vim.tbl_deep_extend('force', dofile(file), config.options.server or {})
  cfg.name = NAME
  local object = next(settings) and vim.deepcopy(settings) or vim.empty_dict()
  cfg.init_options = object
  cfg.settings = { fimls = vim.deepcopy(object) }
  cfg.capabilities = vim.tbl_deep_extend(
    'force',
    vim.lsp.protocol.make_client_capabilities(),
    cfg.capabilities or {}
  )
  return cfg
end

--- Neovim 0.10 has no vim.lsp.enable: start the server for its filetypes ourselves.
local function autostart_010(group, cfg)
  local function start(bufnr)
    if vim.bo[bufnr].buftype ~= '' or vim.fn.executable(cfg.cmd[1]) == 0 then
      return
    end
    local c = vim.deepcopy(cfg)
    c.root_dir = vim.fs.root(bufnr, cfg.root_markers)
    c.root_markers, c.filetypes = nil, nil
    vim.lsp.start(c, { bufnr = bufnr })
  end
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = cfg.filetypes,
    callback = function(args)
      start(args.buf)
    end,
  })
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(cfg.filetypes, vim.bo[bufnr].filetype) then
      start(bufnr)
    end
  end
end

--- Whether the user enabled the fimls config (vim.lsp.enable).
local function lsp_enabled()
  if vim.lsp.is_enabled then
    return vim.lsp.is_enabled(NAME)
  end
  return vim.lsp._enabled_configs == nil or vim.lsp._enabled_configs[NAME] ~= nil
end

--- One clear message when the server command is missing (Neovim only logs it).
local function warn_if_missing(group, cfg_010)
  api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(args)
      local cfg = cfg_010 or (vim.lsp.config and vim.lsp.config[NAME])
      if not cfg or type(cfg.cmd) ~= 'table' or not cfg.cmd[1] then
        return true
      end
      if cfg.filetypes and not vim.tbl_contains(cfg.filetypes, args.match) then
        return
      end
      if not cfg_010 and not lsp_enabled() then
        return
      end
      if vim.fn.executable(cfg.cmd[1]) == 0 then
        vim.notify(
          ('fimls: `%s` is not executable, so there are no suggestions. Install fimls or give its '
            .. "path: vim.lsp.config('fimls', { cmd = { '/path/to/fimls', '--stdio' } })"):format(
            cfg.cmd[1]
          ),
          vim.log.levels.WARN
        )
      end
      return true -- checked once
    end,
  })
end

--- Send new settings to running fimls clients.
local function push_settings(settings)
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    client.settings = vim.tbl_deep_extend('force', client.settings or {}, { fimls = settings })
    local params = { settings = client.settings }
    if vim.fn.has('nvim-0.11') == 1 then
      client:notify('workspace/didChangeConfiguration', params)
    else
      client.notify('workspace/didChangeConfiguration', params)
    end
  end
end

--- Set fimls up. Call again to change options.
---@param opts? fimls.Options
function M.setup(opts)
  config.set(opts)
  local group = api.nvim_create_augroup('fimls', { clear = true })

  local settings = config.options.settings or {}
  local cfg_010
  if vim.lsp.config then
    if next(settings) then
      vim.lsp.config(NAME, { init_options = settings, settings = { fimls = settings } })
    end
  else
    cfg_010 = config_010(settings)
  end

  api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == NAME then
        attach(args.buf, client)
      end
    end,
  })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    callback = function(args)
      local a = attached[args.buf]
      if a and a.client_id == args.data.client_id then
        detach(args.buf)
      end
    end,
  })
  warn_if_missing(group, cfg_010)

  -- Called again, or after the server started (lazy loading): apply to what runs.
  for bufnr in pairs(attached) do
    detach(bufnr)
  end
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    for bufnr in pairs(client.attached_buffers) do
      attach(bufnr, client)
    end
  end
  if next(settings) then
    push_settings(settings)
  end
  if cfg_010 then
    autostart_010(group, cfg_010)
  end
end

local function current()
  local bufnr = api.nvim_get_current_buf()
  local a = attached[bufnr]
  return bufnr, a and backend_module(a.backend)
end

--- Accept the shown suggestion; false when there is none. Usable in <expr> mappings.
function M.accept()
  local bufnr, backend = current()
  return backend ~= nil and backend.accept(bufnr, 'full')
end

--- Accept the next word of the suggestion.
function M.accept_word()
  local bufnr, backend = current()
  return backend ~= nil and backend.accept(bufnr, 'word')
end

--- Accept the rest of the suggestion's current line (or, at its end, the next line).
function M.accept_line()
  local bufnr, backend = current()
  return backend ~= nil and backend.accept(bufnr, 'line')
end

--- Hide the suggestion until the next edit.
function M.dismiss()
  local bufnr, backend = current()
  return backend ~= nil and backend.dismiss(bufnr)
end

--- Next suggestion, or ask the server again (also in comments and strings).
function M.next()
  local bufnr, backend = current()
  return backend ~= nil and backend.cycle(bufnr, 1)
end

--- Previous suggestion, or ask the server again.
function M.prev()
  local bufnr, backend = current()
  return backend ~= nil and backend.cycle(bufnr, -1)
end

--- Whether a suggestion is shown in the current buffer.
function M.visible()
  local bufnr, backend = current()
  return backend ~= nil and backend.visible(bufnr)
end

--- A short status for statuslines: "fimls: ready", "fimls: busy", "fimls: loading",
--- "fimls: error", "fimls: stopped"; "" until the server reports.
function M.status()
  return status.text()
end

--- The last status in full: {state, message, model, client_id}, or nil.
function M.status_info()
  return vim.deepcopy(status.last)
end

--- How ghost text is drawn in a buffer: 'native' (vim.lsp.inline_completion),
--- 'extmark' (fimls), or nil when fimls is not attached to it.
function M.ghost_path(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if bufnr == 0 then
    bufnr = api.nvim_get_current_buf()
  end
  local a = attached[bufnr]
  return a and a.backend
end

-- Used by :checkhealth.
M._config = config

return M
