"""initialize, initialized, shutdown, settings changes, and the ``fimls/stats`` request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp_server.server import STATS

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer


def register(ls: FimLanguageServer) -> None:
    """Register the lifecycle handlers."""
    ls.feature(types.INITIALIZE)(initialize)
    ls.feature(types.INITIALIZED)(initialized)
    ls.feature(types.SHUTDOWN)(shutdown)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    ls.feature(STATS)(stats)


def initialize(ls: FimLanguageServer, params: types.InitializeParams) -> None:
    """Read settings and capabilities; pygls then answers with the capabilities."""
    ls.on_initialize(params)


async def initialized(ls: FimLanguageServer, params: types.InitializedParams) -> None:
    """Pull workspace settings and start loading the model in the background."""
    await ls.on_initialized()


def shutdown(ls: FimLanguageServer, params: None) -> None:
    """Stop model work; pygls cancels pending requests and answers."""
    ls.on_shutdown()


async def did_change_configuration(
    ls: FimLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    """Apply new settings; reload the model if a model setting changed."""
    await ls.on_configuration_changed(params.settings)


def stats(ls: FimLanguageServer, params: Any) -> dict[str, object]:
    """``fimls/stats``: model status plus request counters and latency percentiles."""
    return {**ls.status_json(), **ls.stats.to_json()}
