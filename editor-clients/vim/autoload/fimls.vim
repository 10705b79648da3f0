" fimls.vim: the public functions (for the statusline, mappings and scripts).
" This file is legacy Vim script because Vim9 requires capitalised exported
" names; the work is done by the Vim9 modules in autoload/fimls/.

" The server state for the statusline: 'fimls: ready', 'fimls: busy',
" 'fimls: loading', 'fimls: error', 'fimls: starting', 'fimls: off', or ''
" when no server was started.  Example: set statusline+=%{fimls#status()}
function fimls#status() abort
  return fimls#client#StatusLine()
endfunction

" The server's fimls/stats answer as a Dict ({} when it is not running).
function fimls#stats() abort
  return fimls#client#Stats()
endfunction

" True when a suggestion is shown at the cursor (for your own <expr> maps).
function fimls#visible() abort
  return fimls#ghost#Visible()
endfunction

" The text the suggestion at the cursor would insert ('' when none).
function fimls#suggestion() abort
  return fimls#ghost#Text()
endfunction

" Accept the suggestion: a:1 is 'all' (default), 'word' or 'line'.
function fimls#accept(...) abort
  call fimls#ghost#Accept(get(a:, 1, 'all'))
endfunction

function fimls#dismiss() abort
  call fimls#ghost#Dismiss()
endfunction

" Does fimls serve buffers of this filetype?  (g:fimls_filetypes, '*' for all,
" minus g:fimls_filetypes_exclude.)
function fimls#filetype_enabled(filetype) abort
  let ft = split(a:filetype, '\.')
  if empty(ft) || index(get(g:, 'fimls_filetypes_exclude', []), ft[0]) >= 0
    return 0
  endif
  let enabled = get(g:, 'fimls_filetypes', g:fimls#default_filetypes)
  return index(enabled, '*') >= 0 || index(enabled, ft[0]) >= 0
endfunction

" Languages fimls parses with tree-sitter, and a few more it completes.
let g:fimls#default_filetypes = [
      \ 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
      \ 'go', 'rust', 'c', 'cpp', 'cs', 'java', 'ruby', 'lua', 'sh', 'bash', 'zsh',
      \ 'php', 'kotlin', 'swift', 'scala', 'haskell', 'zig', 'vim', 'html', 'css',
      \ 'scss', 'sql', 'r', 'julia', 'perl', 'dart', 'elixir', 'ocaml', 'toml', 'yaml',
      \ 'json', 'make', 'cmake', 'dockerfile', 'terraform', 'nix', 'proto']
