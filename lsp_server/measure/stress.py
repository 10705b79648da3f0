"""``fimls bench --stress``: three documents typed at once, far faster than a person.

The load: ``fimls --stdio`` gets three documents (a Python module of the standard
library, a TypeScript and a Go file) whose function bodies are typed back, keystrokes
interleaved across the documents at ``requests / seconds`` a second (1,000 in 10 s by
default). Each keystroke is one incremental ``didChange`` and one inline completion
request. Half the time (seeded) the previous request of that document, if still
unanswered, is cancelled with ``$/cancelRequest`` first, as editors do; otherwise the
server's own latest-wins rule supersedes it (RequestCancelled, -32800). Every 50 keys a
``fimls/stats`` request and a ``textDocument/codeAction`` listing go along. A document
whose bodies are all typed is reverted with one full-text change and typed again.

Before the measured phase a few seconds of the same typing warm the server up (not
counted, but checked like the rest). Afterwards the bench waits for every answer (up to
``drain_timeout``), asks for one ordinary completion in a fresh document, and shuts the
server down. The peer (:mod:`lsp_server.measure.rawpeer`) counts every frame, so a
request answered twice, never, or an answer without an id cannot hide; the server's RSS
is sampled every half second.

The run passes when no request was answered twice or left unanswered, no answer lacked
an id, the newest request of each document got a result, the final completion is not
empty and the server exited with code 0. Latency and RSS drift are reported, not judged.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsp_server.documents import TextDocument, index_to_column
from lsp_server.measure.bench import DEFAULT_FILE, Trace, rss_mib, trace_from_source
from lsp_server.measure.rawpeer import RawServer, Stderr
from lsp_server.measure.stress_sources import GO, TYPESCRIPT
from lsp_server.progress import ProgressBar
from lsp_server.stats import percentile

REQUEST_CANCELLED = -32800
INLINE = "textDocument/inlineCompletion"
#: every this many keystrokes, a ``fimls/stats`` and a code action listing go along
OTHER_EVERY = 50
#: the final, ordinary completion: a fresh document where the answer is not in doubt
FINAL_URI = "file:///fimls-stress/final_check.py"
FINAL_TEXT = "def add(a, b):\n    return \n"
FINAL_POSITION = (1, 11)
RSS_INTERVAL = 0.5

CAPABILITIES: dict[str, Any] = {
    "general": {"positionEncodings": ["utf-16"]},
    "textDocument": {"inlineCompletion": {}, "codeAction": {"dataSupport": True}},
}


def documents() -> list[tuple[str, Trace]]:
    """The three documents typed into: (URI, trace), every function body of each."""
    sources = [
        (DEFAULT_FILE.name, DEFAULT_FILE.read_text(encoding="utf-8"), "python"),
        ("tasks.ts", TYPESCRIPT, "typescript"),
        ("inventory.go", GO, "go"),
    ]
    return [
        (f"file:///fimls-stress/{name}", trace_from_source(name, source, language, 100, 8))
        for name, source, language in sources
    ]


class Typist:
    """Types one document's trace, keeping a copy of the text for positions."""

    def __init__(self, uri: str, trace: Trace) -> None:
        self.uri = uri
        self.trace = trace
        self.doc = TextDocument(uri, trace.document, 1, trace.language_id)
        self.next_key = 0
        self.reverts = 0
        self.pending: Sent | None = None  # the last inline request sent for this document

    def open(self, peer: RawServer) -> None:
        """Send ``didOpen`` with the text the bodies are missing from."""
        peer.open(self.uri, self.trace.document, self.trace.language_id)

    def type_key(self, peer: RawServer) -> tuple[int, int]:
        """Send the next keystroke's ``didChange``; return the cursor after it (UTF-16)."""
        if self.next_key == len(self.trace.keys):
            # everything typed: revert the file, as an editor does, and type it again
            self.doc.apply_change(None, None, self.trace.document, "utf-16")
            self.doc.version += 1
            self._change({"text": self.trace.document}, peer)
            self.next_key = 0
            self.reverts += 1
        key = self.trace.keys[self.next_key]
        self.next_key += 1
        character = index_to_column(self.doc.line_text(key.line), key.column, "utf-16")
        start = {"line": key.line, "character": character}
        self.doc.apply_change((key.line, character), (key.line, character), key.text, "utf-16")
        self.doc.version += 1
        self._change({"range": {"start": start, "end": start}, "text": key.text}, peer)
        row = key.line + key.text.count("\n")
        row_text = self.doc.line_text(row)
        column = len(row_text) if "\n" in key.text else key.column + len(key.text)
        return row, index_to_column(row_text, column, "utf-16")

    def _change(self, change: dict[str, Any], peer: RawServer) -> None:
        peer.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": self.doc.version},
                "contentChanges": [change],
            },
        )


