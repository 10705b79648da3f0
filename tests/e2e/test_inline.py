"""Inline completions from the real embedded model, over stdio."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.completion import MAX_RETRIES
from lsp_server.lsp_client import FimlsClient
from tests.conftest import MODEL_TIMEOUT, Launch, doc_uri
from tests.e2e.conftest import ENGINE_FIXTURES

# every test here runs with the local model and with a remote engine (tests/e2e/conftest.py)
pytestmark = pytest.mark.both_engines


def texts(result: types.InlineCompletionList) -> list[str]:
    return [
        i.insert_text if isinstance(i.insert_text, str) else i.insert_text.value
        for i in result.items
    ]


async def test_capabilities_advertised(server: FimlsClient) -> None:
    assert server.init_result is not None
    caps = server.init_result.capabilities
    assert caps.inline_completion_provider is not None
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental
    assert sync.open_close is True
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    # this client has inline completion, so the textDocument/completion fallback is off
    assert caps.completion_provider is None
    assert server.init_result.server_info is not None
    assert server.init_result.server_info.name == "fimls"


async def test_status_reports_the_embedded_model(
    server: FimlsClient, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    ready = [s for s in server.statuses if s["state"] == "ready"]
    assert ready, server.statuses
    model = ready[-1]["model"]
    assert model["template"] == "qwen2.5-coder"
    assert model["templateReason"] == "the FIM tokens in its vocabulary"
    stats = await server.stats()
    assert stats["state"] == "ready"
    assert stats["model"] == model
    if engine_kind == "local":
        assert model["engine"] == "local"
        assert model["embedded"] is True
        assert model["sizeBytes"] == 491_400_064
        assert model["path"].endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        assert stats["remote"] is None
        return
    # the same GGUF behind an inference server: its vocabulary is the embedded one's
    engine = request.getfixturevalue(ENGINE_FIXTURES[engine_kind])
    server_name = "llama-server" if engine_kind == "infill" else "llama-cpp-python"
    assert model["engine"] == engine_kind
    assert model["embedded"] is False
    assert model["path"] == engine.url
    assert model["name"].endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert f"{server_name} at {engine.url}" in model["description"]
    assert "exact token counts" in model["description"]
    assert model["contextSize"] == 4096
    remote = stats["remote"]
    assert remote["server"] == server_name
    assert remote["tokenCounts"] == "exact"


async def test_add_completes_to_sum(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "add.py")
    server.open(uri, "def add(a, b):\n    return ")
    result = await server.inline(uri, 1, 11)
    assert len(result.items) == 1
    item = result.items[0]
    assert "a + b" in texts(result)[0]
    assert item.range == types.Range(
        start=types.Position(line=1, character=11), end=types.Position(line=1, character=11)
    )


async def test_single_line_mode_never_returns_a_newline(
    server: FimlsClient, tmp_path: Path
) -> None:
    source = (
        "import math\n"
        "\n"
        "def area(radius):\n"
        "    return math.pi * radius ** 2\n"
        "\n"
        "values = [area(r) for r in range(10)]\n"
        "total = sum()\n"
        "for i in range():\n"
        '    print("area:", )\n'
        "average = total / le\n"
        "biggest = max(values, key=)\n"
        "name = \n"
    )
    uri = doc_uri(tmp_path, "single.py")
    server.open(uri, source)
    # before ')' and '):', mid-word at a line end, and after '= '
    positions = [(6, 12), (7, 15), (8, 19), (9, 20), (10, 26), (11, 7)]
    answered = 0
    for line, col in positions:
        for text in texts(await server.inline(uri, line, col)):
            answered += 1
            assert "\n" not in text and "\r" not in text, (line, col, text)
            assert text.strip(), "whitespace-only item"
    assert answered >= 3, "the model should suggest something at most of these places"


async def test_multi_line_body_stays_in_its_block(launch: Launch, tmp_path: Path) -> None:
    # a server of its own: no other test's documents in the prompt as recent snippets; no
    # time budget (on a busy machine 700 ms can end the block after its first line)
    server = await launch(initialization_options={"cache": {"timeBudgetMs": 0}})
    assert (await server.wait_model(MODEL_TIMEOUT))["state"] == "ready"
    source = "def fibonacci(n):\n    \n\n\nprint(fibonacci(10))\n"
    uri = doc_uri(tmp_path, "multi.py")
    server.open(uri, source)
    result = await server.inline(uri, 1, 4)
    (text,) = texts(result)
    lines = text.split("\n")
    assert len(lines) >= 2, text
    assert len(lines) <= 8, text  # completion.maxLines
    for line in lines[1:]:
        if line.strip():
            assert line.startswith("    "), f"left the function body: {text!r}"
    assert "print(fibonacci(10))" not in text


async def test_completion_on_an_empty_document(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "empty.py")
    server.open(uri, "")
    result = await server.inline(uri, 0, 0)
    for text in texts(result):
        assert text.strip()


async def test_incremental_changes_are_applied(server: FimlsClient, tmp_path: Path) -> None:
    uri = doc_uri(tmp_path, "typed.py")
    server.open(uri, "def mul(a, b):\n    return \n")
    # type "a * " after `return ` one character at a time, as an editor does
    col = 11
    for version, ch in enumerate("a * ", start=2):
        server.change(uri, version, ch, (1, col), (1, col))
        col += 1
    result = await server.inline(uri, 1, col)
    (text,) = texts(result)
    assert "b" in text
    assert not text.startswith("a *")


async def test_stats_count_generations(launch: Launch, tmp_path: Path, engine_kind: str) -> None:
    # no background work (prefetch, warm-up) to add generations of its own
    server = await launch(initialization_options={"cache": {"prefetch": False, "warmup": False}})
    assert (await server.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "stats.py")
    server.open(uri, "def sub(a, b):\n    return ")
    before = await server.stats()
    await server.inline(uri, 1, 11)
    after = await server.stats()
    assert after["requests"]["total"] == before["requests"]["total"] + 1
    # one generation, and a retry for each flawed one (at most MAX_RETRIES)
    added = after["engine"]["generations"] - before["engine"]["generations"]
    assert 1 <= added <= 1 + MAX_RETRIES
    # llama-cpp-python's server (openai here) does not say what it had cached: the split
    # of the prompt into reused and evaluated tokens is then unknown, not "all evaluated"
    costed = engine_kind != "openai"
    assert after["engine"]["costedGenerations"] - before["engine"]["costedGenerations"] == (
        added if costed else 0
    )
    for last in after["recentGenerations"][-added:]:
        assert last["promptTokens"] > 0
        assert last["generatedTokens"] > 0
        assert last["costed"] is costed
        split = last["evaluatedTokens"] + last["reusedTokens"]
        assert split == (last["promptTokens"] if costed else 0)


async def _execute(server: FimlsClient, command: types.Command) -> object:
    return await server.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(command=command.command, arguments=command.arguments),
    )


async def test_acceptances_are_counted_from_the_items_command(
    server: FimlsClient, tmp_path: Path
) -> None:
    uri = doc_uri(tmp_path, "accept.py")
    server.open(uri, "def area(width, height):\n    return ")
    result = await server.inline(uri, 1, 11)
    assert len(result.items) == 1
    text = texts(result)[0]
    command = result.items[0].command
    assert command is not None and command.command == "fimls.accepted"
    assert list(command.arguments or []) == [{"uri": uri, "chars": len(text)}]
    before = (await server.stats())["acceptances"]

    assert await _execute(server, command) is None  # the whole suggestion, as the editor runs it
    receipt = dict(list(command.arguments or [])[0])
    word = max(1, len(text) // 2)
    partial = types.Command(
        title="", command="fimls.accepted", arguments=[{**receipt, "accepted": word}]
    )
    await _execute(server, partial)  # a word of it

    after = (await server.stats())["acceptances"]
    assert after["total"] - before["total"] == 2
    assert after["full"] - before["full"] == 1
    assert after["partial"] - before["partial"] == (1 if word < len(text) else 0)
    assert after["chars"] - before["chars"] == len(text) + word


async def test_a_bad_acceptance_receipt_is_invalid_params(server: FimlsClient) -> None:
    before = (await server.stats())["acceptances"]
    for arguments in ([], ["nope"], [{"uri": "x", "chars": -1}], [{"chars": 3, "accepted": 4}]):
        with pytest.raises(JsonRpcInvalidParams, match="fimls.accepted"):
            await _execute(
                server, types.Command(title="", command="fimls.accepted", arguments=arguments)
            )
    assert (await server.stats())["acceptances"] == before


async def test_status_is_busy_while_the_model_works(launch: Launch, tmp_path: Path) -> None:
    client = await launch()
    assert (await client.wait_model(MODEL_TIMEOUT))["state"] == "ready"
    uri = doc_uri(tmp_path, "busy.py")
    client.open(uri, "def square(x):\n    return ")
    seen = len(client.statuses)
    result = await client.inline(uri, 1, 11)
    assert result.items, "the model answered nothing"
    states = [s["state"] for s in client.statuses[seen:]]
    assert states[:1] == ["busy"] and states[-1:] == ["ready"], states
    assert client.statuses[-1]["model"] is not None
    assert (await client.stats())["state"] == "ready"
