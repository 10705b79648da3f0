-- End-to-end tests of the fimls Neovim client: drives a child `nvim --embed` over RPC with
-- real keys (nvim_input), the real `fimls --stdio` server and its real model.
--
--   nvim --headless -u NONE -i NONE -n -l test/driver.lua <label>
--
-- The child is the same Neovim binary as the one running this script. Its config is the
-- README's `<!-- test:config -->` block, its paths replaced by this checkout's and $FIMLS.
-- Environment (set by test/run):
--   FIMLS            the server command (absolute path)
--   FIMLS_TEST_TMP   empty temporary directory for this run (the caller removes it)
-- Prints one "ok"/"FAIL" line per test and "<label>: N passed, M failed".

local label = arg[1] or 'nvim'
local here = vim.fs.dirname(vim.fs.normalize(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p')))
local client_dir = vim.fs.dirname(here)
local tmp = assert(os.getenv('FIMLS_TEST_TMP'), 'FIMLS_TEST_TMP is not set')
local fimls = assert(os.getenv('FIMLS'), 'FIMLS is not set')
local nvim = vim.v.progpath

local SUGGESTION_TIMEOUT = 45000 -- ms: the first completion may take seconds on a busy machine
local ACTION_TIMEOUT = 90000 -- ms: a code action is written by the model (1-5 s, more under load)

local passed, failed = 0, 0
local children = {} ---@type integer[] channels of child Neovims
local server_pids = {} ---@type integer[]
local t_start = vim.uv.hrtime()

local function say(line)
  io.stdout:write(line .. '\n')
  io.stdout:flush()
end

-- Child Neovim ------------------------------------------------------------------------

--- The README's test:config block, with this checkout's plugin and the server `server`
--- for the README's example paths.
local function readme_config(server)
  local lines = vim.fn.readfile(client_dir .. '/README.md')
  for i, line in ipairs(lines) do
    if line:match('^<!%-%- test:config %-%->%s*$') then
      assert(lines[i + 1] and lines[i + 1]:match('^```lua'), 'test:config must precede a ```lua block')
      local out = {}
      for j = i + 2, #lines do
        if lines[j]:match('^```') then
          local text = table.concat(out, '\n')
          local function put(path, value)
            assert(text:find(path, 1, true), 'the config has no ' .. path)
            value = value:gsub('[\\\']', '\\%0') -- inside a '...' Lua string
            text = text:gsub(vim.pesc(path), (value:gsub('%%', '%%%%')))
          end
          put('~/fimls/editor-clients/nvim', client_dir)
          put('~/fimls/.venv/bin/fimls', server)
          return text
        end
        out[#out + 1] = lines[j]
      end
    end
  end
  error('no <!-- test:config --> block in README.md')
end

local C = {} -- the current child: C.chan

local function rpc(method, ...)
  return vim.rpcrequest(C.chan, method, ...)
end

--- Run Lua in the child; `...` are its arguments. nil comes back as nil (not vim.NIL).
local function lua(code, ...)
  local result = rpc('nvim_exec_lua', code, { ... })
  if result == vim.NIL then
    return nil
  end
  return result
end

--- Type keys (as a user would: mappings apply).
local function keys(k)
  rpc('nvim_input', k)
end

---@param what string what did not happen (the failure reason)
---@param timeout integer ms
---@param fn fun(): any
local function wait_for(what, timeout, fn)
  local value
  local ok = vim.wait(timeout, function()
    local good, v = pcall(fn)
    value = good and v or nil
    return value ~= nil and value ~= false
  end, 30)
  if not ok then
    error(what .. (' (after %.1f s)'):format(timeout / 1000), 0)
  end
  return value
end

local function start_child(name, server)
  local dir = tmp .. '/' .. name
  vim.fn.mkdir(dir .. '/proj/.git', 'p')
  local init = dir .. '/init.lua'
  vim.fn.writefile(vim.split(readme_config(server), '\n'), init)
  local chan = vim.fn.jobstart({ nvim, '--embed', '--headless', '-i', 'NONE', '-n', '-u', init }, {
    rpc = true,
    cwd = dir .. '/proj',
    env = {
      XDG_CONFIG_HOME = dir .. '/config',
      XDG_DATA_HOME = dir .. '/data',
      XDG_STATE_HOME = dir .. '/state',
    },
  })
  assert(chan > 0, 'could not start ' .. nvim)
  children[#children + 1] = chan
  C = { chan = chan, dir = dir, proj = dir .. '/proj' }
  -- Record what the child shows the user, and the status events.
  lua([[
    _G.T = { notes = {}, status_events = 0 }
    local notify = vim.notify
    vim.notify = function(msg, level, opts)
      table.insert(T.notes, { msg = tostring(msg), level = level })
      return notify(msg, level, opts)
    end
    vim.api.nvim_create_autocmd('User', { pattern = 'FimlsStatus', callback = function()
      T.status_events = T.status_events + 1
    end })
  ]])
  if os.getenv('FIMLS_TEST_DEBUG') then
    lua([[vim.lsp.log.set_level('debug')]])
  end
  return C
end

--- Stop the child's LSP clients, quit it, and make sure its server processes are gone.
local function stop_child(c)
  if not c or not c.chan then
    return
  end
  local prev = C
  C = c
  pcall(lua, [[
    for _, client in ipairs(vim.lsp.get_clients()) do client:stop() end
    vim.wait(3000, function() return #vim.lsp.get_clients() == 0 end, 20)
  ]])
  pcall(vim.rpcnotify, c.chan, 'nvim_command', 'qall!')
  vim.fn.jobwait({ c.chan }, 3000)
  vim.fn.jobstop(c.chan)
  C = prev
end

local function record_server_pids()
  local pids = lua('return vim.api.nvim_get_proc_children(vim.fn.getpid())')
  for _, pid in ipairs(pids or {}) do
    if not vim.tbl_contains(server_pids, pid) then
      server_pids[#server_pids + 1] = pid
    end
  end
end

-- Buffer and display state -----------------------------------------------------------

--- The ghost text Neovim shows: read from the extmarks of the namespace that draws it
--- (Neovim's own on 0.12, fimls's on 0.10/0.11); its " (1/n)" index hint left out.
local GHOST = [[
  local ns = vim.api.nvim_get_namespaces()[...]
  if not ns then return nil end
  local m = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })[1]
  if not m then return nil end
  local d = m[4]
  local function text(chunks)
    local t = {}
    for _, c in ipairs(chunks or {}) do
      if c[2] ~= 'ComplHintMore' then t[#t + 1] = c[1] end
    end
    return table.concat(t)
  end
  local lines = { text(d.virt_text) }
  for _, vl in ipairs(d.virt_lines or {}) do lines[#lines + 1] = text(vl) end
  local s = table.concat(lines, '\n')
  if s == '' then return nil end
  local cur = vim.api.nvim_win_get_cursor(0)
  return { row = m[2], col = m[3], text = s, crow = cur[1] - 1, ccol = cur[2],
           mode = vim.api.nvim_get_mode().mode }
]]

local ghost_ns -- set once the child is up

local function ghost()
  return lua(GHOST, ghost_ns)
end

local function buf_lines()
  return rpc('nvim_buf_get_lines', 0, 0, -1, false)
end

local function cursor()
  local c = rpc('nvim_win_get_cursor', 0)
  return c[1] - 1, c[2]
end

--- `lines` with `text` inserted at (row, col) (0-based, byte column).
local function with_inserted(lines, row, col, text)
  local out = vim.deepcopy(lines)
  local line = out[row + 1]
  local parts = vim.split(text, '\n', { plain = true })
  local before, after = line:sub(1, col), line:sub(col + 1)
  parts[1] = before .. parts[1]
  parts[#parts] = parts[#parts] .. after
  out[row + 1] = parts[1]
  for i = 2, #parts do
    table.insert(out, row + i, parts[i])
  end
  return out
end

local function same(a, b)
  return vim.deep_equal(a, b)
end

local function show(lines)
  return vim.inspect(table.concat(lines, '\n'))
end

local stats -- defined below

--- A suggestion shown at the cursor, in Insert mode.
local function wait_ghost(what)
  local ok, g = pcall(wait_for, what or 'no ghost text appeared', SUGGESTION_TIMEOUT, function()
    local g = ghost()
    return g and g.row == g.crow and g.col == g.ccol and g.mode:sub(1, 1) == 'i' and g
  end)
  if not ok then
    -- Say what the server did meanwhile.
    local s = stats()
    error(('%s; server requests %s, line %s'):format(
      g,
      s and vim.json.encode(s.requests) or '?',
      vim.inspect(buf_lines()[select(1, cursor()) + 1])
    ), 0)
  end
  return g
end

--- Open a new file of the test project (Normal mode) and wait for fimls to attach.
local function open(name, lines)
  keys('<Esc>')
  wait_for('child not back in Normal mode', 5000, function()
    return rpc('nvim_get_mode').mode == 'n'
  end)
  local path = C.proj .. '/' .. name
  vim.fn.writefile(lines or {}, path)
  rpc('nvim_command', 'edit ' .. vim.fn.fnameescape(path))
  wait_for('fimls did not attach to ' .. name, 20000, function()
    return lua([[return require('fimls').ghost_path() ~= nil]])
  end)
end

function stats()
  return lua([[
    local client = vim.lsp.get_clients({ name = 'fimls', bufnr = 0 })[1]
    local r = client and client:request_sync('fimls/stats', vim.empty_dict(), 10000, 0)
    return r and r.result or nil
  ]])
end

-- What the tests expect the server to have counted.
local expected = { full = 0, partial = 0 }
local stats0

--- The next word of a suggestion, as the README defines it.
local function next_word(text)
  local lead = text:match('^%s*')
  local rest = text:sub(#lead + 1)
  return lead .. (rest:match('^[%w_\128-\255]+') or rest:match('^[^%w_\128-\255%s]+') or '')
end

-- Tests ------------------------------------------------------------------------------

local only = os.getenv('FIMLS_TEST_ONLY') -- run only the tests whose name has this text

local function test(name, fn)
  if only and only ~= '' and not name:find(only, 1, true) and not name:find('^status') then
    return true
  end
  local t0 = vim.uv.hrtime()
  local ok, err = xpcall(fn, function(e)
    return type(e) == 'string' and e or vim.inspect(e)
  end)
  local secs = (vim.uv.hrtime() - t0) / 1e9
  if ok then
    passed = passed + 1
    say(('ok   %s: %s (%.1f s)'):format(label, name, secs))
  else
    failed = failed + 1
    say(('FAIL %s: %s (%.1f s): %s'):format(label, name, secs, err))
  end
  return ok
end

--- Type in Insert mode, wait for the suggestion, accept it with `key`; checks the buffer
--- gained exactly `expect(ghost_text)` at the cursor and returns (ghost, inserted).
local function accept_with(key, expect)
  local g = wait_ghost()
  local before = buf_lines()
  keys(key)
  local want = with_inserted(before, g.row, g.col, expect(g.text))
  wait_for('buffer after ' .. key .. ' is not the text before plus ' .. vim.inspect(expect(g.text)), 10000, function()
    return same(buf_lines(), want)
  end)
  local text = expect(g.text)
  local parts = vim.split(text, '\n', { plain = true })
  local erow = g.row + #parts - 1
  local ecol = (#parts == 1 and g.col or 0) + #parts[#parts]
  wait_for('cursor not after the inserted text', 5000, function()
    local r, c = cursor()
    return r == erow and c == ecol
  end)
  return g, text
end

local function suite()
  local version = vim.version()
  local child = start_child('main', fimls)
  local native = lua('return vim.lsp.inline_completion ~= nil')
  ghost_ns = native and 'nvim.lsp.inline_completion' or 'fimls'

  test('status() reaches "fimls: ready" and fires User FimlsStatus', function()
    open('first.py', { 'import os', '' })
    record_server_pids()
    wait_for('status() never said ready: ' .. tostring(lua([[return require('fimls').status()]])), 30000, function()
      return lua([[return require('fimls').status() == 'fimls: ready']])
    end)
    assert(lua('return T.status_events') > 0, 'no User FimlsStatus autocmd')
    local info = lua([[return require('fimls').status_info()]])
    assert(info and info.model and info.model.name, 'status_info() has no model: ' .. vim.inspect(info))
    stats0 = assert(stats(), 'fimls/stats gave nothing')
    -- Settings through setup() reach the running server (workspace/didChangeConfiguration):
    -- short suggestions (checked below), written to their end (no time budget, which would
    -- cut them to one line on a loaded machine).
    lua([[require('fimls').setup({ settings = { completion = { maxLines = 2 }, cache = { timeBudgetMs = 0 } } })]])
    assert(lua([[return require('fimls').ghost_path()]]), 'setup() again lost the buffer')
  end)

  test(('ghost text is drawn by %s'):format(native and 'Neovim (vim.lsp.inline_completion)' or 'fimls (extmarks)'), function()
    local path = lua([[return require('fimls').ghost_path()]])
    assert(path == (native and 'native' or 'extmark'), 'ghost_path() = ' .. tostring(path))
    if native then
      assert(lua([[return vim.lsp.inline_completion.is_enabled({ bufnr = 0 })]]), 'inline completion not enabled')
    end
    local enc = lua([[return vim.lsp.get_clients({ name = 'fimls', bufnr = 0 })[1].offset_encoding]])
    assert(enc, 'no position encoding')
  end)

  test('Tab accepts exactly the ghost text shown (multi-line)', function()
    open('accept.py')
    keys('idef fibonacci(n):<CR>')
    local g = accept_with('<Tab>', function(t)
      return t
    end)
    assert(g.text ~= '', 'empty suggestion')
    assert(g.text:find('\n'), 'a one-line suggestion: ' .. vim.inspect(g.text))
    local n = #vim.split(g.text, '\n')
    assert(n <= 2, ('%d lines: the setting maxLines = 2 did not reach the server'):format(n))
    expected.full = expected.full + 1
    wait_for('the ghost text was not cleared', 5000, function()
      local now = ghost()
      return now == nil or now.text ~= g.text or now.row ~= g.row
    end)
  end)

  test('Tab with no suggestion inserts a real Tab (indent)', function()
    open('tab.py')
    -- In one go: the request waits for a pause, so no suggestion can be shown yet.
    keys('ix = 1<Tab>')
    local line = wait_for('Tab did not insert whitespace', 5000, function()
      local l = buf_lines()[1]
      return l:match('^x = 1%s+$') and l
    end)
    vim.wait(300)
    assert(buf_lines()[1] == line, 'the line changed after the Tab: ' .. buf_lines()[1])
    -- Python's ftplugin: expandtab, softtabstop 4: to column 8.
    assert(line == 'x = 1   ', 'expected "x = 1" and spaces to column 8, got ' .. vim.inspect(line))
  end)

  test('Tab with no suggestion falls back to the mapping it replaced', function()
    open('tabmap.py')
    -- A global <Tab> mapping made after fimls mapped the buffer's (as a completion plugin
    -- loaded on InsertEnter would).
    lua([[vim.keymap.set('i', '<Tab>', '<Cmd>lua vim.g.previous_tab = (vim.g.previous_tab or 0) + 1<CR>')]])
    local ok, err = pcall(function()
      keys('iy = 2<Tab>')
      wait_for('the previous <Tab> mapping did not run', 5000, function()
        return lua('return vim.g.previous_tab') == 1
      end)
      assert(buf_lines()[1] == 'y = 2', 'line is ' .. vim.inspect(buf_lines()[1]))
    end)
    lua([[vim.keymap.del('i', '<Tab>')]])
    assert(ok, err)
  end)

  -- <M-l> then <M-w> take parts of one suggestion.
  local partial_buf
  test('<M-l> accepts only the first line of a multi-line suggestion', function()
    open('partial.py')
    keys('idef fibonacci(n):<CR>')
    local g = wait_ghost()
    assert(g.text:find('\n'), 'the suggestion has one line: ' .. vim.inspect(g.text))
    local g2, ins = accept_with('<M-l>', function(t)
      return t:match('^[^\n]*')
    end)
    assert(ins:match('%S') and not ins:find('\n') and #ins < #g2.text, 'inserted ' .. vim.inspect(ins))
    expected.partial = expected.partial + 1
    partial_buf = rpc('nvim_get_current_buf')
  end)

  test('<M-w> accepts only the next word', function()
    if not partial_buf then
      open('word.py')
      keys('idef fibonacci(n):<CR>')
    end
    -- The rest of the same suggestion (Neovim 0.12 asks the server again for it).
    local g, ins = accept_with('<M-w>', next_word)
    assert(ins:match('%S') and #ins < #g.text, ('not a proper prefix: %q of %q'):format(ins, g.text))
    expected.partial = expected.partial + 1
  end)

  local dismissed_buf
  test('<C-]> dismisses the suggestion; it stays away until the next edit', function()
    open('dismiss.py')
    keys('idef reverse_words(sentence):<CR>')
    wait_ghost()
    local before = buf_lines()
    keys('<C-]>')
    wait_for('ghost text still shown after <C-]>', 5000, function()
      return ghost() == nil
    end)
    vim.wait(1500)
    assert(ghost() == nil, 'ghost text came back without an edit')
    assert(same(buf_lines(), before), 'the buffer changed: ' .. show(buf_lines()))
    assert(rpc('nvim_get_mode').mode == 'i', 'left Insert mode')
    dismissed_buf = rpc('nvim_get_current_buf')
  end)

  test('leaving Insert mode clears the suggestion', function()
    if dismissed_buf then
      keys('<M-]>') -- ask again
    else
      open('leave.py')
      keys('idef count_vowels(text):<CR>')
    end
    wait_ghost()
    keys('<Esc>')
    wait_for('ghost text still shown in Normal mode', 5000, function()
      return ghost() == nil and rpc('nvim_get_mode').mode == 'n'
    end)
  end)

  test('typing the suggestion keeps its rest; typing on replaces it', function()
    open('typing.py')
    keys('idef fibonacci(n):<CR>')
    local g = wait_ghost()
    local first = g.text:sub(1, 1)
    assert(first:match('[%w_]'), 'suggestion does not start with a letter: ' .. vim.inspect(g.text))
    keys(first)
    wait_for('after typing its first character the rest was not shown', SUGGESTION_TIMEOUT, function()
      local now = ghost()
      return now and now.col == now.ccol and now.col == g.col + 1 and now.text == g.text:sub(2)
    end)
    -- Now something else: the stale rest must go, replaced by a new suggestion or nothing.
    local stale = g.text:sub(3)
    local other = g.text:sub(2, 2) == 'z' and 'q' or 'z'
    keys(other)
    wait_for('did not type ' .. other, 5000, function()
      local _, c = cursor()
      return c == g.col + 2
    end)
    local fresh = wait_for('the stale suggestion stayed: ' .. vim.inspect(stale), SUGGESTION_TIMEOUT, function()
      local now = ghost()
      if now == nil then
        return 'none'
      end
      return now.text ~= stale and now.col == now.ccol and now
    end)
    if fresh ~= 'none' then
      -- A new one: Tab takes exactly it.
      accept_with('<Tab>', function(t)
        return t
      end)
      expected.full = expected.full + 1
    end
  end)

  test('UTF-8 text before the cursor: the ghost text sits at the right column', function()
    open('utf8.py', { 'PRICES = {"café 🎉": 3, "crème brûlée": 7, "smørrebrød": 9}', '' })
    keys('Gidef order_total(items):<CR>return sum(PRICES["crème brûlée 🎉"] * ')
    local g = wait_ghost()
    local line = buf_lines()[g.row + 1]
    assert(line:find('crème brûlée', 1, true), 'cursor line: ' .. line)
    assert(g.col == #line, ('ghost at byte %d, line has %d bytes'):format(g.col, #line))
    accept_with('<Tab>', function(t)
      return t
    end)
    expected.full = expected.full + 1
  end)

  test('<M-]> asks explicitly (Invoked): completes in a comment', function()
    open('invoked.py', { 'def area(width, height):', '    return width * height', '', '', '# the area of a  by 4 rectangle' })
    -- The cursor in the comment, after "of a ".
    rpc('nvim_win_set_cursor', 0, { 5, #'# the area of a ' })
    keys('i')
    -- Automatic requests do not complete inside a comment.
    vim.wait(2500)
    assert(ghost() == nil, 'an automatic suggestion appeared in a comment: ' .. vim.inspect(ghost()))
    keys('<M-]>')
    local g = wait_ghost('<M-]> brought no suggestion in the comment')
    assert(g.text ~= '', 'empty suggestion')
  end)

  test('fimls/stats counts the full and partial acceptances', function()
    local s = wait_for('fimls/stats does not show the acceptances', 10000, function()
      local now = stats()
      local a, a0 = now.acceptances, stats0.acceptances
      return a.full - a0.full == expected.full and a.partial - a0.partial == expected.partial and now
    end)
    local a, a0 = s.acceptances, stats0.acceptances
    assert(a.total - a0.total == expected.full + expected.partial, 'total ' .. vim.inspect(a))
    assert(a.chars > a0.chars, 'no characters counted')
  end)

  test(':checkhealth fimls reports OK for the executable and the attached client', function()
    open('health.py', { 'x = 1' })
    lua([[vim.cmd('checkhealth fimls')]])
    local text = lua([[return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')]])
    lua([[vim.cmd('bwipeout!')]])
    assert(not text:find('ERROR'), 'errors:\n' .. text)
    assert(text:find('OK `[^`]*fimls` found'), 'executable not OK:\n' .. text)
    assert(text:find('OK version: fimls'), 'no version:\n' .. text)
    assert(text:find('OK fimls client %d+ attached to buffer'), 'client not OK:\n' .. text)
    assert(text:find('OK ghost text on'), 'ghost text not OK:\n' .. text)
    assert(text:find('OK status: ready') or text:find('OK status: busy'), 'status not OK:\n' .. text)
  end)

  local program = {
    'def scale(values, factor):',
    '    return [v * factor for v in values]',
    '',
    '',
    'def total(values):',
    '    result = 0',
    '    for v in values:',
    '        result += v',
    '    return result',
  }

  --- Stub vim.ui.select (pick the action whose title matches) and vim.ui.input.
  local function stub_ui(pattern, instruction)
    lua(
      [[
      local pattern, instruction = ...
      T.titles, T.prompts = {}, {}
      vim.ui.select = function(items, opts, on_choice)
        for i, item in ipairs(items) do
          local title = opts.format_item and opts.format_item(item) or tostring(item)
          table.insert(T.titles, title)
        end
        for i, item in ipairs(items) do
          if (opts.format_item and opts.format_item(item) or ''):match(pattern) then
            return on_choice(item, i)
          end
        end
        on_choice(nil, nil)
      end
      vim.ui.input = function(opts, on_confirm)
        table.insert(T.prompts, opts.prompt or '')
        on_confirm(instruction)
      end
    ]],
      pattern,
      instruction
    )
  end

  local function errors_shown()
    return lua([[
      local out = {}
      for _, n in ipairs(T.notes) do
        if (n.level or 0) >= vim.log.levels.WARN then out[#out + 1] = n.msg end
      end
      return table.concat(out, ' | ')
    ]])
  end

  --- The buffer's lines once a code action changed them from `before` (an error the
  --- editor shows meanwhile fails the test).
  local function changed_from(before)
    return wait_for('the buffer did not change', ACTION_TIMEOUT, function()
      local l = buf_lines()
      local err = errors_shown()
      if err ~= '' then
        error('editor showed: ' .. err, 0)
      end
      return not same(l, before) and l
    end)
  end

  test('code action via gra: "Add docstring" puts a docstring right after the def', function()
    open('docstring.py', program)
    stub_ui('^Add docstring for `scale`')
    keys('gg')
    keys('gra')
    local lines = changed_from(program)
    local titles = lua('return T.titles')
    assert(vim.tbl_contains(titles, 'Add docstring for `scale`'), 'titles: ' .. vim.inspect(titles))
    assert(lines[1] == program[1], 'def line changed: ' .. lines[1])
    assert(lines[2]:match('^    """'), 'no docstring after the def: ' .. show(lines))
    local added = #lines - #program
    assert(added >= 1, 'no line added: ' .. show(lines))
    local closing = lines[1 + added]
    assert(closing:match('"""%s*$'), 'docstring does not end on line ' .. (1 + added) .. ': ' .. show(lines))
    for i = 2, #program do
      assert(lines[i + added] == program[i], 'line ' .. i .. ' of the rest changed: ' .. show(lines))
    end
  end)

  test('code action via gra: "Rewrite selection…" asks for the instruction and applies the edit', function()
    open('rewrite.py', program)
    stub_ui('^Rewrite selection', 'add type hints')
    keys('ggVj')
    wait_for('not in Visual mode', 5000, function()
      return rpc('nvim_get_mode').mode == 'V'
    end)
    keys('gra')
    local lines = changed_from(program)
    local prompts = lua('return T.prompts')
    assert(#prompts == 1, 'vim.ui.input was asked ' .. #prompts .. ' times')
    assert(lines[1]:match('^def scale%('), 'first line is not the def: ' .. show(lines))
    -- Only the selection may change: the second function is intact.
    local tail = vim.list_slice(program, 4)
    assert(same(vim.list_slice(lines, #lines - #tail + 1), tail), 'the rest changed: ' .. show(lines))
  end)

  local s = stats()
  if s then
    say(('# %s server: requests %s, latency ms %s'):format(label, vim.json.encode(s.requests), vim.json.encode(s.latencyMs)))
  end
  stop_child(child)

  test('no fimls executable: one clear warning, nothing else', function()
    local c = start_child('missing', tmp .. '/not-installed/fimls')
    local ok, err = pcall(function()
      rpc('nvim_command', 'edit ' .. c.proj .. '/missing.py')
      rpc('nvim_command', 'edit ' .. c.proj .. '/missing2.py')
      vim.wait(800)
      local notes = lua('return T.notes')
      assert(#notes == 1, 'messages: ' .. vim.inspect(notes))
      assert(notes[1].msg:find('not-installed/fimls` is not executable', 1, true), notes[1].msg)
      assert(lua([[return #vim.lsp.get_clients()]]) == 0, 'a client runs')
      assert(lua([[return vim.v.errmsg]]) == '', 'error: ' .. lua([[return vim.v.errmsg]]))
      assert(lua([[return require('fimls').status()]]) == '', 'status is not empty')
    end)
    stop_child(c)
    assert(ok, err)
  end)

  say(('# %s (Neovim %s) took %.1f s'):format(label, tostring(version), (vim.uv.hrtime() - t_start) / 1e9))
end

local ok, err = xpcall(suite, debug.traceback)
if not ok then
  failed = failed + 1
  say(('FAIL %s: the suite stopped: %s'):format(label, err))
end
for _, chan in ipairs(children) do
  pcall(vim.fn.jobstop, chan)
end
-- The servers exit when their editor goes; make sure.
vim.wait(3000, function()
  for _, pid in ipairs(server_pids) do
    if vim.uv.kill(pid, 0) == 0 then
      return false
    end
  end
  return true
end, 50)
for _, pid in ipairs(server_pids) do
  if vim.uv.kill(pid, 0) == 0 then
    say(('# %s: server %d still running: killed'):format(label, pid))
    vim.uv.kill(pid, 'sigkill')
  end
end
say(('%s: %d passed, %d failed'):format(label, passed, failed))
os.exit(failed == 0 and passed > 0 and 0 or 1)
