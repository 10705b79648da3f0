"""Scheduling on the model thread, with a scripted stand-in for the engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from lsp_server.errors import EngineUnavailable, ModelError
from lsp_server.generation import EngineConfig, ModelInfo
from lsp_server.worker import (
    Backoff,
    JobCancelled,
    ModelNotReady,
    ModelState,
    ModelWorker,
    StateChange,
)

CONFIG = EngineConfig(path="/m.gguf", template=None, n_ctx=512, threads=1, n_batch=16)


class FakeEngine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.closed = False
        self.info = ModelInfo(
            name="fake",
            description="fake",
            path=str(config.path),
            size_bytes=0,
            embedded=False,
            template="qwen2.5-coder",
            order="psm",
            n_ctx=config.n_ctx,
            threads=config.threads,
            load_seconds=0.0,
        )

        self.warmed = False

    def warm(self) -> None:
        self.warmed = True

    def close(self) -> None:
        self.closed = True


def loader(config: EngineConfig, progress: Any) -> Any:
    if config.path == "/broken.gguf":
        raise ModelError("cannot load model /broken.gguf: bad magic")
    return FakeEngine(config)


async def ready_worker(changes: list[StateChange] | None = None) -> ModelWorker:
    worker = ModelWorker((changes if changes is not None else []).append, loader=loader)
    await worker.load(CONFIG)
    assert worker.ready
    assert worker._engine is not None and worker._engine.warmed  # before any request
    return worker


def wait_for_cancel(seen: list[str], name: str, limit: float = 5.0) -> Any:
    def job(engine: Any, cancel: threading.Event) -> str:
        seen.append(f"{name} started")
        deadline = time.monotonic() + limit
        while not cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(f"{name} {'cancelled' if cancel.is_set() else 'finished'}")
        return name

    return job


async def test_newer_job_for_the_same_key_cancels_the_older() -> None:
    worker = await ready_worker()
    seen: list[str] = []
    first = asyncio.ensure_future(worker.run("doc", wait_for_cancel(seen, "a")))
    await asyncio.sleep(0.05)
    second = await worker.run("doc", lambda engine, cancel: "b")
    with pytest.raises(JobCancelled):
        await first
    assert second == "b"
    assert seen == ["a started", "a cancelled"]
    worker.shutdown()


async def test_queued_job_that_was_superseded_never_runs() -> None:
    worker = await ready_worker()
    seen: list[str] = []
    blocker = asyncio.ensure_future(worker.run("other", wait_for_cancel(seen, "blocker", 0.2)))
    await asyncio.sleep(0.02)
    queued = asyncio.ensure_future(worker.run("doc", wait_for_cancel(seen, "queued")))
    await asyncio.sleep(0.02)
    newest = asyncio.ensure_future(worker.run("doc", lambda engine, cancel: "newest"))
    assert await newest == "newest"
    with pytest.raises(JobCancelled):
        await queued
    assert await blocker == "blocker"
    assert "queued started" not in seen
    worker.shutdown()


async def test_any_user_job_cancels_background_work_running_or_queued() -> None:
    worker = await ready_worker()
    seen: list[str] = []
    running = asyncio.ensure_future(
        worker.run("warm-up", wait_for_cancel(seen, "warm-up"), background=True)
    )
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(
        worker.run("prefetch", wait_for_cancel(seen, "prefetch"), background=True)
    )
    await asyncio.sleep(0.02)
    assert not worker.idle
    assert await worker.run("another document", lambda engine, cancel: "user") == "user"
    for task in (running, queued):
        with pytest.raises(JobCancelled):
            await task
    assert seen == ["warm-up started", "warm-up cancelled"]  # the queued one never ran
    assert worker.idle
    # once no user job is pending, background work runs again
    assert await worker.run("x", lambda engine, cancel: 1, background=True) == 1
    worker.shutdown()


async def test_jobs_for_different_keys_both_finish() -> None:
    worker = await ready_worker()
    results = await asyncio.gather(
        worker.run("a", lambda engine, cancel: 1), worker.run("b", lambda engine, cancel: 2)
    )
    assert results == [1, 2]
    worker.shutdown()


async def test_cancelling_the_awaiting_task_sets_the_flag() -> None:
    worker = await ready_worker()
    seen: list[str] = []
    task = asyncio.ensure_future(worker.run("doc", wait_for_cancel(seen, "a")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the worker thread is free again at once
    assert await worker.run("doc", lambda engine, cancel: "next") == "next"
    assert seen == ["a started", "a cancelled"]
    worker.shutdown()


async def test_not_ready_before_a_model_is_loaded() -> None:
    worker = ModelWorker(lambda change: None, loader=loader)
    with pytest.raises(ModelNotReady):
        await worker.run("doc", lambda engine, cancel: None)


async def test_load_failure_is_a_state_not_a_crash() -> None:
    changes: list[StateChange] = []
    worker = ModelWorker(changes.append, loader=loader)
    await worker.load(EngineConfig("/broken.gguf", None, 512, 1, 16))
    assert [c.state for c in changes] == [ModelState.LOADING, ModelState.ERROR]
    assert "bad magic" in changes[-1].message
    with pytest.raises(ModelNotReady):
        await worker.run("doc", lambda engine, cancel: None)


async def test_a_later_load_supersedes_an_earlier_one() -> None:
    changes: list[StateChange] = []
    worker = ModelWorker(changes.append, loader=loader)
    first = worker.load(CONFIG)
    second_config = EngineConfig("/other.gguf", None, 512, 1, 16)
    second = worker.load(second_config)
    await asyncio.gather(first, second)
    assert worker.ready
    assert changes[-1].state is ModelState.READY
    used = await worker.run(None, lambda engine, cancel: engine.config)
    assert used == second_config


async def test_busy_spans_the_user_jobs_not_background_work() -> None:
    busy: list[bool] = []
    worker = ModelWorker([].append, loader=loader, on_busy=busy.append)
    await worker.load(CONFIG)
    await worker.run(None, lambda engine, cancel: "warm-up", background=True)
    assert busy == []
    seen: list[str] = []
    first = asyncio.ensure_future(worker.run("a", wait_for_cancel(seen, "a", limit=0.2)))
    second = asyncio.ensure_future(worker.run("b", lambda engine, cancel: "b"))
    await asyncio.sleep(0.05)
    assert busy == [True]  # one busy for two overlapping jobs
    assert await first == "a" and await second == "b"
    assert busy == [True, False]
    with pytest.raises(ValueError):
        await worker.run("c", _fails)
    assert busy == [True, False, True, False]  # a failing job ends the busy span too


def _fails(engine: Any, cancel: threading.Event) -> str:
    raise ValueError("boom")


async def test_queue_depth_counts_jobs_queued_or_running_and_the_live_ones() -> None:
    worker = await ready_worker()
    assert worker.queue_json() == {"queued": 0, "live": 0, "queuedMax": 0, "liveMax": 0}
    seen: list[str] = []
    blocker = asyncio.ensure_future(worker.run("other", wait_for_cancel(seen, "blocker", 0.3)))
    await asyncio.sleep(0.02)
    # three requests for one document queue up behind the blocker; each supersedes the last
    queued = [
        asyncio.ensure_future(worker.run("doc", wait_for_cancel(seen, f"q{i}", 0.05)))
        for i in range(3)
    ]
    await asyncio.sleep(0.02)
    # the superseded ones left the queue at once: answered while the blocker still runs
    assert queued[0].done() and queued[1].done() and not blocker.done()
    now = worker.queue_json()
    assert (now["queued"], now["live"], now["liveMax"]) == (2, 2, 2)
    assert 2 <= now["queuedMax"] <= 4
    # a client cancel takes the job off the queue at once
    queued[2].cancel()
    await asyncio.sleep(0.02)
    now = worker.queue_json()
    assert (now["queued"], now["live"]) == (1, 1)
    results = await asyncio.gather(blocker, *queued, return_exceptions=True)
    assert results[0] == "blocker"
    assert isinstance(results[1], JobCancelled) and isinstance(results[2], JobCancelled)
    assert isinstance(results[3], asyncio.CancelledError)
    # background work counts too, while it lasts
    background = asyncio.ensure_future(
        worker.run("prefetch", wait_for_cancel(seen, "prefetch", 0.2), background=True)
    )
    await asyncio.sleep(0.02)
    assert await worker.run("doc", lambda engine, cancel: "user") == "user"
    with pytest.raises(JobCancelled):
        await background
    final = worker.queue_json()
    assert (final["queued"], final["live"], final["liveMax"]) == (0, 0, 2)
    worker.shutdown()


async def test_background_work_is_not_queued_behind_a_user_job() -> None:
    worker = await ready_worker()
    seen: list[str] = []
    user = asyncio.ensure_future(worker.run("doc", wait_for_cancel(seen, "user", 0.1)))
    await asyncio.sleep(0)
    with pytest.raises(JobCancelled):
        await worker.run("fimls:warm-up", wait_for_cancel(seen, "warm-up"), background=True)
    assert await user == "user"
    assert seen == ["user started", "user finished"]
    worker.shutdown()


async def test_after_shutdown_no_job_is_taken_and_the_counters_stay_right() -> None:
    busy: list[bool] = []
    worker = ModelWorker([].append, loader=loader, on_busy=busy.append)
    await worker.load(CONFIG)
    worker.shutdown()
    with pytest.raises(ModelNotReady):
        await worker.run("doc", lambda engine, cancel: "never")
    assert worker.idle and busy == []


# -- an inference server that goes away and comes back ---------------------------------


class Server:
    """Whether the scripted server answers, and how often it was asked."""

    def __init__(self, up: bool) -> None:
        self.up = up
        self.connects = 0
        self.probes = 0


class FlakyEngine(FakeEngine):
    def __init__(self, config: EngineConfig, server: Server) -> None:
        super().__init__(config)
        self.server = server

    def check(self) -> None:
        self.server.probes += 1
        if not self.server.up:
            raise EngineUnavailable("http://gpu:8080/v1/models: connection refused")


def flaky_worker(server: Server, changes: list[StateChange]) -> ModelWorker:
    def load(config: EngineConfig, progress: Any) -> Any:
        server.connects += 1
        if not server.up:
            raise EngineUnavailable("http://gpu:8080/v1/models: connection refused")
        return FlakyEngine(config, server)

    # short, jitter-free delays so that the test sees several tries
    backoff = Backoff(first=0.02, cap=0.08, jitter=0.0)
    return ModelWorker(changes.append, loader=load, backoff=backoff)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=15.0, jitter=0.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    backoff.reset()
    assert backoff.next() == 0.5
    jittered = Backoff(first=1.0, cap=4.0, jitter=0.1, seed=1)
    delays = [jittered.next() for _ in range(5)]
    assert all(0.9 <= d <= 1.1 for d in delays[:1])
    assert all(3.6 <= d <= 4.4 for d in delays[2:])
    assert len(set(delays[2:])) == 3  # jitter spreads clients that retry together


async def test_a_server_down_at_load_is_tried_again_until_it_answers() -> None:
    server = Server(up=False)
    changes: list[StateChange] = []
    worker = flaky_worker(server, changes)
    await worker.load(CONFIG)
    assert worker.state is ModelState.UNAVAILABLE
    assert "connection refused; trying again in" in worker.message
    with pytest.raises(ModelNotReady, match="connection refused"):
        await worker.run("doc", lambda engine, cancel: "never")  # answered at once
    deadline = time.monotonic() + 5
    while server.connects < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.connects >= 3
    server.up = True
    while not worker.ready and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert worker.ready
    assert await worker.run("doc", lambda engine, cancel: "served") == "served"
    states = [c.state for c in changes]
    assert states[0] is ModelState.LOADING and states[-1] is ModelState.READY
    assert ModelState.ERROR not in states
    worker.shutdown()


async def test_a_job_that_finds_the_server_gone_makes_it_unavailable_until_a_probe_answers() -> (
    None
):
    server = Server(up=True)
    changes: list[StateChange] = []
    worker = flaky_worker(server, changes)
    await worker.load(CONFIG)
    assert worker.ready

    def job(engine: Any, cancel: threading.Event) -> str:
        if not server.up:
            raise EngineUnavailable("http://gpu:8080/v1/completions: connection refused")
        return "served"

    server.up = False
    with pytest.raises(ModelNotReady, match="connection refused"):
        await worker.run("doc", job)
    assert worker.state is ModelState.UNAVAILABLE
    lost = changes[-1]
    assert lost.same_engine and lost.info is not None  # the model stays known
    started = time.monotonic()
    with pytest.raises(ModelNotReady):
        await worker.run("doc", job)  # no job while down: answered at once
    assert time.monotonic() - started < 0.05
    deadline = time.monotonic() + 5
    while server.probes < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.probes >= 2 and worker.state is ModelState.UNAVAILABLE
    server.up = True
    while not worker.ready and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert worker.ready and changes[-1].same_engine
    assert await worker.run("doc", job) == "served"
    assert server.connects == 1  # the engine was kept, not loaded again
    worker.shutdown()


async def test_a_new_load_stops_the_retries_of_the_old_server() -> None:
    server = Server(up=False)
    changes: list[StateChange] = []
    worker = flaky_worker(server, changes)
    await worker.load(CONFIG)
    assert worker.state is ModelState.UNAVAILABLE
    worker._loader = loader  # the user switched to the local model
    await worker.load(CONFIG)
    assert worker.ready
    tries = server.connects
    await asyncio.sleep(0.3)
    assert server.connects == tries and worker.ready
    worker.shutdown()


async def test_a_server_that_answers_probes_but_fails_jobs_is_tried_less_and_less_often() -> None:
    server = Server(up=True)
    changes: list[StateChange] = []
    worker = flaky_worker(server, changes)
    await worker.load(CONFIG)
    failing = True

    def job(engine: Any, cancel: threading.Event) -> str:
        if failing:
            raise EngineUnavailable("http://gpu:8080/v1/completions answered 500")
        return "served"

    probes: list[float] = []
    for _ in range(3):
        assert worker.ready
        with pytest.raises(ModelNotReady):
            await worker.run("doc", job)
        started, seen = time.monotonic(), server.probes
        while server.probes == seen and time.monotonic() - started < 5:
            await asyncio.sleep(0.002)
        probes.append(time.monotonic() - started)
        while not worker.ready and time.monotonic() - started < 5:
            await asyncio.sleep(0.002)
    # 20, 40, 80 ms: each probe that answered did not reset the delay
    assert probes[0] < probes[2] and probes[2] >= 0.07, probes
    failing = False
    assert await worker.run("doc", job) == "served"
    assert worker._backoff.next() == pytest.approx(0.02)  # a served job starts them again
    worker.shutdown()
