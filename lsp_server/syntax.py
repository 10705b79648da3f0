"""tree-sitter trees of open documents, edited on every change and reparsed on demand.

Grammars come from ``tree-sitter-language-pack`` (0.13.0: every grammar ships in the
wheel, nothing is downloaded). A document's language is its LSP ``languageId``, else its
file extension; a language without a grammar simply has no tree and completes without
syntax features. Every ``didChange`` edits the old tree (``Tree.edit``); the new tree is
parsed incrementally from it the next time a request needs it, so a burst of keystrokes
costs one parse.
"""

from __future__ import annotations

import ast
import logging
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from urllib.parse import urlparse

from tree_sitter import Language, Node, Parser, Point, Tree

from lsp_server.pynames import identifiers, name_flaw
from lsp_server.workspace import LANGUAGES

log = logging.getLogger(__name__)

#: Documents larger than this get no tree (parsing them on a keystroke would stall).
MAX_SYNTAX_BYTES = 2 << 20

#: LSP languageId -> grammar name.
LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "c": "c",
    "cpp": "cpp",
    "c++": "cpp",
    "java": "java",
    "ruby": "ruby",
    "lua": "lua",
    "shellscript": "bash",
    "sh": "bash",
    "bash": "bash",
    "zsh": "bash",
    "php": "php",
    "kotlin": "kotlin",
    "swift": "swift",
    "scala": "scala",
    "haskell": "haskell",
    "zig": "zig",
    "csharp": "csharp",
}

#: File extension -> grammar name, when the languageId is unknown.
EXTENSIONS = {ext: LANGUAGE_IDS[language] for ext, language in LANGUAGES.items()}


def grammar_for(language_id: str, uri: str) -> str | None:
    """The grammar of a document, from its languageId or else its file extension."""
    name = LANGUAGE_IDS.get((language_id or "").lower())
    if name is None:
        ext = posixpath.splitext(urlparse(uri).path)[1].lower()
        name = EXTENSIONS.get(ext)
    if name is None or language(name) is None:
        return None
    return name


@cache
def language(name: str) -> Language | None:
    """A grammar by name, or None when the language pack lacks it."""
    from tree_sitter_language_pack import get_language

    try:
        return get_language(name)  # type: ignore[arg-type]
    except (LookupError, ValueError, ImportError, OSError) as exc:
        log.info("no tree-sitter grammar for %s: %s", name, exc)
        return None


def parse(name: str, source: bytes, old: Tree | None = None) -> Tree:
    """Parse source with a fresh parser (parsers are cheap and not shared across threads)."""
    lang = language(name)
    assert lang is not None
    parser = Parser(lang)
    return parser.parse(source, old) if old is not None else parser.parse(source)


@dataclass(frozen=True)
class ByteEdit:
    """One text change in tree-sitter terms: bytes and (row, byte column) points."""

    start_byte: int
    old_end_byte: int
    new_end_byte: int
    start_point: tuple[int, int]
    old_end_point: tuple[int, int]
    new_end_point: tuple[int, int]


class DocumentSyntax:
    """The tree of one document."""

    def __init__(self, grammar: str, source: bytes) -> None:
        self.grammar = grammar
        self._tree: Tree | None = parse(grammar, source)
        self._stale = False

    def edit(self, edit: ByteEdit) -> None:
        """Record an edit in the old tree; the next :meth:`tree` reparses incrementally."""
        if self._tree is None:
            return
        self._tree.edit(
            edit.start_byte,
            edit.old_end_byte,
            edit.new_end_byte,
            Point(*edit.start_point),
            Point(*edit.old_end_point),
            Point(*edit.new_end_point),
        )
        self._stale = True

    def tree(self, source: bytes) -> Tree:
        """The current tree; ``source`` must be the document's current text in UTF-8."""
        if self._tree is None or self._stale:
            self._tree = parse(self.grammar, source, self._tree)
            self._stale = False
        return self._tree


def ancestors(node: Node | None) -> Iterator[Node]:
    """The node and its ancestors, innermost first."""
    while node is not None:
        yield node
        node = node.parent


def is_comment(node: Node) -> bool:
    """Whether a node is (part of) a comment."""
    return "comment" in node.type


STRING_TYPES = frozenset(
    {
        "string",
        "string_literal",
        "interpreted_string_literal",
        "raw_string_literal",
        "template_string",
        "char_literal",
        "character_literal",
        "string_fragment",
        "string_content",
        "encapsed_string",
        "heredoc_body",
        "line_string_literal",
        "multi_line_string_literal",
        "interpolated_string_expression",
        "raw_string",
    }
)


