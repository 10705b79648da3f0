"""Run the modules marked ``both_engines`` twice: with the local model and a remote engine.

A module that sets ``pytestmark = pytest.mark.both_engines`` has its tests that use
``server`` or ``launch`` run once against the in-process model and once against
llama-cpp-python's server on loopback (``fimls --engine-url``), the same GGUF behind both.
Other modules get the local model only.
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
        metafunc.parametrize("engine_kind", ["local", "remote"])


@pytest.fixture
def engine_kind() -> str:
    """Which engine the test talks to (parametrized in ``both_engines`` modules)."""
    return "local"


@pytest.fixture
def server(engine_kind: str, server: FimlsClient, request: pytest.FixtureRequest) -> FimlsClient:
    """The session's server with the local model, or the one with the remote engine."""
    if engine_kind == "local":
        return server
    remote: FimlsClient = request.getfixturevalue("remote_server")
    return remote


@pytest.fixture
def launch(engine_kind: str, launch: Launch, request: pytest.FixtureRequest) -> Launch:
    """Start a server of the test's own, on the same engine as ``server``."""
    if engine_kind == "local":
        return launch
    url = request.getfixturevalue("inference_server").url

    async def start(**kwargs: Any) -> FimlsClient:
        kwargs["args"] = (*kwargs.get("args", ()), "--engine-url", url)
        return await launch(**kwargs)

    return start
