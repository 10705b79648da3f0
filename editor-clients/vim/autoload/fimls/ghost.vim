vim9script
# fimls.vim: ghost text.  While typing in Insert mode a debounced
# textDocument/inlineCompletion request is sent; the suggestion is drawn with
# virtual-text properties: its first line after the cursor, the other lines
# below the cursor line.  Typing, moving the cursor or leaving Insert mode
# clears it; a newer request cancels the one in flight ($/cancelRequest) and
# answers that no longer fit the buffer and cursor are dropped.

import autoload 'fimls/util.vim'
import autoload 'fimls/client.vim'
import autoload 'fimls/doc.vim'

const PROP = 'FimlsSuggestion'
const AUTOMATIC = 2   # InlineCompletionTriggerKind
const INVOKED = 1

var timer = 0
# The request in flight: {id, bufnr, tick, lnum, col}
var pending: dict<any> = {}
# The suggestion on screen: {bufnr, tick, lnum, col, line, text, item, whole}
#   text: what is left to insert at (lnum, col); line: the cursor line then;
#   whole: text is still the item's entire insertText.
var shown: dict<any> = {}
# The last request sent (Debug() reports it: what position was asked for).
var last_request: dict<any> = {}

def InsertMode(): bool
  return mode() =~# '^[iR]'
enddef

def EnsurePropType()
  if !hlexists('FimlsSuggestion')
    highlight default link FimlsSuggestion Comment
  endif
  if empty(prop_type_get(PROP))
    prop_type_add(PROP, {highlight: 'FimlsSuggestion', priority: 100})
  endif
enddef

# ---------------------------------------------------------------------------
# Events (from the autocommands in plugin/fimls.vim, attached buffers only).

export def OnInsertEnter()
  Schedule()
enddef

export def OnTextChanged()
  var bufnr = bufnr()
  doc.Sync(bufnr)
  if Visible()
    # Our own partial acceptance: the rest stays on screen.
    return
  endif
  if TypedThrough()
    Schedule()
    return
  endif
  Clear()
  Schedule()
enddef

export def OnCursorMoved()
  if Visible()
    return
  endif
  if !empty(shown) && shown.bufnr == bufnr() && shown.tick != b:changedtick
    # Text was typed: OnTextChanged() follows and decides.
    return
  endif
  Clear()
  Schedule()
enddef

# Ask again if the user is typing (e.g. the model has just become ready).
export def Refresh()
  if InsertMode() && empty(shown) && get(b:, 'fimls_uri', '') !=# ''
    Schedule()
  endif
enddef

export def OnInsertLeave()
  Dismiss()
enddef

# ---------------------------------------------------------------------------
# Requests.

def Schedule(trigger: number = AUTOMATIC)
  CancelPending()
  if timer != 0
    timer_stop(timer)
    timer = 0
  endif
  if !get(g:, 'fimls_enabled', 1) || !get(b:, 'fimls_enabled', 1)
    return
  endif
  timer = timer_start(get(g:, 'fimls_debounce_ms', 100), (_) => Request(trigger))
enddef

def CancelPending()
  if !empty(pending)
    client.Cancel(pending.id)
    pending = {}
  endif
enddef

def Request(trigger: number)
  timer = 0
  var bufnr = bufnr()
  if !InsertMode() || pumvisible() || !doc.IsOpen(bufnr) || !client.Running()
    return
  endif
  doc.Sync(bufnr)
  var lnum = line('.')
  var col = col('.')
  var line = getline(lnum)
  var params = {
    textDocument: {uri: doc.Uri(bufnr)},
    position: {line: lnum - 1, character: util.ByteToChar(line, col - 1, client.Encoding())},
    context: {triggerKind: trigger},
  }
  var ctx = {bufnr: bufnr, tick: b:changedtick, lnum: lnum, col: col, id: 0}
  CancelPending()
  ctx.id = client.Request('textDocument/inlineCompletion', params, (resp) => OnResponse(ctx, resp))
  if ctx.id > 0
    pending = ctx
    last_request = {params: params, bufnr: bufnr, lnum: lnum, col: col, line: line}
  endif
enddef

# Does the editor still look as it did when {ctx} was asked?
def Current(ctx: dict<any>): bool
  return bufnr() == ctx.bufnr && b:changedtick == ctx.tick
    && line('.') == ctx.lnum && col('.') == ctx.col && InsertMode()
enddef

