"""The ``fimls`` command: serve (default), ``check``."""

from __future__ import annotations

import argparse
import sys

from lsp_server import __version__, logs

DESCRIPTION = "fimls: local AI code completion language server (fill-in-the-middle, in-process)."


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options valid before and after a command (only the main parser sets defaults)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--model", metavar="PATH", default=default(None), help="load this GGUF, not the default"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log more: -v info, -vv debug, -vvv debug for libraries too",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        default=default(None),
        help="append logs to this file instead of stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fimls``."""
    parser = argparse.ArgumentParser(prog="fimls", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fimls {__version__}")
    _add_common(parser, suppress=False)
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="serve over stdin/stdout (default)")
    transport.add_argument("--tcp", action="store_true", help="serve one client over TCP")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser(
        "check", help="start the server like an editor, get one real completion, report timings"
    )
    _add_common(check, suppress=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    logs.configure(args.verbose, args.log_file)
    if args.command == "check":
        from lsp_server.check import main as check_main

        sys.exit(check_main(args.model))

    from lsp_server.server import create_server, run_stdio, run_tcp

    server = create_server(model_path=args.model)
    if args.tcp:
        run_tcp(server, args.host, args.port)
    else:
        run_stdio(server)
