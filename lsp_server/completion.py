"""One completion, from document snapshot to suggestion text.

The event loop takes a bounded snapshot of the text around the cursor
(:func:`lsp_server.context.plan_completion`); the model thread fits it to token budgets,
renders the FIM prompt and generates with the stop rule
(:func:`lsp_server.postprocess.stop_rule`); :func:`lsp_server.postprocess.finish` turns the
result into what the editor shows.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from lsp_server.config import Settings
from lsp_server.context import CompletionPlan, Mode, fit_windows, plan_completion
from lsp_server.documents import Cursor, TextDocument
from lsp_server.engine import Engine, Generation, GenerationResult, Sampling
from lsp_server.postprocess import finish, stop_rule
from lsp_server.stats import Stats
from lsp_server.worker import JobCancelled, ModelNotReady, ModelWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Suggestion:
    """The text to insert at the cursor, and how it was made."""

    text: str
    mode: Mode
    result: GenerationResult


def budgets(settings: Settings, n_ctx: int, overhead: int) -> tuple[int, int]:
    """Prefix and suffix token budgets that fit n_ctx with room for the completion.

    When the configured budgets do not fit, both shrink in proportion.
    """
    prefix = settings.context.prefix_tokens
    suffix = settings.context.suffix_tokens
    room = n_ctx - overhead - settings.completion.max_tokens - 1
    if room <= 0:
        raise ValueError(
            f"context size {n_ctx} leaves no room for a prompt with maxTokens "
            f"{settings.completion.max_tokens}"
        )
    if prefix + suffix > room:
        scale = room / (prefix + suffix)
        prefix, suffix = int(prefix * scale), int(suffix * scale)
    return prefix, suffix


def build_prompt(engine: Engine, plan: CompletionPlan, settings: Settings) -> list[int]:
    """Render the FIM prompt for a plan as token ids, within the engine's context."""
    prefix_budget, suffix_budget = budgets(settings, engine.n_ctx, engine.template.overhead)
    windows = fit_windows(plan, engine.count_tokens, prefix_budget, suffix_budget)
    prefix = windows.prefix[: len(windows.prefix) - len(plan.healed)]
    prefix_ids = engine.tokenize(prefix)
    suffix_ids = engine.tokenize(windows.suffix)
    # Per-line counts can differ slightly from tokenizing the joined text: trim to fit.
    prefix_ids = prefix_ids[max(0, len(prefix_ids) - prefix_budget) :]
    suffix_ids = suffix_ids[:suffix_budget]
    return engine.template.render(prefix_ids, suffix_ids)


def generate(
    engine: Engine, cancel: threading.Event, plan: CompletionPlan, settings: Settings
) -> GenerationResult:
    """Build the prompt and generate (runs on the model thread)."""
    c = settings.completion
    return engine.generate(
        Generation(
            prompt=build_prompt(engine, plan, settings),
            max_tokens=c.max_tokens,
            stop=stop_rule(plan, c.max_lines),
            cancel=cancel,
            sampling=Sampling(temperature=c.temperature, top_k=c.top_k, top_p=c.top_p),
        )
    )


class CompletionService:
    """Turns completion requests into suggestions through the model worker."""

    def __init__(self, worker: ModelWorker, stats: Stats) -> None:
        self._worker = worker
        self._stats = stats

    async def suggest(
        self, doc: TextDocument, cursor: Cursor, settings: Settings, request_id: object = None
    ) -> Suggestion | None:
        """Return a suggestion at the cursor, or None.

        Raises JobCancelled when a newer request for the same document, or the client,
        cancelled this one.
        """
        if not settings.completion.enable:
            return None
        started = time.perf_counter()
        if not self._worker.ready:
            self._record("not-ready", started)
            return None
        plan = plan_completion(
            doc.lines,
            cursor.line,
            cursor.index,
            prefix_tokens=settings.context.prefix_tokens,
            suffix_tokens=settings.context.suffix_tokens,
            multiline=settings.completion.multiline,
            language_id=doc.language_id,
        )

        def job(engine: Engine, cancel: threading.Event) -> GenerationResult:
            result = generate(engine, cancel, plan, settings)
            self._stats.record_generation(result)
            return result

        try:
            result = await self._worker.run(doc.uri, job)
        except ModelNotReady:
            self._record("not-ready", started)
            return None
        except (JobCancelled, asyncio.CancelledError):
            self._record("cancelled", started)
            raise
        except Exception:
            self._record("error", started)
            raise
        if result.cancelled:
            self._record("cancelled", started)
            raise JobCancelled()
        text = finish(result.text, plan)
        self._record("suggestion" if text else "empty", started)
        log.info(
            "completion id=%s uri=%s mode=%s prompt_tokens=%d reused=%d evaluated=%d "
            "generated=%d ttft_ms=%.0f gen_ms=%.0f stop=%s chars=%d",
            request_id,
            doc.uri,
            plan.mode.value,
            result.prompt_tokens,
            result.reused_tokens,
            result.evaluated_tokens,
            result.generated_tokens,
            result.first_token_ms,
            result.total_ms - result.first_token_ms,
            result.stop_reason,
            len(text or ""),
        )
        return Suggestion(text, plan.mode, result) if text else None

    def _record(self, outcome: str, started: float) -> None:
        self._stats.record_request(outcome, (time.perf_counter() - started) * 1000)
