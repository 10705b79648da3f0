-- Client side of fimls commands that need the editor.
local util = require('fimls.util')

local M = {}

--- `fimls.rewrite [data]` (the "Rewrite selection…" code action): ask for the instruction,
--- then run it on the server, which answers with workspace/applyEdit.
---@param command lsp.Command
---@param ctx {client_id: integer, bufnr: integer}
function M.rewrite(command, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  local data = command.arguments and command.arguments[1]
  local function run(instruction)
    if not instruction or vim.trim(instruction) == '' then
      return
    end
    vim.notify('fimls: rewriting…', vim.log.levels.INFO)
    util.request(client, 'workspace/executeCommand', {
      command = 'fimls.rewrite',
      arguments = { data, instruction },
    }, function(err)
      if err then
        vim.notify('fimls: rewrite failed: ' .. tostring(err.message), vim.log.levels.ERROR)
      end
    end, ctx.bufnr)
  end
  local given = command.arguments and command.arguments[2]
  if type(given) == 'string' and given ~= '' then
    return run(given)
  end
  vim.ui.input({ prompt = 'fimls: rewrite instruction: ' }, run)
end

return M
