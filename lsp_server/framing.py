r"""LSP's base protocol read defensively: frames out of a byte stream, bodies to messages.

pygls' own reader trusts its peer: a ``Content-Length`` of a terabyte allocates a
terabyte, a header it does not match exactly loses the stream, a body that is not UTF-8
or not JSON is logged and never answered. :class:`FrameDecoder` is pure (bytes in,
frames out) and recovers from all of these:

- a header is found anywhere in a line (``garbage}Content-Length: 12``), in any case,
  with ``\n`` or ``\r\n`` line ends: after a frame whose length was too short, the
  next header resynchronizes the stream;
- a length above :data:`MAX_BODY_BYTES` is refused (the header is skipped, the stream
  scanned for the next one), and so is a line without a line break longer than
  :data:`MAX_HEADER_BYTES`: memory stays bounded whatever arrives;
- a body whose length was announced too long holds a whole message and then the start
  of the next frame: the message is read and the rest given back (:meth:`give_back`); a
  body that does not parse but holds a header is given back from that header on
  (:meth:`resync`).

:func:`parse_body` turns a body into a message, or into the error answer JSON-RPC
prescribes: Parse error (-32700) for what is not JSON, Invalid Request (-32600) for JSON
that is not an object, with the request's id when it can be read from the top level of
the broken text, else ``null``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: The largest body accepted (a 10 MB document with JSON escaping fits many times).
MAX_BODY_BYTES = 128 * 1024 * 1024

#: The longest header line kept while looking for its end.
MAX_HEADER_BYTES = 64 * 1024

#: How far into a broken body its id is looked for.
ID_SCAN_CHARS = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})[ \t]*$", re.IGNORECASE)
_FRAME_START = re.compile(rb"Content-Length[ \t]*:[ \t]*\d{1,20}[ \t]*\r?\n", re.IGNORECASE)


@dataclass(frozen=True)
class Frame:
    """One body, as its header announced it."""

    body: bytes


@dataclass(frozen=True)
class Skipped:
    """Bytes that were not part of a frame, and why."""

    size: int
    reason: str


Event = Frame | Skipped


class FrameDecoder:
    """Split a byte stream into frames: :meth:`feed` bytes, take :meth:`events`."""

    def __init__(self, max_body: int = MAX_BODY_BYTES, max_header: int = MAX_HEADER_BYTES):
        self._buffer = bytearray()
        self._max_body = max_body
        self._max_header = max_header
        self._length: int | None = None  # from the headers read so far
        self._body: int | None = None  # the length of the body being read
        self._garbage = 0  # bytes skipped since the last frame or header

    @property
    def pending(self) -> int:
        """Bytes held that are not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Take more bytes; :meth:`events` then yields what they complete."""
        self._buffer += data

    def events(self) -> Iterator[Event]:
        """Yield the frames (and skipped spans) the bytes fed so far complete.

        Lazy: a :meth:`resync` between two events is seen by the next one.
        """
        pending: list[Event] = []
        while True:
            if pending:
                yield pending.pop(0)
                continue
            if self._body is not None:
                if len(self._buffer) < self._body:
                    return
                body = bytes(self._buffer[: self._body])
                del self._buffer[: self._body]
                self._body = None
                yield Frame(body)
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max_header:
                    # a line this long is no header: keep only a tail that may start one
                    drop = len(self._buffer) - 64
                    del self._buffer[:drop]
                    self._garbage += drop
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            self._header_line(line, end + 1, pending)

    def give_back(self, data: bytes) -> None:
        """Read ``data`` again before what is buffered (bytes a frame took too many of)."""
        self._buffer[:0] = data

    def resync(self, body: bytes) -> bool:
        """Give back a bad body's bytes from the first frame header inside it.

        A body that does not parse because its length was announced too long holds the
        start of the next frame; reading goes on from there. Returns whether one was found.
        """
        match = _FRAME_START.search(body, 1)
        if match is None:
            return False
        self._buffer[:0] = body[match.start() :]
        return True

    def _header_line(self, line: bytes, size: int, events: list[Event]) -> None:
        if not line.strip():
            if self._length is not None:
                self._flush_garbage(events)
                self._body, self._length = self._length, None
            else:
                self._garbage += size
            return
        match = _HEADER.search(line)
        if match is None:
            if self._length is None:
                self._garbage += size  # not a header of ours (or Content-Type): skip
            return
        length = int(match.group(1))
        self._garbage += match.start()
        if length > self._max_body:
            self._flush_garbage(events)
            events.append(
                Skipped(size, f"Content-Length {length} is over the {self._max_body} limit")
            )
            self._length = None
        elif length == 0:
            self._flush_garbage(events)
            events.append(Skipped(size, "Content-Length 0"))
            self._length = None
        else:
            self._length = length

    def _flush_garbage(self, events: list[Event]) -> None:
        if self._garbage:
            events.append(Skipped(self._garbage, "bytes outside any frame"))
            self._garbage = 0


@dataclass(frozen=True)
class BadMessage:
    """A body that is no JSON-RPC message: the error answer it gets."""

    msg_id: int | str | None
    code: int
    message: str
    #: where a complete JSON value ends and extra data begins (a length announced too long)
    extra_at: int | None = None


def decode_text(body: bytes) -> tuple[str, bool]:
    """The body as text; invalid UTF-8 is replaced (U+FFFD). Returns (text, was_valid)."""
    try:
        return body.decode("utf-8"), True
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace"), False


_SURROGATE_ESCAPE = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    r"|\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _pair_or_replace(match: re.Match[str]) -> str:
    escape = match.group()
    if escape == "\\\\" or len(escape) == 12:
        return escape  # an escaped backslash, or a high and a low surrogate: a pair
    return "\\ufffd"  # a lone surrogate


def replace_lone_surrogates(text: str) -> str:
    r"""JSON text with its escapes of unpaired surrogates (``\udfff``) made U+FFFD.

    JSON may escape any code unit, but a lone surrogate is no character: Python would
    keep it in a string that cannot be encoded (UTF-8 for the model, tree-sitter and the
    reply). A client's text with one gets the replacement character there instead,
    which counts one UTF-16 unit too, so positions do not move.
    """
    if "\\ud" not in text and "\\uD" not in text:
        return text
    return _SURROGATE_ESCAPE.sub(_pair_or_replace, text)


def parse_body(text: str, object_hook: Callable[[dict[str, Any]], Any]) -> Any:
    """The message in ``text``, or a :class:`BadMessage` saying how to answer it."""
    text = replace_lone_surrogates(text)
    try:
        message = json.loads(text, object_hook=object_hook)
    except RecursionError:
        return BadMessage(top_level_id(text), PARSE_ERROR, "JSON nested too deeply")
    except json.JSONDecodeError as exc:
        extra = exc.pos if exc.msg == "Extra data" else None
        return BadMessage(top_level_id(text), PARSE_ERROR, f"invalid JSON: {exc}"[:300], extra)
    except ValueError as exc:
        return BadMessage(top_level_id(text), PARSE_ERROR, f"invalid JSON: {exc}"[:300])
    # object_hook has turned every object into a message; what is left is not one
    if isinstance(message, list):
        return BadMessage(None, INVALID_REQUEST, "batches are not part of LSP")
    if message is None or isinstance(message, (str, int, float, bool)):
        kind = "null" if message is None else type(message).__name__
        return BadMessage(None, INVALID_REQUEST, f"a message must be a JSON object, not {kind}")
    return message


def top_level_id(text: str) -> int | str | None:
    """The ``id`` member of the object ``text`` starts, read without parsing the rest.

    Skips the values of other members by bracket counting (strings minded), so that a
    body nested too deeply, or cut short after its id, still says which request it was.
    Only the first :data:`ID_SCAN_CHARS` characters are read (the scan is Python, and an
    id comes first or after small members). Returns None when there is no readable
    integer or string id there.
    """
    text = text[:ID_SCAN_CHARS]
    decoder = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text) or text[i] != "{":
        return None
    i += 1
    while True:
        i = _skip_ws(text, i)
        if i >= len(text) or text[i] != '"':
            return None
        try:
            key, i = decoder.raw_decode(text, i)
        except ValueError:
            return None
        i = _skip_ws(text, i)
        if i >= len(text) or text[i] != ":":
            return None
        i = _skip_ws(text, i + 1)
        if key == "id":
            try:
                value, _ = decoder.raw_decode(text, i)
            except (ValueError, RecursionError):
                return None
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                return None
            return value
        i = _skip_value(text, i)
        if i < 0:
            return None
        i = _skip_ws(text, i)
        if i >= len(text) or text[i] != ",":
            return None
        i += 1


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _skip_value(text: str, i: int) -> int:
    """The index after the JSON value at ``i`` (iteratively, for any depth); -1 if broken."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return -1
            i += 1
        elif c in "[{":
            depth += 1
            i += 1
        elif c in "]}":
            depth -= 1
            i += 1
            if depth < 0:
                return -1
        elif depth == 0 and c in ",":
            return i
        else:
            i += 1
        if depth == 0 and c in '"]}':
            return i
    return -1 if depth else i
