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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server.config import Settings
from lsp_server.context import (
    CompletionPlan,
    Mode,
    enclosing_definition,
    fit_windows,
    plan_completion,
)
from lsp_server.documents import Cursor, TextDocument
from lsp_server.engine import Engine, Generation, GenerationResult, Sampling
from lsp_server.postprocess import finish, stop_rule
from lsp_server.stats import Stats
from lsp_server.syntax import DocumentSyntax, SyntaxCheck, cursor_context
from lsp_server.worker import JobCancelled, ModelNotReady, ModelWorker
from lsp_server.workspace import locate

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
    """Render the prompt for a plan as token ids, within the engine's context.

    With a repository format and ``context.filePath``, the prompt starts with the
    workspace name and the file's path; then comes the FIM part.
    """
    template = engine.template
    head = list(template.bos)
    if settings.context.file_path and template.has_repo_format and plan.path:
        head += template.repo_header(engine.tokenize(plan.repo))
        head += template.repo_current(engine.tokenize(plan.path))
    prefix_budget, suffix_budget = budgets(
        settings, engine.n_ctx, len(head) + template.overhead - len(template.bos)
    )
    windows = fit_windows(plan, engine.count_tokens, prefix_budget, suffix_budget)
    prefix = windows.prefix[: len(windows.prefix) - len(plan.healed)]
    prefix_ids = engine.tokenize(prefix)
    suffix_ids = engine.tokenize(windows.suffix)
    # Per-line counts can differ slightly from tokenizing the joined text: trim to fit.
    prefix_ids = prefix_ids[max(0, len(prefix_ids) - prefix_budget) :]
    suffix_ids = suffix_ids[:suffix_budget]
    return head + template.fim(prefix_ids, suffix_ids)


def generate(
    engine: Engine,
    cancel: threading.Event,
    plan: CompletionPlan,
    settings: Settings,
    banned_first: frozenset[int] = frozenset(),
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
            banned_first=banned_first,
        )
    )


@dataclass(frozen=True)
class Outcome:
    """What the model thread made of a request: the text to show and the generations."""

    text: str | None
    generations: tuple[GenerationResult, ...]
    rejected: str = ""  # why a completion was dropped or shortened (syntax)

    @property
    def cancelled(self) -> bool:
        """Whether the (last) generation was cancelled."""
        return self.generations[-1].cancelled


def complete(
    engine: Engine,
    cancel: threading.Event,
    plan: CompletionPlan,
    settings: Settings,
    check: SyntaxCheck | None,
    record: Callable[[GenerationResult], None],
) -> Outcome:
    """Generate, finish and check a completion (runs on the model thread).

    With a syntax check, a multi-line completion is cut after its last line that adds no
    syntax error; a single-line completion that adds one is generated once more with its
    first token banned, and dropped if that one fails too.
    """
    result = generate(engine, cancel, plan, settings)
    record(result)
    text = finish(result.text, plan)
    if check is None or text is None or result.cancelled:
        return Outcome(text, (result,))
    baseline = check.errors()
    if plan.mode is Mode.MULTI_LINE:
        lines = text.split(plan.eol)
        keep = check.keepable_lines(text, baseline)
        if keep == len(lines):
            return Outcome(text, (result,))
        kept = plan.eol.join(lines[:keep]).rstrip()
        return Outcome(kept or None, (result,), f"syntax: kept {keep} of {len(lines)} lines")
    if check.errors(text) <= baseline:
        return Outcome(text, (result,))
    if not result.tokens:
        return Outcome(None, (result,), "syntax")
    retry = generate(engine, cancel, plan, settings, frozenset(result.tokens[:1]))
    record(retry)
    second = finish(retry.text, plan)
    if second is not None and check.errors(second) <= baseline:
        return Outcome(second, (result, retry), "syntax: retried")
    return Outcome(None, (result, retry), "syntax: dropped")


class CompletionService:
    """Turns completion requests into suggestions through the model worker."""

    def __init__(
        self,
        worker: ModelWorker,
        stats: Stats,
        folders: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._worker = worker
        self._stats = stats
        self._folders = folders

    async def suggest(
        self,
        doc: TextDocument,
        cursor: Cursor,
        settings: Settings,
        request_id: object = None,
        *,
        syntax: DocumentSyntax | None = None,
        invoked: bool = False,
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
        source = doc.encoded() if syntax is not None else b""
        if syntax is not None and not invoked and settings.completion.skip_comments_and_strings:
            tree = syntax.tree(source)
            where = cursor_context(tree, doc.byte_offset(cursor.line, cursor.index), source)
            if where is not None:
                self._record("skipped", started)
                log.debug("no completion inside a %s at %s:%d", where, doc.uri, cursor.line)
                return None
        path, repo = locate(doc.uri, self._folders())
        plan = plan_completion(
            doc.lines,
            cursor.line,
            cursor.index,
            prefix_tokens=settings.context.prefix_tokens,
            suffix_tokens=settings.context.suffix_tokens,
            multiline=settings.completion.multiline,
            language_id=doc.language_id,
            path=path,
            repo=repo,
        )
        check = None
        if syntax is not None and settings.completion.syntax_check:
            before, after = enclosing_definition(doc.lines, cursor.line, cursor.index)
            check = SyntaxCheck(syntax.grammar, before, after)

        def job(engine: Engine, cancel: threading.Event) -> Outcome:
            return complete(engine, cancel, plan, settings, check, self._stats.record_generation)

        try:
            outcome = await self._worker.run(doc.uri, job)
        except ModelNotReady:
            self._record("not-ready", started)
            return None
        except (JobCancelled, asyncio.CancelledError):
            self._record("cancelled", started)
            raise
        except Exception:
            self._record("error", started)
            raise
        if outcome.cancelled:
            self._record("cancelled", started)
            raise JobCancelled()
        text = outcome.text
        self._record("suggestion" if text else "empty", started)
        first = outcome.generations[0]
        log.info(
            "completion id=%s uri=%s mode=%s prompt_tokens=%d reused=%d evaluated=%d "
            "generated=%d ttft_ms=%.0f total_ms=%.0f stop=%s chars=%d %s",
            request_id,
            doc.uri,
            plan.mode.value,
            first.prompt_tokens,
            first.reused_tokens,
            first.evaluated_tokens,
            sum(g.generated_tokens for g in outcome.generations),
            first.first_token_ms,
            sum(g.total_ms for g in outcome.generations),
            first.stop_reason,
            len(text or ""),
            outcome.rejected,
        )
        return Suggestion(text, plan.mode, first) if text else None

    def _record(self, outcome: str, started: float) -> None:
        self._stats.record_request(outcome, (time.perf_counter() - started) * 1000)
