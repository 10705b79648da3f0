"""Open documents: text kept as lines, LSP positions in the negotiated encoding.

Lines follow the LSP definition (split on LF, CR LF and CR only). Positions
arrive in UTF-16 code units by default (or UTF-8 / UTF-32 when negotiated) and are turned
into code-point indices here, once, so the rest of the server works on Python strings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from lsp_server.errors import DocumentError
from lsp_server.syntax import ByteEdit

log = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Split text into lines that keep their terminators; the last line has none."""
    if "\r" not in text:
        lines = text.split("\n")
        return [line + "\n" for line in lines[:-1]] + [lines[-1]]
    out: list[str] = []
    start = 0
    for m in _LINE_BREAK.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    out.append(text[start:])
    return out


def content(line: str) -> str:
    """Return a line without its terminator."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


ENCODINGS = ("utf-8", "utf-16", "utf-32")


def _units(ch: str, encoding: str) -> int:
    cp = ord(ch)
    if encoding == "utf-16":
        return 2 if cp > 0xFFFF else 1
    if encoding == "utf-8":
        return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
    return 1


def column_to_index(text: str, column: int, encoding: str) -> tuple[int, bool]:
    """Turn a column in code units into a code-point index into ``text``.

    Returns (index, exact). A column past the end is clamped to the end, as the LSP
    specification asks; a column inside a multi-unit character rounds down and is not
    exact.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown position encoding {encoding!r}")
    if encoding == "utf-32" or text.isascii():
        return min(column, len(text)), True
    units = 0
    for index, ch in enumerate(text):
        if units == column:
            return index, True
        units += _units(ch, encoding)
        if units > column:
            return index, False
    return len(text), True


def index_to_column(text: str, index: int, encoding: str) -> int:
    """Turn a code-point index into ``text`` into a column in code units."""
    if encoding == "utf-32" or text.isascii():
        return index
    return sum(_units(ch, encoding) for ch in text[:index])


@dataclass(frozen=True)
class Cursor:
    """A position as (line, code-point index) with the text around it."""

    line: int
    index: int


