"""The language server: state, protocol guarantees, transports. Handlers live in handlers/.

:class:`FimProtocol` closes gaps that plain pygls leaves, so that every request is
answered exactly once: params that fail to deserialize get InvalidParams (pygls sends
nothing), requests before ``initialize`` get ServerNotInitialized, requests after
``shutdown`` get InvalidRequest, and ``exit`` ends the process at once with the code
the specification asks for, even while the model is busy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import (
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcRequestCancelled,
    JsonRpcServerNotInitialized,
)
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from lsp_server import __version__, logs, transport
from lsp_server.action_service import ActionService
from lsp_server.completion import CompletionService
from lsp_server.config import (
    EngineSettings,
    Settings,
    default_threads,
    merge,
    parse_settings,
    unwrap_section,
)
from lsp_server.context import ContextPiece
from lsp_server.crossfile import (
    IMPORT_LINES,
    RecentSnippets,
    WorkspaceIndexer,
    imports,
    nearby_names,
    pick_definitions,
)
from lsp_server.documents import Cursor, DocumentStore, TextDocument
from lsp_server.generation import EngineConfig
from lsp_server.model_store import PRESETS
from lsp_server.progress import bytes_bar
from lsp_server.stats import Stats
from lsp_server.symbols import SymbolIndex
from lsp_server.syntax import MAX_SYNTAX_BYTES, ByteEdit, DocumentSyntax, grammar_for
from lsp_server.worker import ModelState, ModelWorker, StateChange
from lsp_server.workspace import locate, uri_path

log = logging.getLogger(__name__)

STATUS = "fimls/status"
STATS = "fimls/stats"
PROMPT = "fimls/prompt"
#: An inference server's outage is shown with window/showMessage at most this often.
OUTAGE_NOTICE_S = 300.0


@attrs.define
class _UndecodableRequest:
    """A request whose params did not deserialize; answered with InvalidParams."""

    id: Any
    method: str
    reason: str
    jsonrpc: str = "2.0"


def _validation_summary(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ClassValidationError):
        from cattrs import transform_error

        return "; ".join(transform_error(cause))[:500]
    return str(cause or exc)[:500] or type(exc).__name__


class FimProtocol(LanguageServerProtocol):
    """pygls' protocol, with the guarantees above."""

    _server: FimLanguageServer
    #: Ids of the server's own requests: numbers, far above the ones clients count up
    #: from (pygls keeps both kinds in one table).
    _request_ids = itertools.count(1_000_000_001)
    shutdown_id: Any = None  # the id of the client's ``shutdown`` request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Ids of the client's requests not answered yet (what ``shutdown`` waits for).
        self.incoming: set[Any] = set()

    def _send_response(self, msg_id: Any, *args: Any, **kwargs: Any) -> None:
        """Send an answer; the request is no longer pending."""
        if isinstance(msg_id, (int, str)):
            self.incoming.discard(msg_id)
        super()._send_response(msg_id, *args, **kwargs)

    def send_request(
        self,
        method: str,
        params: Any | None = None,
        callback: Any = None,
        msg_id: Any = None,
    ) -> Any:
        """Send a request to the client with a numeric id (pygls' own are UUID strings).

        Vim's LSP channel cannot answer a request whose id is a string, and nor could
        older Vim LSP plugins; numbers suit every client.
        """
        if msg_id is None:
            msg_id = next(self._request_ids)
        return super().send_request(method, params, callback, msg_id)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Deserialize a message; a request with bad params becomes a marker to answer."""
        if (
            isinstance(data, dict)
            and "jsonrpc" in data
            and "method" in data
            and "params" not in data
        ):
            data = {**data, "params": None}  # optional in JSON-RPC; pygls' types require it
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                return _UndecodableRequest(
                    id=data["id"], method=str(data["method"]), reason=_validation_summary(exc)
                )
            if isinstance(data, dict) and "method" in data:
                log.warning(
                    "ignoring %s: invalid params: %s", data["method"], _validation_summary(exc)
                )
            raise

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """Cancel a request; one already answered is normal (the answer crossed it)."""
        if not isinstance(msg_id, (int, str)) or msg_id not in self._request_futures:
            log.debug("$/cancelRequest for %r, which is answered already", msg_id)
            return
        super()._handle_cancel_notification(msg_id)

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        """Answer a request (or, with id None, a message no id could be read from)."""
        self._reply_error(msg_id, JsonRpcException(message, code=code))

    def handle_message(self, message: Any) -> None:
        """Answer what pygls would drop, then let pygls dispatch the rest."""
        if isinstance(message, dict) or getattr(message, "jsonrpc", None) != self.VERSION:
            # no "jsonrpc": "2.0" member (pygls leaves such objects as dicts, or drops them)
            if isinstance(message, dict):
                is_request, msg_id = "id" in message and "method" in message, message.get("id")
            else:
                is_request = hasattr(message, "id") and hasattr(message, "method")
                msg_id = getattr(message, "id", None)
            if is_request:
                self._reply_error(msg_id, JsonRpcInvalidRequest('"jsonrpc" must be "2.0"'))
            else:
                log.warning('dropping a message without "jsonrpc": "2.0"')
            return
        if isinstance(message, _UndecodableRequest):
            log.warning(
                "invalid params for %s (id %r): %s", message.method, message.id, message.reason
            )
            self._reply_error(
                message.id,
                JsonRpcInvalidParams(f"invalid params for {message.method}: {message.reason}"),
            )
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if is_request and method == types.SHUTDOWN and self.shutdown_id is None:
            self.shutdown_id = message.id
        if is_request:
            if not isinstance(message.id, (int, str)) or isinstance(message.id, bool):
                # LSP ids are integers or strings; no other value can be echoed back
                self._reply_error(
                    None, JsonRpcInvalidRequest("the id must be an integer or a string")
                )
                return
            if method == types.INITIALIZE and self._server.initialized:
                self._reply_error(message.id, JsonRpcInvalidRequest("already initialized"))
                return
            if method != types.INITIALIZE and not self._server.initialized:
                self._reply_error(
                    message.id, JsonRpcServerNotInitialized("the server is not initialized")
                )
                return
            if self._shutdown or self.shutdown_id not in (None, message.id):
                self._reply_error(message.id, JsonRpcInvalidRequest("the server is shutting down"))
                return
            self.incoming.add(message.id)
        elif method is not None and method != types.EXIT and not self._server.initialized:
            log.warning("dropping notification %s sent before initialize", method)
            return
        super().handle_message(message)

    def _reply_error(self, msg_id: Any, error: JsonRpcException) -> None:
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool):
            # pygls would leave the member out; JSON-RPC wants "id": null
            self._send_data(
                {
                    "jsonrpc": self.VERSION,
                    "id": None,
                    "error": {"code": error.code, "message": error.message},
                }
            )
            return
        self._send_response(msg_id, error=error.to_response_error())

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        """Answer a request whose handler raised a JSON-RPC error without a traceback."""
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, JsonRpcException):
            # the handler's answer to bad input (or a cancellation): no traceback
            if not isinstance(exc, JsonRpcRequestCancelled):
                # the message may quote the document: its text only at DEBUG
                log.info("request %r answered with error %d", msg_id, exc.code)
                log.debug("request %r: %s", msg_id, exc.message)
            self._request_futures.pop(msg_id, None)
            self._send_response(msg_id, error=exc.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """End the process now: code 0 after shutdown, 1 without it."""
        yield from self._forward(types.EXIT, args[0] if args else None)
        code = 0 if self._shutdown else 1
        log.info("exit (code %d)", code)
        self._server.stop_all()
        logging.shutdown()
        os._exit(code)

    # Document sync: fimls keeps its own document store (handlers/documents.py), so the
    # builtin handlers only forward to it instead of also updating pygls' workspace.

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(
        self, params: types.DidOpenTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Forward didOpen to the registered handler."""
        yield from self._forward(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Forward didChange to the registered handler."""
        yield from self._forward(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(
        self, params: types.DidCloseTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Forward didClose to the registered handler."""
        yield from self._forward(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _forward(self, method: str, params: Any) -> Generator[Any, Any, None]:
        handler = self.fm.features.get(method)
        if handler is not None:
            yield handler, (params,), None


class FimLanguageServer(LanguageServer):
    """Server state: settings, documents, the model worker and the completion service."""

    protocol: FimProtocol

    def __init__(self, model_path: str | None = None, engine: dict[str, str] | None = None) -> None:
        super().__init__(name="fimls", version=__version__, protocol_cls=FimProtocol)
        self.cli_model_path = model_path
        #: ``fimls.engine`` from the command line (``--engine``, ``--engine-url``)
        self.cli_engine = dict(engine or {})
        self.initialized = False
        self.documents = DocumentStore()
        self.syntax: dict[str, DocumentSyntax] = {}
        self.settings = Settings()
        self._raw_init: object = None
        self._raw_workspace: object = None
        self.stats = Stats()
        self.worker = ModelWorker(self._on_model_state, on_busy=self._on_busy)
        self._busy = False
        self.index = SymbolIndex()
        self.indexer = WorkspaceIndexer(self.index)
        self.snippets = RecentSnippets()
        self._indexed: dict[str, int] = {}  # open document -> version in the index
        self._indexed_folders: set[str] = set()  # workspace folder URIs indexed or queued
        self.completions = CompletionService(
            self.worker, self.stats, self.workspace_folders, self.context_pieces
        )
        self.actions = ActionService(self.worker, self.stats)
        self.client_supports_inline = False
        self._pending_problems: list[str] = []
        self._loaded_config: EngineConfig | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._refused_model: str | None = None
        self._refused_engine = False
        #: when an outage of the inference server was last shown (time.monotonic())
        self._outage_shown: float | None = None
        self._tasks: set[asyncio.Future[None]] = set()  # pulls of settings under way

    # -- lifecycle ------------------------------------------------------------------

    def on_initialize(self, params: types.InitializeParams) -> None:
        """Read capabilities and initializationOptions; register optional features."""
        self.initialized = True
        caps = params.capabilities
        encoding = ServerCapabilitiesBuilder.choose_position_encoding(caps)
        self.documents.encoding = getattr(encoding, "value", encoding)
        text_caps = caps.text_document
        self.client_supports_inline = bool(text_caps and text_caps.inline_completion)
        self._raw_init = unwrap_section(params.initialization_options)
        settings, problems = parse_settings(self._raw_init)
        self.settings = settings
        self._pending_problems = problems
        logs.apply_setting(settings.log_level)
        fallback = settings.completion.fallback
        if fallback == "always" or (fallback == "auto" and not self.client_supports_inline):
            from lsp_server.handlers.completion import register_fallback

            register_fallback(self)
        if params.process_id:
            self._watchdog = asyncio.ensure_future(_watch_parent(params.process_id))

    async def on_initialized(self) -> None:
        """Pull workspace settings, report setting problems, start loading the model."""
        raw = await self._pull_configuration()
        if raw is not None:
            self._raw_workspace = raw
            self.settings, self._pending_problems = parse_settings(merge(self._raw_init, raw))
            logs.apply_setting(self.settings.log_level)
        self._report_problems(self._pending_problems)
        self._pending_problems = []
        self._load_model_if_changed()
        self.start_indexing()

    def on_configuration_changed(self, pushed: object) -> None:
        """Apply new settings; pushed ones at once, before the next message is handled.

        When the client pushes none, they are pulled from it in the background.
        """
        raw = unwrap_section(pushed) if pushed not in (None, {}, []) else None
        if raw is not None:
            self._apply_workspace_settings(raw)
            return

        async def pull() -> None:
            pulled = await self._pull_configuration()
            if pulled is not None:
                self._apply_workspace_settings(pulled)

        self._tasks.add(task := asyncio.ensure_future(pull()))
        task.add_done_callback(self._tasks.discard)

    def _apply_workspace_settings(self, raw: object) -> None:
        self._raw_workspace = raw
        settings, problems = parse_settings(merge(self._raw_init, raw))
        self.settings = settings
        logs.apply_setting(settings.log_level)
        self._report_problems(problems)
        self._load_model_if_changed()
        self.start_indexing()  # cross-file context may just have been switched on

    def on_shutdown(self) -> None:
        """Stop model work; the process ends on ``exit``."""
        self.indexer.stop()
        self.worker.shutdown()

    async def settle_requests(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until every other pending request has been answered."""
        me: object = asyncio.current_task()  # this handler (pygls runs it under its own id)
        pending = [
            future
            for msg_id, future in list(self.protocol._request_futures.items())
            if msg_id in self.protocol.incoming
            and msg_id != self.protocol.shutdown_id
            and future is not me
            and not future.done()
        ]
        if pending:
            waits = [
                f if isinstance(f, asyncio.Future) else asyncio.wrap_future(f) for f in pending
            ]
            _, late = await asyncio.wait(waits, timeout=timeout)
            if late:
                log.warning("%d requests still running at shutdown", len(late))

    def stop_all(self) -> None:
        """Cancel every job (at exit)."""
        self.worker.cancel_all()

    # -- syntax ---------------------------------------------------------------------

    def parse_document(self, uri: str) -> None:
        """(Re)start the syntax tree of an open document, if its language has a grammar."""
        self.syntax.pop(uri, None)
        doc = self.documents.get(uri)
        grammar = grammar_for(doc.language_id, uri)
        if grammar is None:
            return
        source = doc.encoded()
        if len(source) > MAX_SYNTAX_BYTES:
            log.info("%s is %d bytes: completing without syntax features", uri, len(source))
            return
        self.syntax[uri] = DocumentSyntax(grammar, source)

    def edit_syntax(self, uri: str, edits: list[ByteEdit | None]) -> None:
        """Apply a didChange's edits to the document's tree (a full replacement reparses)."""
        syntax = self.syntax.get(uri)
        if syntax is None:
            return
        if any(e is None for e in edits):
            self.parse_document(uri)
            return
        for e in edits:
            if e is not None:
                syntax.edit(e)

    # -- cross-file context ---------------------------------------------------------

    #: Room in the symbol index for open documents beyond ``context.indexFiles``.
    OPEN_DOCUMENTS_ROOM = 500

    def start_indexing(self) -> None:
        """Index the workspace folders not indexed yet, in the background."""
        context = self.settings.context
        if not context.cross_file or context.index_files == 0:
            return
        self.indexer.max_files = context.index_files
        self.index.max_files = context.index_files + self.OPEN_DOCUMENTS_ROOM
        folders = []
        for uri in self.workspace_folders():
            path = uri_path(uri)
            if uri not in self._indexed_folders and path is not None and Path(str(path)).is_dir():
                self._indexed_folders.add(uri)
                folders.append(Path(str(path)))
        if folders:
            self.indexer.start(folders, skip=lambda uri: uri in self.documents)

    def drop_folder(self, uri: str) -> None:
        """A workspace folder was removed: forget its files' definitions."""
        self._indexed_folders.discard(uri)
        self.indexer.remove_folder(uri.rstrip("/") + "/")

    def index_document(self, uri: str) -> None:
        """Have an open document's definitions indexed from its current text."""
        doc = self.documents.get(uri)
        if not self.settings.context.cross_file or self._indexed.get(uri) == doc.version:
            return
        self._indexed[uri] = doc.version
        syntax = self.syntax.get(uri)
        self.indexer.update(uri, syntax.grammar if syntax else None, doc.encoded())

    def forget_document(self, uri: str) -> None:
        """A document was closed: index its file from disk again, if it is one."""
        self._indexed.pop(uri, None)
        self.snippets.forget(uri)
        self.completions.forget(uri)
        path = uri_path(uri)
        roots = [uri_path(folder) for folder in self.workspace_folders()]
        if path is not None and any(r is not None and path.is_relative_to(r) for r in roots):
            self.indexer.reload(uri, Path(str(path)))  # a workspace file: back to its disk text
        else:
            self.indexer.remove(uri)

    def context_pieces(
        self, doc: TextDocument, cursor: Cursor, settings: Settings
    ) -> list[ContextPiece]:
        """Context from other files for a completion at the cursor, most relevant first."""
        self.snippets.touch(doc.uri, doc.lines, cursor.line)
        pieces: list[ContextPiece] = []
        folders = self.workspace_folders()
        if settings.context.cross_file:
            for other in self.documents.all():
                if other.uri != doc.uri:
                    self.index_document(other.uri)  # in the background, when it changed
            python = doc.language_id == "python"
            modules = dict(imports(doc.lines[:IMPORT_LINES]))
            names = nearby_names(
                doc.lines, cursor.line, cursor.index, imports_only=python, imported=list(modules)
            )
            for d in pick_definitions(self.index, names, exclude=doc.uri, modules=modules):
                pieces.append(
                    ContextPiece("definition", locate(d.path, folders)[0], d.line, d.signature)
                )
        if settings.context.recent:
            for s in self.snippets.others(doc.uri):
                pieces.append(
                    ContextPiece("recent", locate(s.uri, folders)[0], s.first_line, s.text)
                )
        return pieces

    def workspace_folders(self) -> list[str]:
        """URIs of the workspace folders (the root URI when the client sent no folders)."""
        try:
            workspace = self.workspace
        except RuntimeError:  # not initialized
            return []
        folders = [f.uri for f in workspace.folders.values()]
        if not folders and workspace.root_uri:
            folders = [workspace.root_uri]
        return folders

    # -- model ----------------------------------------------------------------------

    def engine_config(self) -> EngineConfig:
        """The engine configuration the current settings ask for."""
        model = self.settings.model
        path = self.cli_model_path or model.path
        if path and not self.cli_model_path:
            refusal = self._workspace_model_refusal(path)
            if refusal is not None:
                if refusal != self._refused_model:
                    self._refused_model = refusal
                    log.warning("%s", refusal)
                    self.window_show_message(
                        types.ShowMessageParams(type=types.MessageType.Warning, message=refusal)
                    )
                path = None
        return EngineConfig(
            path=path,
            template=model.template,
            n_ctx=model.context_size,
            threads=model.threads or default_threads(),
            n_batch=model.batch_size,
            remote=self.remote_config(),
        )

    def remote_config(self) -> EngineSettings | None:
        """The inference server to use, or None for the in-process model.

        ``fimls.engine`` is read from the command line and ``initializationOptions``
        only: a repository's settings (``.vscode/settings.json``, ``.dir-locals.el``)
        must not send the user's code, and the API key, to a server of its choosing.
        """
        own = merge(_section(self._raw_init, "engine"), self.cli_engine or None)
        engine = parse_settings({"engine": own})[0].engine
        workspace = _section(self._raw_workspace, "engine")
        if workspace is not None:
            asked = parse_settings({"engine": merge(own, workspace)})[0].engine
            if asked != engine and not self._refused_engine:
                self._refused_engine = True
                text = (
                    "fimls: fimls.engine from the workspace's settings is not used: a "
                    "repository could send your code elsewhere. Set it in "
                    "initializationOptions (the editor's user configuration) or with "
                    "--engine-url."
                )
                log.warning("%s", text)
                self.window_show_message(
                    types.ShowMessageParams(type=types.MessageType.Warning, message=text)
                )
        if engine.kind == "local":
            return None
        if not engine.url:
            self._report_problems(
                [f"fimls.engine.kind is {engine.kind}: fimls.engine.url is unset"]
            )
            return None
        return engine

    def _workspace_model_refusal(self, path: str) -> str | None:
        """Why a model file named by the workspace's own settings is not loaded, if it is not.

        Workspace settings can come from the repository (``.vscode/settings.json``,
        ``.dir-locals.el``): a model file inside a workspace folder, named there, could
        be a stranger's. Such a file loads only from the user's own choice: the command
        line or ``initializationOptions`` (the editor's user configuration).
        """
        if path in PRESETS or _setting(self._raw_workspace, "model", "path") != path:
            return None
        if _setting(self._raw_init, "model", "path") == path:
            return None
        resolved = Path(path).expanduser().resolve()
        for folder in self.workspace_folders():
            root = uri_path(folder)
            if root is not None and resolved.is_relative_to(Path(root).resolve()):
                return (
                    f"fimls: not loading {resolved}: fimls.model.path names a file inside the "
                    f"workspace {root} from the workspace's settings; give it with --model or "
                    "in initializationOptions. Using the default model."
                )
        return None

    def _load_model_if_changed(self) -> None:
        config = self.engine_config()
        if config == self._loaded_config:
            return
        self._loaded_config = config
        self.worker.load(config, progress=bytes_bar("fimls: assembling the default model"))

    def _on_model_state(self, change: StateChange) -> None:
        """Tell the user about the model; ``fimls/status`` goes last, once all is said."""
        if not change.same_engine:
            self.completions.model_changed()
        if change.state is ModelState.UNAVAILABLE:
            log.warning("%s", change.message)
            # shown once, and again only after OUTAGE_NOTICE_S: a server that answers its
            # probes but fails requests must not pop a message at every try; the status
            # line follows every change
            now = time.monotonic()
            if self._outage_shown is None or now - self._outage_shown > OUTAGE_NOTICE_S:
                self._outage_shown = now
                self.window_show_message(
                    types.ShowMessageParams(
                        type=types.MessageType.Warning,
                        message=f"fimls: {change.message}. Completions resume by themselves "
                        "when the engine answers.",
                    )
                )
        elif change.state is ModelState.READY and change.same_engine:
            where = change.info.path if change.info else "the engine"
            text = f"fimls: {where} answers again"
            log.warning("%s", text)
            self.window_log_message(
                types.LogMessageParams(type=types.MessageType.Info, message=text)
            )
        elif change.state is ModelState.ERROR:
            log.error("%s", change.message)
            self.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error,
                    message=f"fimls: {change.message}. Completions are off until this is fixed.",
                )
            )
        elif change.state is ModelState.READY and change.info is not None:
            self._outage_shown = None
            i = change.info
            text = (
                f"fimls: model ready: {i.name} ({i.description}), template {i.template}, "
                f"{i.path}, loaded in {i.load_seconds:.1f} s"
            )
            log.info("%s", text)
            self.window_log_message(
                types.LogMessageParams(type=types.MessageType.Info, message=text)
            )
        self.protocol.notify(STATUS, self.status_json())

    def _on_busy(self, busy: bool) -> None:
        """The model started or finished work the user waits for: ``busy``, then ``ready``."""
        self._busy = busy
        if self.worker.state is ModelState.READY:
            self.protocol.notify(STATUS, self.status_json())

    def status_json(self) -> dict[str, object]:
        """The current model state as sent in ``fimls/status``.

        ``state`` is the model's (unloaded, loading, ready, error, unavailable: an
        inference server that does not answer now), or ``busy`` while a completion or
        code action runs on a loaded model.
        """
        info = self.worker.info.to_json() if self.worker.info else None
        state, message = self.worker.state.value, self.worker.message
        if self._busy and self.worker.state is ModelState.READY:
            state, message = "busy", "generating"
        return {"state": state, "message": message, "model": info}

    # -- settings -------------------------------------------------------------------

    async def _pull_configuration(self) -> object:
        caps = self.client_capabilities.workspace
        if not (caps and caps.configuration):
            return None
        params = types.ConfigurationParams(items=[types.ConfigurationItem(section="fimls")])
        try:
            result = await asyncio.wait_for(self.workspace_configuration_async(params), 5.0)
        except Exception as exc:  # a client that fails this must not stop us
            log.warning("workspace/configuration failed: %s", exc)
            return None
        if not result or result[0] is None:
            return None
        return unwrap_section(result[0])

    def _report_problems(self, problems: list[str]) -> None:
        if not problems:
            return
        for p in problems:
            log.warning("settings: %s", p)
        shown = "; ".join(problems[:5]) + (
            f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        )
        self.window_show_message(
            types.ShowMessageParams(
                type=types.MessageType.Warning, message=f"fimls: invalid settings ignored: {shown}"
            )
        )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log out-of-band errors; tell the user when document sync may be lost."""
        if source is FeatureRequestError:
            return
        log.error("%s: %s", getattr(source, "__name__", source), error)
        self.window_log_message(
            types.LogMessageParams(type=types.MessageType.Error, message=f"fimls: {error}")
        )


def _setting(raw: object, group: str, key: str) -> object:
    """``raw[group][key]`` of a raw settings object, or None."""
    section = _section(raw, group)
    return section.get(key) if section is not None else None


def _section(raw: object, group: str) -> dict[str, Any] | None:
    """``raw[group]`` of a raw settings object when it is an object, else None."""
    section = raw.get(group) if isinstance(raw, dict) else None
    return section if isinstance(section, dict) else None


async def _watch_parent(pid: int, interval: float = 3.0) -> None:
    """End the server when the editor that started it is gone."""
    while True:
        await asyncio.sleep(interval)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log.warning("parent process %d is gone; exiting", pid)
            logging.shutdown()
            os._exit(1)
        except PermissionError:
            pass  # it exists, owned by someone else


def protect_stdout() -> BinaryIO:
    """Return a private stream for LSP frames and point fd 1 at stderr.

    Anything else that writes to standard output (a library's print, llama.cpp's C
    code) then lands on stderr instead of corrupting the protocol stream.
    """
    lsp_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return lsp_out


def run_stdio(server: FimLanguageServer) -> None:
    """Serve one client over stdin/stdout until it exits or disconnects."""
    lsp_out = protect_stdout()
    server.protocol.set_writer(StdoutWriter(lsp_out))
    read = transport.stdin_reader(sys.stdin.buffer, server.thread_pool)
    try:
        asyncio.run(transport.serve(read, server.protocol))
    except (BrokenPipeError, ConnectionError) as exc:
        log.info("the client's pipe closed: %s", exc)
    _exit_after_disconnect(server)


def run_tcp(server: FimLanguageServer, host: str, port: int) -> None:
    """Serve the first client to connect over TCP, until it exits or disconnects."""
    protect_stdout()

    async def main() -> None:
        finished = asyncio.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if finished.is_set() or server.protocol.writer is not None:
                log.warning("refusing a second connection from %s", _peer(writer))
                writer.close()
                return
            log.info("client connected from %s", _peer(writer))
            server.protocol.set_writer(writer)
            try:
                await transport.serve(transport.stream_reader(reader), server.protocol)
            except ConnectionError as exc:
                log.info("the connection closed: %s", exc)
            finally:
                finished.set()

        listener = await asyncio.start_server(connection, host, port)
        addresses = ", ".join(str(sock.getsockname()) for sock in listener.sockets)
        log.info("listening on %s", addresses)
        async with listener:
            await finished.wait()

    asyncio.run(main())
    _exit_after_disconnect(server)


def _peer(writer: asyncio.StreamWriter) -> object:
    return writer.get_extra_info("peername")


def _exit_after_disconnect(server: FimLanguageServer) -> None:
    log.info("client disconnected")
    server.stop_all()
    logging.shutdown()
    # Threads (the stdin reader, the model worker) must not keep a dead server alive.
    os._exit(0 if server.protocol._shutdown else 1)


def create_server(
    model_path: str | None = None, engine: dict[str, str] | None = None
) -> FimLanguageServer:
    """Build a server with every handler registered."""
    from lsp_server.handlers import register_all

    ls = FimLanguageServer(model_path, engine)
    register_all(ls)
    return ls
