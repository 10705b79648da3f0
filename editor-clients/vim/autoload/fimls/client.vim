vim9script
# fimls.vim: the server process and the LSP conversation with it.
#
# The server runs as a job whose channel is in Vim's "lsp" mode: Vim frames
# and parses the JSON-RPC messages, replies to our requests come back to the
# callback given to ch_sendexpr(), and everything else the server sends
# (notifications and its own requests) arrives in OnMessage().

import autoload 'fimls/util.vim'
import autoload 'fimls/doc.vim'
import autoload 'fimls/ghost.vim'
import autoload 'fimls/edit.vim'

const VERSION = '0.1.0'
const DEFAULT_COMMAND = ['fimls', '--stdio']

# 'stopped', 'starting' (initialize sent), 'running' or 'failed' (the command
# is missing or the server exited on its own: no restart until :FimlsRestart
# or :FimlsStart, so that a broken setup does not spam messages).
var state = 'stopped'
var job: job = null_job
var capabilities: dict<any> = {}
var encoding = 'utf-16'
var root = ''
var folders: list<string> = []     # workspace folder URIs the server knows
var status: dict<any> = {}         # last fimls/status params
var progress: dict<any> = {}       # $/progress token -> its last value
var stopping = false               # the exit we are waiting for is ours
var restart_after_exit = false
var shown_errors: dict<bool> = {}  # status errors already echoed

# ---------------------------------------------------------------------------
# Queries used by the other modules.

export def Running(): bool
  return state ==# 'running'
enddef

export def State(): string
  return state
enddef

export def Encoding(): string
  return encoding
enddef

export def Capabilities(): dict<any>
  return capabilities
enddef

# The text for the statusline: '' while no server was started.
export def StatusLine(): string
  if state ==# 'stopped'
    return ''
  elseif state ==# 'failed'
    return 'fimls: off'
  elseif state ==# 'starting'
    return 'fimls: starting'
  endif
  return 'fimls: ' .. get(status, 'state', 'starting')
enddef

# ---------------------------------------------------------------------------
# Starting and stopping.

def Command(): list<string>
  var cmd = get(g:, 'fimls_command', DEFAULT_COMMAND)
  if type(cmd) == v:t_string
    return [expand(cmd), '--stdio']
  endif
  return mapnew(cmd, (i, a) => i == 0 ? expand(a) : a)
enddef

# Start the server (if it is not running) with {dir} as the workspace root.
# Returns false when it cannot run.
export def Start(dir: string = ''): bool
  if state ==# 'starting' || state ==# 'running'
    return true
  endif
  if state ==# 'failed'
    return false
  endif
  var cmd = Command()
  if empty(cmd) || !executable(cmd[0])
    state = 'failed'
    util.Message(printf('fimls: server not found: %s (set g:fimls_command)',
      empty(cmd) ? '[]' : cmd[0]), 'error')
    return false
  endif
  root = dir !=# '' ? dir : util.FindRoot(bufnr())
  util.Log('starting ' .. join(cmd) .. ' in ' .. root)
  job = job_start(cmd, {
    in_mode: 'lsp',
    out_mode: 'lsp',
    err_mode: 'nl',
    out_cb: OnMessage,
    err_cb: OnStderr,
    exit_cb: OnExit,
    cwd: isdirectory(root) ? root : getcwd(),
    noblock: true,
    stoponexit: 'term',
  })
  if job_status(job) !=# 'run'
    state = 'failed'
    util.Message('fimls: could not start ' .. join(cmd), 'error')
    return false
  endif
  state = 'starting'
  stopping = false
  status = {}
  progress = {}
  capabilities = {}
  folders = [util.PathToUri(root)]
  shown_errors = {}
  var params = {
    processId: getpid(),
    clientInfo: {name: 'fimls.vim', version: VERSION},
    rootUri: folders[0],
    rootPath: root,
    workspaceFolders: [{uri: folders[0], name: fnamemodify(root, ':t')}],
    initializationOptions: Settings(),
    capabilities: ClientCapabilities(),
    trace: 'off',
  }
  ch_sendexpr(job, {method: 'initialize', params: params}, {callback: OnInitialized})
  augroup fimls_client
    autocmd!
    autocmd VimLeavePre * fimls#client#Shutdown(500)
  augroup END
  return true
