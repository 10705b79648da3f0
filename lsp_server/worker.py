"""The model's single worker thread, seen from asyncio: load, run jobs, latest wins.

All llama.cpp work happens on one thread, so the KV cache has one owner and a new job
never starts while an old one still holds the context. A job gets a cancel flag; a newer
job with the same key (the document URI) sets the older job's flag, and so does the
cancellation of the asyncio task that awaits it. Jobs check the flag between prompt
batches and after every generated token; a job cancelled before it started leaves the
queue at once, so its request is answered without waiting for the jobs ahead of it.
Background jobs (warm-up, prefetch) yield to the user: any other job cancels every
background job, queued or running, and a background job is not queued behind one.

An inference server (:mod:`lsp_server.remote`) can go away and come back. When it cannot
be reached at load, or a job finds it gone (the engine raises EngineUnavailable), the
state becomes ``unavailable``: requests are answered at once without a job, and the
worker tries the server again after a growing delay (0.5 s doubling up to 15 s), on the
worker thread, until it answers; then the state is ``ready`` again. The delays start
again from the first only when a job is served.

The worker also keeps the deepest its queue has been, for ``fimls/stats``: the most jobs
queued or running at once (cancelled ones included until they leave the thread), and the
most of them still live (not cancelled). Latest-wins keeps the live ones few: one per
key, and background work only while no user job arrives.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from lsp_server.engine import Engine
from lsp_server.errors import EngineUnavailable, FimlsError
from lsp_server.generation import EngineConfig, ModelEngine, ModelInfo
from lsp_server.model_store import ProgressFn

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A cancelled job that ran longer than this is logged (cancellation should be quick).
SLOW_CANCEL_MS = 150

#: A job: runs on the worker thread with the engine and its cancel flag.
Job = Callable[[ModelEngine, threading.Event], T]

#: Loads an engine (on the worker thread): the configuration, and a progress callback.
Loader = Callable[[EngineConfig, "ProgressFn | None"], ModelEngine]


def load_engine(config: EngineConfig, progress: ProgressFn | None = None) -> ModelEngine:
    """The engine a configuration asks for: the in-process model or an inference server."""
    if config.remote is not None:
        from lsp_server.remote import RemoteEngine

        return RemoteEngine.connect(config)
    return Engine.load(config, progress)


class Backoff:
    """Delays between tries of a server that does not answer: doubling, capped, jittered."""

    def __init__(
        self, first: float = 0.5, cap: float = 15.0, jitter: float = 0.1, seed: int | None = None
    ) -> None:
        self.first, self.cap, self.jitter = first, cap, jitter
        self._tries = 0
        self._random = random.Random(seed)

    def next(self) -> float:
        """The delay before the next try (each one doubles the last, up to the cap)."""
        base = min(self.cap, self.first * float(2 ** min(self._tries, 30)))
        self._tries += 1
        return base * (1 + self._random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        """The server answered: start again from the first delay."""
        self._tries = 0


class ModelState(str, enum.Enum):
    """Where the model is in its life."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"
    #: an inference server that does not answer now: tried again until it does
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class StateChange:
    """A model state transition, reported on the event loop."""

    state: ModelState
    message: str
    info: ModelInfo | None
    #: the engine is the one already loaded (a server that went away or came back)
    same_engine: bool = False


class JobCancelled(Exception):
    """The job was cancelled or superseded by a newer one for the same key."""


class ModelNotReady(Exception):
    """No model is loaded (still loading, or loading failed)."""


