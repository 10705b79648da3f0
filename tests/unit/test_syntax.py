"""Syntax trees: grammars by language, and incremental edits that match a fresh parse."""

from __future__ import annotations

import random

import pytest

from lsp_server.documents import TextDocument
from lsp_server.syntax import DocumentSyntax, grammar_for, parse

LANGUAGES = [
    "python",
    "javascript",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "c",
    "cpp",
    "java",
    "ruby",
    "lua",
    "shellscript",
    "php",
    "kotlin",
    "swift",
    "scala",
    "haskell",
    "zig",
    "csharp",
]


@pytest.mark.parametrize("language_id", LANGUAGES)
def test_every_required_language_has_a_grammar(language_id: str) -> None:
    grammar = grammar_for(language_id, "file:///x")
    assert grammar is not None
    assert parse(grammar, b"x").root_node is not None


def test_language_from_the_extension_and_unknown_languages() -> None:
    assert grammar_for("plaintext", "file:///a/b/main.rs") == "rust"
    assert grammar_for("unknown", "file:///a/notes.txt") is None
    assert grammar_for("typescriptreact", "file:///a/x.tsx") == "tsx"


SOURCE = '''import os


def area(width, height):
    """Return the area; é and \U0001f600 are here."""
    result = width * height
    return result


class Box:
    def __init__(self, w):
        self.w = w
'''


def test_incremental_edits_give_the_tree_of_a_fresh_parse() -> None:
    rng = random.Random(4)
    doc = TextDocument("file:///x.py", SOURCE, 1, "python")
    syntax = DocumentSyntax("python", doc.encoded())
    pieces = ["x", "\n", "    ", "é", "\U0001f600", "(", ")", ":", "\r\n", "", "def g():\n"]
    for _ in range(300):
        lines = doc.lines
        sl = rng.randrange(len(lines))
        el = min(len(lines) - 1, sl + rng.choice([0, 0, 0, 1, 2]))
        sc = rng.randrange(len(lines[sl].rstrip("\r\n")) + 1)
        ec = rng.randrange(len(lines[el].rstrip("\r\n")) + 1)
        if (el, ec) < (sl, sc):
            sl, sc, el, ec = el, ec, sl, sc
        edit = doc.apply_change((sl, sc), (el, ec), rng.choice(pieces), "utf-32")
        assert edit is not None
        syntax.edit(edit)
        if rng.random() < 0.3:  # reparse now and then, as requests would
            incremental = syntax.tree(doc.encoded())
            fresh = parse("python", doc.encoded())
            assert str(incremental.root_node) == str(fresh.root_node)
    assert str(syntax.tree(doc.encoded()).root_node) == str(
        parse("python", doc.encoded()).root_node
    )


@pytest.mark.parametrize(
    "grammar,source,marker,expected",
    [
        ("python", "x = 'hello world'\n", "wor", "string"),
        ("python", "x = 'hello '\n", "'\n", None),  # typing a string: only the quote follows
        ("python", "x = 1  # a note\n", "note", "comment"),
        ("python", "x = foo(1)\n", "(1", None),
        ("javascript", "const s = `a ${b} c`;\n", " c`", "string"),
        ("javascript", "let a = 1; // note\n", "note", "comment"),
        ("go", 'package m\nvar s = "abc"\n', "bc", "string"),
        ("rust", "fn f() {} // note\n", "note", "comment"),
        ("c", "/* block comment */ int x;\n", "comment", "comment"),
        ("lua", "local s = 'text here'\n", "here", "string"),
        # at the end of a line comment (the cursor's own byte is the newline)
        ("python", "x = 1  # a note\ny = 2\n", "\ny", "comment"),
        ("python", "# the area of a rect\ndef f(): pass\n", "\ndef", "comment"),
        ("javascript", "let a = 1; // note\n", "\n", "comment"),
        ("lua", "local a = 1 -- note\n", "\n", "comment"),
        # just after a block comment: outside it
        ("c", "int x; /* note */\nint y;\n", "\nint y", None),
        ("javascript", "f(/* a */)\n", ")\n", None),
        ("python", "x = 1\n", "\n", None),
    ],
)
def test_cursor_in_comments_and_strings(
    grammar: str, source: str, marker: str, expected: str | None
) -> None:
    from lsp_server.syntax import cursor_context

    data = source.encode()
    offset = data.index(marker.encode())
    assert cursor_context(parse(grammar, data), offset, data) == expected


@pytest.mark.parametrize(
    "grammar,before,after,good,bad",
    [
        # Python: the compiler catches what the lenient grammar accepts
        (
            "python",
            "def f(x):\n    if x:\n        y = 1\n    ",
            "\n        return 2\n    elif x > 2:\n        return 3\n",
            "elif x > 1:",
            "else:",
        ),
        ("python", "def f(xs):\n    ", "\n        total += 1\n", "for x in xs:", "total = 0"),
        ("javascript", "function f(x) {\n  ", "\n}\n", "return x;", "return x; }"),
        ("go", "package m\nfunc f() int {\n\t", "\n}\n", "return 1", "return 1 }"),
        ("rust", "fn f() -> i32 {\n    ", "\n}\n", "1", "1 }}"),
        ("typescript", "function f(x: number) {\n  ", "\n}\n", "return x;", "return x: }"),
        ("java", "class A {\n  int f() {\n    ", "\n  }\n}\n", "return 1;", "return 1 }}"),
        ("c", "int f(void) {\n  ", "\n}\n", "return 1;", "return 1; }"),
        ("ruby", "def f(x)\n  ", "\nend\n", "x * 2", "x * (2"),
        ("lua", "function f(x)\n  ", "\nend\n", "return x", "return x end"),
    ],
)
def test_syntax_check_flags_new_errors_only(
    grammar: str, before: str, after: str, good: str, bad: str
) -> None:
    from lsp_server.syntax import SyntaxCheck

    check = SyntaxCheck(grammar, before, after)
    baseline = check.errors()
    assert check.errors(good) <= baseline
    assert check.errors(bad) > baseline


def test_keepable_lines_cuts_a_block_that_closes_too_early() -> None:
    from lsp_server.syntax import SyntaxCheck

    check = SyntaxCheck("javascript", "function f(x) {\n  ", "\n}\n")
    completion = "const y = x * 2;\n  return y;\n}\n}"
    assert check.keepable_lines(completion, check.errors()) == 2


@pytest.mark.parametrize(
    "grammar,before,after,completion,kept",
    [
        ("python", "def f(xs):\n    ", "\n", "total = 0\n    for x in xs:\n        total += x)", 2),
        ("go", "package m\nfunc f() int {\n\t", "\n}\n", "x := 1\n\treturn x\n}\n}", 2),
        ("lua", "function f(x)\n  ", "\nend\n", "local y = x\n  return y\nend\nend", 2),
    ],
)
def test_keepable_lines_in_several_languages(
    grammar: str, before: str, after: str, completion: str, kept: int
) -> None:
    from lsp_server.syntax import SyntaxCheck

    check = SyntaxCheck(grammar, before, after)
    assert check.keepable_lines(completion, check.errors()) == kept
