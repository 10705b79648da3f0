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