def OnResponse(ctx: dict<any>, resp: dict<any>)
  if empty(pending) || pending.id != ctx.id
    return   # superseded
  endif
  pending = {}
  if has_key(resp, 'error')
    var code = get(resp.error, 'code', 0)
    if code != -32800 && code != -32801   # cancelled / content modified
      util.Log('inlineCompletion: ' .. client.ErrorText(resp))
    endif
    return
  endif
  if !Current(ctx) || pumvisible()
    return   # stale
  endif
  var result = get(resp, 'result', v:null)
  var items = type(result) == v:t_list ? result
    : type(result) == v:t_dict ? get(result, 'items', []) : []
  for item in items
    var text = ItemText(ctx, item)
    if text !=# '' && text !~# '^\_s*$'
      Show(ctx.lnum, ctx.col, text, item, true)
      return
    endif
  endfor
enddef

# The text an item inserts at the cursor ('' if it cannot be shown as ghost
# text): its insertText less the part of its range before the cursor, which
# must be what the buffer already has there.
def ItemText(ctx: dict<any>, item: dict<any>): string
  var insert = get(item, 'insertText', '')
  if type(insert) == v:t_dict   # a StringValue (snippet): show its text
    insert = substitute(get(insert, 'value', ''), '\$\d\+\|\${\d\+:\?\([^}]*\)}', '\1', 'g')
  endif
  if type(insert) != v:t_string
    return ''
  endif
  insert = substitute(insert, '\r\n', '\n', 'g')
  var range = get(item, 'range', v:null)
  if type(range) != v:t_dict
    return insert
  endif
  var line = getline(ctx.lnum)
  var encoding = client.Encoding()
  if range.start.line != ctx.lnum - 1 || range.end.line != ctx.lnum - 1
    return ''
  endif
  var start = util.CharToByte(line, range.start.character, encoding)
  var end = util.CharToByte(line, range.end.character, encoding)
  if end != ctx.col - 1 || start > end
    return ''
  endif
  var typed = strpart(line, start, end - start)
  return strpart(insert, 0, len(typed)) ==# typed ? strpart(insert, len(typed)) : ''
enddef

# ---------------------------------------------------------------------------
# Drawing.

# {text} with its tabs replaced by spaces as they would be displayed from
# screen column {vcol} (text properties show a tab as one space).
def Untab(text: string, vcol: number): string
  if stridx(text, "\t") < 0
    return text
  endif
  var ts = &tabstop > 0 ? &tabstop : 8
  var out = ''
  var vc = vcol
  for ch in split(text, '\zs')
    if ch ==# "\t"
      var w = ts - (vc % ts)
      out ..= repeat(' ', w)
      vc += w
    else
      out ..= ch
      vc += strdisplaywidth(ch)
    endif
  endfor
  return out
enddef