@dataclass
class Sent:
    """One request the stress sent."""

    id: int
    method: str
    phase: str  # warm-up | measured | final
    at: float
    document: int | None = None
    cancel_sent: bool = False  # the stress sent ``$/cancelRequest`` for it
    answer: str | None = None  # result | error code | None (unanswered)
    latency_ms: float | None = None  # until the (first) answer arrived


@dataclass
class StressResult:
    """What the stress run sent, what came back, and the server's memory over time."""

    requests: int
    seconds: float
    documents: list[str]
    warmup_seconds: float
    sent: list[Sent] = field(default_factory=list)
    cancels_sent: int = 0  # in the measured phase
    reverts: int = 0
    send_seconds: float = 0.0  # how long the measured phase took to send
    drain_seconds: float = 0.0  # from its last request to its last answer
    answered_twice: int = 0
    unanswered: list[int] = field(default_factory=list)
    without_id: int = 0
    results: int = 0
    cancelled: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # code -> count (not -32800)
    latencies_ms: list[float] = field(default_factory=list)
    #: RequestCancelled answers: after the stress's $/cancelRequest, or superseded
    cancelled_latencies_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"client": [], "superseded": []}
    )
    newest: list[int] = field(default_factory=list)  # newest request of each document
    newest_served: list[bool] = field(default_factory=list)
    worker: dict[str, int] = field(default_factory=dict)  # fimls/stats "worker"
    server_requests: dict[str, Any] = field(default_factory=dict)  # fimls/stats "requests"
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (s, MiB)
    rss_after_warmup: float | None = None
    rss_end: float | None = None
    final_text: str | None = None
    exit_code: int | None = None
    error: str | None = None  # why the run stopped early

    def measured(self, method: str | None = None) -> list[Sent]:
        """The measured phase's requests (of one method)."""
        return [s for s in self.sent if s.phase == "measured" and method in (None, s.method)]

    @property
    def rss_max(self) -> float | None:
        """The largest RSS sampled."""
        return max((mib for _, mib in self.rss_samples), default=None)

    @property
    def rss_drift(self) -> float | None:
        """RSS at the end against after warm-up, in percent."""
        if not self.rss_after_warmup or self.rss_end is None:
            return None
        return (self.rss_end - self.rss_after_warmup) / self.rss_after_warmup * 100

    def failures(self) -> list[str]:
        """Why the run fails; empty when it passes."""
        out = []
        if self.error:
            out.append(self.error)
        if self.answered_twice:
            out.append(f"{self.answered_twice} answered twice")
        if self.unanswered:
            out.append(f"{len(self.unanswered)} unanswered")
        if self.without_id:
            out.append(f"{self.without_id} responses without id")
        if not all(self.newest_served) or len(self.newest_served) != len(self.documents):
            out.append("the newest request of a document got no result")
        if not self.final_text:
            out.append("the final completion is empty")
        if self.exit_code != 0:
            out.append(f"server exit code {self.exit_code}")
        return out

    @property
    def ok(self) -> bool:
        """Whether the run passes."""
        return not self.failures()

    def summary(self) -> dict[str, Any]:
        """The reported figures (camelCase, as in the JSON report)."""
        inline = self.measured(INLINE)
        return {
            "inlineRequests": len(inline),
            "otherRequests": len(self.measured()) - len(inline),
            "sendSeconds": round(self.send_seconds, 2),
            "cancelRequestsSent": self.cancels_sent,
            "reverts": self.reverts,
            "answeredWithResult": self.results,
            "answeredRequestCancelled": self.cancelled,
            "otherErrors": self.errors,
            "answeredTwice": self.answered_twice,
            "unanswered": len(self.unanswered),
            "responsesWithoutId": self.without_id,
            "newestServed": sum(self.newest_served),
            "documents": len(self.documents),
            "queuedMax": self.worker.get("queuedMax"),
            "liveMax": self.worker.get("liveMax"),
            "resultLatencyMsP50": round(percentile(self.latencies_ms, 50), 1),
            "resultLatencyMsP95": round(percentile(self.latencies_ms, 95), 1),
            **{
                f"{cause}CancelledLatencyMsP{q}": round(percentile(values, q), 1)
                for cause, values in self.cancelled_latencies_ms.items()
                for q in (50, 95)
            },
            "drainSeconds": round(self.drain_seconds, 2),
            "rssAfterWarmupMiB": self.rss_after_warmup,
            "rssEndMiB": self.rss_end,
            "rssMaxMiB": self.rss_max,
            "rssDriftPercent": None if self.rss_drift is None else round(self.rss_drift, 2),
            "finalCompletion": self.final_text,
            "exitCode": self.exit_code,
            "ok": self.ok,
            "failures": self.failures(),
        }


