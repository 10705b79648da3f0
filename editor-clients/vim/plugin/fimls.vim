" fimls.vim - ghost-text completions and code actions from fimls, the local
" AI code-completion language server.  See :help fimls.
if exists('g:loaded_fimls') || !has('vim9script') || v:version < 900 || !has('textprop')
  finish
endif

vim9script
g:loaded_fimls = 1

# Options (read when used, so they can be changed at any time; see :help
# fimls-options):
#   g:fimls_enabled, g:fimls_command, g:fimls_settings, g:fimls_filetypes,
#   g:fimls_filetypes_exclude, g:fimls_debounce_ms, g:fimls_root_markers,
#   g:fimls_no_maps, g:fimls_map_*, g:fimls_meta_termcodes,
#   g:fimls_code_actions.

highlight default link FimlsSuggestion Comment

command -bar FimlsStatus fimls#client#ShowStatus()
command -bar FimlsStats fimls#client#ShowStats()
command -bar FimlsLog fimls#client#ShowLog()
command -bar FimlsStop fimls#client#Stop()
command -bar FimlsRestart fimls#client#Restart()
command -bar FimlsStart fimls#client#Restart()
command -bar FimlsEnable g:fimls_enabled = 1 | fimls#doc#AttachAll()
command -bar FimlsDisable g:fimls_enabled = 0 | fimls#ghost#Dismiss()
command -bar -range FimlsCodeAction fimls#actions#CodeAction(<range>, <line1>, <line2>)

inoremap <silent> <Plug>(fimls-accept) <Cmd>call fimls#ghost#Accept('all')<CR>
inoremap <silent> <Plug>(fimls-accept-word) <Cmd>call fimls#ghost#Accept('word')<CR>
inoremap <silent> <Plug>(fimls-accept-line) <Cmd>call fimls#ghost#Accept('line')<CR>
inoremap <silent> <Plug>(fimls-dismiss) <Cmd>call fimls#ghost#Dismiss()<CR>
inoremap <silent> <Plug>(fimls-next) <Cmd>call fimls#ghost#Trigger()<CR>
nnoremap <silent> <Plug>(fimls-code-action) <Cmd>FimlsCodeAction<CR>
xnoremap <silent> <Plug>(fimls-code-action) :FimlsCodeAction<CR>

# Is the current buffer one fimls serves (attached by fimls#doc#Attach)?
def Attached(): bool
  return get(b:, 'fimls_uri', '') !=# ''
enddef

def MaybeAttach(bufnr: number)
  var ft = getbufvar(bufnr, '&filetype')
  if getbufvar(bufnr, 'fimls_uri', '') !=# '' || (ft !=# '' && fimls#filetype_enabled(ft))
    fimls#doc#Attach(bufnr)
  endif
enddef

def Detach(bufnr: number)
  if getbufvar(bufnr, 'fimls_uri', '') !=# ''
    fimls#doc#Detach(bufnr)
  endif
enddef

augroup fimls
  autocmd!
  autocmd FileType * MaybeAttach(str2nr(expand('<abuf>')))
  autocmd BufEnter,BufFilePost * MaybeAttach(str2nr(expand('<abuf>')))
  autocmd BufUnload * Detach(str2nr(expand('<abuf>')))
  autocmd BufWritePost * if Attached() | fimls#doc#Saved(bufnr()) | endif
  autocmd TextChanged * if Attached() | fimls#doc#Sync(bufnr()) | endif
  autocmd InsertEnter * if Attached() | fimls#ghost#OnInsertEnter() | endif
  autocmd TextChangedI,TextChangedP * if Attached() | fimls#ghost#OnTextChanged() | endif
  autocmd CursorMovedI * if Attached() | fimls#ghost#OnCursorMoved() | endif
  autocmd InsertLeave,BufLeave * if Attached() | fimls#ghost#OnInsertLeave() | endif
  autocmd CompleteChanged * if Attached() | fimls#ghost#Clear() | endif
  autocmd ColorScheme * highlight default link FimlsSuggestion Comment
augroup END

if v:vim_did_enter
  fimls#keys#Setup()
else
  autocmd fimls VimEnter * ++once fimls#keys#Setup()
endif
