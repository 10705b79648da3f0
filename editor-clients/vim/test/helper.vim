vim9script
# Test helper, sourced after the README's configuration.  It never drives the
# editor: the tests type real keys through tmux.  It only reports Vim's state:
#   - every 100 ms, $FIMLS_TEST_DIR/state.json: mode, buffer, cursor, the
#     suggestion's text properties, the plugin's view of the suggestion, the
#     code action menu, the statusline text;
#   - on <F12> (Insert and Normal mode, a <Cmd> mapping that changes nothing):
#     $FIMLS_TEST_DIR/mark.json with a counter (so the tests know every key
#     sent before it was handled), fimls/stats and the client log.

var dir = $FIMLS_TEST_DIR
var mark = 0

def Props(): list<dict<any>>
  var out: list<dict<any>> = []
  if empty(prop_type_get('FimlsSuggestion'))
    return out
  endif
  for lnum in range(1, line('$'))
    for p in prop_list(lnum, {types: ['FimlsSuggestion']})
      out->add({lnum: lnum, col: p.col, id: p.id})
    endfor
  endfor
  return out
enddef

def Menu(): dict<any>
  var id = fimls#actions#MenuId()
  if id <= 0 || empty(popup_getpos(id))
    return {}
  endif
  return {id: id, lines: getbufline(winbufnr(id), 1, '$'), selected: line('.', id)}
enddef

def Write(name: string, value: dict<any>)
  var tmp = dir .. '/' .. name .. '.tmp'
  writefile([json_encode(value)], tmp)
  rename(tmp, dir .. '/' .. name)
enddef

def State(): dict<any>
  return {
    time: reltimefloat(reltime()),
    mode: mode(),
    bufname: bufname(),
    lines: getline(1, '$'),
    cursor: [line('.'), col('.')],
    screenrow: screenpos(win_getid(), line('.'), 1).row,
    width: winwidth(0) - getwininfo(win_getid())[0].textoff,
    props: Props(),
    ghost: fimls#ghost#Debug(),
    menu: Menu(),
    status: fimls#status(),
    encoding: fimls#client#Encoding(),
    mark: mark,
  }
enddef

def Dump(_t: number)
  try
    Write('state.json', State())
  catch
    Write('state.json', {error: v:exception .. ' at ' .. v:throwpoint})
  endtry
enddef

def Mark()
  mark += 1
  var state = State()
  state.stats = fimls#stats()
  state.log = fimls#util#LogLines()
  Write('mark.json', state)
enddef

timer_start(100, Dump, {repeat: -1})
inoremap <F12> <Cmd>call <SID>Mark()<CR>
nnoremap <F12> <Cmd>call <SID>Mark()<CR>
# The plugin's log gets the LSP messages too (kept with FIMLS_TEST_KEEP=1).
g:fimls_trace = 1
