"""The remote engine's own behaviour: cancellation reaching the engine, faults, keys, trust.

The inline-completion and code-action suites run against the remote engine too (they are
marked ``both_engines``); these tests cover what only a remote engine has. The engine is
llama-cpp-python's OpenAI-compatible server with the embedded GGUF, on loopback; faults
are a :class:`tests.engines.FaultProxy` in front of it, or the engine killed and started
again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled

from lsp_server.lsp_client import FimlsClient, inline_params
from tests.conftest import Launch, doc_uri
from tests.e2e.test_actions import list_actions, resolve, titled, whole
from tests.engines import EngineProcess, FaultProxy, LlamaServerProcess

ADD = "def add(a, b):\n    return "
# the model keeps adding entries to this dict until its token budget runs out
LONG = 'WORDS = {\n    "apple": 1,\n    "banana": 2,\n    \n}\n'
KEY = "team-key-7c1f0e2a9b"
#: every answer comes from the engine: none from memory, no background requests
NO_MEMORY = {"cache": {"warmup": False, "prefetch": False, "completions": False}}
LONG_RUN = {
    "completion": {"maxTokens": 400, "maxLines": 200},
    "cache": {"timeBudgetMs": 0, "warmup": False, "prefetch": False},
}


def texts(result: types.InlineCompletionList) -> list[str]:
    return [str(getattr(i.insert_text, "value", i.insert_text)) for i in result.items]


async def wait_state(client: FimlsClient, state: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the server's last status is ``state``; return it."""
    return await client.wait_model(timeout, (state,))


async def timed_inline(client: FimlsClient, uri: str, line: int, col: int) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await client.inline(uri, line, col)
    return time.perf_counter() - started, result


@pytest.fixture(scope="module")
def keyed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """An engine of this module's own that wants an API key (and may be killed)."""
    engine = EngineProcess(tmp_path_factory.mktemp("keyed") / "engine.log", api_key=KEY)
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture
async def proxy(inference_server: EngineProcess) -> AsyncIterator[FaultProxy]:
    """A proxy in front of the session's engine, told per test how to misbehave."""
    fault = FaultProxy(inference_server.port)
    await fault.start()
    yield fault
    await fault.close()


async def test_cancel_closes_the_stream_and_the_engine_stops_generating(
    launch: Launch, tmp_path: Path, inference_server: EngineProcess
) -> None:
    client = await launch(
        args=("--engine-url", inference_server.url), initialization_options=LONG_RUN
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "long.py")
    client.open(uri, LONG)
    disconnects = inference_server.log_text().count("Disconnected from client")
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 3, 4), msg_id=77
    )
    await asyncio.sleep(1.5)  # the engine is streaming tokens now
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=77))
    cancelled_at = time.perf_counter()
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    assert time.perf_counter() - cancelled_at < 1.0
    # the engine saw the connection go and stopped: it says so in its log
    for _ in range(50):
        if inference_server.log_text().count("Disconnected from client") > disconnects:
            break
        await asyncio.sleep(0.1)
    assert inference_server.log_text().count("Disconnected from client") > disconnects
    stats = await client.stats()
    remote = stats["remote"]
    assert remote["cancelled"] == 1
    cancelled = [g for g in stats["recentGenerations"] if g["stopReason"] == "cancelled"]
    assert len(cancelled) == 1 and 0 < cancelled[0]["generatedTokens"] < 400
    # the engine is free at once: the next completion does not wait for the abandoned one
    other = doc_uri(tmp_path, "next.py")
    client.open(other, ADD)
    seconds, result = await timed_inline(client, other, 1, 11)
    assert any("a + b" in t for t in texts(result))
    assert seconds < 5.0


async def test_a_newer_keystroke_supersedes_the_request_in_flight(
    launch: Launch, tmp_path: Path, inference_server: EngineProcess
) -> None:
    client = await launch(
        args=("--engine-url", inference_server.url), initialization_options=LONG_RUN
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "typing.py")
    client.open(uri, LONG)
    first = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 3, 4)
    )
    await asyncio.sleep(1.0)
    client.change(uri, 2, '"c', (3, 4), (3, 4))
    second = await client.inline(uri, 3, 6)
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(first), 30)
    assert isinstance(second, types.InlineCompletionList)
    remote = (await client.stats())["remote"]
    assert remote["cancelled"] == 1 and remote["requests"] >= 2


