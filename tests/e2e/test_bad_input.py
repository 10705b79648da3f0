"""Bad requests get one clear JSON-RPC error each, and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.rawlsp import RawServer

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002

SOURCE = "def add(a, b):\n    return \n"
URI = "file:///virtual/bad_input.py"


@pytest.fixture(scope="module")
async def raw() -> AsyncIterator[RawServer]:
    server = await RawServer.start()
    await server.initialize()
    await server.wait_ready()
    server.open(URI, SOURCE)
    yield server
    assert server.answered_twice == []
    assert await server.close() == 0


async def still_serves(raw: RawServer) -> None:
    reply = await raw.call("textDocument/inlineCompletion", raw.inline_params(URI, 1, 11))
    items = reply["result"]["items"]
    assert items and "a + b" in items[0]["insertText"]


def error_code(reply: dict[str, Any]) -> int:
    assert "error" in reply, reply
    code: int = reply["error"]["code"]
    assert reply["error"]["message"]
    return code


async def test_position_past_the_end_of_the_document(raw: RawServer) -> None:
    reply = await raw.call("textDocument/inlineCompletion", raw.inline_params(URI, 99, 0))
    assert error_code(reply) == INVALID_PARAMS
    assert "past the end" in reply["error"]["message"]
    await still_serves(raw)


async def test_character_past_the_end_of_a_line_is_clamped(raw: RawServer) -> None:
    # the LSP specification: a character beyond the line's length means the line's end
    reply = await raw.call("textDocument/inlineCompletion", raw.inline_params(URI, 1, 500))
    assert "result" in reply


async def test_unknown_document(raw: RawServer) -> None:
    reply = await raw.call(
        "textDocument/inlineCompletion", raw.inline_params("file:///nowhere/x.py", 0, 0)
    )
    assert error_code(reply) == INVALID_PARAMS
    assert "not open" in reply["error"]["message"]
    await still_serves(raw)


@pytest.mark.parametrize(
    "params",
    [
        {"textDocument": {"uri": 5}, "position": {"line": 0, "character": 0}},
        {"textDocument": {"uri": URI}},
        {"textDocument": {"uri": URI}, "position": {"line": -1, "character": 0}},
        {"textDocument": {"uri": URI}, "position": {"line": "one", "character": 0}},
        "not an object",
    ],
    ids=["uri-not-a-string", "no-position", "negative-line", "line-not-a-number", "string"],
)
async def test_params_that_do_not_deserialize(raw: RawServer, params: Any) -> None:
    reply = await raw.call("textDocument/inlineCompletion", params)
    assert error_code(reply) == INVALID_PARAMS
    await still_serves(raw)


async def test_position_inside_a_surrogate_pair(raw: RawServer) -> None:
    uri = "file:///virtual/emoji.py"
    raw.open(uri, 'face = "\U0001f600"\n')
    # UTF-16: 'face = "' is 8 units, the emoji 2 more; 9 falls between its two halves
    reply = await raw.call("textDocument/inlineCompletion", raw.inline_params(uri, 0, 9))
    assert error_code(reply) == INVALID_PARAMS
    reply = await raw.call("textDocument/inlineCompletion", raw.inline_params(uri, 0, 10))
    assert "result" in reply


async def test_unknown_method(raw: RawServer) -> None:
    reply = await raw.call("fimls/doesNotExist", {})
    assert error_code(reply) == METHOD_NOT_FOUND
    raw.notify("fimls/unknownNotification", {"x": 1})  # ignored, no answer
    await still_serves(raw)


async def test_broken_json_is_survived(raw: RawServer) -> None:
    raw.send_bytes(b"Content-Length: 12\r\n\r\n{not json!!}")
    await still_serves(raw)


async def test_request_before_initialize(tmp_path: Path) -> None:
    server = await RawServer.start()
    try:
        reply = await server.call("textDocument/inlineCompletion", server.inline_params(URI, 0, 0))
        assert error_code(reply) == SERVER_NOT_INITIALIZED
        await server.initialize()
    finally:
        assert await server.close() == 0


async def test_requests_after_shutdown(tmp_path: Path) -> None:
    server = await RawServer.start()
    await server.initialize()
    reply = await server.call("shutdown")
    assert reply["result"] is None
    reply = await server.call("textDocument/inlineCompletion", server.inline_params(URI, 0, 0))
    assert error_code(reply) == INVALID_REQUEST
    server.notify("exit")
    assert await server.wait_exit() == 0
    assert server.answered_twice == []


async def test_server_requests_carry_numeric_ids() -> None:
    """Vim's LSP channel cannot answer a string id; the server's own requests use numbers."""
    server = await RawServer.start()
    try:
        caps = {"textDocument": {"inlineCompletion": {}}, "workspace": {"configuration": True}}
        await server.initialize(caps)
        await server.wait_ready()
        asked = [m for m in server.server_requests if m["method"] == "workspace/configuration"]
        assert asked, server.server_requests
        ids = [m["id"] for m in server.server_requests]
        assert all(isinstance(i, int) and not isinstance(i, bool) for i in ids), ids
        assert len(set(ids)) == len(ids)
    finally:
        assert await server.close() == 0
