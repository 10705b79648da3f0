"""initialize, initialized, shutdown, settings changes, ``fimls/stats``, ``fimls/prompt``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.errors import DocumentError, RequestFailed
from lsp_server.jsonvalue import plain
from lsp_server.server import PROMPT, STATS

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer


#: How long ``shutdown`` waits for the requests it cancelled to be answered.
SETTLE_SECONDS = 3.0


def register(ls: FimLanguageServer) -> None:
    """Register the lifecycle handlers."""
    ls.feature(types.INITIALIZE)(initialize)
    ls.feature(types.INITIALIZED)(initialized)
    ls.feature(types.SHUTDOWN)(shutdown)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(did_change_workspace_folders)
    ls.feature(STATS)(stats)
    ls.feature(PROMPT)(prompt)


def initialize(ls: FimLanguageServer, params: types.InitializeParams) -> None:
    """Read settings and capabilities; pygls then answers with the capabilities."""
    ls.on_initialize(params)


async def initialized(ls: FimLanguageServer, params: types.InitializedParams) -> None:
    """Pull workspace settings and start loading the model in the background."""
    await ls.on_initialized()


async def shutdown(ls: FimLanguageServer, params: None) -> None:
    """Stop model work; answer ``shutdown`` once every pending request is answered."""
    ls.on_shutdown()
    await ls.settle_requests(SETTLE_SECONDS)


def did_change_configuration(
    ls: FimLanguageServer, params: types.DidChangeConfigurationParams
) -> None:
    """Apply new settings before the next message; reload the model if one changed."""
    ls.on_configuration_changed(params.settings)


def did_change_workspace_folders(
    ls: FimLanguageServer, params: types.DidChangeWorkspaceFoldersParams
) -> None:
    """Index added folders, forget removed ones (pygls has updated the workspace)."""
    for folder in params.event.removed:
        ls.drop_folder(folder.uri)
    ls.start_indexing()


def stats(ls: FimLanguageServer, params: Any) -> dict[str, object]:
    """``fimls/stats``: model status, request counters, latency percentiles, queue depth.

    ``remote`` is the inference server's share (latency, errors), null for the local model.
    """
    index = {
        "files": len(ls.index),
        "definitions": ls.index.definitions,
        "chars": ls.index.chars,
        "workspaceFilesRead": ls.indexer.files,
        "done": ls.indexer.done.is_set(),
        "seconds": round(ls.indexer.seconds, 2),
    }
    return {
        **ls.status_json(),
        **ls.stats.to_json(),
        "index": index,
        "worker": ls.worker.queue_json(),
        "remote": ls.worker.engine_stats(),
    }


async def prompt(ls: FimLanguageServer, params: Any) -> dict[str, object]:
    """``fimls/prompt``: the prompt a completion at a position would send the model.

    Params are those of a position request (``textDocument.uri``, ``position``); the
    result has ``template``, ``mode``, ``tokens`` and ``segments`` (``text`` runs, each
    marked ``special`` when it is special tokens).
    """
    try:
        params = plain(params)
        uri = params["textDocument"]["uri"]
        line, character = params["position"]["line"], params["position"]["character"]
        if not isinstance(uri, str) or not isinstance(line, int) or not isinstance(character, int):
            raise TypeError("expected a string uri and integer line and character")
        doc = ls.documents.get(uri)
        cursor = doc.cursor(line, character, ls.documents.encoding)
    except (KeyError, TypeError, ValueError, DocumentError) as exc:
        raise JsonRpcInvalidParams(f"fimls/prompt: {exc}") from None
    if not ls.worker.ready:
        raise RequestFailed(f"fimls/prompt: the model is not ready ({ls.worker.message})")
    return await ls.completions.prompt(doc, cursor, ls.settings, ls.syntax.get(uri))