async def run_stress(
    requests: int = 1000,
    seconds: float = 10.0,
    *,
    settings: dict[str, Any] | None = None,
    model: str | None = None,
    warmup_seconds: float = 3.0,
    drain_timeout: float = 120.0,
    cancel_share: float = 0.5,
    seed: int = 0,
    server_args: tuple[str, ...] = (),
    stderr: Stderr = None,
    progress: bool = True,
) -> StressResult:
    """Start a server, load it with typing in three documents, and check every answer."""
    docs = documents()
    result = StressResult(requests, seconds, [t.path for _, t in docs], warmup_seconds)
    args = [*(["--model", model] if model else []), *server_args]
    peer = await RawServer.start(*args, stderr=stderr)
    sampler = asyncio.ensure_future(_sample_rss(peer.pid, result.rss_samples))
    typists = [Typist(uri, trace) for uri, trace in docs]
    try:
        await _drive(peer, typists, result, settings, drain_timeout, cancel_share, seed, progress)
    except (asyncio.TimeoutError, ConnectionError, OSError, RuntimeError) as exc:
        result.error = f"stopped early: {type(exc).__name__}: {exc}"
    finally:
        sampler.cancel()
        result.reverts = sum(t.reverts for t in typists)
        result.exit_code = await peer.close(timeout=30.0)
        _tally(peer, result)
    return result


async def _drive(
    peer: RawServer,
    typists: list[Typist],
    result: StressResult,
    settings: dict[str, Any] | None,
    drain_timeout: float,
    cancel_share: float,
    seed: int,
    progress: bool,
) -> None:
    await peer.initialize(CAPABILITIES, **(settings or {}))
    status = await peer.wait_until(lambda: _model_state(peer), timeout=600.0)
    if status.get("state") != "ready":
        raise RuntimeError(f"the model did not load: {status.get('message')}")
    for typist in typists:
        typist.open(peer)
    rng = random.Random(seed)
    interval = result.seconds / max(result.requests, 1)
    warmup_keys = round(result.warmup_seconds / interval)
    if warmup_keys:
        await _type(peer, typists, result, "warm-up", warmup_keys, interval, rng, cancel_share)
        await _drain(peer, result, "warm-up", drain_timeout)
    result.rss_after_warmup = rss_mib(peer.pid)
    bar = ProgressBar("stress") if progress else None
    started = time.perf_counter()
    await _type(
        peer, typists, result, "measured", result.requests, interval, rng, cancel_share, bar
    )
    result.send_seconds = time.perf_counter() - started
    result.drain_seconds = await _drain(peer, result, "measured", drain_timeout)
    result.rss_end = rss_mib(peer.pid)
    result.newest = [t.pending.id for t in typists if t.pending is not None]

    peer.open(FINAL_URI, FINAL_TEXT)
    final = _request(
        peer, result, INLINE, "final", peer.inline_params(FINAL_URI, *FINAL_POSITION, 1)
    )
    answer = await peer.response(final.id, timeout=drain_timeout)
    result.final_text = _first_text(answer)
    stats = await peer.response(_request(peer, result, "fimls/stats", "final").id, drain_timeout)
    reply = stats.get("result") or {}
    result.worker = reply.get("worker", {})
    result.server_requests = reply.get("requests", {})


