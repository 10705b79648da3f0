"""An editor-like LSP client for fimls, on pygls' LanguageClient.

``fimls check`` (and the test suite) start ``fimls --stdio`` as a subprocess and drive it
through this class exactly as an editor would: initialize, open documents, ask for inline
completions, read ``fimls/stats``, shut down and exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any, Union

from lsprotocol import types
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

from lsp_server import __version__
from lsp_server.jsonvalue import plain


def server_command(*args: str) -> list[str]:
    """The command that starts this installation's server."""
    return [sys.executable, "-m", "lsp_server", *args]


def client_capabilities(
    inline: bool = True,
    configuration: bool = False,
    resolve: bool = True,
    progress: bool = False,
) -> types.ClientCapabilities:
    """Capabilities of a typical editor, with or without inline completion.

    ``resolve``: code actions' edits are resolved lazily (``codeAction/resolve``);
    ``progress``: the client shows server-initiated work-done progress.
    """
    kinds = ["quickfix", "refactor", "refactor.rewrite", "source"]
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(
            position_encodings=[types.PositionEncodingKind.Utf16]
        ),
        workspace=types.WorkspaceClientCapabilities(
            configuration=configuration,
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True,
                resource_operations=[types.ResourceOperationKind.Create],
            ),
            execute_command=types.ExecuteCommandClientCapabilities(),
        ),
        window=types.WindowClientCapabilities(work_done_progress=progress),
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(),
            completion=types.CompletionClientCapabilities(),
            inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
            code_action=types.CodeActionClientCapabilities(
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(
                        value_set=[types.CodeActionKind(k) for k in kinds]
                    )
                ),
                data_support=True,
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"])
                if resolve
                else None,
            ),
        ),
    )


