vim9script
# fimls.vim: helpers shared by the modules - positions in the negotiated
# encoding, URIs, the log and messages.

# ---------------------------------------------------------------------------
# Positions.  Vim columns are byte offsets into UTF-8 lines; LSP columns count
# UTF-32 code points, UTF-16 code units or UTF-8 bytes, whichever encoding
# the server chose in its initialize answer.

# Byte offset (0-based) in {line} -> LSP character offset in {encoding}.
export def ByteToChar(line: string, byte: number, encoding: string): number
  var b = byte > len(line) ? len(line) : byte
  if encoding ==# 'utf-8'
    return b
  endif
  var head = strpart(line, 0, b)
  # strchars() counts composing characters separately: code points.
  var chars = strchars(head)
  if encoding ==# 'utf-16'
    # Code points above the BMP take two UTF-16 code units.
    chars += str2list(head)->filter((_, c) => c > 0xFFFF)->len()
  endif
  return chars
enddef

# LSP character offset in {encoding} -> byte offset (0-based) in {line},
# clamped to the line's length.
export def CharToByte(line: string, char: number, encoding: string): number
  if char <= 0
    return 0
  endif
  if encoding ==# 'utf-8'
    return char > len(line) ? len(line) : char
  endif
  var index = char
  if encoding ==# 'utf-16'
    # Walk the code points until {char} code units are used up.
    var units = 0
    index = 0
    for c in str2list(line)
      if units >= char
        break
      endif
      units += c > 0xFFFF ? 2 : 1
      index += 1
    endfor
  endif
  var b = byteidxcomp(line, index)
  return b < 0 ? len(line) : b
enddef

# ---------------------------------------------------------------------------
# URIs.

def PercentEncode(text: string): string
  var out = ''
  for i in range(len(text))
    out ..= printf('%%%02X', char2nr(strpart(text, i, 1)))
  endfor
  return out
enddef

# Absolute file name -> file:// URI.
export def PathToUri(path: string): string
  var p = fnamemodify(path, ':p')
  if has('win32')
    p = '/' .. substitute(p, '\\', '/', 'g')
  endif
  return 'file://' .. substitute(p, '[^A-Za-z0-9/._~:-]', (m) => PercentEncode(m[0]), 'g')
enddef

# file:// URI -> file name; other schemes come back unchanged.
export def UriToPath(uri: string): string
  if uri !~# '^file://'
    return uri
  endif
  var p = substitute(uri, '^file://', '', '')
  p = substitute(p, '%\(\x\x\)', (m) => printf('%c', str2nr(m[1], 16)), 'g')
  if has('win32')
    p = substitute(substitute(p, '^/\ze\a:', '', ''), '/', '\\', 'g')
  endif
  return p
enddef

# The URI of a buffer: its file, or untitled:<n> for a buffer without a name.
export def BufferUri(bufnr: number): string
  var name = bufname(bufnr)
  if name ==# ''
    return 'untitled:Untitled-' .. bufnr
  endif
  return PathToUri(fnamemodify(name, ':p'))
enddef

# The buffer whose file is {path} (compared as full paths), -1 if none.
# bufnr() is not used: it takes its argument as a pattern.
export def BufferByPath(path: string): number
  var full = fnamemodify(path, ':p')
  for info in getbufinfo()
    if info.name !=# '' && fnamemodify(info.name, ':p') ==# full
      return info.bufnr
    endif
  endfor
  return -1
enddef

# The workspace folder of a buffer: the nearest directory above it holding one
# of g:fimls_root_markers, else the current directory.
export def FindRoot(bufnr: number): string
  var markers: list<string> = get(g:, 'fimls_root_markers',
    ['.git', '.hg', '.svn', 'pyproject.toml', 'setup.py', 'package.json', 'go.mod', 'Cargo.toml'])
  var name = bufname(bufnr)
  var dir = name ==# '' ? getcwd() : fnamemodify(name, ':p:h')
  var d = dir
  while true
    for m in markers
      if isdirectory(d .. '/' .. m) || filereadable(d .. '/' .. m)
        return d
      endif
    endfor
    var up = fnamemodify(d, ':h')
    if up ==# d
      break
    endif
    d = up
  endwhile
  return name ==# '' || !isdirectory(dir) ? getcwd() : dir
enddef

# ---------------------------------------------------------------------------
# Log (shown by :FimlsLog) and messages.

const LOG_MAX = 3000
var log_lines: list<string> = []
var last_error = reltime()
var errors_shown = false

export def Log(text: string)
  var stamp = strftime('%H:%M:%S')
  for l in split(text, "\n")
    log_lines->add(stamp .. ' ' .. l)
  endfor
  if len(log_lines) > LOG_MAX
    log_lines = log_lines[-LOG_MAX :]
  endif
enddef

export def LogLines(): list<string>
  return copy(log_lines)
enddef

# One line in the command line area, cut to fit so that it never causes a
# hit-enter prompt.  {level}: 'error', 'warning' or 'info'.
export def Message(text: string, level: string = 'info')
  if !v:vim_did_enter
    # During startup a message would end in a hit-enter prompt: show it once
    # the first screen is drawn.
    timer_start(0, (_) => Message(text, level))
    return
  endif
  var msg = substitute(text, '\n', ' ', 'g')
  var room = &columns - 12
  if strdisplaywidth(msg) > room && room > 10
    msg = strcharpart(msg, 0, room - 1) .. '…'
  endif
  Log(level .. ': ' .. text)
  if level ==# 'error'
    last_error = reltime()
    errors_shown = true
    echohl ErrorMsg
  elseif level ==# 'warning'
    echohl WarningMsg
  endif
  if level ==# 'info'
    echo msg
  else
    echomsg msg
  endif
  echohl None
enddef

# ---------------------------------------------------------------------------
# Seconds since the last error message (a large number when none was shown).
export def SecondsSinceError(): float
  return errors_shown ? reltimefloat(reltime(last_error)) : 1.0e9
enddef

# {value} as indented JSON lines (for :FimlsStats).
export def Pretty(value: any, indent: string = ''): list<string>
  var t = type(value)
  var inner = indent .. '  '
  var out: list<string> = []
  if t == v:t_dict && !empty(value)
    out->add('{')
    var names = sort(keys(value))
    for k in names
      var sub = Pretty(value[k], inner)
      sub[0] = inner .. json_encode(k) .. ': ' .. sub[0]
      if k !=# names[-1]
        sub[-1] ..= ','
      endif
      out->extend(sub)
    endfor
    out->add(indent .. '}')
  elseif t == v:t_list && !empty(value)
      && !value->copy()->filter((_, v) => type(v) == v:t_dict || type(v) == v:t_list)->empty()
    out->add('[')
    var i = 0
    for v in value
      var sub = Pretty(v, inner)
      sub[0] = inner .. sub[0]
      if i < len(value) - 1
        sub[-1] ..= ','
      endif
      out->extend(sub)
      i += 1
    endfor
    out->add(indent .. ']')
  else
    out->add(json_encode(value))
  endif
  return out
enddef

# Show {lines} in a scratch buffer named {name}, reusing its window.
export def Scratch(name: string, lines: list<string>, filetype: string = '')
  var winid = bufwinid(name)
  if winid > 0
    win_gotoid(winid)
  else
    execute 'silent botright new ' .. fnameescape(name)
    setlocal buftype=nofile bufhidden=wipe noswapfile nobuflisted
  endif
  setlocal modifiable
  silent :%delete _
  setline(1, lines)
  setlocal nomodifiable nomodified
  if filetype !=# ''
    execute 'setlocal filetype=' .. filetype
  endif
enddef
