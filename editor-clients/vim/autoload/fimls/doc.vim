vim9script
# fimls.vim: document synchronisation (didOpen / didChange / didSave /
# didClose).
#
# A buffer's document text is its lines joined with "\n", each line ending
# with "\n" ('fixeol' style); an empty buffer is the empty document.  Changes
# are sent incrementally: the lines that differ from the text last sent
# (common leading and trailing lines are left out), as one whole-line range
# edit - exact whatever happened in between (undo, :substitute, plugins).

import autoload 'fimls/util.vim'
import autoload 'fimls/client.vim'

# bufnr -> {uri, languageId, root, version, lines (as last sent), tick, open}
var docs: dict<dict<any>> = {}

# Vim filetypes whose LSP language id differs.
const LANGUAGE_IDS = {
  sh: 'shellscript', bash: 'shellscript', zsh: 'shellscript',
  cs: 'csharp', objc: 'objective-c', objcpp: 'objective-cpp',
  tex: 'latex', make: 'makefile', text: 'plaintext',
  javascriptreact: 'javascriptreact', typescriptreact: 'typescriptreact',
}

export def LanguageId(filetype: string): string
  var ft = split(filetype, '\.')[0]
  return get(LANGUAGE_IDS, ft, ft)
enddef

# Should fimls serve this buffer?
export def Eligible(bufnr: number): bool
  if !get(g:, 'fimls_enabled', 1) || !bufloaded(bufnr)
      || !getbufvar(bufnr, 'fimls_enabled', 1)
    return false
  endif
  var bt = getbufvar(bufnr, '&buftype')
  if bt !=# '' && bt !=# 'acwrite'
    return false
  endif
  var ft = getbufvar(bufnr, '&filetype')
  return ft !=# '' && fimls#filetype_enabled(ft)
enddef

def Lines(bufnr: number): list<string>
  var lines = getbufline(bufnr, 1, '$')
  return lines == [''] ? [] : lines
enddef

def Text(lines: list<string>): string
  return empty(lines) ? '' : join(lines, "\n") .. "\n"
enddef

# Attach a buffer (start the server when needed) or detach it when it no
# longer qualifies.  Called for FileType, BufEnter and BufFilePost.
export def Attach(bufnr: number)
  if !Eligible(bufnr)
    Detach(bufnr)
    return
  endif
  var uri = util.BufferUri(bufnr)
  var lang = LanguageId(getbufvar(bufnr, '&filetype'))
  var key = string(bufnr)
  if has_key(docs, key)
    if docs[key].uri ==# uri && docs[key].languageId ==# lang
      if !client.Running()
        client.Start(docs[key].root)
      elseif !docs[key].open
        Open(bufnr)
      endif
      return
    endif
    Detach(bufnr)
  endif
  var root = util.FindRoot(bufnr)
  docs[key] = {uri: uri, languageId: lang, root: root, version: 0, lines: [], tick: -1, open: false}
  setbufvar(bufnr, 'fimls_uri', uri)
  if client.Running()
    Open(bufnr)
  else
    # didOpen follows once the server has answered initialize.
    client.Start(root)
  endif
enddef

# Attach every loaded buffer that qualifies (after :FimlsRestart).
export def AttachAll()
  for info in getbufinfo({bufloaded: 1})
    Attach(info.bufnr)
  endfor
enddef

def Open(bufnr: number)
  var d = docs[string(bufnr)]
  client.AddFolder(d.root)
  d.version += 1
  d.lines = Lines(bufnr)
  d.tick = getbufvar(bufnr, 'changedtick')
  d.open = true
  client.Notify('textDocument/didOpen', {textDocument: {
    uri: d.uri, languageId: d.languageId, version: d.version, text: Text(d.lines)}})
enddef

export def Detach(bufnr: number)
  var key = string(bufnr)
  if !has_key(docs, key)
    return
  endif
  var d = remove(docs, key)
  if d.open
    client.Notify('textDocument/didClose', {textDocument: {uri: d.uri}})
  endif
  if bufexists(bufnr)
    setbufvar(bufnr, 'fimls_uri', '')
  endif
enddef

# Send the buffer's changes since the last sync, if any.
export def Sync(bufnr: number)
  var d = get(docs, string(bufnr), {})
  if empty(d) || !d.open || !bufloaded(bufnr)
    return
  endif
  var tick = getbufvar(bufnr, 'changedtick')
  if tick == d.tick
    return
  endif
  var new = Lines(bufnr)
  var old: list<string> = d.lines
  d.tick = tick
  if new == old
    return
  endif
  var change: dict<any>
  var sync = get(client.Capabilities(), 'textDocumentSync', 1)
  var kind = type(sync) == v:t_dict ? get(sync, 'change', 1) : sync
  if kind == 2
    # Common leading and trailing lines stay; the lines between are replaced.
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
    change = {
      range: {start: {line: p, character: 0}, end: {line: no - s, character: 0}},
      text: Text(slice(new, p, nn - s)),
    }
  else
    change = {text: Text(new)}
  endif
  d.version += 1
  d.lines = new
  client.Notify('textDocument/didChange', {
    textDocument: {uri: d.uri, version: d.version}, contentChanges: [change]})
enddef

export def Saved(bufnr: number)
  var d = get(docs, string(bufnr), {})
  if empty(d) || !d.open
    return
  endif
  if util.BufferUri(bufnr) !=# d.uri
    # ":write name" named a buffer that had no name (no BufFilePost then).
    Attach(bufnr)
    return
  endif
  Sync(bufnr)
  # Only when the server asked for it (textDocumentSync.save).
  var sync = get(client.Capabilities(), 'textDocumentSync', {})
  var save = type(sync) == v:t_dict ? get(sync, 'save', v:false) : v:false
  if type(save) == v:t_dict || (type(save) == v:t_bool && save)
    client.Notify('textDocument/didSave', {textDocument: {uri: d.uri}})
  endif
enddef

export def IsOpen(bufnr: number): bool
  var d = get(docs, string(bufnr), {})
  return !empty(d) && d.open
enddef

export def OpenCount(): number
  return len(filter(values(docs), (_, d) => d.open))
enddef

# The version last sent for a buffer, -1 when it is not open.
export def Version(bufnr: number): number
  var d = get(docs, string(bufnr), {})
  return empty(d) || !d.open ? -1 : d.version
enddef

export def Uri(bufnr: number): string
  return get(get(docs, string(bufnr), {}), 'uri', util.BufferUri(bufnr))
enddef

# The buffer of a URI: an attached one, else by file name; -1 if none.
export def BufferOf(uri: string): number
  for [key, d] in items(docs)
    if d.uri ==# uri
      return str2nr(key)
    endif
  endfor
  if uri =~# '^untitled:Untitled-\d\+$'
    var n = str2nr(matchstr(uri, '\d\+$'))
    return bufexists(n) ? n : -1
  endif
  return util.BufferByPath(util.UriToPath(uri))
enddef

export def OnServerReady()
  for key in keys(docs)
    var bufnr = str2nr(key)
    if bufloaded(bufnr)
      Open(bufnr)
    else
      remove(docs, key)
    endif
  endfor
enddef

export def OnServerStopped()
  for d in values(docs)
    d.open = false
  endfor
enddef