enddef

def Settings(): dict<any>
  var settings = get(g:, 'fimls_settings', {})
  return type(settings) == v:t_dict ? settings : {}
enddef

def ClientCapabilities(): dict<any>
  return {
    general: {positionEncodings: ['utf-32', 'utf-16']},
    textDocument: {
      synchronization: {dynamicRegistration: false, didSave: true, willSave: false},
      inlineCompletion: {dynamicRegistration: false},
      codeAction: {
        dynamicRegistration: false,
        codeActionLiteralSupport: {codeActionKind: {valueSet: [
          '', 'quickfix', 'refactor', 'refactor.extract', 'refactor.inline',
          'refactor.rewrite', 'source', 'source.organizeImports']}},
        isPreferredSupport: true,
        disabledSupport: true,
        dataSupport: true,
        resolveSupport: {properties: ['edit']},
      },
    },
    workspace: {
      applyEdit: true,
      workspaceEdit: {
        documentChanges: true,
        resourceOperations: ['create'],
        failureHandling: 'abort',
        normalizesLineEndings: true,
      },
      configuration: true,
      workspaceFolders: true,
      didChangeConfiguration: {dynamicRegistration: false},
      executeCommand: {dynamicRegistration: false},
    },
    window: {
      workDoneProgress: true,
      showMessage: {},
      showDocument: {support: true},
    },
  }
enddef

def OnInitialized(_ch: channel, resp: dict<any>)
  if state !=# 'starting'
    return
  endif
  if has_key(resp, 'error') || type(get(resp, 'result', v:null)) != v:t_dict
    util.Message('fimls: initialize failed: ' .. ErrorText(resp), 'error')
    Stop()
    return
  endif
  capabilities = get(resp.result, 'capabilities', {})
  encoding = get(capabilities, 'positionEncoding', 'utf-16')
  var info = get(resp.result, 'serverInfo', {})
  util.Log(printf('initialized %s %s, position encoding %s',
    get(info, 'name', '?'), get(info, 'version', ''), encoding))
  state = 'running'
  Notify('initialized', {})
  doc.OnServerReady()
  redrawstatus!
enddef

# Ask the server to shut down and wait for it at most {timeout} ms.
export def Shutdown(timeout: number)
  if state !=# 'running' && state !=# 'starting'
    return
  endif
  stopping = true
  if state ==# 'running'
    try
      ch_evalexpr(job, {method: 'shutdown'}, {timeout: timeout})
      ch_sendexpr(job, {method: 'exit'})
    catch
      # The channel is already closed: the job is on its way out.
    endtry
  endif
  state = 'stopped'
enddef

