"""fimls: a local fill-in-the-middle code completion language server."""

__version__ = "0.1.0"
