vim9script
# fimls.vim: code actions.  textDocument/codeAction for the cursor or the
# selection, a popup menu of the titles, then codeAction/resolve for the
# chosen one and its WorkspaceEdit applied; a command (fimls.rewrite asks for
# the instruction first) is run with workspace/executeCommand and the server
# sends the edit back with workspace/applyEdit.

import autoload 'fimls/util.vim'
import autoload 'fimls/client.vim'
import autoload 'fimls/doc.vim'
import autoload 'fimls/edit.vim'

var popup = 0          # the open menu's window id
var resolving = 0      # id of the codeAction/resolve in flight

# :[range]FimlsCodeAction.  {count} is <range>: 0 for the cursor position;
# a range equal to the last Visual selection's lines uses its columns.
export def CodeAction(count: number, line1: number, line2: number)
  var bufnr = bufnr()
  if !doc.IsOpen(bufnr)
    doc.Attach(bufnr)
  endif
  if !client.Running() || !doc.IsOpen(bufnr)
    var why = 'fimls: not active in this buffer (see g:fimls_filetypes)'
    if client.State() ==# 'starting'
      why = 'fimls: the server is starting, try again in a moment'
    elseif doc.Eligible(bufnr)
      why = 'fimls: the server is not running (:FimlsStatus)'
    endif
    util.Message(why, 'warning')
    return
  endif
  doc.Sync(bufnr)
  var encoding = client.Encoding()
  var start: dict<any>
  var end: dict<any>
  if count == 0
    var pos = {line: line('.') - 1, character: util.ByteToChar(getline('.'), col('.') - 1, encoding)}
    start = pos
    end = pos
  else
    var vs = getpos("'<")
    var ve = getpos("'>")
    if visualmode() ==# 'v' && vs[1] == line1 && ve[1] == line2
      # Characterwise selection: from its first character to after its last.
      var last = getline(line2)
      var end_byte = ve[2] - 1 + len(matchstr(strpart(last, ve[2] - 1), '^.'))
      start = {line: line1 - 1, character: util.ByteToChar(getline(line1), vs[2] - 1, encoding)}
      end = {line: line2 - 1, character: util.ByteToChar(last, end_byte, encoding)}
    else
      start = {line: line1 - 1, character: 0}
      end = {line: line2 - 1, character: util.ByteToChar(getline(line2), len(getline(line2)), encoding)}
    endif
  endif
  var params = {
    textDocument: {uri: doc.Uri(bufnr)},
    range: {start: start, end: end},
    # Vim has no diagnostics of its own: fimls lists its actions without them.
    context: {diagnostics: [], triggerKind: 1},
  }
  var version = doc.Version(bufnr)
  client.Request('textDocument/codeAction', params, (resp) => OnActions(bufnr, version, resp))
enddef

def OnActions(bufnr: number, version: number, resp: dict<any>)
  if has_key(resp, 'error')
    util.Message('fimls: code actions: ' .. client.ErrorText(resp), 'error')
    return
  endif
  var result = get(resp, 'result', v:null)
  var actions = type(result) == v:t_list
    ? filter(copy(result), (_, a) => type(a) == v:t_dict && !has_key(a, 'disabled')) : []
  if empty(actions)
    util.Message('fimls: no code actions here')
    return
  endif
  if bufnr != bufnr() || doc.Version(bufnr) != version
    return   # the user went on: a menu for text that changed would mislead
  endif
  var titles: list<string> = []
  var i = 1
  for a in actions
    titles->add(printf('%s%s', i <= 9 ? i .. ' ' : '  ', get(a, 'title', '?')))
    i += 1
  endfor
  popup_close(popup)
  popup = popup_menu(titles, {
    title: ' fimls ',
    pos: 'topleft',
    line: 'cursor+1',
    col: 'cursor',
    moved: 'any',
    filter: MenuFilter,
    callback: (_, choice) => {
      popup = 0
      if choice > 0
        Run(bufnr, actions[choice - 1])
      endif
    },
  })
enddef

# The menu's keys: those of popup_filter_menu() (j/k, arrows, Enter, Esc...)
# plus the digits shown before the titles.
def MenuFilter(id: number, key: string): bool
  if key =~# '^[1-9]$' && str2nr(key) <= line('$', id)
    popup_close(id, str2nr(key))
    return true
  endif
  return popup_filter_menu(id, key)
enddef

# The id of the open menu (0 when none), for tests and mappings.
export def MenuId(): number
  return popup
enddef

def Run(bufnr: number, action: dict<any>)
  if type(get(action, 'command', v:null)) == v:t_string
    # A bare Command.
    Execute(bufnr, action)
    return
  endif
  var title = get(action, 'title', 'code action')
  if has_key(action, 'edit')
    ApplyAndRun(bufnr, action)
    return
  endif
  var provider = get(client.Capabilities(), 'codeActionProvider', {})
  if has_key(action, 'data') && type(provider) == v:t_dict && get(provider, 'resolveProvider', false)
    util.Message('fimls: ' .. title .. ' …')
    client.Cancel(resolving)
    resolving = client.Request('codeAction/resolve', action, (resp) => OnResolved(bufnr, title, resp))
    return
  endif
  if type(get(action, 'command', v:null)) == v:t_dict
    Execute(bufnr, action.command)
  endif
enddef

def OnResolved(bufnr: number, title: string, resp: dict<any>)
  resolving = 0
  if has_key(resp, 'error')
    var code = get(resp.error, 'code', 0)
    if code == -32800
      return
    elseif code == -32801
      util.Message('fimls: ' .. title .. ': the text changed meanwhile; try again', 'warning')
    else
      util.Message('fimls: ' .. title .. ': ' .. client.ErrorText(resp), 'error')
    endif
    return
  endif
  var action = get(resp, 'result', v:null)
  if type(action) != v:t_dict
    util.Message('fimls: ' .. title .. ': nothing to do', 'warning')
    return
  endif
  ApplyAndRun(bufnr, action)
enddef

def ApplyAndRun(bufnr: number, action: dict<any>)
  var wsedit = get(action, 'edit', v:null)
  if type(wsedit) == v:t_dict
    var failure = edit.Apply(wsedit)
    if failure !=# ''
      util.Message('fimls: ' .. get(action, 'title', '') .. ': ' .. failure, 'error')
      return
    endif
    util.Message('fimls: ' .. get(action, 'title', 'done'))
  endif
  if type(get(action, 'command', v:null)) == v:t_dict
    Execute(bufnr, action.command)
  endif
enddef

# Run a Command; fimls.rewrite first asks for the instruction.
def Execute(bufnr: number, command: dict<any>)
  var args = get(command, 'arguments', [])
  args = type(args) == v:t_list ? copy(args) : []
  var title = get(command, 'title', command.command)
  if command.command ==# 'fimls.rewrite'
    var instruction = input('fimls rewrite (e.g. "add type hints"): ')
    redraw
    if trim(instruction) ==# ''
      util.Message('fimls: rewrite cancelled')
      return
    endif
    args->add(instruction)
    util.Message('fimls: rewriting …')
  endif
  client.Request('workspace/executeCommand', {command: command.command, arguments: args},
    (resp) => {
      if has_key(resp, 'error') && get(resp.error, 'code', 0) != -32800
        util.Message('fimls: ' .. title .. ': ' .. client.ErrorText(resp), 'error')
      endif
    })
enddef
