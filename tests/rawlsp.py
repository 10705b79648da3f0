"""A raw JSON-RPC peer for tests that must send what no well-behaved client would.

The peer lives in the product (``fimls bench --stress`` counts frames with it); this
module keeps the name the tests import.
"""

from __future__ import annotations

from lsp_server.measure.rawpeer import RawServer

__all__ = ["RawServer"]
