"""Process lifecycle: exit codes, exit during work, disconnects, settings problems."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types

from lsp_server.lsp_client import inline_params
from tests.conftest import Launch, doc_uri
from tests.e2e.test_cancel import COLUMN, LINE, LONG


async def test_shutdown_then_exit_ends_with_code_0(launch: Launch) -> None:
    client = await launch()
    await client.wait_model()
    assert await client.stop() == 0


async def test_exit_without_shutdown_ends_with_code_1(launch: Launch) -> None:
    client = await launch()
    client.exit(None)
    assert await client.wait_exit() == 1


async def test_shutdown_and_exit_while_a_completion_runs(launch: Launch, tmp_path: Path) -> None:
    client = await launch(
        initialization_options={
            "completion": {"maxTokens": 512, "maxLines": 200},
            "cache": {"timeBudgetMs": 0},
        }
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "busy.py")
    client.open(uri, LONG)
    running = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, LINE, COLUMN)
    )
    await asyncio.sleep(1.5)  # generating (a 512-token completion takes ~10 s here)
    started = time.monotonic()
    await client.shutdown_async(None)
    client.exit(None)
    code = await client.wait_exit(timeout=10)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 5, f"exit took {elapsed:.1f} s"
    # the running request was answered (cancelled) before the server went away
    assert running.done()
    assert running.exception() is not None


async def test_closing_stdin_ends_the_server(launch: Launch) -> None:
    client = await launch()
    await client.wait_model()
    assert client.process.stdin is not None
    client.process.stdin.close()
    assert await client.wait_exit(timeout=10) == 1


async def test_invalid_settings_are_reported_and_ignored(launch: Launch, tmp_path: Path) -> None:
    client = await launch(
        initialization_options={
            "fimls": {
                "completion": {"maxTokens": "many", "maxLinez": 3},
                "bogus": True,
                "context": {"suffixTokens": -5},
            }
        }
    )
    assert (await client.wait_model())["state"] == "ready"
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1, client.messages
    text = warnings[0]
    assert "fimls.completion.maxTokens" in text
    assert "fimls.completion.maxLinez" in text and "maxLines" in text  # did you mean
    assert "fimls.bogus" in text
    assert "fimls.context.suffixTokens" in text
    uri = doc_uri(tmp_path, "settings.py")
    client.open(uri, "def add(a, b):\n    return ")
    result = await client.inline(uri, 1, 11)
    assert result.items


async def test_settings_from_workspace_configuration(launch: Launch, tmp_path: Path) -> None:
    client = await launch(handshake=False)
    client.configuration = {"completion": {"enable": False}}
    await client.handshake(configuration=True)
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "off.py")
    client.open(uri, "def add(a, b):\n    return ")
    assert not (await client.inline(uri, 1, 11)).items
    # the client pushes new settings: completions come back
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"fimls": {"completion": {"enable": True}}})
    )
    await asyncio.sleep(0.2)
    assert (await client.inline(uri, 1, 11)).items


async def test_completions_before_the_model_is_ready_are_empty(
    launch: Launch, tmp_path: Path
) -> None:
    client = await launch()
    uri = doc_uri(tmp_path, "early.py")
    client.open(uri, "def add(a, b):\n    return ")
    # the model is loading in the background: the server answers at once
    early = await client.inline(uri, 1, 11)
    status = await client.wait_model()
    assert status["state"] == "ready"
    if early.items:  # only if the model happened to be ready already
        assert any(s["state"] == "ready" for s in client.statuses)
    stats = await client.stats()
    assert stats["requests"]["notReady"] + stats["requests"]["suggestion"] >= 1