def _model_state(peer: RawServer) -> dict[str, Any] | None:
    for note in peer.notifications:
        params = note.get("params") or {}
        if note["method"] == "fimls/status" and params.get("state") in ("ready", "error"):
            return dict(params)
    return None


async def _type(
    peer: RawServer,
    typists: list[Typist],
    result: StressResult,
    phase: str,
    keys: int,
    interval: float,
    rng: random.Random,
    cancel_share: float,
    bar: ProgressBar | None = None,
) -> None:
    """Send ``keys`` keystrokes round the documents, one every ``interval`` seconds."""
    start = time.perf_counter()
    for n in range(keys):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif n % 20 == 0:
            await asyncio.sleep(0)  # behind schedule: still let answers in
        which = n % len(typists)
        typist = typists[which]
        row, character = typist.type_key(peer)
        pending = typist.pending
        if pending is not None and pending.id not in peer.responses and rng.random() < cancel_share:
            peer.notify("$/cancelRequest", {"id": pending.id})
            pending.cancel_sent = True
            result.cancels_sent += phase == "measured"
        params = peer.inline_params(typist.uri, row, character)
        typist.pending = _request(peer, result, INLINE, phase, params, which)
        if n % OTHER_EVERY == OTHER_EVERY // 2:
            _request(peer, result, "fimls/stats", phase)
        elif n % OTHER_EVERY == OTHER_EVERY - 1:
            here = {"line": row, "character": character}
            params = {
                "textDocument": {"uri": typist.uri},
                "range": {"start": here, "end": here},
                "context": {"diagnostics": []},
            }
            _request(peer, result, "textDocument/codeAction", phase, params, which)
        if bar is not None and (n % 10 == 9 or n == keys - 1):
            bar(n + 1, keys)


def _request(
    peer: RawServer,
    result: StressResult,
    method: str,
    phase: str,
    params: Any = None,
    document: int | None = None,
) -> Sent:
    sent = Sent(int(peer.request(method, params)), method, phase, time.perf_counter(), document)
    result.sent.append(sent)
    return sent


async def _drain(peer: RawServer, result: StressResult, phase: str, timeout: float) -> float:
    """Wait until the phase's requests are all answered (or ``timeout``); return the wait."""
    waiting = [s.id for s in result.sent if s.phase == phase]
    last_sent = max((s.at for s in result.sent if s.phase == phase), default=time.perf_counter())
    deadline = time.perf_counter() + timeout
    while True:
        waiting = [i for i in waiting if i not in peer.responses]
        if not waiting or time.perf_counter() > deadline or peer.proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    answered = [
        peer.arrived[s.id] for s in result.sent if s.phase == phase and s.id in peer.arrived
    ]
    return max(0.0, max(answered, default=last_sent) - last_sent)


def _tally(peer: RawServer, result: StressResult) -> None:
    """Count what came back for every request sent."""
    result.answered_twice = len(peer.answered_twice)
    result.without_id = len(peer.without_id) + len(peer.missing_id)
    result.unanswered = [s.id for s in result.sent if s.id not in peer.responses]
    for sent in result.sent:
        reply = peer.responses.get(sent.id)
        if reply is not None:
            error = reply.get("error")
            sent.answer = "result" if error is None else str(error.get("code"))
            sent.latency_ms = round((peer.arrived[sent.id] - sent.at) * 1000, 1)
    errors: Counter[str] = Counter()
    for sent in result.measured():
        if sent.answer is None or sent.latency_ms is None:
            continue
        if sent.answer == "result":
            if sent.method == INLINE:
                result.results += 1
                result.latencies_ms.append(sent.latency_ms)
        elif sent.method == INLINE and sent.answer == str(REQUEST_CANCELLED):
            result.cancelled += 1
            cause = "client" if sent.cancel_sent else "superseded"
            result.cancelled_latencies_ms[cause].append(sent.latency_ms)
        else:
            errors[f"{sent.method} {sent.answer}"] += 1
    result.errors = dict(errors)
    result.newest_served = [
        msg_id in peer.responses and "result" in peer.responses[msg_id] for msg_id in result.newest
    ]


