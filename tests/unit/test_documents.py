"""Documents: LSP line splitting, position encodings, incremental edits."""

from __future__ import annotations

import pytest

from lsp_server.documents import (
    TextDocument,
    column_to_index,
    index_to_column,
    split_lines,
)
from lsp_server.errors import DocumentError


@pytest.mark.parametrize(
    "text,lines",
    [
        ("", [""]),
        ("a", ["a"]),
        ("a\n", ["a\n", ""]),
        ("a\r\nb\rc\nd", ["a\r\n", "b\r", "c\n", "d"]),
        ("a\u2028b\x0cc", ["a\u2028b\x0cc"]),  # only \n, \r\n and \r break lines in LSP
    ],
)
def test_split_lines(text: str, lines: list[str]) -> None:
    assert split_lines(text) == lines
    assert "".join(split_lines(text)) == text


def test_utf16_columns() -> None:
    line = 'x = "\U0001f600é" + y'
    assert column_to_index(line, 5, "utf-16") == (5, True)  # at the emoji
    assert column_to_index(line, 6, "utf-16") == (5, False)  # between its surrogates
    assert column_to_index(line, 7, "utf-16") == (6, True)  # after the emoji
    assert column_to_index(line, 8, "utf-16") == (7, True)
    assert column_to_index(line, 999, "utf-16") == (len(line), True)  # clamped
    assert index_to_column(line, 7, "utf-16") == 8


def test_utf8_and_utf32_columns() -> None:
    line = "é\U0001f600a"
    assert column_to_index(line, 2, "utf-8") == (1, True)
    assert column_to_index(line, 6, "utf-8") == (2, True)
    assert column_to_index(line, 3, "utf-8") == (1, False)
    assert column_to_index(line, 2, "utf-32") == (2, True)
    assert index_to_column(line, 2, "utf-8") == 6


def test_unknown_encoding_is_an_error() -> None:
    with pytest.raises(ValueError):
        column_to_index("é", 1, "PositionEncodingKind.Utf16")


def doc(text: str) -> TextDocument:
    return TextDocument("file:///t.py", text, 1, "python")


def test_insert_and_delete_within_a_line() -> None:
    d = doc("def f():\n    return\n")
    d.apply_change((1, 10), (1, 10), " 1", "utf-16")
    assert d.text == "def f():\n    return 1\n"
    d.apply_change((1, 4), (1, 11), "", "utf-16")
    assert d.text == "def f():\n    1\n"


def test_edits_across_lines() -> None:
    d = doc("a\nb\nc\nd")
    d.apply_change((1, 0), (3, 0), "X\nY\n", "utf-16")
    assert d.text == "a\nX\nY\nd"
    d.apply_change((0, 1), (3, 1), "", "utf-16")
    assert d.text == "a"
    assert d.lines == ["a"]


def test_typing_a_newline_at_the_end() -> None:
    d = doc("x = 1")
    d.apply_change((0, 5), (0, 5), "\n", "utf-16")
    assert d.lines == ["x = 1\n", ""]
    d.apply_change((1, 0), (1, 0), "y", "utf-16")
    assert d.text == "x = 1\ny"


def test_crlf_joined_across_an_edit() -> None:
    d = doc("a\rb")
    # insert "\n" right after the "\r": the two become one CRLF line break
    d.apply_change((1, 0), (1, 0), "\n", "utf-16")
    assert d.text == "a\r\nb"
    assert d.lines == ["a\r\n", "b"]


def test_utf16_range_after_an_emoji() -> None:
    d = doc('s = "\U0001f600"\n')
    d.apply_change((0, 7), (0, 7), "!", "utf-16")  # after the emoji (2 UTF-16 units)
    assert d.text == 's = "\U0001f600!"\n'


def test_change_past_the_end_is_clamped() -> None:
    d = doc("a\nb")
    d.apply_change((7, 0), (9, 0), "c", "utf-16")
    assert d.text == "a\nbc"


def test_reversed_range_is_rejected() -> None:
    d = doc("abc")
    with pytest.raises(DocumentError):
        d.apply_change((0, 2), (0, 1), "x", "utf-16")
    assert d.text == "abc"


def test_full_replacement() -> None:
    d = doc("abc")
    d.apply_change(None, None, "x\ny", "utf-16")
    assert d.lines == ["x\n", "y"]


def test_cursor_validation() -> None:
    d = doc("ab\ncd")
    assert d.cursor(1, 1, "utf-16").index == 1
    assert d.cursor(1, 50, "utf-16").index == 2
    with pytest.raises(DocumentError, match="past the end"):
        d.cursor(2, 0, "utf-16")
    with pytest.raises(DocumentError, match="negative"):
        d.cursor(-1, 0, "utf-16")
