-- Helpers shared by the two ghost-text paths: text splitting, inserting, LSP calls that
-- differ between Neovim versions, and acceptance receipts.
local api = vim.api

local M = {}

local has_011 = vim.fn.has('nvim-0.11') == 1

--- Neovim 0.11 made client methods take `self` (client:request); 0.10 has client.request.
---@return boolean ok, integer? request_id
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel_request(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.is_stopped(client)
  if has_011 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

--- Run a command the way a code action's command runs: a client-side handler
--- (vim.lsp.commands) if there is one, else workspace/executeCommand.
---@param client vim.lsp.Client
---@param command lsp.Command
---@param bufnr integer
function M.exec_cmd(client, command, bufnr)
  if has_011 then
    return client:exec_cmd(command, { bufnr = bufnr })
  end
  local fn = client.commands[command.command] or vim.lsp.commands[command.command]
  if fn then
    return fn(command, { bufnr = bufnr, client_id = client.id })
  end
  M.request(client, 'workspace/executeCommand', {
    command = command.command,
    arguments = command.arguments,
  }, function() end, bufnr)
end

--- Tell the server what was accepted of an item. `partial` nil: the whole suggestion,
--- the item's command runs unchanged. Else the number of characters inserted:
--- fimls.accepted with the item's receipt plus `accepted`.
---@param client vim.lsp.Client?
---@param command lsp.Command?
---@param bufnr integer
---@param partial integer?
function M.report_accept(client, command, bufnr, partial)
  if not client or not command or M.is_stopped(client) then
    return
  end
  if partial == nil then
    return M.exec_cmd(client, command, bufnr)
  end
  local receipt = command.arguments and command.arguments[1]
  if command.command ~= 'fimls.accepted' or type(receipt) ~= 'table' then
    return -- another server's command: it has no notion of a partial accept
  end
  receipt = vim.deepcopy(receipt)
  if type(receipt.chars) == 'number' then
    partial = math.min(partial, receipt.chars)
  end
  receipt.accepted = partial
  M.exec_cmd(client, { title = command.title, command = command.command, arguments = { receipt } }, bufnr)
end

--- Lines of a text, "\n" or "\r\n" separated (a CRLF document's suggestion has CRLF).
---@param text string
---@return string[]
function M.lines(text)
  return vim.split(text, '\r?\n')
end

-- A word character: ASCII letters, digits, underscore, and any non-ASCII byte.
local WORD = '[%w_\128-\255]'
local NOT_WORD = '[^%w_\128-\255%s]'

--- The next word of a suggestion: line breaks and spaces before it, then a run of word
--- characters, else a run of other visible characters.
---@param text string
---@return string
function M.next_word(text)
  local lead = text:match('^%s*')
  local rest = text:sub(#lead + 1)
  local word = rest:match('^' .. WORD .. '+') or rest:match('^' .. NOT_WORD .. '+') or ''
  return lead .. word
end

--- The rest of the suggestion's current line; at a line break, the break and the next line.
---@param text string
---@return string
function M.next_line(text)
  return text:match('^[\r\n]*[^\r\n]*')
end

--- Characters (code points), the unit of fimls's `chars` and `accepted`.
function M.chars(text)
  return vim.fn.strchars(text)
end

--- Insert text at a position of the buffer shown in window `win` and put the cursor after it.
---@param win integer
---@param row integer 0-based
---@param col integer 0-based byte column
---@param text string
---@param replace_to? integer byte column on `row` up to which existing text is replaced
function M.insert(win, row, col, text, replace_to)
  local bufnr = api.nvim_win_get_buf(win)
  local lines = M.lines(text)
  api.nvim_buf_set_text(bufnr, row, col, row, math.max(col, replace_to or col), lines)
  local last = lines[#lines]
  api.nvim_win_set_cursor(win, { row + #lines, (#lines == 1 and col or 0) + #last })
end

--- Byte column of an LSP position's character on a line, in the client's encoding.
---@param line string
---@param character integer
---@param encoding string 'utf-8'|'utf-16'|'utf-32'
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, character, false) -- 0.11+
  if not ok then
    ok, col = pcall(vim.str_byteindex, line, character, encoding == 'utf-16') -- 0.10
  end
  return ok and col or #line
end

--- The window showing `bufnr`: the current one if it does, else the first one.
function M.win_of(bufnr)
  local win = api.nvim_get_current_win()
  if api.nvim_win_get_buf(win) == bufnr then
    return win
  end
  local id = vim.fn.bufwinid(bufnr)
  return id ~= -1 and id or nil
end

--- Whether the editor is in Insert mode (also with the completion menu or ^X mode).
function M.in_insert()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

return M
