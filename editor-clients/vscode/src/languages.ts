/**
 * The languages fimls is started for. fimls completes any text, but these are the
 * languages its tree-sitter grammars know (syntax-aware stop rules and code actions), as
 * VS Code names them. Keep `activationEvents` in package.json in step (a test checks).
 */
export const LANGUAGES: readonly string[] = [
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
  'c',
  'cpp',
  'csharp',
  'java',
  'ruby',
  'lua',
  'shellscript',
  'php',
  'kotlin',
  'swift',
  'scala',
  'haskell',
  'zig',
];

/** Document schemes fimls serves: files on disk and unsaved (untitled) editors. */
export const SCHEMES: readonly string[] = ['file', 'untitled'];

export interface DocumentFilter {
  language: string;
  scheme: string;
}

/** The client's document selector: every language in every scheme. */
export function documentSelector(
  languages: readonly string[] = LANGUAGES,
  schemes: readonly string[] = SCHEMES,
): DocumentFilter[] {
  return languages.flatMap((language) => schemes.map((scheme) => ({ language, scheme })));
}
