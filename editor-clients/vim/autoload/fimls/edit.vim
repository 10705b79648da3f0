vim9script
# fimls.vim: applying an LSP WorkspaceEdit to Vim buffers.
#
# Supported: documentChanges with TextDocumentEdits (versioned: refused when
# the buffer changed since that version) and CreateFile, or the plain
# "changes" map.  A created file becomes a new, unsaved buffer: nothing is
# written to disk until the user saves it.  Edits are applied bottom-up to a
# copy of the lines and the buffer is then updated where it differs, so the
# result is one undo step and marks outside the edit stay in place.

import autoload 'fimls/util.vim'
import autoload 'fimls/doc.vim'
import autoload 'fimls/client.vim'
import autoload 'fimls/ghost.vim'

# Apply {wsedit}; returns '' on success, else why it was not applied (then
# nothing was changed, except a file created before the failure was found).
export def Apply(wsedit: dict<any>): string
  var ops: list<dict<any>> = []
  var changes = get(wsedit, 'documentChanges', v:null)
  if type(changes) == v:t_list
    for change in changes
      var kind = get(change, 'kind', '')
      if kind ==# 'create'
        ops->add({op: 'create', uri: change.uri, options: get(change, 'options', {})})
      elseif kind !=# ''
        return 'unsupported resource operation: ' .. kind
      else
        ops->add({op: 'edit', uri: change.textDocument.uri,
          version: get(change.textDocument, 'version', v:null), edits: change.edits})
      endif
    endfor
  elseif type(get(wsedit, 'changes', v:null)) == v:t_dict
    for [uri, edits] in items(wsedit.changes)
      ops->add({op: 'edit', uri: uri, version: v:null, edits: edits})
    endfor
  endif

  # Check every version first, so that a stale edit changes nothing.
  for op in ops
    if op.op ==# 'edit' && type(op.version) == v:t_number
      var bufnr = doc.BufferOf(op.uri)
      if bufnr > 0 && doc.IsOpen(bufnr)
        doc.Sync(bufnr)
        if doc.Version(bufnr) != op.version
          return printf('%s changed since the edit was computed; try again',
            fnamemodify(bufname(bufnr), ':t'))
        endif
      endif
    endif
  endfor

  ghost.Clear()
  var touched: list<number> = []
  var created: list<number> = []
  for op in ops
    if op.op ==# 'create'
      var bufnr = CreateFile(op.uri, op.options)
      if bufnr > 0
        created->add(bufnr)
      endif
      continue
    endif
    var bufnr = BufferFor(op.uri)
    if bufnr <= 0
      return 'cannot open ' .. util.UriToPath(op.uri)
    endif
    ApplyTextEdits(bufnr, op.edits)
    if index(touched, bufnr) < 0
      touched->add(bufnr)
    endif
  endfor
  for bufnr in touched
    doc.Sync(bufnr)
  endfor
  # Show the buffers the edit created or changed that no window shows.
  for bufnr in created + touched
    if empty(win_findbuf(bufnr))
      execute 'belowright sbuffer ' .. bufnr
      if &filetype ==# ''
        filetype detect
      endif
    endif
  endfor
  return ''
enddef

# The loaded buffer for {uri}, loading the file when needed.
def BufferFor(uri: string): number
  var bufnr = doc.BufferOf(uri)
  if bufnr <= 0
    if uri !~# '^file:'
      return -1
    endif
    bufnr = bufadd(util.UriToPath(uri))
  endif
  if !bufloaded(bufnr)
    bufload(bufnr)
    setbufvar(bufnr, '&buflisted', 1)
  endif
  return bufnr
enddef

# A new buffer for a file that does not exist yet (or an emptied one with
# "overwrite").  The directory is created when the buffer is first written.
def CreateFile(uri: string, options: dict<any>): number
  var path = util.UriToPath(uri)
  var bufnr = util.BufferByPath(path)
  var exists = filereadable(path) || (bufnr > 0 && bufloaded(bufnr))
  if exists && !get(options, 'overwrite', false)
    # ignoreIfExists, or neither option: keep what is there.
    return bufnr > 0 ? bufnr : BufferFor(uri)
  endif
  bufnr = bufnr > 0 ? bufnr : bufadd(path)
  bufload(bufnr)
  setbufvar(bufnr, '&buflisted', 1)
  if exists
    deletebufline(bufnr, 1, '$')
  endif
  execute printf('autocmd BufWritePre <buffer=%d> ++once call mkdir(expand("<afile>:p:h"), "p")', bufnr)
  return bufnr
enddef

# Apply a list of TextEdits to a loaded buffer; positions in {enc}, by
# default the encoding the server chose.
export def ApplyTextEdits(bufnr: number, edits: list<any>, enc: string = '')
  var encoding = enc !=# '' ? enc : client.Encoding()
  var original = getbufline(bufnr, 1, '$')
  # The document's lines; index len(lines) is the empty line after the final
  # newline, where an edit at the end of the document lands.
  var lines = original == [''] ? [] : copy(original)
  var count = len(lines)
  var prepared: list<dict<any>> = []
  var i = 0
  for e in edits
    var s = Position(lines, e.range.start, encoding)
    var t = Position(lines, e.range.end, encoding)
    prepared->add({sl: s[0], sb: s[1], el: t[0], eb: t[1], text: e.newText, index: i})
    i += 1
  endfor
  # Bottom-up; edits at the same place keep their order (LSP: inserts at one
  # position appear in the order of the array).
  sort(prepared, (a, b) => a.sl != b.sl ? b.sl - a.sl : a.sb != b.sb ? b.sb - a.sb : b.index - a.index)
  for e in prepared
    count = len(lines)
    var prefix = e.sl < count ? strpart(lines[e.sl], 0, e.sb) : ''
    var suffix = e.el < count ? strpart(lines[e.el], e.eb) : ''
    var text = substitute(e.text, '\r\n\=', '\n', 'g')
    var repl = split(prefix .. text .. suffix, "\n", true)
    if e.el >= count && repl[-1] ==# ''
      # The edit reaches the end of the document: its final newline is the
      # end of the last line, not another line.
      remove(repl, -1)
    endif
    lines = slice(lines, 0, e.sl) + repl + slice(lines, e.el + 1)
  endfor
  WriteBack(bufnr, original, empty(lines) ? [''] : lines)
enddef

# [line, byte] of an LSP position in {lines} (clamped to the document).
def Position(lines: list<string>, pos: dict<any>, encoding: string): list<number>
  var lnum = pos.line
  if lnum >= len(lines)
    return [len(lines), 0]
  endif
  return [lnum, util.CharToByte(lines[lnum], pos.character, encoding)]
enddef

# Update the buffer from {old} to {new} changing only the lines that differ.
def WriteBack(bufnr: number, old: list<string>, new: list<string>)
  var no = len(old)
  var nn = len(new)
  var p = 0
  while p < no && p < nn && old[p] ==# new[p]
    p += 1
  endwhile
  var s = 0
  while s < no - p && s < nn - p && old[no - 1 - s] ==# new[nn - 1 - s]
    s += 1
  endwhile
  var a = no - p - s   # old lines replaced
  var b = nn - p - s   # new lines
  var common = min([a, b])
  if common > 0
    setbufline(bufnr, p + 1, slice(new, p, p + common))
  endif
  if b > a
    appendbufline(bufnr, p + common, slice(new, p + common, p + b))
  elseif a > b
    deletebufline(bufnr, p + common + 1, p + a)
  endif
  # (Vim moves the cursor and marks below added or deleted lines itself.)
enddef
