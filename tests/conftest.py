"""Shared fixtures: a session-wide fimls server with the real model, and a launcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from lsp_server.lsp_client import FimlsClient, server_command
from tests.engines import EngineProcess, LlamaServerProcess

MODEL_TIMEOUT = 600.0

Launch = Callable[..., Awaitable[FimlsClient]]

# The same examples on every run (CI must not flake on a new one), and no example
# database written into the checkout.
settings.register_profile("fimls", derandomize=True, database=None, deadline=None)
settings.load_profile("fimls")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests under tests/e2e and run them after the fast unit tests."""
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


async def _start(
    log_dir: Path,
    name: str,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    handshake: bool = True,
    **handshake_kwargs: Any,
) -> FimlsClient:
    client = FimlsClient()
    with open(log_dir / f"{name}.stderr.log", "wb") as stderr:
        await client.start(server_command("--stdio", "-v", *args), env=env, stderr=stderr)
    if handshake:
        await client.handshake(**handshake_kwargs)
    return client


async def _start_ready(
    factory: pytest.TempPathFactory, name: str, args: tuple[str, ...] = ()
) -> FimlsClient:
    """A server of the session (its log in a folder of its own), its model ready."""
    client = await _start(factory.mktemp("logs"), name, args=args)
    status = await client.wait_model(MODEL_TIMEOUT)
    assert status["state"] == "ready", status
    return client


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FimlsClient]:
    """One server with the embedded model, ready, shared by the tests that only read."""
    client = await _start_ready(tmp_path_factory, "session")
    yield client
    assert await client.stop() == 0


@pytest.fixture(scope="session")
def inference_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    """A real inference server on loopback: llama-cpp-python's, with the embedded model."""
    process = EngineProcess(tmp_path_factory.mktemp("engine") / "engine.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServerProcess]:
    """llama.cpp's llama-server on loopback, with the embedded model."""
    process = LlamaServerProcess(tmp_path_factory.mktemp("llama-server") / "engine.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
async def infill_server(
    tmp_path_factory: pytest.TempPathFactory, llama_server: LlamaServerProcess
) -> AsyncIterator[FimlsClient]:
    """One server whose engine is llama-server's ``/infill`` (``--engine infill``)."""
    args = ("--engine", "infill", "--engine-url", llama_server.url)
    client = await _start_ready(tmp_path_factory, "infill", args)
    yield client
    assert await client.stop() == 0


@pytest.fixture(scope="session")
async def remote_server(
    tmp_path_factory: pytest.TempPathFactory, inference_server: EngineProcess
) -> AsyncIterator[FimlsClient]:
    """One server whose engine is that inference server (``--engine-url``)."""
    client = await _start_ready(tmp_path_factory, "remote", ("--engine-url", inference_server.url))
    yield client
    assert await client.stop() == 0


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Launch]:
    """Start extra servers for one test (own settings, env or lifecycle); all are stopped."""
    started: list[FimlsClient] = []
    count = 0

    async def start(**kwargs: Any) -> FimlsClient:
        nonlocal count
        count += 1
        client = await _start(tmp_path, f"server{count}", **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        if client.process.returncode is None:
            await client.stop()


@pytest.fixture
def isolated_cache(tmp_path: Path) -> dict[str, str]:
    """Environment for a server whose model cache is an empty temporary directory."""
    cache = tmp_path / "cache"
    cache.mkdir()
    return {"FIMLS_CACHE_DIR": str(cache)}


def doc_uri(tmp_path: Path, name: str) -> str:
    """A file URI for a document that exists only in the editor."""
    return (tmp_path / name).as_uri()