def _first_text(answer: dict[str, Any]) -> str | None:
    items = (answer.get("result") or {}).get("items") or []
    if not items:
        return None
    text = items[0].get("insertText")
    if isinstance(text, dict):
        text = text.get("value")
    return text if isinstance(text, str) else None


async def _sample_rss(pid: int, samples: list[tuple[float, float]]) -> None:
    start = time.perf_counter()
    while True:
        mib = rss_mib(pid)
        if mib is not None:
            samples.append((round(time.perf_counter() - start, 2), mib))
        await asyncio.sleep(RSS_INTERVAL)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def format_stress(result: StressResult) -> str:
    """The report as a two-column table, with the verdict last."""
    s = result.summary()
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(result.errors.items())) or "0"
    drift = s["rssDriftPercent"]
    worker = result.worker
    rows = [
        ("inline requests sent", f"{s['inlineRequests']} in {s['sendSeconds']:.1f} s"),
        ("other requests (fimls/stats, codeAction)", str(s["otherRequests"])),
        ("$/cancelRequest sent", str(s["cancelRequestsSent"])),
        ("answered with a result", str(s["answeredWithResult"])),
        ("answered RequestCancelled (-32800)", str(s["answeredRequestCancelled"])),
        ("other errors", errors),
        ("answered twice (all phases)", str(s["answeredTwice"])),
        ("unanswered (all phases)", str(s["unanswered"])),
        ("responses without id", str(s["responsesWithoutId"])),
        ("newest request of each document served", f"{s['newestServed']}/{s['documents']}"),
        (
            "server queue max: queued / live",
            f"{worker.get('queuedMax', '-')} / {worker.get('liveMax', '-')}",
        ),
        (
            "result latency p50 / p95",
            f"{s['resultLatencyMsP50']:.0f} / {s['resultLatencyMsP95']:.0f} ms",
        ),
        (
            "RequestCancelled after $/cancelRequest p50 / p95",
            f"{s['clientCancelledLatencyMsP50']:.0f} / {s['clientCancelledLatencyMsP95']:.0f} ms",
        ),
        (
            "RequestCancelled when superseded p50 / p95",
            f"{s['supersededCancelledLatencyMsP50']:.0f} / "
            f"{s['supersededCancelledLatencyMsP95']:.0f} ms",
        ),
        ("last answer after the last request", f"{s['drainSeconds']:.1f} s"),
        ("server RSS after warm-up", _mib(result.rss_after_warmup)),
        ("server RSS at the end", _mib(result.rss_end)),
        ("server RSS max", _mib(result.rss_max)),
        ("RSS drift", "-" if drift is None else f"{drift:+.1f} %"),
        ("final completion", repr(result.final_text)),
        ("server exit code", str(result.exit_code)),
    ]
    width = max(len(label) for label, _ in rows)
    header = (
        f"fimls bench --stress: {len(result.documents)} documents "
        f"({', '.join(result.documents)}), {result.requests} inline requests in "
        f"{result.seconds:g} s after {result.warmup_seconds:g} s of warm-up"
    )
    verdict = "OK" if result.ok else "FAILED: " + "; ".join(result.failures())
    lines = [header, *(f"{label.ljust(width)}  {value}" for label, value in rows), verdict]
    return "\n".join(lines)


def write_report(result: StressResult, output: Path) -> None:
    """Write the JSON report: the summary, every request and the RSS samples."""
    data = {
        "requests": result.requests,
        "seconds": result.seconds,
        "warmupSeconds": result.warmup_seconds,
        "documents": result.documents,
        "summary": result.summary(),
        "worker": result.worker,
        "serverRequests": result.server_requests,
        "rssSamples": result.rss_samples,
        "latenciesMs": [round(v, 1) for v in result.latencies_ms],
        "sent": [asdict(s) for s in result.sent],
        "unansweredIds": result.unanswered,
    }
    output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"report: {output}", file=sys.stderr)
