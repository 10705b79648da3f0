"""textDocument/inlineCompletion, and textDocument/completion for clients without it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeGuard

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled

from lsp_server.completion import Suggestion
from lsp_server.errors import DocumentError
from lsp_server.worker import JobCancelled

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer

_WORD_BEFORE = re.compile(r"[\w$]*$")

#: The command an inline item carries; the editor runs it when the user accepts.
ACCEPTED = "fimls.accepted"


def register(ls: FimLanguageServer) -> None:
    """Register inline completion (the fallback is registered at initialize if needed)."""
    ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        inline_completion
    )
    ls.command(ACCEPTED)(accepted)


def register_fallback(ls: FimLanguageServer) -> None:
    """Register ``textDocument/completion`` carrying the suggestion as one item."""
    ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())(completion)


async def inline_completion(
    ls: FimLanguageServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    """Ghost text at the cursor: one item inserted at the position."""
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    suggestion = await _suggest(ls, params.text_document.uri, params.position, invoked)
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    here = types.Range(start=params.position, end=params.position)
    receipt = {"uri": params.text_document.uri, "chars": len(suggestion.text)}
    command = types.Command(title="fimls: accepted", command=ACCEPTED, arguments=[receipt])
    return types.InlineCompletionList(
        items=[types.InlineCompletionItem(insert_text=suggestion.text, range=here, command=command)]
    )


# ``ls`` is typed Any: pygls resolves a command's type hints at run time, where the server
# class is not importable from here.


def accepted(ls: Any, *args: Any) -> None:
    """``fimls.accepted [receipt]``: the user took a suggestion, whole or in part.

    The receipt is the item's own argument; a partial accept adds ``accepted``, the
    characters inserted. Counted in ``fimls/stats`` ``acceptances``; nothing else changes.
    """
    receipt = args[0] if args else None
    if not isinstance(receipt, dict):
        raise JsonRpcInvalidParams(f"{ACCEPTED} needs the item's receipt object as its argument")
    chars = receipt.get("chars")
    taken = receipt.get("accepted", chars)
    if not _count(chars) or not _count(taken) or taken > chars:
        raise JsonRpcInvalidParams(
            f"{ACCEPTED}: 'chars' and 'accepted' must be counts, accepted <= chars (got {receipt})"
        )
    ls.stats.record_acceptance(chars, taken)


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def completion(ls: FimLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    """The whole suggestion as one completion item, a text edit from the cursor."""
    context = params.context
    invoked = context is not None and context.trigger_kind == types.CompletionTriggerKind.Invoked
    suggestion = await _suggest(ls, params.text_document.uri, params.position, invoked)
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    doc = ls.documents.get(params.text_document.uri)
    line = doc.line_text(params.position.line)
    cursor = doc.cursor(params.position.line, params.position.character, ls.documents.encoding)
    word = _WORD_BEFORE.search(line[: cursor.index])
    first_line = suggestion.text.splitlines()[0] if suggestion.text.strip() else suggestion.text
    item = types.CompletionItem(
        label=first_line.strip() or suggestion.text.strip(),
        kind=types.CompletionItemKind.Text,
        detail="fimls",
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown,
            value=f"```{doc.language_id}\n{suggestion.text}\n```",
        ),
        filter_text=(word.group(0) if word else "") + first_line,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(
            range=types.Range(start=params.position, end=params.position),
            new_text=suggestion.text,
        ),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


async def _suggest(
    ls: FimLanguageServer, uri: str, position: types.Position, invoked: bool
) -> Suggestion | None:
    try:
        doc = ls.documents.get(uri)
        cursor = doc.cursor(position.line, position.character, ls.documents.encoding)
    except DocumentError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    try:
        return await ls.completions.suggest(
            doc,
            cursor,
            ls.settings,
            ls.protocol.msg_id,
            syntax=ls.syntax.get(uri),
            invoked=invoked,
        )
    except JobCancelled:
        raise JsonRpcRequestCancelled("superseded by a newer request") from None
