vim9script
# fimls.vim: the default mappings (skipped with g:fimls_no_maps).
#
# Insert-mode keys are <expr> mappings that act only while a suggestion is
# shown; otherwise they give the key's previous meaning: the mapping that
# existed before (moved to <Plug>(fimls-fallback-N) with mapset()) or the key
# itself.  They are defined at VimEnter, after other plugins' mappings.

var fallbacks = 0

# A mapping option: one key, a list of keys, or '' / [] for none.
# The <M-letter> defaults only where they are keys of their own: in terminal Vim with
# g:fimls_meta_termcodes (Esc + letter).  Otherwise Vim reads Alt+n as the character
# 'î', and a map of <M-n> would swallow that letter for users who type it.
def Keys(name: string, default: list<string>): list<string>
  var own_meta = get(g:, 'fimls_meta_termcodes', 0) && !has('gui_running')
  var defaults = own_meta ? default : default->copy()->filter((_, k) => k !~# '\c^<M-.>$')
  var value = get(g:, name, defaults)
  var keys = type(value) == v:t_list ? value : [value]
  return filter(copy(keys), (_, k) => type(k) == v:t_string && k !=# '')
enddef

def MapWithFallback(lhs: string, what: string)
  var prev = maparg(lhs, 'i', false, true)
  if !empty(prev) && get(prev, 'rhs', '') =~# 'fimls#ghost#KeyExpr'
    return   # already ours
  endif
  fallbacks += 1
  var plug = '<Plug>(fimls-fallback-' .. fallbacks .. ')'
  if !empty(prev) && !get(prev, 'buffer', 0)
    # Keep the previous mapping (with its script context) under the <Plug>.
    prev.lhs = plug
    prev.lhsraw = "\<Plug>(fimls-fallback-" .. fallbacks .. ')'
    if has_key(prev, 'lhsrawalt')
      remove(prev, 'lhsrawalt')
    endif
    mapset('i', false, prev)
  else
    execute 'inoremap ' .. plug .. ' ' .. lhs
  endif
  execute printf("imap <silent><expr> %s fimls#ghost#KeyExpr('%s', %d)", lhs, what, fallbacks)
enddef

export def Setup()
  if get(g:, 'fimls_no_maps', 0)
    return
  endif
  for lhs in Keys('fimls_map_accept', ['<Tab>'])
    MapWithFallback(lhs, 'all')
  endfor
  for lhs in Keys('fimls_map_accept_word', ['<M-w>', '<C-Right>'])
    MapWithFallback(lhs, 'word')
  endfor
  for lhs in Keys('fimls_map_accept_line', ['<M-l>', '<M-Right>'])
    MapWithFallback(lhs, 'line')
  endfor
  for lhs in Keys('fimls_map_dismiss', ['<C-]>'])
    MapWithFallback(lhs, 'dismiss')
  endfor
  var meta = Keys('fimls_map_accept_word', ['<M-w>', '<C-Right>'])
    + Keys('fimls_map_accept_line', ['<M-l>', '<M-Right>'])
  for lhs in Keys('fimls_map_next', ['<M-n>'])
    execute 'imap <silent> ' .. lhs .. ' <Plug>(fimls-next)'
    meta->add(lhs)
  endfor
  if get(g:, 'fimls_code_actions', 1)
    for lhs in Keys('fimls_map_code_action', ['<Leader>fa'])
      if empty(maparg(lhs, 'n'))
        execute 'nmap <silent> ' .. lhs .. ' <Plug>(fimls-code-action)'
      endif
      if empty(maparg(lhs, 'x'))
        execute 'xmap <silent> ' .. lhs .. ' <Plug>(fimls-code-action)'
      endif
    endfor
  endif
  # Terminal Vim receives Alt+letter as Esc followed by the letter: with
  # g:fimls_meta_termcodes that sequence is made the <M-letter> key.
  if get(g:, 'fimls_meta_termcodes', 0) && !has('gui_running')
    for lhs in meta
      var ch = matchstr(lhs, '\c^<M-\zs[a-z0-9]\ze>$')
      if ch !=# ''
        execute 'set <M-' .. ch .. '>=' .. "\<Esc>" .. ch
      endif
    endfor
  endif
enddef