class TextDocument:
    """The text of one open document and its version."""

    def __init__(self, uri: str, text: str, version: int, language_id: str) -> None:
        self.uri = uri
        self.version = version
        self.language_id = language_id
        self._lines = split_lines(text)

    @property
    def lines(self) -> list[str]:
        """The lines, each with its terminator except the last (do not mutate)."""
        return self._lines

    @property
    def text(self) -> str:
        """The whole text."""
        return "".join(self._lines)

    def line_text(self, line: int) -> str:
        """The content of one line, without its terminator."""
        return content(self._lines[line])

    def with_insertion(self, cursor: Cursor, text: str) -> tuple[TextDocument, Cursor]:
        """A copy with ``text`` inserted at the cursor, and the cursor after it."""
        current = self._lines[cursor.line]
        body = content(current)
        inserted = split_lines(body[: cursor.index] + text + body[cursor.index :])
        inserted[-1] += current[len(body) :]  # the line's own terminator
        copy = TextDocument(self.uri, "", self.version, self.language_id)
        copy._lines = [*self._lines[: cursor.line], *inserted, *self._lines[cursor.line + 1 :]]
        last = split_lines(body[: cursor.index] + text)
        end = Cursor(cursor.line + len(last) - 1, len(content(last[-1])))
        return copy, end

    def cursor(self, line: int, character: int, encoding: str) -> Cursor:
        """Resolve a client position, raising DocumentError when it is not in the document."""
        if line < 0 or character < 0:
            raise DocumentError(f"position {line}:{character} is negative")
        if line >= len(self._lines):
            raise DocumentError(
                f"position {line}:{character} is past the end of {self.uri} "
                f"({len(self._lines)} lines)"
            )
        index, exact = column_to_index(self.line_text(line), character, encoding)
        if not exact:
            raise DocumentError(
                f"position {line}:{character} falls inside a character (encoding {encoding})"
            )
        return Cursor(line, index)

    def apply_change(
        self,
        start: tuple[int, int] | None,
        end: tuple[int, int] | None,
        text: str,
        encoding: str,
    ) -> ByteEdit | None:
        """Apply one content change; ``start``/``end`` of None replace the whole text.

        Returns the change in UTF-8 bytes for the syntax tree (None for a replacement of
        the whole text). Ranges past the end of the document are clamped to it, as
        editors do, so that a slightly wrong client loses nothing it typed.
        """
        if start is None or end is None:
            self._lines = split_lines(text)
            return None
        sl, sc = self._clamp(start, encoding)
        el, ec = self._clamp(end, encoding)
        if (el, ec) < (sl, sc):
            raise DocumentError(f"change range ends before it starts: {start} > {end}")
        byte_edit = self._byte_edit(sl, sc, el, ec, text)
        # Re-split the touched lines plus the one before, so that a '\r' ending that line
        # and a '\n' starting the new text become one '\r\n' line break.
        lo = max(sl - 1, 0)
        region = "".join(self._lines[lo : el + 1])
        head = sum(len(line) for line in self._lines[lo:sl]) + sc
        tail = sum(len(line) for line in self._lines[lo:el]) + ec
        new = split_lines(region[:head] + text + region[tail:])
        if el + 1 < len(self._lines):
            new.pop()  # the region ended with a line break: the next line continues there
        self._lines[lo : el + 1] = new
        return byte_edit

    def byte_offset(self, line: int, index: int) -> int:
        """The UTF-8 byte offset of (line, code-point index)."""
        before = sum(len(x.encode("utf-8")) for x in self._lines[:line])
        return before + len(self._lines[line][:index].encode("utf-8"))

    def encoded(self) -> bytes:
        """The whole text in UTF-8."""
        return self.text.encode("utf-8")

    def _byte_edit(self, sl: int, sc: int, el: int, ec: int, text: str) -> ByteEdit:
        start = self.byte_offset(sl, sc)
        old_end = self.byte_offset(el, ec)
        inserted = text.encode("utf-8")
        start_col = len(self._lines[sl][:sc].encode("utf-8"))
        rows = inserted.count(b"\n")
        last = inserted.rsplit(b"\n", 1)[-1]
        new_end_point = (sl + rows, len(last) if rows else start_col + len(inserted))
        return ByteEdit(
            start_byte=start,
            old_end_byte=old_end,
            new_end_byte=start + len(inserted),
            start_point=(sl, start_col),
            old_end_point=(el, len(self._lines[el][:ec].encode("utf-8"))),
            new_end_point=new_end_point,
        )

    def _clamp(self, pos: tuple[int, int], encoding: str) -> tuple[int, int]:
        line, character = pos
        if line < 0 or character < 0:
            raise DocumentError(f"negative position {line}:{character} in a change")
        if line >= len(self._lines):
            log.warning("change position %d:%d past the end of %s", line, character, self.uri)
            last = len(self._lines) - 1
            return last, len(content(self._lines[last]))
        index, _ = column_to_index(content(self._lines[line]), character, encoding)
        return line, index


class DocumentStore:
    """The documents the client has opened, by URI."""

    def __init__(self) -> None:
        self._docs: dict[str, TextDocument] = {}
        self.encoding = "utf-16"

    def open(self, uri: str, text: str, version: int, language_id: str) -> TextDocument:
        """Start tracking a document (reopening replaces it)."""
        doc = TextDocument(uri, text, version, language_id)
        self._docs[uri] = doc
        return doc

    def get(self, uri: str) -> TextDocument:
        """Return an open document or raise DocumentError."""
        doc = self._docs.get(uri)
        if doc is None:
            raise DocumentError(f"document {uri} is not open")
        return doc

    def close(self, uri: str) -> None:
        """Stop tracking a document."""
        self._docs.pop(uri, None)

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def all(self) -> list[TextDocument]:
        """The open documents."""
        return list(self._docs.values())

    def __len__(self) -> int:
        return len(self._docs)
