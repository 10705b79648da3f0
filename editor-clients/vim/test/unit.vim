vim9script
# Headless checks of the pure parts: position conversions and applying text
# edits.  Run: vim -Nu NONE -i NONE -es --cmd 'set rtp^=<plugin>' -S unit.vim
# Writes "ok" or the failures to $FIMLS_UNIT_OUT.

var failures: list<string> = []

def Eq(got: any, want: any, what: string)
  if got != want || type(got) != type(want)
    failures->add(printf('%s: got %s, want %s', what, string(got), string(want)))
  endif
enddef

def Edit(lines: list<string>, edits: list<any>, enc: string): list<string>
  enew!
  setline(1, lines)
  fimls#edit#ApplyTextEdits(bufnr(), edits, enc)
  return getline(1, '$')
enddef

def R(l1: number, c1: number, l2: number, c2: number, text: string): dict<any>
  return {range: {start: {line: l1, character: c1}, end: {line: l2, character: c2}}, newText: text}
enddef

# Columns: 'h' 'é' 'l' ... with é 2 bytes; the emoji is 4 bytes, 2 UTF-16 units.
var line = 'aé😀b'
Eq(fimls#util#ByteToChar(line, 3, 'utf-32'), 2, 'utf-32 after é')
Eq(fimls#util#ByteToChar(line, 7, 'utf-32'), 3, 'utf-32 after emoji')
Eq(fimls#util#ByteToChar(line, 7, 'utf-16'), 4, 'utf-16 after emoji')
Eq(fimls#util#ByteToChar(line, 7, 'utf-8'), 7, 'utf-8 bytes')
Eq(fimls#util#CharToByte(line, 3, 'utf-32'), 7, 'utf-32 -> byte')
Eq(fimls#util#CharToByte(line, 4, 'utf-16'), 7, 'utf-16 -> byte')
Eq(fimls#util#CharToByte(line, 99, 'utf-32'), len(line), 'clamped')
Eq(fimls#util#CharToByte('e' .. nr2char(0x301) .. 'x', 2, 'utf-32'), 3, 'composing char counts')

var doc = ['héllo wörld', 'line2', 'line3']
Eq(Edit(doc, [R(0, 6, 0, 11, 'there'), R(0, 0, 0, 0, '>> ')], 'utf-32'),
  ['>> héllo there', 'line2', 'line3'], 'two edits on one line, utf-32 columns')
Eq(Edit(['😀 x = 1'], [R(0, 3, 0, 4, 'y')], 'utf-16'), ['😀 y = 1'], 'utf-16 columns')
Eq(Edit(['😀 x = 1'], [R(0, 2, 0, 3, 'y')], 'utf-32'), ['😀 y = 1'], 'utf-32 columns')
Eq(Edit(doc, [R(1, 0, 1, 0, "a\nb\n")], 'utf-32'), ['héllo wörld', 'a', 'b', 'line2', 'line3'], 'insert lines')
Eq(Edit(doc, [R(0, 5, 2, 2, '')], 'utf-32'), ['héllone3'], 'delete across lines')
Eq(Edit(doc, [R(3, 0, 3, 0, "tail\n")], 'utf-32'), doc + ['tail'], 'insert at the end of the document')
Eq(Edit(doc, [R(1, 0, 3, 0, '')], 'utf-32'), ['héllo wörld'], 'delete to the end of the document')
Eq(Edit([''], [R(0, 0, 0, 0, "x\ny\n")], 'utf-32'), ['x', 'y'], 'empty buffer')
Eq(Edit(doc, [R(0, 0, 0, 0, 'A'), R(0, 0, 0, 0, 'B')], 'utf-32'), ['ABhéllo wörld', 'line2', 'line3'],
  'inserts at one place keep their order')
Eq(Edit(doc, [R(2, 0, 2, 5, 'L3'), R(0, 0, 1, 0, "first\n")], 'utf-32'), ['first', 'line2', 'L3'],
  'edits in any order')
Eq(Edit(doc, [R(1, 0, 1, 5, "x\r\ny")], 'utf-32'), ['héllo wörld', 'x', 'y', 'line3'], 'CRLF in new text')

# A WorkspaceEdit that creates a file: a new buffer, nothing on disk.
var dir = tempname()
var path = dir .. '/tests/test_new.py'
var failure = fimls#edit#Apply({documentChanges: [
  {kind: 'create', uri: fimls#util#PathToUri(path)},
  {textDocument: {uri: fimls#util#PathToUri(path), version: v:null},
   edits: [R(0, 0, 0, 0, "def test_x():\n    assert True\n")]}]})
Eq(failure, '', 'create file: applied')
Eq(getbufline(fimls#util#BufferByPath(path), 1, '$'), ['def test_x():', '    assert True'], 'create file: text')
Eq(filereadable(path), 0, 'create file: not written')
Eq(fimls#util#UriToPath(fimls#util#PathToUri('/tmp/a b/é.py')), '/tmp/a b/é.py', 'URI round trip')
Eq(fimls#util#PathToUri('/tmp/a b/é.py'), 'file:///tmp/a%20b/%C3%A9.py', 'URI encoding')

writefile(empty(failures) ? ['ok'] : failures, $FIMLS_UNIT_OUT)
qa!
