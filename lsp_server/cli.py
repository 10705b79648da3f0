"""The ``fimls`` command: serve (default), ``check``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lsp_server import __version__, logs
from lsp_server.measure.tasks import REPO_SUITES, SUITES

DESCRIPTION = "fimls: local AI code completion language server (fill-in-the-middle, in-process)."


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options valid before and after a command (only the main parser sets defaults)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--model",
        metavar="PATH|NAME",
        default=default(None),
        help="load this GGUF, or a model installed with fimls (qwen2.5-coder-0.5b, the "
        "default; qwen2.5-coder-1.5b with the qwen-1.5b extra)",
    )
    parser.add_argument(
        "--engine",
        choices=["local", "openai", "infill"],
        default=default(None),
        help="where the tokens come from: the in-process model (local, the default), an "
        "inference server's /v1/completions (openai; the default with --engine-url) or "
        "llama-server's /infill (infill)",
    )
    parser.add_argument(
        "--engine-url",
        metavar="URL",
        default=default(None),
        help="the inference server's base URL, e.g. http://gpu-box:8080 (its API key is "
        "read from $FIMLS_API_KEY)",
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

    evaluate = commands.add_parser(
        "eval",
        help="measure completion quality: fill the holes of a suite through the server",
        description="Fill the holes of a suite through `fimls --stdio` and score them: "
        "humaneval-single-line (1,033 tasks), humaneval-multi-line (5,815 tasks), or "
        "repo PATH (holes punched in a local repository), or repo-calls PATH (holes at "
        "calls of functions that another file of the repository defines).",
    )
    _add_common(evaluate, suppress=True)
    evaluate.add_argument("suite", choices=SUITES)
    evaluate.add_argument("path", nargs="?", type=Path, help="repository for the repo suite")
    evaluate.add_argument("--limit", type=int, help="a seeded sample of N tasks (repo: N holes)")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    evaluate.add_argument(
        "--baseline", choices=["raw"], help="answer with the bare model instead of the server"
    )
    evaluate.add_argument(
        "--settings", metavar="JSON", help="fimls settings for the server (a file or JSON text)"
    )
    evaluate.add_argument("--output", type=Path, help="JSON report path")
    evaluate.add_argument(
        "--warm",
        action="store_true",
        help="complete at the end of the line above first, then type the line break and "
        "the cursor line's start: measures answers made from a KV cache left by typing",
    )
    evaluate.add_argument(
        "--timeout", type=float, default=10.0, help="seconds each test program may run"
    )

    prompt = commands.add_parser(
        "prompt",
        help="print the exact prompt the server would send for a position (special tokens marked)",
    )
    _add_common(prompt, suppress=True)
    prompt.add_argument("location", metavar="FILE:LINE:COL", help="1-based line and column")
    prompt.add_argument("--settings", metavar="JSON", help="fimls settings (file or JSON text)")

    bench = commands.add_parser(
        "bench",
        help="measure typing latency: retype code one keystroke at a time through the server",
    )
    _add_common(bench, suppress=True)
    bench.add_argument("--file", type=Path, help="file to retype (default: textwrap.py)")
    bench.add_argument("--functions", type=int, default=4, help="bodies to retype (default 4)")
    bench.add_argument("--every", type=int, default=8, help="also pause every N keys (default 8)")
    bench.add_argument(
        "--interval-ms", type=float, default=100.0, help="time between keystrokes (default 100)"
    )
    bench.add_argument("--settings", metavar="JSON", help="fimls settings (file or JSON text)")
    bench.add_argument(
        "--compare",
        metavar="SETTINGS",
        help="run a second configuration and print ratios: fimls settings (JSON text or "
        "file); `no-cache` switches off every `cache.*` feature (the server as it was "
        "before them: prefix reuse only); an http(s):// URL runs the same settings on that "
        "inference server (fimls.engine.kind openai)",
    )
    bench.add_argument("--output", type=Path, help="JSON report path")
    bench.add_argument(
        "--stress",
        action="store_true",
        help="load instead: type three documents at once, --requests inline requests in "
        "--seconds, with cancellations; check that every request is answered exactly once "
        "and report queue depth, latency and RSS drift (--settings, --model and --output "
        "apply; exits 1 when a check fails)",
    )
    bench.add_argument(
        "--requests", type=int, default=1000, help="--stress: inline requests (default 1000)"
    )
    bench.add_argument(
        "--seconds", type=float, default=10.0, help="--stress: over this many seconds (default 10)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    logs.configure(args.verbose, args.log_file)
    engine = engine_args(args)
    if args.command == "check":
        from lsp_server.check import main as check_main

        sys.exit(check_main(args.model, engine))
    if args.command == "eval":
        sys.exit(_eval(args))
    if args.command == "bench":
        sys.exit(_bench(args))
    if args.command == "prompt":
        from lsp_server.show_prompt import main as prompt_main

        sys.exit(prompt_main(args.location, args.model, load_settings(args.settings)))

    from lsp_server.server import create_server, run_stdio, run_tcp

    server = create_server(model_path=args.model, engine=engine)
    if args.tcp:
        run_tcp(server, args.host, args.port)
    else:
        run_stdio(server)


def engine_args(args: argparse.Namespace) -> dict[str, str]:
    """``fimls.engine`` from ``--engine`` and ``--engine-url`` (a URL alone means openai)."""
    engine: dict[str, str] = {}
    if args.engine_url:
        engine["url"] = args.engine_url
        engine["kind"] = args.engine or "openai"
    elif args.engine:
        engine["kind"] = args.engine
    return engine


def server_args(engine: dict[str, str]) -> list[str]:
    """The command-line options that give a server process the same engine."""
    out = ["--engine", engine["kind"]] if "kind" in engine else []
    return out + (["--engine-url", engine["url"]] if "url" in engine else [])


def compared_settings(value: str | None, base: dict[str, Any] | None) -> dict[str, Any] | None:
    """The settings of ``fimls bench --compare``: JSON, ``no-cache``, or an engine's URL."""
    from lsp_server.measure.bench import NO_CACHE

    if value is None:
        return None
    if value == "no-cache":
        return NO_CACHE
    if value.startswith(("http://", "https://")):
        from lsp_server.config import merge

        merged = merge(base or {}, {"engine": {"kind": "openai", "url": value}})
        assert isinstance(merged, dict)
        return merged
    return load_settings(value)


