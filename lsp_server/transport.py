"""The message loop of one connection: bytes in, frames out, each message dispatched once.

Replaces pygls' reader (``pygls.io_.run_async``) for stdio and TCP with one that reads
in chunks and decodes with :class:`~lsp_server.framing.FrameDecoder`: bounded memory
whatever the peer sends, resynchronization after a bad header, and an answer to every
body that is no message (see :mod:`lsp_server.framing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from lsp_server.framing import BadMessage, FrameDecoder, Skipped, decode_text, parse_body

log = logging.getLogger(__name__)

#: Bytes asked for per read.
CHUNK = 64 * 1024


class MessageSink(Protocol):
    """What the loop hands messages to (the server's protocol)."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Turn one JSON object into a message (pygls' object_hook)."""

    def handle_message(self, message: Any) -> None:
        """Dispatch a message."""

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        """Answer a request with a JSON-RPC error."""


async def serve(read: Callable[[], Awaitable[bytes]], sink: MessageSink) -> None:
    """Read until the end of the stream, dispatching every message in order."""
    decoder = FrameDecoder()
    while True:
        data = await read()
        if not data:
            log.info("end of the input stream")
            return
        decoder.feed(data)
        for event in decoder.events():
            if isinstance(event, Skipped):
                log.warning("skipped %d bytes of input: %s", event.size, event.reason)
            else:
                dispatch(event.body, sink, decoder)


def dispatch(body: bytes, sink: MessageSink, decoder: FrameDecoder) -> None:
    """Decode one body and hand it on, or answer it with the error it deserves."""
    text, valid = decode_text(body)
    if not valid:
        log.warning("a message of %d bytes is not valid UTF-8; invalid bytes replaced", len(body))
    try:
        message = parse_body(text, sink.structure_message)
        head = "" if not isinstance(message, BadMessage) else text[: message.extra_at or 0]
        split = bool(head) and (valid or "\ufffd" not in head)  # its bytes known exactly
        if split:
            # a whole message, then bytes of the next frame: its length was too long
            decoder.give_back(body[len(head.encode()) :])
            log.warning("a frame's Content-Length was too long; reading on after its message")
            message = parse_body(head, sink.structure_message)
    except Exception as exc:  # a notification or response that does not deserialize
        log.warning("dropping a message that does not deserialize: %s", _short(exc))
        return
    if isinstance(message, BadMessage):
        if not split and decoder.resync(body):
            log.warning("a frame's Content-Length was too long; reading on at the next frame")
        log.warning("answering %s: %s", message.code, message.message)
        sink.reply_error(message.msg_id, message.code, message.message)
        return
    try:
        sink.handle_message(message)
    except Exception:
        log.exception("unable to handle a message")


def stdin_reader(stream: Any, executor: Any) -> Callable[[], Awaitable[bytes]]:
    """Read what is available from a binary stream, on an executor thread."""
    read1 = getattr(stream, "read1", None) or stream.read

    def read() -> Awaitable[bytes]:
        return asyncio.get_running_loop().run_in_executor(executor, read1, CHUNK)

    return read


def stream_reader(reader: asyncio.StreamReader) -> Callable[[], Awaitable[bytes]]:
    """Read what is available from an asyncio stream (a TCP connection)."""

    def read() -> Awaitable[bytes]:
        return reader.read(CHUNK)

    return read


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]
