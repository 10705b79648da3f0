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
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from lsp_server.config import Settings
from lsp_server.context import (
    CompletionPlan,
    ContextPiece,
    Mode,
    enclosing_definition,
    enclosing_span,
    fit_windows,
    plan_completion,
)
from lsp_server.documents import Cursor, TextDocument
from lsp_server.errors import EngineRequestError
from lsp_server.generation import FimParts, Generation, GenerationResult, ModelEngine, Sampling
from lsp_server.postprocess import (
    LINE_COMMENTS,
    comment_only,
    expects_code,
    finish_why,
    makes_dead_code,
    stop_rule,
)
from lsp_server.recall import CompletionMemory, plan_key
from lsp_server.stats import Stats
from lsp_server.syntax import DocumentSyntax, SyntaxCheck, cursor_context, grammar_for
from lsp_server.worker import JobCancelled, ModelNotReady, ModelWorker
from lsp_server.workspace import locate

log = logging.getLogger(__name__)


#: Prompt tokens per batch for background work (~0.1 s here): how long a user request
#: that cancels it may wait.
BACKGROUND_CHUNK = 32
#: Most prompt tokens a prefetch may evaluate: more means its prompt parts early from
#: the one in the cache, which the user's next keystroke still needs.
PREFETCH_LIMIT = 128


