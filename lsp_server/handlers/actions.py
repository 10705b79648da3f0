"""textDocument/codeAction, codeAction/resolve and the fimls.* commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)

from lsp_server import actions
from lsp_server.action_service import ActionError, StaleAction
from lsp_server.actions import REWRITE, FileChange, Target
from lsp_server.documents import content, index_to_column, split_lines
from lsp_server.errors import DocumentError
from lsp_server.syntax import grammar_for
from lsp_server.worker import JobCancelled, ModelNotReady

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer

log = logging.getLogger(__name__)

APPLY = "fimls.applyAction"
REWRITE_COMMAND = "fimls.rewrite"
COMMANDS = [APPLY, REWRITE_COMMAND]

KINDS = sorted(set(actions.CODE_ACTION_KINDS.values()))


class RequestFailed(JsonRpcException):
    """LSP RequestFailed (-32803): the request was valid but could not be carried out."""

    CODE = -32803


class ContentModified(JsonRpcException):
    """LSP ContentModified (-32801): the document changed under the request."""

    CODE = -32801


def register(ls: FimLanguageServer) -> None:
    """Register code actions (with resolve) and the commands."""
    options = types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind(k) for k in KINDS], resolve_provider=True
    )
    ls.feature(types.TEXT_DOCUMENT_CODE_ACTION, options)(code_action)
    ls.feature(types.CODE_ACTION_RESOLVE)(resolve_code_action)
    ls.command(APPLY)(apply_action)
    ls.command(REWRITE_COMMAND)(rewrite)


def code_action(
    ls: FimLanguageServer, params: types.CodeActionParams
) -> list[types.CodeAction] | None:
    """The actions at a range, from tree-sitter and the request's diagnostics (no model)."""
    uri = params.text_document.uri
    try:
        doc = ls.documents.get(uri)
    except DocumentError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    start = min(max(params.range.start.line, 0), len(doc.lines) - 1)
    end = min(max(params.range.end.line, start), len(doc.lines) - 1)
    if params.range.end.line > start and params.range.end.character == 0:
        end = max(start, end - 1)  # a selection of whole lines ends at the next line's start
    syntax = ls.syntax.get(uri)
    tree = syntax.tree(doc.encoded()) if syntax is not None else None
    diagnostics = list(params.context.diagnostics)
    offers = actions.offers(
        doc.lines,
        tree,
        doc.language_id,
        uri,
        doc.version,
        start,
        end,
        params.range.start != params.range.end,
        [actions.Diagnostic(d.range.start.line, d.range.end.line, d.message) for d in diagnostics],
        ls.workspace_folders(),
    )
    only = params.context.only
    if only:
        offers = [o for o in offers if any(_within(o.code_kind, str(k)) for k in only)]
    resolves = _client_resolves(ls)
    out = []
    for offer in offers:
        data = offer.target.to_json()
        action = types.CodeAction(
            title=offer.title,
            kind=types.CodeActionKind(offer.code_kind),
            diagnostics=[diagnostics[offer.diagnostic]] if offer.diagnostic >= 0 else None,
        )
        if offer.target.kind == REWRITE:
            action.command = types.Command(
                title=offer.title, command=REWRITE_COMMAND, arguments=[data]
            )
        elif resolves:
            action.data = data
        else:
            action.command = types.Command(title=offer.title, command=APPLY, arguments=[data])
        out.append(action)
    return out


def _within(kind: str, wanted: str) -> bool:
    return kind == wanted or kind.startswith(wanted + ".")


def _client_resolves(ls: FimLanguageServer) -> bool:
    """Whether the client resolves a code action's ``edit`` lazily."""
    caps = ls.client_capabilities.text_document
    action = caps.code_action if caps else None
    support = action.resolve_support if action else None
    return bool(support and "edit" in support.properties)


async def resolve_code_action(ls: FimLanguageServer, params: types.CodeAction) -> types.CodeAction:
    """Compute the action's edit with the model."""
    if params.edit is not None or params.data is None:
        return params
    target = _target(params.data)
    params.edit = await _edit(ls, target)
    return params


# The commands' ``ls`` is typed Any: pygls resolves the handlers' type hints at run time,
# where the server class is not importable from here.


async def apply_action(ls: Any, *args: Any) -> dict[str, Any]:
    """``fimls.applyAction [data]``: compute the edit and send it with workspace/applyEdit."""
    if not args:
        raise JsonRpcInvalidParams(f"{APPLY} needs the action's data as its argument")
    return await _apply(ls, _target(args[0]))


async def rewrite(ls: Any, *args: Any) -> dict[str, Any]:
    """``fimls.rewrite [data, instruction]``: rewrite the selection as the user asks.

    The instruction is the second argument or the ``instruction`` field of the first.
    """
    if not args:
        raise JsonRpcInvalidParams(f"{REWRITE_COMMAND} needs the action's data and an instruction")
    target = _target(args[0])
    instruction = args[1] if len(args) > 1 and isinstance(args[1], str) else target.instruction
    if not instruction.strip():
        raise JsonRpcInvalidParams(
            f"{REWRITE_COMMAND} needs an instruction (its second argument): what to change"
        )
    target = Target(**{**target.__dict__, "kind": REWRITE, "instruction": instruction.strip()})
    return await _apply(ls, target)