async def test_the_engine_killed_and_started_again_mid_session(
    launch: Launch, tmp_path: Path, keyed_engine: EngineProcess
) -> None:
    log = tmp_path / "fimls.log"
    client = await launch(
        args=("--engine-url", keyed_engine.url, "--log-file", str(log), "-vv"),
        env={**os.environ, "FIMLS_API_KEY": KEY},
        initialization_options=NO_MEMORY,
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    before = texts(await client.inline(uri, 1, 11))
    assert any("a + b" in t for t in before)

    keyed_engine.kill()
    client.change(uri, 2, "a", (1, 11), (1, 11))
    seconds, result = await timed_inline(client, uri, 1, 12)
    assert not result.items and seconds < 3.0
    down = await wait_state(client, "unavailable", 10)
    assert "connection refused" in down["message"] and down["model"] is not None
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("resume by themselves" in w for w in warnings), warnings
    # while it is down, typing is answered at once, without waiting on the engine
    for n, ch in enumerate(" + b"):
        client.change(uri, 3 + n, ch, (1, 12 + n), (1, 12 + n))
        seconds, result = await timed_inline(client, uri, 1, 13 + n)
        assert not result.items and seconds < 0.5
    # a code action while it is down: a clear error at once, not a hang
    actions = await list_actions(client, uri, whole(types.Position(0, 4)))
    started = time.perf_counter()
    with pytest.raises(JsonRpcException) as failed:
        await resolve(client, titled(actions, "Add docstring"))
    assert time.perf_counter() - started < 2.0
    assert failed.value.code == types.LSPErrorCodes.RequestFailed
    assert "the model is not ready" in str(failed.value) and "connection refused" in str(
        failed.value
    )
    stats = await client.stats()
    assert stats["state"] == "unavailable"
    assert stats["remote"]["errors"].get("connect", 0) >= 1
    assert "connection refused" in stats["remote"]["lastError"]

    keyed_engine.start()  # the same port: completions come back by themselves
    up = await wait_state(client, "ready", 60)
    assert up["model"]["name"] == down["model"]["name"]
    client.change(uri, 7, "", (1, 11), (1, 16))  # back to "return "
    asked = (await client.stats())["remote"]["requests"]
    after = texts(await client.inline(uri, 1, 11))
    assert after == before
    assert (await client.stats())["remote"]["requests"] == asked + 1  # the engine answered
    assert any("answers again" in m.message for m in client.log_messages)
    assert KEY not in log.read_text()


async def test_a_wrong_api_key_is_a_clear_status_and_is_never_logged(
    launch: Launch, tmp_path: Path, keyed_engine: EngineProcess
) -> None:
    wrong = "wrong-key-3e9d1b"
    log = tmp_path / "fimls.log"
    client = await launch(
        args=("--engine-url", keyed_engine.url, "--log-file", str(log), "-vv"),
        env={**os.environ, "TEAM_KEY": wrong},
        initialization_options={"engine": {"apiKeyEnv": "TEAM_KEY"}},
    )
    status = await wait_state(client, "unavailable", 30)
    assert "401" in status["message"]
    assert "is the API key in $TEAM_KEY right?" in status["message"]
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    assert not (await client.inline(uri, 1, 11)).items
    said = " ".join(m.message for m in client.messages) + log.read_text()
    said += " ".join(str(s) for s in client.statuses) + str(await client.stats())
    assert wrong not in said and KEY not in said


async def test_errors_garbage_stalls_and_refusals_are_reported_and_recovered(
    launch: Launch, tmp_path: Path, proxy: FaultProxy
) -> None:
    client = await launch(
        args=("--engine-url", proxy.url),
        initialization_options={**NO_MEMORY, "engine": {"requestTimeoutMs": 1500}},
    )
    assert (await client.wait_model())["state"] == "ready"
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    good = texts(await client.inline(uri, 1, 11))
    assert any("a + b" in t for t in good)
    faults = {
        "error": 'answered 500 Internal Server Error: {"error": {"message": "CUDA out of memory"',
        "garbage": "the answer is not JSON: <html><body>502 Bad Gateway",
        "stall": "no answer within 1.5 s",
        "refuse": "the server closed the connection",
    }
    version = 1
    for mode, said in faults.items():
        proxy.set_mode(mode)
        version += 1
        client.change(uri, version, " ", (1, 11), (1, 11))  # a new prompt: no answer from memory
        seconds, result = await timed_inline(client, uri, 1, 12)
        assert not result.items, mode
        assert seconds < (2.5 if mode == "stall" else 1.0), (mode, seconds)
        down = await wait_state(client, "unavailable", 10)
        assert said in down["message"], (mode, down["message"])
        proxy.set_mode("pass")
        await wait_state(client, "ready", 30)
        version += 1
        client.change(uri, version, "", (1, 11), (1, 12))
        assert texts(await client.inline(uri, 1, 11)) == good, mode
    # a server that refuses one request (400) is not down: that completion is empty
    proxy.set_mode("reject")
    version += 1
    client.change(uri, version, " ", (1, 11), (1, 11))
    statuses = len(client.statuses)
    seconds, result = await timed_inline(client, uri, 1, 12)
    assert not result.items and seconds < 1.0
    assert all(s["state"] != "unavailable" for s in client.statuses[statuses:])
    stats = await client.stats()
    assert stats["state"] == "ready" and stats["requests"]["error"] >= 1
    assert "the request exceeds the context size" in stats["remote"]["lastError"]
    errors = stats["remote"]["errors"]
    assert errors.get("status", 0) >= 2 and errors.get("garbage", 0) >= 1
    assert errors.get("timeout", 0) >= 1 and errors.get("connect", 0) >= 1


async def test_an_engine_down_at_start_is_waited_for(
    launch: Launch, tmp_path: Path, proxy: FaultProxy
) -> None:
    proxy.set_mode("refuse")
    client = await launch(args=("--engine-url", proxy.url))
    status = await wait_state(client, "unavailable", 30)
    assert "trying again in" in status["message"] and status["model"] is None
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    assert not (await client.inline(uri, 1, 11)).items
    proxy.set_mode("pass")
    ready = await wait_state(client, "ready", 60)
    assert ready["model"]["engine"] == "openai"
    assert any("a + b" in t for t in texts(await client.inline(uri, 1, 11)))


async def test_the_workspace_cannot_choose_the_engine(
    launch: Launch, tmp_path: Path, proxy: FaultProxy
) -> None:
    """A repository's settings (.vscode/settings.json, .dir-locals.el) must not send the
    user's code to a server of its choosing."""
    client = await launch(root_uri=tmp_path.as_uri())
    assert (await client.wait_model())["state"] == "ready"
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"fimls": {"engine": {"kind": "openai", "url": proxy.url}}}
        )
    )
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    assert (await client.inline(uri, 1, 11)).items
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("fimls.engine from the workspace's settings is not used" in w for w in warnings)
    stats = await client.stats()
    assert stats["model"]["engine"] == "local" and stats["remote"] is None
    assert proxy.connections == 0