class ModelWorker:
    """Owns the engine and the one thread that touches it."""

    def __init__(
        self,
        on_state: Callable[[StateChange], None],
        loader: Loader = load_engine,
        on_busy: Callable[[bool], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fimls-model")
        self._on_state = on_state
        self._on_busy = on_busy
        self._foreground = 0  # jobs queued or running that the user waits for
        self._loader = loader
        self._engine: ModelEngine | None = None
        self._backoff = backoff or Backoff()
        self._retry: asyncio.TimerHandle | None = None  # the next try of a server
        self._recovering: asyncio.Task[None] | None = None
        self._active: dict[str, threading.Event] = {}
        self._all: set[threading.Event] = set()
        self._background: set[threading.Event] = set()
        self._queued: dict[threading.Event, Future[Any]] = {}  # its place in the queue
        self._dropped: set[threading.Event] = set()  # taken out of the queue unstarted
        self._closed = False  # shut down: no more jobs
        self._loads = 0
        self._queued_max = 0  # most jobs queued or running at once
        self._live_max = 0  # most of those not cancelled at once
        self.state = ModelState.UNLOADED
        self.message = ""
        self.info: ModelInfo | None = None

    @property
    def ready(self) -> bool:
        """True when a model is loaded and no newer load is pending."""
        return self.state is ModelState.READY

    def load(
        self, config: EngineConfig, progress: ProgressFn | None = None
    ) -> asyncio.Future[None]:
        """Start loading a model in the background; a later load supersedes this one."""
        self._loads += 1
        self._backoff.reset()
        self._stop_retrying()
        self._set(StateChange(ModelState.LOADING, f"loading {_describe(config)}", None))
        return self._start_load(config, progress, self._loads)

    def _start_load(
        self, config: EngineConfig, progress: ProgressFn | None, ticket: int
    ) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()

        def work() -> StateChange:
            if ticket != self._loads:  # superseded before it started
                return StateChange(ModelState.LOADING, "superseded", None)
            self._close_engine()
            try:
                engine = self._loader(config, progress)
                engine.warm()  # before the first request, not during it
            except EngineUnavailable as exc:
                return StateChange(ModelState.UNAVAILABLE, str(exc), None)
            except FimlsError as exc:
                return StateChange(ModelState.ERROR, str(exc), None)
            except Exception as exc:  # a bug or a llama.cpp failure: keep serving
                log.exception("model load failed")
                return StateChange(ModelState.ERROR, f"model load failed: {exc}", None)
            self._engine = engine
            return StateChange(ModelState.READY, f"ready: {engine.info.name}", engine.info)

        def done(fut: asyncio.Future[StateChange]) -> None:
            if fut.cancelled() or ticket != self._loads or self._closed:
                return
            exc = fut.exception()
            if exc is not None:
                self._set(StateChange(ModelState.ERROR, f"model load failed: {exc}", None))
                return
            change = fut.result()
            if change.state is ModelState.UNAVAILABLE:
                delay = self._backoff.next()
                message = f"{change.message}; trying again in {delay:.1f} s"
                self._set(StateChange(ModelState.UNAVAILABLE, message, None))
                self._retry = loop.call_later(
                    delay, lambda: self._start_load(config, progress, ticket)
                )
                return
            self._backoff.reset()
            self._set(change)

        fut = loop.run_in_executor(self._executor, work)
        fut.add_done_callback(done)
        return asyncio.ensure_future(_ignore_result(fut))

    def _lost(self, why: str) -> None:
        """A job found the server gone: ``unavailable`` until a probe gets an answer."""
        if self.state is not ModelState.READY or self._closed:
            return
        info = self.info
        self._set(StateChange(ModelState.UNAVAILABLE, why, info, same_engine=True))
        self._recovering = asyncio.ensure_future(self._recover(self._loads, info))

    async def _recover(self, ticket: int, info: ModelInfo | None) -> None:
        """Probe the server after growing delays until it answers, then be ``ready``."""
        loop = asyncio.get_running_loop()
        delay = self._backoff.next()
        while ticket == self._loads and not self._closed:
            await asyncio.sleep(delay)
            delay = self._backoff.next()  # the one after this probe, if it fails
            engine = self._engine
            if ticket != self._loads or self._closed or engine is None:
                return
            try:
                await loop.run_in_executor(self._executor, engine.check)
            except EngineUnavailable as exc:
                log.info("engine still unavailable: %s", exc)
                self._set(
                    StateChange(
                        ModelState.UNAVAILABLE,
                        f"{exc}; trying again in {delay:.1f} s",
                        info,
                        same_engine=True,
                    )
                )
                continue
            except Exception:  # noqa: BLE001 - a bug in a probe must not end the retries
                log.exception("engine probe failed")
                continue
            if ticket == self._loads and not self._closed:
                # the delays start again only once a job is served: a server that answers
                # probes but fails requests is tried less and less often
                name = info.name if info else "engine"
                self._set(StateChange(ModelState.READY, f"ready: {name}", info, same_engine=True))
            return

    def _stop_retrying(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._recovering is not None:
            self._recovering.cancel()
            self._recovering = None

    def engine_stats(self) -> dict[str, object] | None:
        """What the engine counts of itself (an inference server's latency and errors)."""
        engine = self._engine
        return engine.stats_json() if engine is not None else None

    async def run(self, key: str | None, job: Job[T], *, background: bool = False) -> T:
        """Run a job on the worker thread; a newer job with the same key cancels it.

        A job that is not ``background`` cancels every background job first. Raises
        ModelNotReady, JobCancelled, or whatever the job raises.
        """
        if not self.ready or self._closed:
            raise ModelNotReady("the server is shutting down" if self._closed else self.message)
        if background and self._foreground:
            # it would run after the user's job and replace the KV cache that job leaves
            raise JobCancelled()
        cancel = threading.Event()
        if background:
            self._background.add(cancel)
        else:
            for event in list(self._background):
                self._cancel(event)
        if key is not None:
            previous = self._active.get(key)
            if previous is not None:
                self._cancel(previous)
            self._active[key] = cancel
        self._all.add(cancel)
        self._note_depth()
        if not background:
            self._foreground += 1
            if self._foreground == 1:
                self._busy(True)

        def work() -> T:
            engine = self._engine
            if cancel.is_set():
                raise JobCancelled()
            if engine is None:
                raise ModelNotReady(self.message)
            started = time.perf_counter()
            try:
                return job(engine, cancel)
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                if cancel.is_set() and elapsed > SLOW_CANCEL_MS:
                    log.info("job %s ran %.0f ms; it was cancelled", key, elapsed)

        try:
            queued = self._executor.submit(work)
            self._queued[cancel] = queued
            result = await asyncio.wrap_future(queued)
        except EngineUnavailable as exc:
            self._lost(str(exc))
            raise ModelNotReady(str(exc)) from None
        except asyncio.CancelledError:
            cancel.set()
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)  # Python 3.11+
            if cancel in self._dropped and not (cancelling and cancelling()):
                # superseded before it started: answered now, not when the thread gets to it
                raise JobCancelled() from None
            raise
        finally:
            self._queued.pop(cancel, None)
            self._dropped.discard(cancel)
            self._all.discard(cancel)
            self._background.discard(cancel)
            if not background:
                self._foreground -= 1
                if self._foreground == 0:
                    self._busy(False)
            if key is not None and self._active.get(key) is cancel:
                del self._active[key]
        if cancel.is_set():
            raise JobCancelled()
        self._backoff.reset()  # the engine served a job
        return result

    def _note_depth(self) -> None:
        """Update the queue maxima; the live count only grows when a job is added."""
        live = sum(1 for event in self._all if not event.is_set())
        self._queued_max = max(self._queued_max, len(self._all))
        self._live_max = max(self._live_max, live)

    def queue_json(self) -> dict[str, int]:
        """The queue now and at its deepest, as ``fimls/stats`` ``worker`` reports it.

        ``queued``: jobs queued or running (cancelled ones until they leave the thread);
        ``live``: those not cancelled; ``queuedMax`` and ``liveMax``: the most at once.
        Called on the event loop, as :meth:`run` is.
        """
        return {
            "queued": len(self._all),
            "live": sum(1 for event in self._all if not event.is_set()),
            "queuedMax": self._queued_max,
            "liveMax": self._live_max,
        }

    @property
    def idle(self) -> bool:
        """Whether no job is queued or running."""
        return not self._all

    def cancel_all(self) -> None:
        """Cancel every queued or running job."""
        for event in list(self._all):
            self._cancel(event)

    def _cancel(self, event: threading.Event) -> None:
        """Set a job's flag; one still queued leaves the queue at once."""
        event.set()
        queued = self._queued.get(event)
        if queued is not None and queued.cancel():
            self._dropped.add(event)

    def shutdown(self) -> None:
        """Cancel everything and stop accepting jobs (does not wait for the thread)."""
        self._closed = True
        self._stop_retrying()
        self.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def close(self, timeout: float = 5.0) -> None:
        """Cancel jobs, then free the model on the worker thread (waits up to ``timeout``)."""
        self._stop_retrying()
        self.cancel_all()
        fut = self._executor.submit(self._close_engine)
        try:
            fut.result(timeout=timeout)
        except Exception:  # noqa: BLE001 - best effort at exit
            log.warning("model did not close within %.1f s", timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _close_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def _busy(self, busy: bool) -> None:
        if self._on_busy is None:
            return
        try:
            self._on_busy(busy)
        except Exception:
            log.exception("busy listener failed")

    def _set(self, change: StateChange) -> None:
        self.state, self.message, self.info = change.state, change.message, change.info
        try:
            self._on_state(change)
        except Exception:
            log.exception("state listener failed")


async def _ignore_result(fut: asyncio.Future[StateChange]) -> None:
    try:
        await fut
    except Exception:  # reported through the state callback
        pass


def _describe(config: EngineConfig) -> str:
    if config.remote is not None:
        return f"{config.remote.kind} engine at {config.remote.url}"
    return config.path or "the embedded model"
