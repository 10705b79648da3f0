"""Faults around the process: the client vanishing, exit and shutdown mid-work, signals.

Each server runs in a process group of its own, with a workspace that is a git
repository (so the indexer has run ``git``): when it has gone, no process of its group
may be left. A server that keeps running must not gain threads as it works.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lsp_server.lsp_client import server_command
from tests.e2e.test_cancel import COLUMN, LINE, LONG
from tests.rawlsp import RawServer

BUSY_SETTINGS = {
    "completion": {"maxTokens": 512, "maxLines": 200},
    "cache": {"timeBudgetMs": 0, "warmup": False, "prefetch": False},
}
ACTION_SOURCE = "def scale(values, factor):\n    return [v * factor for v in values]\n"

Start = Callable[..., Awaitable[RawServer]]


def git_workspace(root: Path) -> Path:
    root.mkdir()
    (root / "shapes.py").write_text(
        "class Circle:\n    def __init__(self, r):\n        self.r = r\n"
    )
    (root / "main.py").write_text("from shapes import Circle\n\nc = Circle(2)\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    return root


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def group_gone(pgid: int, timeout: float = 10.0) -> bool:
    for _ in range(int(timeout * 10)):
        if not group_alive(pgid):
            return True
        await asyncio.sleep(0.1)
    return False


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    started: list[RawServer] = []

    async def run(process_id: int | None = None, **settings: Any) -> RawServer:
        log = (tmp_path / f"server{len(started)}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            *server_command("--stdio", "-v"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            start_new_session=True,  # its own process group: pgid == pid
        )
        log.close()
        server = RawServer(proc)
        started.append(server)
        workspace = git_workspace(tmp_path / f"ws{len(started)}")
        await server.call(
            "initialize",
            {
                "processId": process_id or os.getpid(),
                "rootUri": workspace.as_uri(),
                "workspaceFolders": [{"uri": workspace.as_uri(), "name": "ws"}],
                "capabilities": {
                    "textDocument": {
                        "inlineCompletion": {},
                        "codeAction": {"resolveSupport": {"properties": ["edit"]}},
                    },
                    "window": {"workDoneProgress": True},
                },
                "initializationOptions": settings or None,
            },
        )
        server.notify("initialized", {})
        await server.wait_ready()
        return server

    yield run
    for server in started:
        if server.proc.returncode is None:
            server.proc.kill()
            await server.proc.wait()
        if group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)


async def busy(server: RawServer, tmp_path: Path) -> tuple[int, int]:
    """Start a long completion and a code action; return their request ids."""
    uri = (tmp_path / "long.py").as_uri()
    server.open(uri, LONG)
    completion = server.request(
        "textDocument/inlineCompletion", server.inline_params(uri, LINE, COLUMN)
    )
    action_uri = (tmp_path / "scale.py").as_uri()
    server.open(action_uri, ACTION_SOURCE)
    listed = await server.call(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": action_uri},
            "range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 4}},
            "context": {"diagnostics": []},
        },
    )
    docstring = next(a for a in listed["result"] if "docstring" in a["title"].lower())
    action = server.request("codeAction/resolve", docstring)
    await asyncio.sleep(1.5)  # the completion is generating, the action waits behind it
    assert completion not in server.responses and action not in server.responses
    return completion, action


async def test_shutdown_while_a_completion_and_an_action_run(start: Start, tmp_path: Path) -> None:
    server = await start(**BUSY_SETTINGS)
    completion, action = await busy(server, tmp_path)
    reply = await server.call("shutdown", timeout=10)
    assert reply["result"] is None
    # both were answered (cancelled by the shutdown) before the shutdown's answer
    for msg_id in (completion, action):
        assert server.responses[msg_id]["error"]["code"] == -32800, server.responses[msg_id]
    server.notify("exit")
    assert await server.wait_exit(10) == 0
    assert server.answered_twice == []
    assert await group_gone(server.pid)


async def test_exit_without_shutdown_while_busy(start: Start, tmp_path: Path) -> None:
    server = await start(**BUSY_SETTINGS)
    await busy(server, tmp_path)
    server.notify("exit")
    assert await server.wait_exit(10) == 1
    assert await group_gone(server.pid)


async def test_client_disconnects_mid_request(start: Start, tmp_path: Path) -> None:
    server = await start(**BUSY_SETTINGS)
    await busy(server, tmp_path)
    # the editor crashed: both pipes close while the model is generating
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    server._reader.cancel()
    transport = server.proc._transport  # type: ignore[attr-defined]
    transport.get_pipe_transport(1).close()
    assert await server.wait_exit(10) == 1
    assert await group_gone(server.pid)


async def test_sigterm_while_busy_ends_the_server(start: Start, tmp_path: Path) -> None:
    server = await start(**BUSY_SETTINGS)
    await busy(server, tmp_path)
    server.proc.send_signal(signal.SIGTERM)
    assert await server.wait_exit(10) != 0
    assert await group_gone(server.pid)


async def test_the_editor_process_gone_ends_the_server(start: Start, tmp_path: Path) -> None:
    editor = subprocess.Popen(["sleep", "600"])
    try:
        server = await start(process_id=editor.pid, **BUSY_SETTINGS)
        await busy(server, tmp_path)
    finally:
        editor.kill()
        editor.wait()
    # the watchdog looks every 3 s; the pipes stay open, as when an editor is killed hard
    assert await server.wait_exit(15) == 1
    assert await group_gone(server.pid)


async def test_working_does_not_grow_the_thread_count(start: Start, tmp_path: Path) -> None:
    server = await start()
    uri = (tmp_path / "work.py").as_uri()

    async def round_of_work(n: int) -> None:
        server.open(uri, f"def add{n}(a, b):\n    return \n")
        pending = [
            server.request("textDocument/inlineCompletion", server.inline_params(uri, 1, 11))
            for _ in range(5)
        ]
        server.notify("$/cancelRequest", {"id": pending[0]})
        for msg_id in pending:
            await server.response(msg_id, 60)
        await server.call("fimls/stats")
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    for n in range(4):  # thread pools grow to their size (bounded) in the first rounds
        await round_of_work(n)
    await asyncio.sleep(1)
    settled = threads(server.pid)
    for n in range(4, 16):  # 60 more requests: a thread per request would add 60
        await round_of_work(n)
    await asyncio.sleep(1)
    assert threads(server.pid) <= settled + 2, (settled, threads(server.pid))
    assert await server.close() == 0
    assert await group_gone(server.pid)