async def test_without_the_servers_tokenizer_the_models_name_gives_the_template(
    launch: Launch, tmp_path: Path, proxy: FaultProxy
) -> None:
    proxy.set_mode("no-tokenize")
    client = await launch(args=("--engine-url", proxy.url))
    status = await client.wait_model(60)
    assert status["state"] == "ready", status
    model = status["model"]
    # the server names the model by its file: qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    assert model["template"] == "qwen2.5-coder"
    assert model["templateReason"] == "the model's name (the server does not tokenize)"
    assert "approximate token counts (the server cannot tokenize)" in model["description"]
    assert (await client.stats())["remote"]["tokenCounts"] == "approximate"
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    assert any("a + b" in t for t in texts(await client.inline(uri, 1, 11)))


async def test_a_model_that_cannot_be_told_needs_the_template_setting(
    launch: Launch, tmp_path: Path, proxy: FaultProxy
) -> None:
    proxy.set_mode("anonymous")
    client = await launch(args=("--engine-url", proxy.url))
    status = await client.wait_model(60)
    assert status["state"] == "error"
    assert "cannot tell the FIM template of 'team-coder'" in status["message"]
    assert "set fimls.model.template to one of:" in status["message"]
    assert "qwen2.5-coder" in status["message"]
    told = await launch(
        args=("--engine-url", proxy.url),
        initialization_options={"model": {"template": "qwen2.5-coder"}},
    )
    status = await told.wait_model(60)
    assert status["state"] == "ready", status
    assert status["model"]["name"] == "team-coder"
    assert status["model"]["templateReason"] == "fimls.model.template"
    uri = doc_uri(tmp_path, "add.py")
    told.open(uri, ADD)
    assert any("a + b" in t for t in texts(await told.inline(uri, 1, 11)))


async def test_llama_server_through_v1_completions_reuses_its_cache(
    launch: Launch, tmp_path: Path, llama_server: LlamaServerProcess
) -> None:
    """llama.cpp's own server in the ``openai`` mode: token ids sent, its KV reuse read."""
    client = await launch(args=("--engine-url", llama_server.url), initialization_options=NO_MEMORY)
    status = await client.wait_model(60)
    assert status["state"] == "ready", status
    model = status["model"]
    assert model["engine"] == "openai"
    assert (
        f"llama-server at {llama_server.url} (openai), exact token counts" in model["description"]
    )
    assert model["templateReason"] == "the FIM tokens in its vocabulary"
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    first = texts(await client.inline(uri, 1, 11))
    assert any("a + b" in t for t in first), first
    client.change(uri, 2, "a", (1, 11), (1, 11))
    await client.inline(uri, 1, 12)
    stats = await client.stats()
    last = stats["recentGenerations"][-1]
    # the server kept the lines above in its cache (cache_prompt) and said so (timings)
    assert last["reusedTokens"] > 0 and last["evaluatedTokens"] < last["promptTokens"]
    assert stats["remote"]["server"] == "llama-server"
    assert stats["remote"]["complete"] + stats["remote"]["cut"] == stats["remote"]["requests"]
