"""``fimls bench``: replay a person retyping code, one keystroke at a time, over stdio.

The trace takes function bodies out of a file (by default a module of the Python
standard library) and types them back: at each new line the editor inserts the line
break and the indentation, then every character is one ``didChange``. After every
keystroke an inline completion is requested and the previous one, if still pending, is
cancelled, as an editor does. At pause points (each new line, and every N keys) the
bench waits for the answer and measures its latency and whether the person would accept
it: its first line is a non-empty prefix of what they type next.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
import json
import re
import sys
import textwrap
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from lsp_server.documents import TextDocument, index_to_column
from lsp_server.lsp_client import FimlsClient, inline_params, server_command
from lsp_server.progress import ProgressBar
from lsp_server.stats import percentile

DEFAULT_FILE = Path(textwrap.__file__)

#: ``--compare no-cache``: every ``cache.*`` feature off (KV reuse of the common prefix
#: stays: it is llama.cpp's own behaviour, with or without fimls).
NO_CACHE: dict[str, Any] = {
    "cache": {
        "lineAfterMiddle": False,
        "middleTokens": 0,
        "anchorLines": 1,
        "shiftedReuse": False,
        "completions": False,
        "prefetch": False,
        "warmup": False,
        "documents": 0,
        "timeBudgetMs": 0,
    }
}


@dataclass(frozen=True)
class Key:
    """One keystroke: insert ``text`` at (line, column) (column in code points)."""

    line: int
    column: int
    text: str
    pause: bool
    upcoming: str  # what the person types from here to the end of the body


@dataclass(frozen=True)
class Trace:
    """A document with bodies removed and the keystrokes that type them back."""

    path: str
    language_id: str
    document: str
    keys: tuple[Key, ...]
    bodies: int


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def python_bodies(source: str) -> list[tuple[int, int]]:
    """Function bodies as (first line, end line exclusive), 0-based, docstrings kept."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]
        if not body:
            continue
        first = body[0].lineno - 1
        end = body[-1].end_lineno or body[-1].lineno
        spans.append((first, end))
    return sorted(spans)


_OPENER = re.compile(r"(\{|:)\s*$")


def indented_bodies(source: str) -> list[tuple[int, int]]:
    """Bodies of blocks opened by a line ending in ``{`` or ``:`` (any language)."""
    lines = source.split("\n")
    spans = []
    for i, line in enumerate(lines[:-1]):
        if not _OPENER.search(line):
            continue
        base = len(_indent(line))
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or len(_indent(lines[end])) > base):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        if end > i + 1 and len(_indent(lines[i + 1])) > base:
            spans.append((i + 1, end))
    # keep outermost blocks only
    out: list[tuple[int, int]] = []
    for span in spans:
        if not out or span[0] >= out[-1][1]:
            out.append(span)
    return out


def build_trace(path: Path, functions: int, every: int) -> Trace:
    """Choose up to ``functions`` bodies spread over the file and the keys to retype them."""
    source = path.read_text(encoding="utf-8")
    language = "python" if path.suffix == ".py" else path.suffix.lstrip(".")
    try:
        return trace_from_source(path.name, source, language, functions, every)
    except _NoBodies:
        raise ValueError(f"no function bodies of 3 to 25 lines in {path}") from None


class _NoBodies(ValueError):
    pass


