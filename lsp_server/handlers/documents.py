"""Document sync: didOpen, didChange (incremental), didClose."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from lsp_server.errors import DocumentError

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer

log = logging.getLogger(__name__)


def register(ls: FimLanguageServer) -> None:
    """Register the document sync handlers."""
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)


def did_open(ls: FimLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    """Start tracking a document."""
    doc = params.text_document
    ls.documents.open(doc.uri, doc.text, doc.version, doc.language_id)
    ls.parse_document(doc.uri)
    ls.index_document(doc.uri)
    ls.completions.warm_up(ls.documents.get(doc.uri), ls.settings)


def did_change(ls: FimLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    """Apply changes in order; a change that cannot apply is logged and skipped."""
    uri = params.text_document.uri
    try:
        doc = ls.documents.get(uri)
    except DocumentError:
        log.warning("didChange for %s, which is not open: ignored", uri)
        return
    encoding = ls.documents.encoding
    edits = []
    for change in params.content_changes:
        try:
            if isinstance(change, types.TextDocumentContentChangePartial):
                r = change.range
                edits.append(
                    doc.apply_change(
                        (r.start.line, r.start.character),
                        (r.end.line, r.end.character),
                        change.text,
                        encoding,
                    )
                )
                ls.snippets.touch(uri, doc.lines, r.start.line)
            else:
                edits.append(doc.apply_change(None, None, change.text, encoding))
        except DocumentError as exc:
            log.warning("didChange for %s: %s; change skipped", uri, exc)
    ls.edit_syntax(uri, edits)
    if params.text_document.version <= doc.version:
        log.warning(
            "didChange for %s: version %d after %d", uri, params.text_document.version, doc.version
        )
    doc.version = params.text_document.version


def did_close(ls: FimLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    """Forget a document."""
    ls.documents.close(params.text_document.uri)
    ls.syntax.pop(params.text_document.uri, None)
    ls.forget_document(params.text_document.uri)
