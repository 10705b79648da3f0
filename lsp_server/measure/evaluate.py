"""``fimls eval``: fill the holes of a suite through the real server, score the results.

The server is driven over stdio exactly as an editor drives it: didOpen of the document
with the hole, textDocument/inlineCompletion at the cursor, the returned item applied
with its range, didClose. ``--baseline raw`` answers the same tasks with the bare model
in this process: a plain PSM prompt, greedy, stopped at the first newline for
single-line tasks; the reference every improvement is measured against.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lsp_server.documents import TextDocument, index_to_column
from lsp_server.lsp_client import FimlsClient, server_command
from lsp_server.measure.sandbox import Limits, run_program
from lsp_server.measure.scoring import edit_similarity, normalize
from lsp_server.measure.tasks import (
    REPO_SUITES,
    Task,
    call_tasks,
    humaneval_tasks,
    repo_tasks,
    sample,
)
from lsp_server.progress import ProgressBar
from lsp_server.stats import percentile


@dataclass
class Answer:
    """What an answerer put into the document."""

    text: str | None  # None: no suggestion
    start: tuple[int, int] | None = None  # UTF-16 range replaced (None: the cursor)
    end: tuple[int, int] | None = None
    latency_ms: float = 0.0
    error: str | None = None


@dataclass
class TaskResult:
    """One task's score."""

    id: str
    kind: str
    exact: bool
    similarity: float
    latency_ms: float
    empty: bool
    error: str | None
    completion: str | None
    passed: bool | None = None  # None when the suite has no tests
    check: str = ""  # how the test run ended (passed, failed, timeout, killed)


class Answerer(Protocol):
    """Something that fills holes: the fimls server, or the bare model."""

    name: str

    async def start(self) -> dict[str, Any]:
        """Get ready; return what model answers."""
        ...

    async def answer(self, task: Task) -> Answer:
        """Fill one task's hole."""
        ...

    async def stats(self) -> dict[str, Any]:
        """What it counted (the server's ``fimls/stats``; nothing for the bare model)."""
        ...

    async def close(self) -> None:
        """Release everything."""
        ...


class ServerAnswerer:
    """Drive ``fimls --stdio`` like an editor."""

    name = "fimls"

    def __init__(
        self,
        root: Path,
        settings: dict[str, Any] | None = None,
        model: str | None = None,
        warm: bool = False,
    ) -> None:
        self._root = root
        self._settings = settings
        self._model = model
        self._warm = warm
        self._client = FimlsClient()

    async def start(self) -> dict[str, Any]:
        """Start the server and wait for its model."""
        args = ["--stdio"] + (["--model", self._model] if self._model else [])
        await self._client.start(server_command(*args))
        await self._client.handshake(
            initialization_options=self._settings, root_uri=self._root.as_uri()
        )
        status = await self._client.wait_model()
        if status.get("state") != "ready":
            raise RuntimeError(f"the model did not load: {status.get('message')}")
        # the workspace index feeds cross-file context: let it finish first
        await self._client.wait_index()
        model: dict[str, Any] = status.get("model") or {}
        return model

    async def answer(self, task: Task) -> Answer:
        """Open the document, ask at the cursor, close it.

        With ``warm``, the document is first opened as it was before the cursor line
        was begun (the cursor at the end of the line above) and completed there, then
        the line break and the cursor line's text before the cursor are typed in one
        change: the answer at the hole is then made from the KV cache the first request
        left, as while typing (where the shifted reuse applies).
        """
        uri = (self._root / task.path).as_uri()
        lines = task.document.split("\n")
        line_text = lines[task.line]
        character = index_to_column(line_text, task.column, "utf-16")
        if self._warm and task.line > 0:
            typed = "\n" + line_text[: task.column]
            offset = task.offset
            earlier = task.document[: offset - len(typed)] + task.document[offset:]
            prior = lines[task.line - 1]
            above = (task.line - 1, index_to_column(prior, len(prior), "utf-16"))
            self._client.open(uri, earlier, task.language_id)
            try:
                await self._client.inline(uri, *above)
            except Exception:  # noqa: BLE001 - only the answer at the hole is scored
                pass
            self._client.change(uri, 2, typed, above, above)
        else:
            self._client.open(uri, task.document, task.language_id)
        started = time.perf_counter()
        try:
            result = await self._client.inline(uri, task.line, character)
        except Exception as exc:  # an error answer is scored, not fatal
            return Answer(None, latency_ms=_ms(started), error=f"{type(exc).__name__}: {exc}")
        finally:
            self._client.text_document_did_close(_close_params(uri))
        latency = _ms(started)
        if not result.items:
            return Answer(None, latency_ms=latency)
        item = result.items[0]
        text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
        if item.range is None:
            return Answer(text, latency_ms=latency)
        r = item.range
        return Answer(
            text,
            (r.start.line, r.start.character),
            (r.end.line, r.end.character),
            latency_ms=latency,
        )

    async def stats(self) -> dict[str, Any]:
        """The server's ``fimls/stats``."""
        return await self._client.stats()

    async def close(self) -> None:
        """Shut the server down."""
        await self._client.stop()


