"""LSP handlers, one module per area; each module's ``register`` wires its features."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsp_server.handlers import actions, completion, documents, lifecycle

if TYPE_CHECKING:
    from lsp_server.server import FimLanguageServer


def register_all(ls: FimLanguageServer) -> None:
    """Register every handler on the server."""
    lifecycle.register(ls)
    documents.register(ls)
    completion.register(ls)
    actions.register(ls)