async def _apply(ls: FimLanguageServer, target: Target) -> dict[str, Any]:
    edit = await _edit(ls, target)
    params = types.ApplyWorkspaceEditParams(edit=edit, label=f"fimls: {target.kind}")
    try:
        result = await asyncio.wait_for(ls.workspace_apply_edit_async(params), APPLY_TIMEOUT_S)
    except asyncio.TimeoutError:  # not TimeoutError itself before Python 3.11
        raise RequestFailed(
            f"the editor did not answer workspace/applyEdit within {APPLY_TIMEOUT_S:.0f} s"
        ) from None
    if not result.applied:
        raise RequestFailed(f"the editor did not apply the edit: {result.failure_reason or ''}")
    return {"applied": True}


def _target(raw: object) -> Target:
    try:
        return Target.from_json(raw)
    except ValueError as exc:
        raise JsonRpcInvalidParams(f"invalid code action data: {exc}") from None


async def _edit(ls: FimLanguageServer, target: Target) -> types.WorkspaceEdit:
    try:
        doc = ls.documents.get(target.uri)
    except DocumentError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    grammar = grammar_for(doc.language_id, doc.uri)
    async with _progress(ls, f"fimls: {target.kind}") as report:
        try:
            outcome = await ls.actions.resolve(
                target,
                doc,
                grammar,
                ls.settings,
                folders=tuple(ls.workspace_folders()),
                open_documents=lambda uri: ls.documents.get(uri) if uri in ls.documents else None,
                progress=report,
            )
        except JobCancelled:
            raise JsonRpcRequestCancelled("the code action was cancelled") from None
        except StaleAction as exc:
            raise ContentModified(str(exc)) from None
        except ModelNotReady as exc:
            raise RequestFailed(f"the model is not ready: {exc}") from None
        except ActionError as exc:
            ls.window_log_message(
                types.LogMessageParams(type=types.MessageType.Warning, message=str(exc))
            )
            raise RequestFailed(str(exc)) from None
    log.info("action %s: %d attempt(s), %.1f s", target.kind, outcome.attempts, outcome.seconds)
    return workspace_edit(ls, outcome.proposal.changes)


def workspace_edit(ls: FimLanguageServer, changes: Sequence[FileChange]) -> types.WorkspaceEdit:
    """The changes as a WorkspaceEdit: versioned ``documentChanges`` where supported."""
    caps = ls.client_capabilities.workspace
    edit_caps = caps.workspace_edit if caps else None
    versioned = bool(edit_caps and edit_caps.document_changes)
    creates = bool(
        edit_caps
        and edit_caps.resource_operations
        and types.ResourceOperationKind.Create in edit_caps.resource_operations
    )
    encoding = ls.documents.encoding
    document_changes: list[Any] = []
    plain: dict[str, list[types.TextEdit]] = {}
    for change in changes:
        if change.create and not (versioned and creates):
            raise RequestFailed(
                f"the editor cannot create files through an edit; create {change.uri} first"
            )
        lines = split_lines(change.text)
        edits = [_text_edit(e, lines, encoding) for e in change.edits]
        if change.create:
            document_changes.append(
                types.CreateFile(
                    uri=change.uri, options=types.CreateFileOptions(ignore_if_exists=True)
                )
            )
        document_changes.append(
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=change.uri, version=change.version
                ),
                edits=edits,
            )
        )
        plain.setdefault(change.uri, []).extend(edits)
    if versioned:
        return types.WorkspaceEdit(document_changes=document_changes)
    return types.WorkspaceEdit(changes=plain)


def _text_edit(edit: actions.Edit, lines: list[str], encoding: str) -> types.TextEdit:
    def position(pos: tuple[int, int]) -> types.Position:
        line, index = pos
        text = content(lines[line]) if line < len(lines) else ""
        return types.Position(line, index_to_column(text, index, encoding) if text else index)

    return types.TextEdit(
        range=types.Range(start=position(edit.start), end=position(edit.end)),
        new_text=edit.text,
    )


@contextlib.asynccontextmanager
async def _progress(ls: FimLanguageServer, title: str) -> AsyncIterator[Callable[[str], None]]:
    """Work-done progress for the action, when the client supports it."""
    window = ls.client_capabilities.window
    token = f"fimls-action-{uuid.uuid4().hex[:12]}"
    created = False
    if window and window.work_done_progress:
        try:
            await asyncio.wait_for(ls.work_done_progress.create_async(token), PROGRESS_TIMEOUT_S)
            created = True
        except Exception as exc:  # noqa: BLE001 - progress is optional
            log.info("window/workDoneProgress/create failed: %s", exc)
    if not created:
        yield lambda message: None
        return
    progress = ls.work_done_progress
    progress.begin(token, types.WorkDoneProgressBegin(title=title, message="starting"))

    def report(message: str) -> None:
        progress.report(token, types.WorkDoneProgressReport(message=message))

    try:
        yield report
    finally:
        progress.end(token, types.WorkDoneProgressEnd())
        progress.tokens.pop(token, None)


#: How long the editor may take to apply (or refuse) an edit the server sends.
APPLY_TIMEOUT_S = 120.0

#: How long the client may take to accept a progress token.
PROGRESS_TIMEOUT_S = 2.0
