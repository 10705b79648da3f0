-- :checkhealth fimls
local M = {}

local health = vim.health

--- The buffer the user was in: :checkhealth has already switched to its own buffer.
local function user_buffer()
  local alt = vim.fn.bufnr('#')
  if alt > 0 and vim.api.nvim_buf_is_loaded(alt) and vim.bo[alt].buftype == '' then
    return alt
  end
  local ok, tab = pcall(vim.api.nvim_list_tabpages)
  local prev = vim.fn.tabpagenr('#')
  if ok and prev > 0 and tab[prev] then
    return vim.api.nvim_win_get_buf(vim.api.nvim_tabpage_get_win(tab[prev]))
  end
  return nil
end

local function server_cmd()
  local cfg = vim.lsp.config and vim.lsp.config.fimls
  if cfg and cfg.cmd then
    return cfg.cmd
  end
  for _, client in ipairs(vim.lsp.get_clients({ name = 'fimls' })) do
    return client.config.cmd
  end
  return { 'fimls', '--stdio' }
end

function M.check()
  health.start('fimls: Neovim')
  local v = vim.version()
  local version = ('%d.%d.%d%s'):format(v.major, v.minor, v.patch, v.prerelease and '-dev' or '')
  if vim.fn.has('nvim-0.10') == 0 then
    health.error('Neovim ' .. version .. ': fimls needs 0.10 or newer')
    return
  end
  local fimls = require('fimls')
  local backend = fimls._config.backend()
  if backend == 'native' then
    health.ok(('Neovim %s: ghost text by Neovim itself (vim.lsp.inline_completion)'):format(version))
  else
    local why = vim.lsp.inline_completion and "backend = 'extmark'" or 'no vim.lsp.inline_completion before 0.12'
    health.ok(('Neovim %s: ghost text drawn by fimls with extmarks (%s)'):format(version, why))
  end
  if vim.lsp.config then
    health.ok('vim.lsp.config/enable available (config: lsp/fimls.lua)')
  else
    health.info('Neovim 0.10: require("fimls").setup() starts the server itself')
  end

  health.start('fimls: server')
  local cmd = server_cmd()
  if type(cmd) ~= 'table' then
    health.info('cmd is a function: not checked')
  elseif vim.fn.executable(cmd[1]) == 1 then
    health.ok(('`%s` found: %s'):format(cmd[1], vim.fn.exepath(cmd[1])))
    local ok, result = pcall(function()
      return vim.system({ cmd[1], '--version' }, { text = true }):wait(10000)
    end)
    if ok and result.code == 0 then
      health.ok('version: ' .. vim.trim(result.stdout ~= '' and result.stdout or result.stderr))
    else
      health.warn(('`%s --version` failed: %s'):format(cmd[1], ok and vim.trim(result.stderr or '') or result))
    end
  else
    health.error(('`%s` not found or not executable'):format(cmd[1]), {
      'Install fimls (python3 -m venv .venv && .venv/bin/pip install .) and put it on $PATH,',
      "or give its path: vim.lsp.config('fimls', { cmd = { '/path/to/.venv/bin/fimls', '--stdio' } })",
    })
  end

  health.start('fimls: this buffer')
  local bufnr = user_buffer()
  local clients = vim.lsp.get_clients({ name = 'fimls' })
  if bufnr then
    local name = vim.api.nvim_buf_get_name(bufnr)
    local label = ('buffer %d (%s, filetype %s)'):format(
      bufnr,
      name ~= '' and vim.fn.fnamemodify(name, ':~:.') or '[No Name]',
      vim.bo[bufnr].filetype ~= '' and vim.bo[bufnr].filetype or 'none'
    )
    local here = vim.lsp.get_clients({ name = 'fimls', bufnr = bufnr })[1]
    if here then
      health.ok(('fimls client %d attached to %s, root %s'):format(here.id, label, here.root_dir or '(none)'))
      local path = fimls.ghost_path(bufnr)
      if path then
        health.ok('ghost text on (' .. path .. '), keys mapped')
      else
        health.warn('ghost text off here: require("fimls").setup() not called, or its `filetypes` turns it off')
      end
    else
      health.warn('fimls is not attached to ' .. label, {
        "vim.lsp.enable('fimls') (Neovim 0.11+) and a filetype of lsp/fimls.lua's `filetypes`",
      })
    end
  else
    health.info('no file buffer to check')
  end
  for _, client in ipairs(clients) do
    health.info(('client %d: %d buffer(s), position encoding %s'):format(
      client.id,
      vim.tbl_count(client.attached_buffers),
      client.offset_encoding
    ))
  end

  health.start('fimls: model')
  local last = fimls.status_info()
  if not last then
    health.info(#clients > 0 and 'no status from the server yet' or 'server not running')
  elseif last.state == 'ready' or last.state == 'busy' then
    local model = last.model and (last.model.name or last.model.path) or nil
    health.ok(('status: %s%s'):format(last.state, model and (' (' .. tostring(model) .. ')') or ''))
  elseif last.state == 'error' or last.state == 'stopped' then
    health.error(('status: %s: %s'):format(last.state, last.message))
  else
    health.warn(('status: %s %s'):format(last.state, last.message))
  end
end

return M