def is_string(node: Node) -> bool:
    """Whether a node is (part of) a string literal."""
    return node.type in STRING_TYPES


def count_errors(root: Node) -> int:
    """ERROR and MISSING nodes in a tree (only subtrees that contain errors are walked)."""
    if not root.has_error:
        return 0
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return count


#: How block comments end (``/* */``, Lua's ``--[[ ]]``, Haskell's ``{- -}``, OCaml's ``(* *)``).
_COMMENT_CLOSERS = (b"*/", b"]]", b"-}", b"*)")


def cursor_context(tree: Tree, offset: int, source: bytes) -> str | None:
    """``"comment"`` or ``"string"`` when the byte offset is inside one, else None.

    "string" means the middle of a string literal: text of the literal follows the
    cursor on its line. At the end of a string being typed (only the closing quote
    after the cursor) completion is useful and None is returned.
    """
    # From the byte before the cursor too: at the end of a line the cursor's own byte (the
    # newline) belongs to no comment, though a line comment ends right there.
    node = tree.root_node.descendant_for_byte_range(max(offset - 1, 0), offset)
    for current in ancestors(node):
        if current.start_byte >= offset and current.type not in STRING_TYPES:
            continue  # a node that starts at the cursor does not contain it
        if is_comment(current) and current.start_byte < offset <= current.end_byte:
            closed = source[current.end_byte - 2 : current.end_byte] in _COMMENT_CLOSERS
            if offset < current.end_byte or not closed:
                return "comment"  # inside, or at the end of a line comment
            return None  # just after a block comment's closing delimiter
        if is_string(current) and current.start_byte < offset < current.end_byte:
            rest = source[offset : current.end_byte].split(b"\n", 1)[0]
            if rest.strip(b"\"'`) \t;,"):
                return "string"
            return None
    return None


def _error_line(text: str) -> int | None:
    """The line of Python's first syntax error in a text (1-based), or None."""
    try:
        compile(text, "<completion>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or 0
    except ValueError:  # a NUL byte
        return 0
    return None


@dataclass(frozen=True)
class SyntaxCheck:
    """Whether inserting text at the cursor adds syntax errors the document did not have.

    ``before`` and ``after`` are the document text around the cursor (a window of it):
    the check parses before + completion + after and compares its ERROR/MISSING count
    with that of before + after.
    """

    grammar: str
    before: str
    after: str
    outside_lines: tuple[str, ...] = ()  # the file's lines outside the window

    def errors(self, inserted: str = "") -> int:
        """Syntax errors of the window with ``inserted`` at the cursor.

        tree-sitter's ERROR and MISSING nodes; for Python, whose grammar accepts an
        empty block or a stray indent, also the compiler's verdict on the insertion
        (:meth:`python_worse`).
        """
        text = self.before + inserted + self.after
        count = count_errors(parse(self.grammar, text.encode("utf-8")).root_node)
        if self.grammar == "python" and inserted:
            count += self.python_worse(inserted)
        return count

    @cached_property
    def outside(self) -> frozenset[str]:
        """The identifiers of the lines outside the window (read once per check)."""
        return identifiers(self.outside_lines)

    @cached_property
    def _base_error_line(self) -> int | None:
        """Python's verdict on the window without an insertion (asked once per check)."""
        return _error_line(self.before + self.after)

    def python_worse(self, inserted: str) -> int:
        """1 when Python's compiler finds the insertion wrong, else 0.

        Wrong: the window compiles without the insertion and not with it, or the first
        code line after the cursor is rejected with and without it (the insertion was
        to make it fit, as the header of the indented body below).
        """
        base = self._base_error_line
        after = _error_line(self.before + inserted + self.after)
        if after is None:
            return 0
        if base is None:
            return 1
        cursor_line = self.before.count("\n") + 1
        following = self.after.split("\n")[1:]
        next_code = next((i for i, line in enumerate(following, 1) if line.strip()), None)
        if next_code is not None and base == cursor_line + next_code:
            return 1 if after == base + inserted.count("\n") else 0
        return 0

    def name_flaw(self, inserted: str) -> str | None:
        """For Python: a name the insertion leaves undefined or reads too early."""
        if self.grammar != "python":
            return None
        return name_flaw(self.before, inserted, self.after, self.outside)

    def keepable_lines(self, completion: str, baseline: int) -> int:
        """The most leading lines of a completion that add no syntax error (0: none)."""
        lines = completion.split("\n")
        for keep in range(len(lines), 0, -1):
            if self.errors("\n".join(lines[:keep])) <= baseline:
                return keep
        return 0