def load_settings(value: str | None) -> dict[str, Any] | None:
    """Read ``--settings``: a JSON file, or JSON text."""
    if value is None:
        return None
    path = Path(value)
    text = path.read_text(encoding="utf-8") if path.exists() else value
    data = json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit("--settings must be a JSON object")
    return data


def _eval(args: argparse.Namespace) -> int:
    import asyncio

    from lsp_server.measure.evaluate import (
        RawAnswerer,
        ServerAnswerer,
        build_tasks,
        run_eval,
        write_report,
    )
    from lsp_server.measure.sandbox import Limits

    in_repo = args.suite in REPO_SUITES
    if in_repo and args.path is None:
        raise SystemExit(f"fimls eval {args.suite} needs a PATH")
    root = (args.path or Path.cwd()).resolve()
    settings = load_settings(args.settings)
    try:
        tasks = build_tasks(args.suite, root if in_repo else None, args.limit, args.seed)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"fimls eval: {exc}", file=sys.stderr)
        return 2
    answerer = (
        RawAnswerer(args.model)
        if args.baseline == "raw"
        else ServerAnswerer(root, settings, args.model, warm=args.warm)
    )
    limits = Limits(wall_seconds=args.timeout, cpu_seconds=max(1, int(args.timeout)))
    report = asyncio.run(
        run_eval(
            args.suite,
            answerer,
            tasks,
            seed=args.seed,
            limit=args.limit,
            settings=settings,
            limits=limits,
        )
    )
    output = args.output or Path(f"fimls-eval-{args.suite}-{answerer.name}.json")
    write_report(report, output)
    print(report.line())
    print(f"report: {output}", file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import asyncio

    if args.stress:
        return _stress(args)
    from lsp_server.measure.bench import DEFAULT_FILE, build_trace, run_bench

    path = args.file or DEFAULT_FILE
    try:
        build_trace(path, args.functions, args.every)
    except (OSError, ValueError, SyntaxError) as exc:
        print(f"fimls bench: {exc}", file=sys.stderr)
        return 2
    table = asyncio.run(
        run_bench(
            path,
            functions=args.functions,
            every=args.every,
            interval_ms=args.interval_ms,
            settings=load_settings(args.settings),
            compare=compared_settings(args.compare, load_settings(args.settings)),
            model=args.model,
            output=args.output,
        )
    )
    print(table)
    return 0


def _stress(args: argparse.Namespace) -> int:
    import asyncio

    from lsp_server.measure.stress import format_stress, run_stress, write_report

    if args.requests < 1 or args.seconds <= 0:
        print("fimls bench --stress: --requests and --seconds must be positive", file=sys.stderr)
        return 2
    result = asyncio.run(
        run_stress(
            args.requests, args.seconds, settings=load_settings(args.settings), model=args.model
        )
    )
    if args.output is not None:
        write_report(result, args.output)
    print(format_stress(result))
    return 0 if result.ok else 1