def Show(lnum: number, col: number, text: string, item: dict<any>, whole: bool)
  Clear()
  EnsurePropType()
  var lines = split(text, "\n", true)
  var line = getline(lnum)
  if lines[0] !=# ''
    prop_add(lnum, col, {type: PROP, text: Untab(lines[0], strdisplaywidth(strpart(line, 0, col - 1)))})
  endif
  for l in lines[1 :]
    # An empty virtual line would not be drawn at all: one space keeps it.
    prop_add(lnum, 0, {type: PROP, text: l ==# '' ? ' ' : Untab(l, 0), text_align: 'below'})
  endfor
  shown = {bufnr: bufnr(), tick: b:changedtick, lnum: lnum, col: col, line: line,
    text: text, item: item, whole: whole}
enddef

# Remove the suggestion from the screen.
export def Clear()
  if empty(shown)
    return
  endif
  var bufnr = shown.bufnr
  shown = {}
  if bufloaded(bufnr) && !empty(prop_type_get(PROP))
    prop_remove({type: PROP, bufnr: bufnr, all: true})
  endif
enddef

# Clear the suggestion and forget the request in flight.
export def Dismiss()
  if timer != 0
    timer_stop(timer)
    timer = 0
  endif
  CancelPending()
  Clear()
enddef

# Is a suggestion shown at the cursor?  (For <expr> mappings.)
export def Visible(): bool
  return !empty(shown) && shown.bufnr == bufnr() && shown.tick == b:changedtick
    && shown.lnum == line('.') && shown.col == col('.') && InsertMode()
enddef

# The suggestion's remaining text ('' when none is shown at the cursor).
export def Text(): string
  return Visible() ? shown.text : ''
enddef

# Did the user type the start of the suggestion?  Then the rest stays on
# screen (until the server's next answer replaces it).
def TypedThrough(): bool
  if empty(shown) || shown.bufnr != bufnr() || line('.') != shown.lnum || col('.') <= shown.col
    return false
  endif
  var s = shown
  var typed = strpart(getline('.'), s.col - 1, col('.') - s.col)
  if strpart(s.text, 0, len(typed)) !=# typed || len(typed) >= len(s.text)
      || getline('.') !=# strpart(s.line, 0, s.col - 1) .. typed .. strpart(s.line, s.col - 1)
    return false
  endif
  Show(line('.'), col('.'), strpart(s.text, len(typed)), s.item, false)
  return true
enddef

# ---------------------------------------------------------------------------
# Accepting.

# The next word of {text}: leading white space (line breaks included), then a
# run of keyword characters or a run of other non-blank characters.
def NextWord(text: string): string
  var word = matchstr(text, '^\_s*\%(\k\+\|\%(\%(\k\|\s\)\@!.\)\+\)')
  return word ==# '' ? text : word
enddef

# The rest of the current line of {text}, or the next line when {text} starts
# with a line break.
def NextLine(text: string): string
  var from = text[0] ==# "\n" ? 1 : 0
  var nl = stridx(text, "\n", from)
  return nl < 0 ? text : strpart(text, 0, nl)
enddef

# Insert {text} at (lnum, col) and put the cursor after it.
def Insert(lnum: number, col: number, text: string)
  var line = getline(lnum)
  var parts = split(text, "\n", true)
  var lines = copy(parts)
  lines[0] = strpart(line, 0, col - 1) .. lines[0]
  var end_col = len(lines[-1]) + 1
  lines[-1] ..= strpart(line, col - 1)
  setline(lnum, lines[0])
  if len(lines) > 1
    append(lnum, lines[1 :])
  endif
  cursor(lnum + len(lines) - 1, end_col)
enddef

# Accept the suggestion: what = 'all', 'word' or 'line'.
export def Accept(what: string = 'all')
  if !Visible()
    return
  endif
  var s = shown
  var part = what ==# 'word' ? NextWord(s.text) : what ==# 'line' ? NextLine(s.text) : s.text
  if part ==# ''
    part = s.text
  endif
  var rest = strpart(s.text, len(part))
  Dismiss()
  Insert(s.lnum, s.col, part)
  Acknowledge(s.item, part, s.whole && rest ==# '')
  if rest !=# ''
    Show(line('.'), col('.'), rest, s.item, false)
  endif
enddef

# Tell the server what was accepted: the item's own command for the whole
# suggestion, fimls.accepted with "accepted" (characters) for a part.
def Acknowledge(item: dict<any>, part: string, whole: bool)
  var command = get(item, 'command', v:null)
  if type(command) != v:t_dict || type(get(command, 'command', v:null)) != v:t_string
    return
  endif
  var args = get(command, 'arguments', [])
  args = type(args) == v:t_list ? deepcopy(args) : []
  if whole
    client.ExecuteCommand(command.command, args)
  elseif command.command ==# 'fimls.accepted' && !empty(args) && type(args[0]) == v:t_dict
    args[0].accepted = strchars(part)
    client.ExecuteCommand('fimls.accepted', args)
  endif
enddef

# Ask now (InlineCompletionTriggerKind.Invoked), also where automatic
# requests get no answer (comments, strings).
export def Trigger()
  if !InsertMode()
    return
  endif
  var bufnr = bufnr()
  if !doc.IsOpen(bufnr)
    doc.Attach(bufnr)
  endif
  Dismiss()
  Request(INVOKED)
enddef

# For the insert-mode <expr> mappings: the keys that accept / dismiss when a
# suggestion is shown, else the key's own meaning (<Plug>(fimls-fallback-N)).
export def KeyExpr(what: string, fallback: number): string
  if Visible()
    return what ==# 'dismiss' ? "\<Cmd>call fimls#ghost#Dismiss()\<CR>"
      : "\<Cmd>call fimls#ghost#Accept('" .. what .. "')\<CR>"
  endif
  return "\<Plug>(fimls-fallback-" .. fallback .. ')'
enddef

# The suggestion and the last request, for troubleshooting and the tests.
export def Debug(): dict<any>
  return {shown: empty(shown) ? {} : {bufnr: shown.bufnr, lnum: shown.lnum, col: shown.col,
      text: shown.text, whole: shown.whole},
    visible: Visible(), pending: !empty(pending), last_request: last_request}
enddef