@dataclass(frozen=True)
class Suggestion:
    """The text to insert at the cursor, and how it was made."""

    text: str
    mode: Mode
    result: GenerationResult | None  # None when answered from memory


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


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and the part of it that an edit of the prefix leaves unchanged."""

    tokens: list[int]
    #: [start, end) of the tokens after the prefix that do not depend on it (the FIM
    #: suffix and its markers), for the engine's shifted reuse; None when the prefix
    #: comes last (suffix-prefix-middle order).
    block: tuple[int, int] | None = None
    #: the document line where the text after the FIM middle token starts
    middle_line: int = 0
    #: the prompt as text parts, for an engine that renders the FIM prompt itself
    parts: FimParts | None = None


def build_prompt(
    engine: ModelEngine, plan: CompletionPlan, settings: Settings, middle_from: int | None = None
) -> Prompt:
    """Render the prompt for a plan as token ids, within the engine's context.

    Order, most stable first so that the KV cache keeps it while the user types: the
    context from other files (in the model's repository format, or as a comment block
    at the top of the prefix), then the FIM part with the prefix and suffix windows, and,
    with ``cache.lineAfterMiddle`` (off by default) where the template allows it, the
    text typed since line ``middle_from`` after the middle token (so that typing, new
    lines included, only appends to the prompt). The middle region starts at the cursor
    line when ``middle_from`` is None, below the cursor, or too far above it for
    ``cache.middleTokens``.
    """
    template = engine.template
    count = engine.count_tokens
    # other files' context takes at most a quarter of the room: the file being edited
    # keeps the rest
    share = max(0, (engine.n_ctx - settings.completion.max_tokens) // 4)
    chosen = choose_pieces(plan.pieces, count, settings, share)
    files = group_pieces(chosen)
    head = list(template.bos)
    comments = ""
    repo_format = template.has_repo_format and settings.context.format == "repo"
    if repo_format and (files or (settings.context.file_path and plan.path)):
        head += template.repo_header(engine.tokenize(plan.repo))
        for path, text in files:
            head += template.repo_file(engine.tokenize(path), engine.tokenize(text))
        head += template.repo_current(engine.tokenize(plan.path or "untitled"))
    elif files:
        comments = comment_block(files, plan.language_id)
    overhead = len(head) + template.overhead - len(template.bos) + count(comments)
    prefix_budget, suffix_budget = budgets(settings, engine.n_ctx, overhead)
    after_middle = settings.cache.line_after_middle and template.template.line_after_middle
    windows = fit_windows(
        plan,
        count,
        prefix_budget,
        suffix_budget,
        anchor=settings.cache.anchor_lines,
        middle_from=middle_from,
        middle_tokens=settings.cache.middle_tokens if after_middle else 0,
    )
    healed = len(plan.healed) if settings.completion.postprocess else 0
    prefix = windows.prefix[: len(windows.prefix) - healed]
    middle = ""
    if after_middle:
        # the middle region's text after the indentation of its first line follows the
        # middle token: that indentation stays in the prefix, where the model expects
        # it (with it after the middle token the 0.5B model loses 3.5 points on
        # humaneval-single-line)
        start = min(windows.middle_at, len(prefix))
        line = prefix[start:].split("\n", 1)[0]
        split = start + len(line) - len(line.lstrip(" \t"))
        prefix, middle = prefix[:split], prefix[split:]
    prefix_ids = engine.tokenize(comments + prefix)
    middle_ids = engine.tokenize(middle)
    suffix_ids = engine.tokenize(windows.suffix)
    # Per-line counts can differ slightly from tokenizing the joined text: trim to fit.
    limit = prefix_budget + count(comments) - len(middle_ids)
    prefix_ids = prefix_ids[max(0, len(prefix_ids) - limit) :]
    suffix_ids = suffix_ids[:suffix_budget]
    fim, prefix_end = template.fim_block(prefix_ids, suffix_ids)
    tokens = head + fim + middle_ids
    span = (len(head) + prefix_end, len(head) + len(fim)) if prefix_end >= 0 else None
    parts = None
    if engine.wants_parts:  # the server lays out the files and trims the windows itself
        parts = FimParts(prefix, windows.suffix, middle, tuple(files), plan.path or "untitled")
    return Prompt(tokens, span, windows.middle_line, parts)


def choose_pieces(
    pieces: Sequence[ContextPiece],
    count: Callable[[str], int],
    settings: Settings,
    limit: int | None = None,
) -> list[ContextPiece]:
    """The most relevant pieces within each kind's token budget, in a stable order.

    The budgets shrink in proportion when together they exceed ``limit`` tokens.
    """
    budget = {
        "definition": settings.context.cross_file_tokens if settings.context.cross_file else 0,
        "recent": settings.context.recent_tokens if settings.context.recent else 0,
    }
    total = sum(budget.values())
    if limit is not None and total > limit:
        budget = {kind: value * limit // total for kind, value in budget.items()}
    used = dict.fromkeys(budget, 0)
    chosen = []
    for piece in pieces:
        cost = count(piece.text) + count(piece.path) + 4
        if used[piece.kind] + cost <= budget[piece.kind]:
            chosen.append(piece)
            used[piece.kind] += cost
    return sorted(chosen, key=lambda p: (p.path, p.kind, p.line))


def group_pieces(pieces: Sequence[ContextPiece]) -> list[tuple[str, str]]:
    """(path, text) per file, pieces of one file joined by blank lines."""
    files: dict[str, list[str]] = {}
    for piece in pieces:
        files.setdefault(piece.path, []).append(piece.text)
    return [(path, "\n\n".join(texts)) for path, texts in files.items()]


#: Block comment delimiters of languages without line comments.
BLOCK_COMMENTS = {
    "css": ("/*", "*/"),
    **dict.fromkeys(["html", "xml", "markdown", "svg"], ("<!--", "-->")),
}

#: Languages where no comment can carry context (it would become part of the data).
NO_COMMENTS = frozenset({"json", "plaintext", "csv"})


def comment_block(files: Sequence[tuple[str, str]], language_id: str) -> str:
    """Context from other files as comments, for the top of the prefix ("" if none fit)."""
    if not files or language_id in NO_COMMENTS:
        return ""
    lines = ["Context from other files:"]
    for path, text in files:
        lines.append(path)
        lines.extend(text.split("\n"))
    if language_id in BLOCK_COMMENTS:
        start, end = BLOCK_COMMENTS[language_id]
        body = "\n".join(lines).replace(end, "")
        return f"{start}\n{body}\n{end}\n\n"
    mark = LINE_COMMENTS.get(language_id, "//")
    return "\n".join(f"{mark} {line}".rstrip() for line in lines) + "\n\n"


def generate(
    engine: ModelEngine,
    cancel: threading.Event,
    plan: CompletionPlan,
    settings: Settings,
    banned_first: frozenset[int] = frozenset(),
    document: str | None = None,
    background: bool = False,
    middles: dict[str, int] | None = None,
) -> GenerationResult:
    """Build the prompt and generate (runs on the model thread).

    ``background`` work evaluates the prompt in small batches, so that a user request
    that cancels it waits little. ``middles``: per document, the line where the text
    after the middle token starts, read and updated here (see :func:`build_prompt`).
    """
    c = settings.completion
    middle_from = middles.get(document) if middles is not None and document else None
    prompt = build_prompt(engine, plan, settings, middle_from)
    if middles is not None and document:
        middles[document] = prompt.middle_line
    return engine.generate(
        Generation(
            prompt=prompt.tokens,
            block=prompt.block,
            shifted_reuse=settings.cache.shifted_reuse,
            document=document,
            documents=settings.cache.documents,
            time_budget_ms=settings.cache.time_budget_ms,
            chunk=BACKGROUND_CHUNK if background else 0,
            evaluate_limit=PREFETCH_LIMIT if background else 0,
            max_tokens=c.max_tokens,
            stop=stop_rule(plan, c.max_lines),
            cancel=cancel,
            sampling=Sampling(temperature=c.temperature, top_k=c.top_k, top_p=c.top_p),
            banned_first=banned_first,
            parts=prompt.parts,
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
    engine: ModelEngine,
    cancel: threading.Event,
    plan: CompletionPlan,
    settings: Settings,
    check: SyntaxCheck | None,
    record: Callable[[GenerationResult], None],
    document: str | None = None,
    background: bool = False,
    middles: dict[str, int] | None = None,
) -> Outcome:
    """Generate, finish and check a completion (runs on the model thread).

    A completion with a flaw is generated again with the first tokens tried so far
    banned, at most :data:`MAX_RETRIES` times. Flaws: empty where code must follow
    (:func:`expects_code`; then no end token or line break may come first either), one
    line that repeats the next code line, adds a syntax error, jumps out
    (``return``...) before code at its depth, or gets a Python name wrong, and a
    comment alone where code must follow. With a syntax check, a block is cut after
    its last line that adds no syntax error. When no retry is free of flaws, the first
    text with dead code, a names problem or only a comment is shown; the
    other flaws show nothing.
    """

    def attempt(banned: frozenset[int] = frozenset()) -> GenerationResult:
        result = generate(engine, cancel, plan, settings, banned, document, background, middles)
        if result.stop_reason != "skipped":
            record(result)
        return result

    first = attempt()
    if first.stop_reason == "skipped":
        return Outcome(None, (first,), "skipped: the prompt is too far from the cache")
    if not settings.completion.postprocess:
        return Outcome(unprocessed(first.text, plan), (first,))
    baseline = check.errors() if check is not None else 0
    text, flaw, note = judge(first.text, plan, check, baseline)
    if first.cancelled or flaw is None or not retry_worth(flaw, plan) or not engine.can_ban:
        return Outcome(text if flaw in SOFT_FLAWS or flaw is None else None, (first,), note)
    generations = [first]
    banned: frozenset[int] = frozenset()
    kept = (text, flaw) if flaw in SOFT_FLAWS else None  # the best flawed text so far
    why: str | None = flaw
    for _ in range(MAX_RETRIES):
        banned |= first_banned(engine, generations[-1])
        if why == "empty":
            banned |= engine.end_ids
            if plan.mode is Mode.SINGLE_LINE:
                banned |= engine.line_break_ids
        retry = attempt(banned)
        generations.append(retry)
        if retry.cancelled:
            return Outcome(None, tuple(generations))
        retried, why, note2 = judge(retry.text, plan, check, baseline)
        if why is None:
            done = f"{flaw}: retried {len(generations) - 1}x" + (f"; {note2}" if note2 else "")
            return Outcome(retried, tuple(generations), done)
        if kept is None and why in SOFT_FLAWS:
            kept = (retried, why)
        if not retry_worth(why, plan):
            break
    if kept is not None:
        return Outcome(kept[0], tuple(generations), f"{flaw}: kept ({kept[1]})")
    return Outcome(None, tuple(generations), f"{flaw}: dropped")


#: Most extra generations for one request when the previous one had a flaw.
MAX_RETRIES = 2


#: Flaws that still leave something worth showing when a retry does no better.
SOFT_FLAWS = frozenset({"dead code", "comment", "names"})


def retry_worth(flaw: str, plan: CompletionPlan) -> bool:
    """Whether a flaw is worth a second generation."""
    if flaw in ("empty", "comment"):
        return expects_code(plan)
    return plan.mode is Mode.SINGLE_LINE  # a block is cut, not retried


def judge(
    raw: str, plan: CompletionPlan, check: SyntaxCheck | None, baseline: int
) -> tuple[str | None, str | None, str]:
    """The text to show, its flaw (None when there is none) and a note for the log.

    Flaws: ``empty``, ``repeat`` (it only repeats the code after the cursor),
    ``syntax`` (it adds a syntax error; a block is cut before that instead),
    ``dead code``, ``names`` (Python: a name left undefined or read before it is
    assigned) and ``comment``.
    """
    text, why = finish_why(raw, plan)
    if text is None:
        return None, why, ""
    note = ""
    if plan.mode is Mode.MULTI_LINE:
        if check is not None:
            lines = text.split(plan.eol)
            keep = check.keepable_lines(text, baseline)
            if keep < len(lines):
                note = f"syntax: kept {keep} of {len(lines)} lines"
                text = plan.eol.join(lines[:keep]).rstrip()
                if not text:
                    return None, "syntax", note
    else:
        if check is not None and check.errors(text) > baseline:
            return text, "syntax", note
        if makes_dead_code(text, plan):
            return text, "dead code", note
        names = check.name_flaw(text) if check is not None else None
        if names is not None:
            return text, "names", names
    if comment_only(text, plan.language_id):
        return text, "comment", note
    return text, None, note


def unprocessed(text: str, plan: CompletionPlan) -> str | None:
    """The model's text as the stop rules left it, without trailing whitespace."""
    if plan.mode is Mode.SINGLE_LINE:
        text = text.split("\n", 1)[0]
    text = "\n".join(line.rstrip() for line in text.split("\n")).rstrip()
    return text.replace("\n", plan.eol) if text.strip() else None


