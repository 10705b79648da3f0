"""Logging: to stderr or a file, never to stdout; levels from ``-v`` and the settings."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LEVELS = {
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

_cli_level = logging.WARNING


def configure(verbosity: int = 0, log_file: str | None = None) -> None:
    """Send fimls' logs to ``log_file`` (appending) or stderr; ``-v`` info, ``-vv`` debug.

    Library loggers (pygls logs whole messages at INFO) stay at WARNING unless ``-vvv``.
    """
    global _cli_level
    _cli_level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    logging.getLogger("lsp_server").setLevel(_cli_level)
    rpc = logging.getLogger("pygls.protocol.json_rpc")
    for old in [f for f in rpc.filters if isinstance(f, _DropDeserializeTracebacks)]:
        rpc.removeFilter(old)
    if verbosity < 3:
        rpc.addFilter(_DropDeserializeTracebacks())


class _DropDeserializeTracebacks(logging.Filter):
    """Drop pygls' traceback of params that do not deserialize: fimls logs one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to deserialize message")


def apply_setting(level: str) -> None:
    """Apply the ``fimls.logLevel`` setting; ``-v`` on the command line can only add detail."""
    wanted = _LEVELS.get(level, logging.WARNING)
    logging.getLogger("lsp_server").setLevel(min(wanted, _cli_level))
