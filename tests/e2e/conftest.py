"""Run the modules marked ``both_engines`` on the local model and on inference servers.

A module that sets ``pytestmark = pytest.mark.both_engines`` has its tests that use
``server`` or ``launch`` run three times, the same GGUF behind each: against the
in-process model (``local``), against llama-cpp-python's server on loopback through
``/v1/completions`` (``remote``: ``fimls --engine-url``), and against llama.cpp's
llama-server through ``/infill`` (``infill``: ``--engine infill``; its code actions use
the same server's ``/v1/completions``). Other modules get the local model only.
"""

from __future__ import annotations

from typing import Any

import pytest

from lsp_server.lsp_client import FimlsClient
from tests.conftest import Launch


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``engine_kind`` where the module runs on both engines."""
    if "engine_kind" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_engines"
    ):
        metafunc.parametrize("engine_kind", ["local", "openai", "infill"])


@pytest.fixture
def engine_kind() -> str:
    """Which engine the test talks to (parametrized in ``both_engines`` modules)."""
    return "local"


#: The engine process behind each remote kind, and fimls's server on it (session fixtures).
ENGINE_FIXTURES = {"openai": "inference_server", "infill": "llama_server"}
SERVER_FIXTURES = {"openai": "remote_server", "infill": "infill_server"}


@pytest.fixture
def server(engine_kind: str, server: FimlsClient, request: pytest.FixtureRequest) -> FimlsClient:
    """The session's server with the local model, or the one on the test's remote engine."""
    if engine_kind == "local":
        return server
    remote: FimlsClient = request.getfixturevalue(SERVER_FIXTURES[engine_kind])
    return remote


@pytest.fixture
def launch(engine_kind: str, launch: Launch, request: pytest.FixtureRequest) -> Launch:
    """Start a server of the test's own, on the same engine as ``server``."""
    if engine_kind == "local":
        return launch
    url = request.getfixturevalue(ENGINE_FIXTURES[engine_kind]).url

    async def start(**kwargs: Any) -> FimlsClient:
        kwargs["args"] = (*kwargs.get("args", ()), "--engine", engine_kind, "--engine-url", url)
        return await launch(**kwargs)

    return start
