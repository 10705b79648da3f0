"""The frame decoder: any chunking, bad headers, resynchronization, bounded memory."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lsp_server.framing import (
    INVALID_REQUEST,
    PARSE_ERROR,
    BadMessage,
    Frame,
    FrameDecoder,
    Skipped,
    decode_text,
    parse_body,
    top_level_id,
)
from lsp_server.transport import dispatch


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def decode(data: bytes | list[bytes], decoder: FrameDecoder | None = None) -> list[Any]:
    decoder = decoder or FrameDecoder()
    events: list[Any] = []
    for chunk in [data] if isinstance(data, bytes) else data:
        decoder.feed(chunk)
        events.extend(decoder.events())
    return events


def bodies(events: list[Any]) -> list[bytes]:
    return [e.body for e in events if isinstance(e, Frame)]


@given(
    st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_any_chunking_gives_the_same_frames(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    events = decode(chunks)
    assert bodies(events) == payloads
    assert not [e for e in events if isinstance(e, Skipped)]


@given(st.binary(max_size=300).filter(lambda b: b"ength" not in b.lower()))
def test_garbage_before_a_header_is_skipped(garbage: bytes) -> None:
    events = decode(garbage + frame(b'{"a": 1}') + frame(b"[2]"))
    assert bodies(events) == [b'{"a": 1}', b"[2]"]


def test_headers_in_any_case_with_bare_line_feeds_and_other_headers() -> None:
    data = b"content-length:3\nContent-Type: application/vscode-jsonrpc\n\n{ }"
    assert bodies(decode(data)) == [b"{ }"]


def test_a_header_glued_to_the_end_of_a_short_body_resynchronizes() -> None:
    # the first frame announced 5 bytes of a 9-byte body: its tail precedes the next header
    events = decode(b"Content-Length: 5\r\n\r\n" + b'{"a":123}' + frame(b"{}"))
    assert bodies(events) == [b'{"a":', b"{}"]


def test_a_length_over_the_limit_is_refused_and_reading_goes_on() -> None:
    decoder = FrameDecoder(max_body=100)
    events = decode(b"Content-Length: 101\r\n\r\n" + b"x" * 101 + frame(b"{}"), decoder)
    assert isinstance(events[0], Skipped) and "limit" in events[0].reason
    assert bodies(events) == [b"{}"]


def test_a_terabyte_announced_allocates_nothing() -> None:
    decoder = FrameDecoder()
    events = decode(b"Content-Length: 1099511627776\r\n\r\n" + frame(b"{}"), decoder)
    assert bodies(events) == [b"{}"]
    assert decoder.pending == 0


def test_a_long_line_without_a_break_is_dropped_but_a_header_after_it_is_found() -> None:
    decoder = FrameDecoder(max_header=1000)
    events = decode([b"x" * 5000, b"y" * 5000, frame(b"{}")], decoder)
    assert bodies(events) == [b"{}"]
    assert decoder.pending == 0
    skipped = sum(e.size for e in events if isinstance(e, Skipped))
    assert skipped >= 9000


def test_zero_length_and_bad_numbers_are_skipped() -> None:
    data = b"Content-Length: 0\r\n\r\nContent-Length: -4\r\n\r\nContent-Length: x\r\n\r\n"
    events = decode(data + frame(b"{}"))
    assert bodies(events) == [b"{}"]


def test_resync_gives_back_a_swallowed_frame() -> None:
    following = frame(b'{"id": 1}')
    decoder = FrameDecoder()
    decoder.feed(b"Content-Length: %d\r\n\r\n" % (8 + len(following)) + b'{"a": 1}' + following)
    events = decoder.events()
    first = next(events)
    assert isinstance(first, Frame) and first.body.startswith(b'{"a": 1}Content-Length')
    assert decoder.resync(first.body)
    assert bodies(list(events)) == [b'{"id": 1}']
    assert not decoder.resync(b'{"no": "header"}')


def test_invalid_utf8_is_replaced() -> None:
    assert decode_text(b"caf\xe9") == ("caf\ufffd", False)
    assert decode_text("café".encode()) == ("café", True)


def test_parse_body() -> None:
    def hook(d: dict[str, Any]) -> dict[str, Any]:
        return d

    assert parse_body('{"id": 1}', hook) == {"id": 1}
    assert parse_body("[1, 2]", hook) == BadMessage(
        None, INVALID_REQUEST, "batches are not part of LSP"
    )
    assert parse_body("null", hook).code == INVALID_REQUEST
    assert parse_body('"x"', hook).code == INVALID_REQUEST
    broken = parse_body('{"id": 7, "method": ', hook)
    assert isinstance(broken, BadMessage) and (broken.msg_id, broken.code) == (7, PARSE_ERROR)
    deep = '{"jsonrpc": "2.0", "id": "q", "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert parse_body(deep, hook) == BadMessage("q", PARSE_ERROR, "JSON nested too deeply")


def test_top_level_id() -> None:
    assert top_level_id('{"jsonrpc": "2.0", "params": {"id": 3, "x": ["]"]}, "id": 9') == 9
    assert top_level_id('{"params": [[[[[' + "[" * 5000 + '"}') is None
    assert top_level_id('{"id": "a\\"b", "x"') == 'a"b'
    assert top_level_id('{"id": true}') is None
    assert top_level_id('{"id": 1.5}') is None
    assert top_level_id("[1]") is None
    assert top_level_id('{"method": "x", "params": "unterminated') is None


@given(
    st.recursive(
        st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_top_level_id_agrees_with_json(params: Any) -> None:
    text = json.dumps({"jsonrpc": "2.0", "params": params, "id": 42, "method": "m"})
    assert top_level_id(text) == 42
    assert top_level_id(text[: text.rindex('"id": 42') + 8]) == 42


class Sink:
    """Stands in for the protocol: records what the transport hands on or answers."""

    def __init__(self) -> None:
        self.handled: list[dict[str, Any]] = []
        self.errors: list[tuple[Any, int]] = []

    def structure_message(self, data: dict[str, Any]) -> Any:
        return data

    def handle_message(self, message: Any) -> None:
        self.handled.append(message)

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        self.errors.append((msg_id, code))


def feed_all(data: bytes) -> Sink:
    sink, decoder = Sink(), FrameDecoder()
    decoder.feed(data)
    for event in decoder.events():
        if isinstance(event, Frame):
            dispatch(event.body, sink, decoder)
    return sink


NOTE = b'{"jsonrpc": "2.0", "method": "n"}'
REQUEST = b'{"jsonrpc": "2.0", "id": 2, "method": "m"}'


@given(st.integers(1, len(frame(REQUEST)) - 1))
def test_a_length_too_long_loses_neither_message(overrun: int) -> None:
    data = b"Content-Length: %d\r\n\r\n" % (len(NOTE) + overrun) + NOTE + frame(REQUEST)
    sink = feed_all(data)
    assert sink.handled == [json.loads(NOTE), json.loads(REQUEST)]
    assert sink.errors == []


def test_a_length_too_short_costs_only_its_own_message() -> None:
    sink = feed_all(b"Content-Length: 10\r\n\r\n" + NOTE + frame(REQUEST))
    assert sink.handled == [json.loads(REQUEST)]
    assert sink.errors == [(None, PARSE_ERROR)]


def test_broken_request_is_answered_with_its_id() -> None:
    sink = feed_all(frame(b'{"jsonrpc": "2.0", "id": 9, "method": "m", "params": [}'))
    assert sink.errors == [(9, PARSE_ERROR)]


def test_bytes_given_back_are_read_once() -> None:
    # a scalar, then a whole frame, under one too-long length: the frame runs exactly once
    inner = frame(REQUEST)
    sink = feed_all(b"Content-Length: %d\r\n\r\n" % (2 + len(inner)) + b"1 " + inner)
    assert sink.handled == [json.loads(REQUEST)]
    assert sink.errors == [(None, INVALID_REQUEST)]


def test_invalid_utf8_after_the_message_is_given_back_too() -> None:
    data = b"Content-Length: %d\r\n\r\n" % (len(NOTE) + 2) + NOTE + b"\x80\xff" + frame(REQUEST)
    sink = feed_all(data)
    assert sink.handled == [json.loads(NOTE), json.loads(REQUEST)]


def test_lone_surrogate_escapes_become_replacement_characters() -> None:
    def hook(d: dict[str, Any]) -> dict[str, Any]:
        return d

    def text(escaped: str) -> str:
        value = parse_body('{"t": "' + escaped + '"}', hook)["t"]
        value.encode("utf-8")  # always encodable
        return str(value)

    assert text("a\\udfffb") == "a\ufffdb"
    assert text("\\ud83d\\ude00") == "😀"  # a pair stays a pair
    assert text("\\udc00\\udc00") == "\ufffd\ufffd"
    assert text("\\ud800\\ud800\\udc00") == "\ufffd\U00010000"
    assert text("\\\\udfff") == "\\udfff"  # an escaped backslash, then plain text