def trace_from_source(name: str, source: str, language: str, functions: int, every: int) -> Trace:
    """The trace of ``source`` (bodies found with ``ast`` when ``language`` is python)."""
    lines = source.split("\n")
    spans = python_bodies(source) if language == "python" else indented_bodies(source)
    fit = [(a, b) for a, b in spans if 3 <= b - a <= 25 and sum(map(len, lines[a:b])) <= 1200]
    fit = [(a, b) for a, b in fit if not _overlaps(a, b, fit)]
    if not fit:
        raise _NoBodies(f"no function bodies of 3 to 25 lines in {name}")
    step = max(1, len(fit) // max(functions, 1))
    chosen = fit[::step][:functions]
    removed = {i for a, b in chosen for i in range(a, b)}
    document = "\n".join(line for i, line in enumerate(lines) if i not in removed)
    keys: list[Key] = []
    for a, b in chosen:
        # bodies are typed in order, so the lines above this one are all back in place
        row, column = a - 1, len(lines[a - 1])
        body = lines[a:b]
        typed_text = "".join("\n" + line for line in body)
        done = 0
        for line in body:
            indent = _indent(line)
            keys.append(Key(row, column, "\n" + indent, True, typed_text[done + 1 + len(indent) :]))
            done += 1 + len(indent)
            row, column = row + 1, len(indent)
            for n, ch in enumerate(line[len(indent) :], start=1):
                done += 1
                pause = n % every == 0
                keys.append(Key(row, column, ch, pause, typed_text[done:]))
                column += 1
    return Trace(name, language, document, tuple(keys), len(chosen))


def _overlaps(a: int, b: int, spans: list[tuple[int, int]]) -> bool:
    return any(a2 <= a and b <= b2 and (a2, b2) != (a, b) for a2, b2 in spans)


@dataclass
class BenchResult:
    """What one configuration did on the trace."""

    name: str
    settings: dict[str, Any] | None
    keystrokes: int = 0
    pauses: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    suggested: int = 0
    sent: int = 0
    cancelled: int = 0
    errors: int = 0
    generations: int = 0
    costed_generations: int = 0  # those whose evaluated and reused tokens are known
    evaluated_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    evaluated_p50: float | None = None  # prompt tokens evaluated per answered request
    memory_answers: int = 0
    shifted_reuses: int = 0
    phases_ms: dict[str, Any] = field(default_factory=dict)
    rss_mib: float | None = None
    seconds: float = 0.0
    #: what a remote engine counted of itself (``fimls/stats`` ``remote``), None if local
    remote: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The figures reported for this configuration."""
        gens = max(self.generations, 1)
        return {
            "pauseLatencyMsP50": round(percentile(self.latencies_ms, 50), 1),
            "pauseLatencyMsP95": round(percentile(self.latencies_ms, 95), 1),
            "wouldAccept": round(self.accepted / max(self.pauses, 1), 4),
            "suggestedAtPauses": round(self.suggested / max(self.pauses, 1), 4),
            "requests": self.sent,
            "cancelled": self.cancelled,
            "errors": self.errors,
            "evaluatedTokensPerAnswerP50": self.evaluated_p50,
            "memoryAnswers": self.memory_answers,
            "shiftedReuses": self.shifted_reuses,
            **{f"{phase}MsP95": value["p95"] for phase, value in self.phases_ms.items()},
            "evaluatedTokensPerRequest": _per(self.evaluated_tokens, self.costed_generations),
            "reusedTokensPerRequest": _per(self.reused_tokens, self.costed_generations),
            "generatedTokensPerRequest": round(self.generated_tokens / gens, 1),
            "serverRssMiB": self.rss_mib,
            "engine": self.remote["url"] if self.remote else "local",
            "engineRequests": self.remote["requests"] if self.remote else None,
            "engineFirstChunkMsP50": self.remote["firstChunkMs"]["p50"] if self.remote else None,
            "engineTotalMsP50": self.remote["totalMs"]["p50"] if self.remote else None,
            "engineErrors": sum(self.remote["errors"].values()) if self.remote else None,
        }


async def replay(
    trace: Trace,
    name: str,
    settings: dict[str, Any] | None,
    model: str | None,
    interval_ms: float,
    progress: bool = True,
) -> BenchResult:
    """Start a server with ``settings`` and type the trace into it."""
    result = BenchResult(name=name, settings=settings)
    client = FimlsClient()
    args = ["--stdio"] + (["--model", model] if model else [])
    await client.start(server_command(*args))
    started = time.perf_counter()
    try:
        await client.handshake(initialization_options=settings)
        status = await client.wait_model()
        if status.get("state") != "ready":
            raise RuntimeError(f"the model did not load: {status.get('message')}")
        await _type(client, trace, result, interval_ms, progress)
        stats = await client.stats()
        engine = stats["engine"]
        result.generations = engine["generations"]
        result.costed_generations = engine["costedGenerations"]
        result.evaluated_tokens = engine["evaluatedTokens"]
        result.reused_tokens = engine["reusedTokens"]
        result.generated_tokens = engine["generatedTokens"]
        result.evaluated_p50 = stats["evaluatedTokensPerAnswer"]["p50"]
        result.memory_answers = stats["cache"]["memoryExact"] + stats["cache"]["memoryTyped"]
        result.shifted_reuses = stats["cache"]["shiftedReuses"]
        result.phases_ms = stats["phasesMs"]
        result.remote = stats.get("remote")
        result.rss_mib = rss_mib(client.process.pid)
    finally:
        result.seconds = time.perf_counter() - started
        await client.stop()
    return result


async def _type(
    client: FimlsClient, trace: Trace, result: BenchResult, interval_ms: float, progress: bool
) -> None:
    uri = (Path.cwd() / f"fimls_bench_{trace.path}").as_uri()
    doc = TextDocument(uri, trace.document, 1, trace.language_id)
    client.open(uri, trace.document, trace.language_id)
    ids = itertools.count(1)
    pending: tuple[int, Future[Any]] | None = None
    outstanding: list[Future[Any]] = []
    bar = ProgressBar(f"bench [{result.name}]") if progress else None
    for n, key in enumerate(trace.keys, start=1):
        line_text = doc.line_text(key.line)
        character = index_to_column(line_text, key.column, "utf-16")
        doc.apply_change((key.line, character), (key.line, character), key.text, "utf-16")
        doc.version += 1
        client.change(uri, doc.version, key.text, (key.line, character), (key.line, character))
        if pending is not None and not pending[1].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[0]))
        row = key.line + key.text.count("\n")
        col_text = doc.line_text(row)
        col = len(col_text) if "\n" in key.text else key.column + len(key.text)
        msg_id = next(ids)
        sent = time.perf_counter()
        future = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            inline_params(uri, row, index_to_column(col_text, col, "utf-16")),
            msg_id=msg_id,
        )
        result.sent += 1
        result.keystrokes += 1
        outstanding.append(future)
        pending = (msg_id, future)
        if key.pause:
            result.pauses += 1
            try:
                answer = await asyncio.wrap_future(future)
            except Exception:
                answer = None
            result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            first = _first_line(answer)
            if first:
                result.suggested += 1
                if key.upcoming.startswith(first):
                    result.accepted += 1
        await asyncio.sleep(interval_ms / 1000)
        if bar:
            bar(n, len(trace.keys))
    await asyncio.gather(*(asyncio.wrap_future(f) for f in outstanding), return_exceptions=True)
    for future in outstanding:
        exc = future.exception()
        if exc is None:
            continue
        if getattr(exc, "code", None) == -32800:
            result.cancelled += 1
        else:
            result.errors += 1


def _per(total: int, count: int) -> float | None:
    """A total per counted item, None when nothing was counted."""
    return round(total / count, 1) if count else None


def _first_line(answer: Any) -> str:
    if answer is None:
        return ""
    items = answer.items if isinstance(answer, types.InlineCompletionList) else answer
    if not items:
        return ""
    text = items[0].insert_text
    text = text if isinstance(text, str) else text.value
    return str(text.split("\n", 1)[0])


def rss_mib(pid: int) -> float | None:
    """The resident memory of a process, in MiB (None when it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


ROWS = [
    ("pause latency p50", "pauseLatencyMsP50", "{:.0f} ms"),
    ("pause latency p95", "pauseLatencyMsP95", "{:.0f} ms"),
    ("would accept", "wouldAccept", "{:.1%}"),
    ("suggestion shown at pause", "suggestedAtPauses", "{:.1%}"),
    ("requests sent", "requests", "{}"),
    ("requests cancelled", "cancelled", "{}"),
    ("errors", "errors", "{}"),
    ("prompt tokens evaluated / answer, median", "evaluatedTokensPerAnswerP50", "{:.0f}"),
    ("answers from memory", "memoryAnswers", "{}"),
    ("model runs with a moved suffix", "shiftedReuses", "{}"),
    ("model answers p95: queued", "queueMsP95", "{:.0f} ms"),
    ("model answers p95: prefill", "prefillMsP95", "{:.0f} ms"),
    ("model answers p95: decode", "decodeMsP95", "{:.0f} ms"),
    ("model answers p95: post-process", "postprocessMsP95", "{:.0f} ms"),
    ("prompt tokens evaluated / model run", "evaluatedTokensPerRequest", "{:.1f}"),
    ("prompt tokens reused / model run", "reusedTokensPerRequest", "{:.1f}"),
    ("tokens generated / model run", "generatedTokensPerRequest", "{:.1f}"),
    ("server RSS at end", "serverRssMiB", "{:.0f} MiB"),
    ("engine", "engine", "{}"),
    ("engine requests", "engineRequests", "{}"),
    ("engine first chunk p50", "engineFirstChunkMsP50", "{:.0f} ms"),
    ("engine whole answer p50", "engineTotalMsP50", "{:.0f} ms"),
    ("engine errors", "engineErrors", "{}"),
]


def format_table(trace: Trace, results: list[BenchResult], interval_ms: float) -> str:
    """Print the figures, one column per configuration, and ratios against the first."""
    header = (
        f"fimls bench: {trace.path}, {trace.bodies} bodies retyped, {len(trace.keys)} "
        f"keystrokes every {interval_ms:.0f} ms, {sum(k.pause for k in trace.keys)} pauses"
    )
    names = [r.name for r in results]
    summaries = [r.summary() for r in results]
    columns = [*names, *(["ratio"] if len(results) > 1 else [])]
    rows = [["", *columns]]
    for label, key, fmt in ROWS:
        values = [s[key] for s in summaries]
        cells = [fmt.format(v) if v is not None else "-" for v in values]
        if len(results) > 1:
            base, other = values[0], values[1]
            ratio = isinstance(base, (int, float)) and base and isinstance(other, (int, float))
            cells.append(f"{other / base:.2f}x" if ratio else "-")
        rows.append([label, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [header] + [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines)


async def run_bench(
    path: Path,
    *,
    functions: int,
    every: int,
    interval_ms: float,
    settings: dict[str, Any] | None,
    compare: dict[str, Any] | None,
    model: str | None,
    output: Path | None,
) -> str:
    """Run the trace on the base configuration (and the compared one); return the table."""
    trace = build_trace(path, functions, every)
    results = [await replay(trace, "base", settings, model, interval_ms)]
    if compare is not None:
        results.append(await replay(trace, "compare", compare, model, interval_ms))
    table = format_table(trace, results, interval_ms)
    if output is not None:
        data = {
            "file": str(path),
            "functions": trace.bodies,
            "keystrokes": len(trace.keys),
            "intervalMs": interval_ms,
            "results": [
                {**asdict(r), "summary": r.summary(), "latencies_ms": r.latencies_ms}
                for r in results
            ],
        }
        output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"report: {output}", file=sys.stderr)
    return table