class RawAnswerer:
    """The bare model in this process: plain PSM prompt, greedy decoding."""

    name = "raw"

    def __init__(self, model: str | None = None, max_tokens: int = 128) -> None:
        self._model = model
        self._max_tokens = max_tokens
        self._engine: Any = None

    async def start(self) -> dict[str, Any]:
        """Load the model (the same file the server would load)."""
        from lsp_server.config import default_threads
        from lsp_server.engine import Engine
        from lsp_server.generation import EngineConfig

        config = EngineConfig(self._model, None, 4096, default_threads(), 256)
        self._engine = await asyncio.to_thread(Engine.load, config, None)
        return self._engine.info.to_json()  # type: ignore[no-any-return]

    async def answer(self, task: Task) -> Answer:
        """Generate at the cursor from the whole prefix and suffix (cut to fit)."""
        from lsp_server.generation import Generation

        engine = self._engine
        prefix = engine.tokenize(task.document[: task.offset])[-1024:]
        suffix = engine.tokenize(task.document[task.offset :])[:256]
        single = not task.multi_line

        def stop(text: str) -> int | None:
            nl = text.find("\n")
            return nl if single and nl >= 0 else None

        generation = Generation(
            prompt=engine.template.render(prefix, suffix),
            max_tokens=self._max_tokens,
            stop=stop,
            cancel=threading.Event(),
        )
        started = time.perf_counter()
        result = await asyncio.to_thread(engine.generate, generation)
        return Answer(result.text or None, latency_ms=_ms(started))

    async def stats(self) -> dict[str, Any]:
        """Nothing is counted for the bare model."""
        return {}

    async def close(self) -> None:
        """Free the model."""
        if self._engine is not None:
            self._engine.close()


def fill(task: Task, answer: Answer) -> tuple[str, str]:
    """Apply an answer to the task's document; return (filled document, inserted text)."""
    if answer.text is None:
        return task.document, ""
    doc = TextDocument("file:///task", task.document, 1, task.language_id)
    line_text = doc.line_text(task.line)
    cursor = (task.line, index_to_column(line_text, task.column, "utf-16"))
    doc.apply_change(answer.start or cursor, answer.end or cursor, answer.text, "utf-16")
    filled = doc.text
    head, tail = task.document[: task.offset], task.document[task.offset :]
    if filled.startswith(head) and filled.endswith(tail) and len(filled) >= len(head + tail):
        return filled, filled[len(head) : len(filled) - len(tail)]
    return filled, answer.text


def score(task: Task, answer: Answer) -> TaskResult:
    """Exact match and edit similarity of the filled hole (the test run comes later)."""
    _, inserted = fill(task, answer)
    return TaskResult(
        id=task.id,
        kind=task.kind,
        exact=answer.text is not None and normalize(inserted) == normalize(task.expected),
        similarity=round(edit_similarity(inserted, task.expected), 4),
        latency_ms=round(answer.latency_ms, 1),
        empty=answer.text is None and answer.error is None,
        error=answer.error,
        completion=answer.text,
    )