export def Stop()
  if job_status(job) !=# 'run'
    state = 'stopped'
    return
  endif
  ghost.Dismiss()
  Shutdown(2000)
  doc.OnServerStopped()
  # A server that ignores exit is terminated, then killed.
  var j = job
  timer_start(1500, (_) => job_status(j) ==# 'run' ? job_stop(j, 'term') : 0)
  timer_start(4000, (_) => job_status(j) ==# 'run' ? job_stop(j, 'kill') : 0)
  redrawstatus!
enddef

# Stop the server (if running) and start it again with the current settings
# and g:fimls_command, for every buffer that uses it.
export def Restart()
  if job_status(job) ==# 'run'
    restart_after_exit = true
    Stop()  # shutdown + exit; OnExit starts the new server
  else
    state = 'stopped'
    doc.AttachAll()
  endif
enddef

def OnExit(exited: job, code: number)
  if exited != job
    util.Log('an earlier server exited with code ' .. code)
    return  # a server replaced already: the current one is not affected
  endif
  var expected = stopping
  stopping = false
  ghost.Dismiss()
  doc.OnServerStopped()
  capabilities = {}
  if !expected && (state ==# 'running' || state ==# 'starting')
    state = 'failed'
    util.Message(printf('fimls: the server exited (code %d): :FimlsLog shows why, :FimlsRestart starts it again', code), 'error')
  elseif state !=# 'failed'
    state = 'stopped'
  endif
  util.Log('server exited with code ' .. code)
  if restart_after_exit
    restart_after_exit = false
    state = 'stopped'
    doc.AttachAll()
  endif
  redrawstatus!
enddef

# ---------------------------------------------------------------------------
# Sending.

# Send a request; {Callback} gets the whole response (a dict with "result"
# or "error").  Returns the request id, 0 when the server is not running.
export def Request(method: string, params: any, Callback: func): number
  if state !=# 'running'
    return 0
  endif
  try
    var r = ch_sendexpr(job, {method: method, params: params},
      {callback: (_, resp) => {
        Trace('<- ' .. method, resp)
        Callback(resp)
      }})
    Trace('-> ' .. method .. ' ' .. get(r, 'id', 0), params)
    return get(r, 'id', 0)
  catch
    util.Log('request ' .. method .. ' failed: ' .. v:exception)
    return 0
  endtry
enddef

# A request answered synchronously (waits at most {timeout} ms); {} when it
# fails or times out.
export def RequestSync(method: string, params: any, timeout: number = 5000): dict<any>
  if state !=# 'running'
    return {}
  endif
  try
    return ch_evalexpr(job, {method: method, params: params}, {timeout: timeout})
  catch
    return {}
  endtry
enddef

export def Notify(method: string, params: any)
  if state !=# 'running'
    return
  endif
  try
    ch_sendexpr(job, {method: method, params: params})
    Trace('-> ' .. method, params)
  catch
    util.Log('notification ' .. method .. ' failed: ' .. v:exception)
  endtry
enddef

export def Cancel(id: number)
  if id > 0
    Notify('$/cancelRequest', {id: id})
  endif
enddef

# workspace/executeCommand; an error in the answer is shown.
export def ExecuteCommand(command: string, arguments: list<any>): number
  return Request('workspace/executeCommand', {command: command, arguments: arguments},
    (resp) => ReportError(command, resp))
enddef

def ReportError(what: string, resp: dict<any>)
  if has_key(resp, 'error') && get(resp.error, 'code', 0) != -32800
    util.Message('fimls: ' .. what .. ': ' .. ErrorText(resp), 'error')
  endif
enddef

export def ErrorText(resp: dict<any>): string
  var err = get(resp, 'error', {})
  if type(err) != v:t_dict
    return string(err)
  endif
  return get(err, 'message', 'error ' .. get(err, 'code', '?'))
enddef

# Tell the server about another workspace folder (a buffer from elsewhere).
export def AddFolder(dir: string)
  var uri = util.PathToUri(dir)
  if state !=# 'running' || index(folders, uri) >= 0
    return
  endif
  folders->add(uri)
  Notify('workspace/didChangeWorkspaceFolders', {event: {
    added: [{uri: uri, name: fnamemodify(dir, ':t')}], removed: []}})
enddef

# ---------------------------------------------------------------------------
# Receiving: notifications and requests from the server.

# Replies are framed by hand: in "lsp" mode ch_sendexpr() only takes number
# ids, and the server's request ids are strings.
def SendRaw(msg: dict<any>)
  var body = json_encode(extend({jsonrpc: '2.0'}, msg))
  try
    ch_sendraw(job, 'Content-Length: ' .. len(body) .. "\r\n\r\n" .. body)
  catch
    util.Log('reply failed: ' .. v:exception)
  endtry
enddef

def Reply(id: any, result: any)
  SendRaw({id: id, result: result})
enddef

def ReplyError(id: any, code: number, message: string)
  SendRaw({id: id, error: {code: code, message: message}})
enddef

# With g:fimls_trace, the messages go to the log too (shortened).
def Trace(what: string, value: any)
  if get(g:, 'fimls_trace', 0)
    var text = json_encode(value)
    util.Log(what .. ' ' .. (len(text) > 400 ? strpart(text, 0, 400) .. '…' : text))
  endif
enddef

def OnMessage(_ch: channel, msg: any)
  Trace('<-', msg)
  if type(msg) != v:t_dict || !has_key(msg, 'method')
    # A response nobody waits for (its request was sent without a callback).
    return
  endif
  var params = get(msg, 'params', {})
  if has_key(msg, 'id')
    try
      HandleRequest(msg.id, msg.method, params)
    catch
      util.Log('handling ' .. msg.method .. ' failed: ' .. v:exception .. ' at ' .. v:throwpoint)
      ReplyError(msg.id, -32603, v:exception)
    endtry
  else
    try
      HandleNotification(msg.method, params)
    catch
      util.Log('handling ' .. msg.method .. ' failed: ' .. v:exception .. ' at ' .. v:throwpoint)
    endtry
  endif
enddef

def OnStderr(_ch: channel, line: string)
  util.Log('server: ' .. line)
enddef

# Every request gets an answer, MethodNotFound for those we do not know.
def HandleRequest(id: any, method: string, params: any)
  if method ==# 'workspace/configuration'
    var items = type(params) == v:t_dict ? get(params, 'items', []) : []
    Reply(id, mapnew(items, (_, item) => ConfigurationFor(get(item, 'section', ''))))
  elseif method ==# 'workspace/applyEdit'
    var failure = edit.Apply(get(params, 'edit', {}))
    if failure ==# ''
      Reply(id, {applied: true})
    else
      util.Message('fimls: ' .. failure, 'error')
      Reply(id, {applied: false, failureReason: failure})
    endif
  elseif method ==# 'workspace/workspaceFolders'
    Reply(id, mapnew(folders, (_, uri) => ({uri: uri, name: fnamemodify(util.UriToPath(uri), ':t')})))
  elseif method ==# 'window/workDoneProgress/create'
      || method ==# 'client/registerCapability'
      || method ==# 'client/unregisterCapability'
    Reply(id, v:null)
  elseif method ==# 'window/showMessageRequest'
    ShowMessageRequest(id, params)
  elseif method ==# 'window/showDocument'
    var path = util.UriToPath(get(params, 'uri', ''))
    if path ==# ''
      Reply(id, {success: false})
    else
      execute 'edit ' .. fnameescape(path)
      Reply(id, {success: true})
    endif
  else
    ReplyError(id, -32601, 'fimls.vim does not handle ' .. method)
  endif
enddef

# The answer to one workspace/configuration item: g:fimls_settings for the
# section "fimls" (or a part of it for "fimls.completion" etc.), else null.
def ConfigurationFor(section: any): any
  var settings = Settings()
  if type(section) != v:t_string || section ==# '' || section ==# 'fimls'
    return empty(settings) ? v:null : settings
  endif
  if section !~# '^fimls\.'
    return v:null
  endif
  var value: any = settings
  for key in split(section, '\.')[1 :]
    if type(value) != v:t_dict || !has_key(value, key)
      return v:null
    endif
    value = value[key]
  endfor
  return value
enddef

def ShowMessageRequest(id: any, params: dict<any>)
  var actions = get(params, 'actions', [])
  if type(actions) != v:t_list || empty(actions)
    ShowMessage(params)
    Reply(id, v:null)
    return
  endif
  popup_menu(mapnew(actions, (_, a) => get(a, 'title', '?')), {
    title: ' ' .. get(params, 'message', 'fimls') .. ' ',
    callback: (_, choice) => Reply(id, choice > 0 ? actions[choice - 1] : v:null),
  })
enddef

# A server message with "fimls: " before it (once).
def Prefixed(message: string): string
  return message =~# '^fimls\>' ? message : 'fimls: ' .. message
enddef

# window/showMessage: errors and warnings highlighted, Log/Debug to the log.
def ShowMessage(params: dict<any>)
  var kind = get(params, 'type', 3)
  var text = Prefixed(get(params, 'message', ''))
  if kind >= 4
    util.Log(text)
  else
    util.Message(text, kind == 1 ? 'error' : kind == 2 ? 'warning' : 'info')
  endif
enddef

def HandleNotification(method: string, params: any)
  if method ==# 'fimls/status'
    var before = get(status, 'state', '')
    status = type(params) == v:t_dict ? params : {}
    var st = get(status, 'state', '')
    if st ==# 'ready' && before !=# 'ready' && before !=# 'busy'
      ghost.Refresh()
    endif
    util.Log('status ' .. st .. ': ' .. get(status, 'message', ''))
    if st ==# 'error' && !has_key(shown_errors, get(status, 'message', ''))
      shown_errors[get(status, 'message', '')] = true
      # The server usually says it with window/showMessage as well.
      if util.SecondsSinceError() > 3
        util.Message(Prefixed(get(status, 'message', 'model error')), 'error')
      endif
    endif
    redrawstatus!
  elseif method ==# 'window/showMessage'
    ShowMessage(params)
  elseif method ==# 'window/logMessage'
    var kind = get(params, 'type', 4)
    util.Log('server log: ' .. get(params, 'message', ''))
    if kind == 1
      util.Message(Prefixed(get(params, 'message', '')), 'error')
    endif
  elseif method ==# '$/progress'
    OnProgress(params)
  elseif method ==# '$/logTrace' || method ==# 'telemetry/event'
    util.Log(method .. ' ' .. json_encode(params))
  else
    util.Log('unhandled notification ' .. method)
  endif
enddef

def OnProgress(params: dict<any>)
  var token = string(get(params, 'token', ''))
  var value = get(params, 'value', {})
  if type(value) != v:t_dict
    return
  endif
  var kind = get(value, 'kind', '')
  if kind ==# 'begin'
    progress[token] = {title: get(value, 'title', ''), message: get(value, 'message', '')}
  elseif kind ==# 'report' && has_key(progress, token)
    progress[token].message = get(value, 'message', progress[token].message)
  elseif kind ==# 'end'
    if has_key(progress, token)
      remove(progress, token)
    endif
    if mode() !~# '^[iR]'
      echo ''
    endif
    redrawstatus!
    return
  else
    return
  endif
  var p = progress[token]
  var text = (p.title =~# '^fimls' ? '' : 'fimls: ') .. p.title .. (p.message !=# '' ? ': ' .. p.message : '')
  if has_key(value, 'percentage')
    text ..= printf(' (%d%%)', value.percentage)
  endif
  # Progress is for code actions the user waits for: never in the way while
  # typing.
  if mode() =~# '^[iR]'
    util.Log(text)
  else
    util.Message(text)
  endif
  redrawstatus!
enddef

# ---------------------------------------------------------------------------
# User commands.

export def ShowStatus()
  if state ==# 'stopped'
    util.Message('fimls: not started (it starts with a buffer of a filetype in g:fimls_filetypes)')
    return
  elseif state ==# 'failed'
    util.Message('fimls: off: the server failed to start or exited (:FimlsLog, :FimlsRestart)', 'warning')
    return
  endif
  var text = 'fimls: ' .. get(status, 'state', state)
  var message = get(status, 'message', '')
  if type(message) == v:t_string && message !=# ''
    text ..= ' - ' .. substitute(message, '^' .. get(status, 'state', '') .. ':\s*', '', '')
  endif
  var open = doc.OpenCount()
  text ..= printf(' (%d document%s, %s columns)', open, open == 1 ? '' : 's', encoding)
  util.Message(text, get(status, 'state', '') ==# 'error' ? 'error' : 'info')
enddef

export def ShowStats()
  if state !=# 'running'
    util.Message('fimls: the server is not running', 'warning')
    return
  endif
  Request('fimls/stats', {}, (resp) => {
    if has_key(resp, 'error')
      util.Message('fimls: fimls/stats: ' .. ErrorText(resp), 'error')
    else
      util.Scratch('fimls://stats', util.Pretty(get(resp, 'result', {})), 'json')
    endif
  })
enddef

# fimls/stats, synchronously: {} when the server is not running.
export def Stats(): dict<any>
  var resp = RequestSync('fimls/stats', {}, 5000)
  var result = get(resp, 'result', {})
  return type(result) == v:t_dict ? result : {}
enddef

export def ShowLog()
  var header = [printf('fimls.vim %s, server %s (%s), command %s', VERSION,
    state, get(status, 'state', '-'), string(Command()))]
  util.Scratch('fimls://log', header + util.LogLines())
  normal! G
enddef
