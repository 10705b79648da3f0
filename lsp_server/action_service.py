"""Resolving a code action: ask the model, turn the answer into checked edits, retry once.

Policy with completions (one model, one worker thread): an action is a user job like
a completion. It waits for the job running when it arrives (at most one completion:
each keystroke supersedes the previous one) and then runs to its end; completions asked
for meanwhile wait behind it. Warm-up and prefetch yield to it at once. The action runs
under a document key of its own (:data:`ACTION_DOCUMENT`): the engine saves the live
completion KV state first and restores it for the next completion, so the action never
leaves the completion cache wrong (with ``cache.documents: 0`` the next completion
evaluates its prompt again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lsp_server.actions import (
    MAX_TOKENS,
    TESTS,
    Proposal,
    Target,
    UnitTestSource,
    answer_stop,
    build_messages,
    propose,
    test_file,
    test_import,
)
from lsp_server.config import Settings
from lsp_server.documents import TextDocument
from lsp_server.errors import EngineRequestError
from lsp_server.generation import (
    ACTION_DOCUMENT,
    Generation,
    GenerationResult,
    ModelEngine,
    Sampling,
)
from lsp_server.stats import Stats
from lsp_server.worker import JobCancelled, ModelNotReady, ModelWorker
from lsp_server.workspace import uri_path

log = logging.getLogger(__name__)

#: Sampling of the retry after a refused answer (the first answer is greedy).
RETRY_SAMPLING = Sampling(temperature=0.4, top_k=40, top_p=0.95, seed=7)


class ActionError(Exception):
    """An action that cannot give an edit; the message is for the user."""


class StaleAction(ActionError):
    """The document changed since the action was listed."""


@dataclass(frozen=True)
class ActionOutcome:
    """The checked changes, and what it took."""

    proposal: Proposal
    attempts: int
    seconds: float


#: progress(message) while the action runs
ProgressFn = Callable[[str], None]


class ActionService:
    """Computes code action edits with the model worker."""

    def __init__(self, worker: ModelWorker, stats: Stats) -> None:
        self._worker = worker
        self._stats = stats

    async def resolve(
        self,
        target: Target,
        doc: TextDocument,
        grammar: str | None,
        settings: Settings,
        *,
        folders: tuple[str, ...] = (),
        open_documents: Callable[[str], TextDocument | None] = lambda uri: None,
        progress: ProgressFn = lambda message: None,
    ) -> ActionOutcome:
        """The edit for a listed action; raises ActionError, StaleAction or JobCancelled."""
        started = time.perf_counter()
        attempts: list[int] = []
        try:
            outcome = await self._resolve(
                target, doc, grammar, settings, folders, open_documents, progress, attempts
            )
        except StaleAction:
            self._stats.record_action(target.kind, "stale", 0.0, 0)
            raise
        except JobCancelled:
            self._stats.record_action(target.kind, "cancelled", 0.0, len(attempts))
            raise
        except (ActionError, ModelNotReady):
            self._stats.record_action(target.kind, "failed", 0.0, len(attempts))
            raise
        self._stats.record_action(target.kind, "ok", time.perf_counter() - started, len(attempts))
        return outcome

    async def _resolve(
        self,
        target: Target,
        doc: TextDocument,
        grammar: str | None,
        settings: Settings,
        folders: tuple[str, ...],
        open_documents: Callable[[str], TextDocument | None],
        progress: ProgressFn,
        attempts: list[int],
    ) -> ActionOutcome:
        started = time.perf_counter()
        if doc.version != target.version:
            raise StaleAction(
                f"{_where(doc.uri)} changed since the action was listed (version "
                f"{target.version}, now {doc.version}); ask for code actions again"
            )
        # a snapshot: the document may change while the model works (the edit then
        # carries the old version, and the editor refuses it)
        text, lines = doc.text, list(doc.lines)
        tests = _test_source(target, doc, folders, open_documents) if target.kind == TESTS else None
        path = _where(doc.uri)
        header = test_import(target, text, grammar, lines, tests.where) if tests else ""
        reason = ""
        proposal = Proposal()
        for attempt in (1, 2):
            progress("asking the model" if attempt == 1 else f"retrying: {reason}")
            system, user = build_messages(
                target,
                lines,
                doc.language_id,
                path,
                context=_test_context(tests, header),
                retry_reason=reason,
            )
            attempts.append(attempt)
            sampling = Sampling() if attempt == 1 else RETRY_SAMPLING
            result = await self._generate(system, user, target, settings, sampling)
            progress("checking the edit")
            proposal = propose(target, result.text, text, doc.language_id, grammar, tests)
            log.info(
                "action %s attempt %d: prompt %d tokens, %d generated in %.0f ms: %s",
                target.kind,
                attempt,
                result.prompt_tokens,
                result.generated_tokens,
                result.total_ms,
                "rejected" if proposal.problem else "ok",
            )
            if proposal.problem:  # it may quote the code: only at DEBUG
                log.debug(
                    "action %s attempt %d rejected: %s", target.kind, attempt, proposal.problem
                )
            if proposal.problem is None:
                return ActionOutcome(proposal, attempt, time.perf_counter() - started)
            reason = proposal.problem
        raise ActionError(f"fimls could not {_verb(target)}: {proposal.problem} (tried twice)")

    async def _generate(
        self, system: str, user: str, target: Target, settings: Settings, sampling: Sampling
    ) -> GenerationResult:
        def job(engine: ModelEngine, cancel: threading.Event) -> GenerationResult:
            try:
                prompt = engine.chat_prompt(system, user)
            except ValueError as exc:
                raise ActionError(f"{engine.info.name}: {exc}") from None
            room = engine.n_ctx - len(prompt) - 1
            if room < 64:
                raise ActionError(
                    f"the code is too long for the model's context: the prompt takes "
                    f"{len(prompt)} of {engine.n_ctx} tokens (fimls.model.contextSize)"
                )
            stops = engine.chat.stop
            enough = answer_stop(target.kind)
            request = Generation(
                prompt=prompt,
                max_tokens=min(MAX_TOKENS[target.kind], room),
                stop=lambda text: _stop_at(text, stops, enough),
                cancel=cancel,
                sampling=sampling,
                shifted_reuse=False,
                document=ACTION_DOCUMENT,
                documents=settings.cache.documents,
            )
            try:
                return engine.generate(request)
            except EngineRequestError as exc:  # an inference server refused this one
                raise ActionError(f"the engine refused the request: {exc}") from None

        result = await self._worker.run(None, job)
        if result.cancelled:
            raise JobCancelled()
        return result


def _stop_at(text: str, stops: tuple[str, ...], enough: Callable[[str], int | None]) -> int | None:
    found = [text.find(s) for s in stops if s and s in text]
    if found:
        return min(found)
    return enough(text)


def _where(uri: str) -> str:
    path = uri_path(uri)
    return Path(path).name if path else uri


def _verb(target: Target) -> str:
    return {
        "docstring": f"write a docstring for `{target.name}`",
        "fix": "fix the error",
        "explain": "explain the code",
        "tests": f"write tests for `{target.name}`",
        "rewrite": "rewrite the selection",
    }[target.kind]


def _test_source(
    target: Target,
    doc: TextDocument,
    folders: tuple[str, ...],
    open_documents: Callable[[str], TextDocument | None],
) -> UnitTestSource:
    where = test_file(doc.uri, doc.language_id, folders)
    if where is None:
        raise ActionError(f"no test file convention for {doc.language_id}")
    if where.uri == doc.uri:
        return UnitTestSource(where, doc.text, doc.version)
    opened = open_documents(where.uri)
    if opened is not None:
        return UnitTestSource(where, opened.text, opened.version)
    path = uri_path(where.uri)
    if path and Path(path).is_file():
        try:
            return UnitTestSource(where, Path(path).read_text(encoding="utf-8"), None)
        except (OSError, UnicodeDecodeError) as exc:
            raise ActionError(f"cannot read {path}: {exc}") from None
    return UnitTestSource(where, None, None)


def _test_context(tests: UnitTestSource | None, header: str) -> str:
    """What the tests prompt says about the test file and how it imports the code."""
    if tests is None:
        return ""
    framework = f"Use {tests.where.framework}."
    if tests.text:
        head = "\n".join(tests.text.split("\n")[:15])
        return f"The test file already starts with:\n```\n{head}\n```\n{framework}\n"
    first = header.strip().split("\n")
    start = "\n".join(first)
    return f"{framework} The test file starts with:\n```\n{start}\n```\n" if start else framework