@dataclass
class Report:
    """A whole run: configuration, summary and per-task results."""

    suite: str
    config: str
    model: dict[str, Any]
    settings: dict[str, Any] | None
    seed: int
    limit: int | None
    started: str
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    tasks: list[TaskResult] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)  # fimls/stats at the end

    def summarize(self) -> dict[str, Any]:
        """Compute the summary from the task results."""
        n = len(self.tasks)
        latencies = [t.latency_ms for t in self.tasks if t.error is None]
        checked = [t for t in self.tasks if t.passed is not None]
        self.summary = {
            "tasks": n,
            "passAt1": round(sum(t.passed is True for t in checked) / len(checked), 4)
            if checked
            else None,
            "exactMatch": round(sum(t.exact for t in self.tasks) / n, 4) if n else 0.0,
            "editSimilarity": round(sum(t.similarity for t in self.tasks) / n, 4) if n else 0.0,
            "latencyMs": {
                "p50": round(percentile(latencies, 50), 1),
                "p95": round(percentile(latencies, 95), 1),
            },
            "errors": sum(t.error is not None for t in self.tasks),
            "empty": sum(t.empty for t in self.tasks),
        }
        return self.summary

    def line(self) -> str:
        """The one-line summary."""
        s = self.summary
        parts = [f"{self.suite} [{self.config}]: {s['tasks']} tasks"]
        if s["passAt1"] is not None:
            parts.append(f"pass@1 {100 * s['passAt1']:.1f}%")
        parts += [
            f"exact {100 * s['exactMatch']:.1f}%",
            f"edit-sim {s['editSimilarity']:.3f}",
            f"p50 {s['latencyMs']['p50']:.0f} ms",
            f"p95 {s['latencyMs']['p95']:.0f} ms",
            f"errors {s['errors']}",
            f"empty {s['empty']}",
        ]
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "suite": self.suite,
            "config": self.config,
            "model": self.model,
            "settings": self.settings,
            "seed": self.seed,
            "limit": self.limit,
            "started": self.started,
            "seconds": round(self.seconds, 1),
            "summary": self.summary,
            "server": self.server,
            "tasks": [asdict(t) for t in self.tasks],
        }


def build_tasks(suite: str, path: Path | None, limit: int | None, seed: int) -> list[Task]:
    """The tasks of a suite, sampled."""
    if suite in REPO_SUITES:
        if path is None:
            raise ValueError(f"the {suite} suite needs a PATH")
        make = repo_tasks if suite == "repo" else call_tasks
        return make(path, limit or 200, seed)
    kind = "single-line" if suite == "humaneval-single-line" else "multi-line"
    return sample(humaneval_tasks(kind), limit, seed)


async def run_eval(
    suite: str,
    answerer: Answerer,
    tasks: list[Task],
    *,
    seed: int,
    limit: int | None,
    settings: dict[str, Any] | None,
    limits: Limits | None = None,
    progress: bool = True,
) -> Report:
    """Answer every task, then run the tests of those that have them."""
    started = time.perf_counter()
    report = Report(
        suite=suite,
        config=answerer.name,
        model={},
        settings=settings,
        seed=seed,
        limit=limit,
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    report.model = await answerer.start()
    bar = ProgressBar(f"eval {suite} [{answerer.name}]") if progress else None
    filled: list[str] = []
    try:
        for i, task in enumerate(tasks, start=1):
            answer = await answerer.answer(task)
            report.tasks.append(score(task, answer))
            filled.append(fill(task, answer)[0])
            if bar:
                bar(i, len(tasks))
        report.server = await answerer.stats()
    finally:
        await answerer.close()
    checks = [
        (r, doc + t.test) for r, doc, t in zip(report.tasks, filled, tasks, strict=True) if t.test
    ]
    if checks:
        await _run_checks(checks, limits or Limits(), progress)
    report.seconds = time.perf_counter() - started
    report.summarize()
    return report


async def _run_checks(checks: list[tuple[TaskResult, str]], limits: Limits, progress: bool) -> None:
    bar = ProgressBar("tests") if progress else None
    workers = max(1, min(4, os.cpu_count() or 1))
    done = 0
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            loop.run_in_executor(pool, run_program, program, limits) for _, program in checks
        ]
        for (result, _), future in zip(checks, futures, strict=True):
            outcome = await future
            result.passed = outcome.passed
            result.check = outcome.reason
            done += 1
            if bar:
                bar(done, len(checks))


def write_report(report: Report, output: Path) -> None:
    """Write the JSON report."""
    output.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _close_params(uri: str) -> Any:
    from lsprotocol import types

    return types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