def first_banned(engine: ModelEngine, result: GenerationResult) -> frozenset[int]:
    """The tokens a retry may not start with: the first one generated, or every end token."""
    return frozenset(result.tokens[:1]) if result.tokens else engine.end_ids


def skipped_at(
    doc: TextDocument, cursor: Cursor, settings: Settings, syntax: DocumentSyntax | None
) -> str | None:
    """``comment`` or ``string`` where an automatic completion is not made, else None."""
    if syntax is None or not settings.completion.skip_comments_and_strings:
        return None
    source = doc.encoded()
    tree = syntax.tree(source)
    return cursor_context(tree, doc.byte_offset(cursor.line, cursor.index), source)


class CompletionService:
    """Turns completion requests into suggestions through the model worker."""

    def __init__(
        self,
        worker: ModelWorker,
        stats: Stats,
        folders: Callable[[], Sequence[str]] = tuple,
        context: Callable[[TextDocument, Cursor, Settings], Sequence[ContextPiece]] | None = None,
    ) -> None:
        self._worker = worker
        self._stats = stats
        self._folders = folders
        self._context = context
        self._memory = CompletionMemory()
        #: per document, where the text after the middle token starts (model thread)
        self._middles: dict[str, int] = {}
        self._background: set[asyncio.Task[None]] = set()

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

        Answered from memory when the same text around the cursor was completed before,
        or when the user typed the start of the last suggestion; otherwise by the model,
        after which the next completion is prefetched as if the suggestion were accepted.
        Raises JobCancelled when a newer request for the same document, or the client,
        cancelled this one.
        """
        if not settings.completion.enable:
            return None
        started = time.perf_counter()
        if not self._worker.ready:
            self._record("not-ready", started)
            return None
        where = None if invoked else skipped_at(doc, cursor, settings, syntax)
        if where is not None:
            self._record("skipped", started)
            log.debug("no completion inside a %s at %s:%d", where, doc.uri, cursor.line)
            return None
        plan = self.plan(doc, cursor, settings)
        key = self._key(plan, settings)
        recalled = self._memory.get(doc.uri, key, plan.line_before) if key else None
        if recalled is not None:
            self._stats.count(f"memory.{recalled.kind}")
            self._record("suggestion" if recalled.text else "empty", started, evaluated=0)
            log.info("completion id=%s uri=%s from memory (%s)", request_id, doc.uri, recalled.kind)
            if not recalled.text:
                return None
            self.prefetch(doc, cursor, recalled.text, settings)
            return Suggestion(recalled.text, plan.mode, None)
        check = self._check(doc, cursor, settings, syntax.grammar if syntax else None)
        queued = time.perf_counter()
        timing: list[float] = []

        def job(engine: ModelEngine, cancel: threading.Event) -> Outcome:
            timing.append(time.perf_counter())
            record = self._stats.record_generation
            outcome = complete(
                engine, cancel, plan, settings, check, record, doc.uri, False, self._middles
            )
            timing.append(time.perf_counter())
            return outcome

        try:
            outcome = await self._worker.run(doc.uri, job)
        except ModelNotReady:
            self._record("not-ready", started)
            return None
        except (JobCancelled, asyncio.CancelledError):
            self._record("cancelled", started)
            raise
        except EngineRequestError as exc:  # the server refused this one request
            self._record("error", started)
            log.warning("completion id=%s: %s", request_id, exc)
            return None
        except Exception:
            self._record("error", started)
            raise
        if outcome.cancelled:
            self._record("cancelled", started)
            raise JobCancelled()
        text = outcome.text
        if key:
            self._memory.put(doc.uri, key, plan.line_before, text or "")
        phases = _phases(queued, timing, outcome)
        evaluated = sum(g.evaluated_tokens for g in outcome.generations)
        # unknown when the engine did not say (an inference server that does not report)
        cost = evaluated if all(g.costed for g in outcome.generations) else None
        self._record("suggestion" if text else "empty", started, phases, cost)
        first = outcome.generations[0]
        log.info(
            "completion id=%s uri=%s mode=%s prompt_tokens=%d reused=%d shifted=%d "
            "evaluated=%d generated=%d generations=%d ms: queue=%.0f prefill=%.0f "
            "decode=%.0f post=%.0f stop=%s chars=%d %s",
            request_id,
            doc.uri,
            plan.mode.value,
            first.prompt_tokens,
            first.reused_tokens,
            first.shifted_tokens,
            evaluated,
            sum(g.generated_tokens for g in outcome.generations),
            len(outcome.generations),
            *phases,
            first.stop_reason,
            len(text or ""),
            outcome.rejected,
        )
        if text:
            self.prefetch(doc, cursor, text, settings)
        return Suggestion(text, plan.mode, first) if text else None

    def _key(self, plan: CompletionPlan, settings: Settings) -> Hashable | None:
        """The memory key of a plan (None when answers from memory are switched off)."""
        if not settings.cache.completions:
            return None
        return plan_key(plan, (settings, self._worker.info))

    def _check(
        self, doc: TextDocument, cursor: Cursor, settings: Settings, grammar: str | None
    ) -> SyntaxCheck | None:
        """The syntax check of a completion at the cursor, when there is a grammar."""
        if grammar is None or not settings.completion.syntax_check:
            return None
        start, end = enclosing_span(doc.lines, cursor.line)
        before, after = enclosing_definition(
            doc.lines, cursor.line, cursor.index, span=(start, end)
        )
        # the lines outside the window, read for their names on the model thread when a
        # Python completion is judged, not here on the event loop
        outside = (*doc.lines[:start], *doc.lines[end:]) if grammar == "python" else ()
        return SyntaxCheck(grammar, before, after, outside)

    def prefetch(self, doc: TextDocument, cursor: Cursor, text: str, settings: Settings) -> None:
        """In the background, complete as if ``text`` had been accepted at the cursor.

        The answer goes to memory, where the request after an acceptance finds it; the
        KV cache then holds that prompt too. Any user request cancels it.
        """
        if not (settings.cache.prefetch and settings.cache.completions):
            return
        accepted, end = doc.with_insertion(cursor, text)
        self._spawn(self._prefetch(accepted, end, settings))

    async def _prefetch(self, doc: TextDocument, cursor: Cursor, settings: Settings) -> None:
        await asyncio.sleep(0)  # the answer that caused this goes out first
        plan = self.plan(doc, cursor, settings)
        key = self._key(plan, settings)
        found = self._memory.get(doc.uri, key, plan.line_before)
        if key is None or (found is not None and found.kind == "exact"):
            return
        grammar = grammar_for(doc.language_id, doc.uri)
        check = self._check(doc, cursor, settings, grammar)

        def job(engine: ModelEngine, cancel: threading.Event) -> Outcome:
            record = self._stats.record_generation
            middles = dict(self._middles)  # a guess: where the region starts stays as it was
            return complete(engine, cancel, plan, settings, check, record, doc.uri, True, middles)

        try:
            outcome = await self._worker.run("fimls:prefetch", job, background=True)
        except (JobCancelled, ModelNotReady):
            return
        first = outcome.generations[0]
        log.info(
            "prefetch uri=%s line=%d reused=%d shifted=%d evaluated=%d generated=%d "
            "prefill_ms=%.0f total_ms=%.0f stop=%s",
            doc.uri,
            cursor.line,
            first.reused_tokens,
            first.shifted_tokens,
            first.evaluated_tokens,
            first.generated_tokens,
            first.prompt_ms,
            first.total_ms,
            first.stop_reason,
        )
        if not outcome.cancelled and first.stop_reason != "skipped":
            self._memory.put(doc.uri, key, plan.line_before, outcome.text or "")
            self._stats.count("prefetched")

    def warm_up(self, doc: TextDocument, settings: Settings) -> None:
        """In the background, evaluate the prompt of a newly opened document.

        The cursor is taken at the document's end: for a file within the prefix budget,
        every later prompt in it starts with the same tokens up to its cursor line.
        """
        if not (settings.cache.warmup and settings.completion.enable and self._worker.ready):
            return
        self._spawn(self._warm_up(doc, settings))

    async def _warm_up(self, doc: TextDocument, settings: Settings) -> None:
        await asyncio.sleep(0)
        last = len(doc.lines) - 1
        plan = self.plan(doc, Cursor(last, len(doc.line_text(last))), settings)

        def job(engine: ModelEngine, cancel: threading.Event) -> None:
            prompt = build_prompt(engine, plan, settings)
            self._middles[doc.uri] = prompt.middle_line
            engine.prefill(
                prompt.tokens,
                prompt.block,
                doc.uri,
                settings.cache.documents,
                cancel,
                BACKGROUND_CHUNK,
            )

        try:
            await self._worker.run("fimls:warm-up", job, background=True)
        except (JobCancelled, ModelNotReady):
            return
        self._stats.count("warmedUp")

    def forget(self, uri: str) -> None:
        """A document was closed: drop its completions and its saved KV state."""
        self._memory.forget(uri)
        self._middles.pop(uri, None)
        if self._worker.ready:
            self._spawn(self._forget(uri))

    async def _forget(self, uri: str) -> None:
        def job(engine: ModelEngine, cancel: threading.Event) -> None:
            engine.forget(uri)

        try:
            await self._worker.run(None, job, background=True)
        except (JobCancelled, ModelNotReady):
            pass  # the state goes when newer documents push it out

    def model_changed(self) -> None:
        """Another model was loaded (or none): what is in memory came from the old one."""
        self._memory.clear()
        self._middles.clear()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def plan(self, doc: TextDocument, cursor: Cursor, settings: Settings) -> CompletionPlan:
        """What a completion at the cursor would be made of."""
        path, repo = locate(doc.uri, self._folders())
        return plan_completion(
            doc.lines,
            cursor.line,
            cursor.index,
            prefix_tokens=settings.context.prefix_tokens,
            suffix_tokens=settings.context.suffix_tokens,
            multiline=settings.completion.multiline,
            language_id=doc.language_id,
            path=path,
            repo=repo,
            scope_headers=settings.context.scope_headers,
            pieces=self._context(doc, cursor, settings) if self._context else (),
            suffix_scope=settings.context.suffix_scope,
        )

    async def prompt(
        self,
        doc: TextDocument,
        cursor: Cursor,
        settings: Settings,
        syntax: DocumentSyntax | None = None,
    ) -> dict[str, Any]:
        """The prompt a completion at the cursor would send, in marked segments.

        ``mode`` is ``none`` where an automatic request gets no completion (``skipped``
        says why); an invoked one would send this prompt.
        """
        plan = self.plan(doc, cursor, settings)
        where = skipped_at(doc, cursor, settings, syntax)

        def job(engine: ModelEngine, cancel: threading.Event) -> dict[str, Any]:
            middle_from = self._middles.get(doc.uri)
            tokens = build_prompt(engine, plan, settings, middle_from).tokens
            return {
                "template": engine.template.template.name,
                "mode": "none" if where else plan.mode.value,
                "skipped": where,
                "tokens": len(tokens),
                "segments": [
                    {"special": special, "text": text} for special, text in engine.segments(tokens)
                ],
            }

        return await self._worker.run(None, job)

    def _record(
        self,
        outcome: str,
        started: float,
        phases: tuple[float, float, float, float] | None = None,
        evaluated: int | None = None,
    ) -> None:
        latency = (time.perf_counter() - started) * 1000
        self._stats.record_request(outcome, latency, phases, evaluated)


def _phases(
    queued: float, timing: Sequence[float], outcome: Outcome
) -> tuple[float, float, float, float]:
    """Milliseconds of a request in the queue, in prefill, in decoding and in post-processing."""
    if len(timing) < 2:
        return (0.0, 0.0, 0.0, 0.0)
    prefill = sum(g.prompt_ms for g in outcome.generations)
    model = sum(g.total_ms for g in outcome.generations)
    job = (timing[1] - timing[0]) * 1000
    return ((timing[0] - queued) * 1000, prefill, model - prefill, max(0.0, job - model))
