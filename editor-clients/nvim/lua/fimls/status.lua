-- The server's last `fimls/status` (model state), for statuslines and :checkhealth.
local M = {}

---@class fimls.Status
---@field state string   'unloaded'|'loading'|'ready'|'busy'|'error'|'unavailable' (an inference server that does not answer now), or 'stopped' after the server exited
---@field message string
---@field model table|nil
---@field client_id integer|nil

---@type fimls.Status|nil
M.last = nil

local function changed()
  local data = vim.deepcopy(M.last)
  -- Autocommands may not run in every context a notification arrives in: schedule.
  vim.schedule(function()
    vim.api.nvim_exec_autocmds('User', { pattern = 'FimlsStatus', modeline = false, data = data })
    pcall(vim.cmd.redrawstatus)
  end)
end

--- Handler of the `fimls/status` notification (see lsp/fimls.lua).
function M.on_status(err, result, ctx)
  if err or type(result) ~= 'table' or type(result.state) ~= 'string' then
    return
  end
  M.last = {
    state = result.state,
    message = type(result.message) == 'string' and result.message or '',
    model = type(result.model) == 'table' and result.model or nil,
    client_id = ctx and ctx.client_id,
  }
  changed()
end

--- The server process ended (on_exit of lsp/fimls.lua).
function M.on_exit(code, signal, client_id)
  if M.last and M.last.client_id and M.last.client_id ~= client_id then
    return -- another fimls client is the one shown
  end
  local how = signal ~= 0 and ('signal %d'):format(signal) or ('exit code %d'):format(code)
  M.last = { state = 'stopped', message = 'server ended (' .. how .. ')', client_id = client_id }
  changed()
end

--- "fimls: ready", "fimls: busy", ...; "" before the server said anything.
function M.text()
  if not M.last then
    return ''
  end
  return 'fimls: ' .. M.last.state
end

return M