class FimlsClient(LanguageClient):
    """A LanguageClient that records fimls' notifications and knows its requests."""

    def __init__(self) -> None:
        super().__init__(name="fimls-client", version=__version__)
        # lsprotocol reads any code action with a `command` field as a Command; a
        # CodeAction's `command` is an object, a Command's a string
        converter = self.protocol._converter
        converter.register_structure_hook(
            Union[types.Command, types.CodeAction],  # noqa: UP007 - the hook's exact key
            lambda obj, _: converter.structure(
                obj,
                types.Command if isinstance(obj.get("command"), str) else types.CodeAction,
            ),
        )
        self.statuses: list[dict[str, Any]] = []
        self.messages: list[types.ShowMessageParams] = []
        self.log_messages: list[types.LogMessageParams] = []
        self.configuration: dict[str, Any] | None = None
        self.returncode: int | None = None
        self.applied_edits: list[types.WorkspaceEdit] = []
        self.progress_values: list[Any] = []
        self.init_result: types.InitializeResult | None = None
        self._status_changed = asyncio.Event()

        @self.feature("fimls/status")
        def on_status(params: Any) -> None:
            self.statuses.append(plain(params))
            self._status_changed.set()

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params: types.ShowMessageParams) -> None:
            self.messages.append(params)

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def on_log(params: types.LogMessageParams) -> None:
            self.log_messages.append(params)

        @self.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.applied_edits.append(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

        @self.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
            return None  # accepted: the values arrive as $/progress

        @self.feature(types.PROGRESS)
        def on_progress(params: types.ProgressParams) -> None:
            self.progress_values.append(params.value)

        @self.feature(types.WORKSPACE_CONFIGURATION)
        def on_configuration(params: types.ConfigurationParams) -> list[Any]:
            return [self.configuration for _ in params.items]

    async def start(
        self,
        cmd: Sequence[str],
        env: dict[str, str] | None = None,
        stderr: IO[Any] | int | None = None,
        *,
        cwd: str | os.PathLike[str] | None = None,
        inherit_env: bool = True,
    ) -> None:
        """Start the server process and talk to it over its stdin/stdout.

        ``env`` is added to this process's environment, or with ``inherit_env=False`` is
        the whole environment.
        """
        if env is not None and inherit_env:
            env = {**os.environ, **env}
        server = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )
        assert server.stdin is not None and server.stdout is not None
        self.protocol.set_writer(server.stdin)
        reader = asyncio.create_task(
            run_async(
                stop_event=self._stop_event,
                reader=server.stdout,
                protocol=self.protocol,
                error_handler=self.report_server_error,
            )
        )
        self._server = server
        self._async_tasks.extend([reader, asyncio.create_task(self._server_exit())])

    @property
    def process(self) -> asyncio.subprocess.Process:
        """The server process."""
        assert self._server is not None
        return self._server

    async def handshake(
        self,
        *,
        inline: bool = True,
        configuration: bool = False,
        initialization_options: Any = None,
        root_uri: str | None = None,
        resolve: bool = True,
        progress: bool = False,
    ) -> types.InitializeResult:
        """Send initialize and initialized."""
        caps = client_capabilities(inline, configuration, resolve=resolve, progress=progress)
        result = await self.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                root_uri=root_uri,
                capabilities=caps,
                initialization_options=initialization_options,
                client_info=types.ClientInfo(name="fimls-client", version=__version__),
            )
        )
        self.initialized(types.InitializedParams())
        self.init_result = result
        return result

    async def wait_model(
        self, timeout: float = 300.0, states: tuple[str, ...] = ("ready", "error")
    ) -> dict[str, Any]:
        """Wait until the model's state is one of ``states``; return the last status."""

        async def settled() -> dict[str, Any]:
            while True:
                if self.statuses and self.statuses[-1].get("state") in states:
                    return self.statuses[-1]
                self._status_changed.clear()
                await self._status_changed.wait()

        return await asyncio.wait_for(settled(), timeout)

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        """Send didOpen."""
        self.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id=language_id, version=version, text=text
                )
            )
        )

    def change(
        self, uri: str, version: int, text: str, start: tuple[int, int], end: tuple[int, int]
    ) -> None:
        """Send one incremental didChange."""
        self.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=start[0], character=start[1]),
                            end=types.Position(line=end[0], character=end[1]),
                        ),
                        text=text,
                    )
                ],
            )
        )

    async def inline(self, uri: str, line: int, character: int) -> types.InlineCompletionList:
        """Ask for an inline completion at a position."""
        result = await self.text_document_inline_completion_async(
            inline_params(uri, line, character)
        )
        if result is None:
            return types.InlineCompletionList(items=[])
        if isinstance(result, types.InlineCompletionList):
            return result
        return types.InlineCompletionList(items=list(result))

    async def stats(self) -> dict[str, Any]:
        """Read ``fimls/stats``."""
        result: dict[str, Any] = plain(await self.protocol.send_request_async("fimls/stats", {}))
        return result

    async def prompt(self, uri: str, line: int, character: int) -> dict[str, Any]:
        """Read ``fimls/prompt``: the prompt a completion at a position would send."""
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        result: dict[str, Any] = plain(
            await self.protocol.send_request_async("fimls/prompt", params)
        )
        return result

    async def wait_index(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the workspace index is built; return the stats' ``index``."""
        deadline = time.monotonic() + timeout
        while True:
            index: dict[str, Any] = (await self.stats())["index"]
            if index["done"] or time.monotonic() > deadline:
                return index
            await asyncio.sleep(0.1)

    async def stop(self, timeout: float = 10.0) -> int:
        """Send shutdown and exit; return the server's exit code."""
        if self._server is not None and self._server.returncode is None:
            try:
                await asyncio.wait_for(self.shutdown_async(None), timeout)
                self.exit(None)
            except (ConnectionError, RuntimeError, asyncio.TimeoutError):
                pass
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the server process to end (killing it after ``timeout``)."""
        proc = self.process
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        self.returncode = proc.returncode
        self._stop_event.set()
        for task in self._async_tasks:
            task.cancel()
        assert proc.returncode is not None
        return proc.returncode


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    """Params of an automatic inline completion request."""
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic
        ),
    )
