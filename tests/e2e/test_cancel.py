"""Cancellation: $/cancelRequest and newer requests for the same document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from lsp_server.lsp_client import FimlsClient, inline_params
from tests.conftest import Launch, doc_uri

# The model keeps adding entries to this dict until its token budget runs out.
LONG = 'WORDS = {\n    "apple": 1,\n    "banana": 2,\n    \n}\n'
LINE, COLUMN = 3, 4


async def test_cancel_request_is_answered_with_request_cancelled(
    launch: Launch, tmp_path: Path
) -> None:
    # a server of its own, with a long completion budget, so the generation is still
    # running when the cancellation arrives
    client = await launch(
        initialization_options={
            "completion": {"maxTokens": 512, "maxLines": 200},
            "cache": {"timeBudgetMs": 0, "warmup": False},
        }
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "long.py")
    client.open(uri, LONG)
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, LINE, COLUMN), msg_id=4242
    )
    await asyncio.sleep(1.5)  # the prompt is evaluated, tokens are being generated
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=4242))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)

    # the next request works
    client.open(doc_uri(tmp_path, "next.py"), "def add(a, b):\n    return ")
    result = await client.inline(doc_uri(tmp_path, "next.py"), 1, 11)
    assert result.items and "a + b" in str(result.items[0].insert_text)

    stats = await client.stats()
    assert stats["requests"]["cancelled"] == 1
    cancelled = [g for g in stats["recentGenerations"] if g["stopReason"] == "cancelled"]
    assert len(cancelled) == 1
    # decoding stopped when the flag was seen, long before the 512-token budget
    assert cancelled[0]["generatedTokens"] < 512


async def test_newer_request_for_the_same_document_supersedes(
    server: FimlsClient, tmp_path: Path
) -> None:
    uri = doc_uri(tmp_path, "typing.py")
    server.open(uri, LONG)
    first = server.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, LINE, COLUMN)
    )
    await asyncio.sleep(0.3)
    second = await server.inline(uri, LINE, COLUMN)
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(first), 30)
    assert isinstance(second, types.InlineCompletionList)


async def test_requests_for_other_documents_are_not_cancelled(
    server: FimlsClient, tmp_path: Path
) -> None:
    a, b = doc_uri(tmp_path, "a.py"), doc_uri(tmp_path, "b.py")
    server.open(a, "def add(a, b):\n    return ")
    server.open(b, "def sub(a, b):\n    return ")
    ra, rb = await asyncio.gather(server.inline(a, 1, 11), server.inline(b, 1, 11))
    assert ra.items and rb.items


async def test_a_cancel_that_crosses_its_answer_is_quiet(launch: Launch, tmp_path: Path) -> None:
    client = await launch()
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "quiet.py")
    client.open(uri, "def add(a, b):\n    return ")
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 11), msg_id=91
    )
    await asyncio.wait_for(asyncio.wrap_future(future), 120)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=91))  # answered
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="never-sent"))
    result = await client.inline(uri, 1, 11)
    assert result.items
    assert await client.stop() == 0
    log = (tmp_path / "server1.stderr.log").read_text()
    assert "Cancel notification" not in log and "WARNING" not in log, log[-2000:]
