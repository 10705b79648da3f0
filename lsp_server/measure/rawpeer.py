"""A raw JSON-RPC peer of ``fimls --stdio`` that counts every frame the server sends.

pygls' client matches answers to its own futures and drops or hides what does not fit
(a second answer to one request, an answer without an id). :class:`RawServer` writes
hand-made frames and keeps everything that comes back, so that ``fimls bench --stress``
and the tests can check that every request is answered exactly once, and send what no
well-behaved client would. Requests from the server (``workspace/configuration``,
progress creation) are answered with ``null``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from lsp_server.lsp_client import server_command

T = TypeVar("T")

#: What :meth:`RawServer.start` accepts for the server's stderr.
Stderr = int | IO[Any] | None


class RawServer:
    """``fimls --stdio`` driven with hand-made frames; collects everything it sends.

    ``responses`` maps each answered id to its first answer (``arrived`` to the
    ``time.perf_counter()`` of its arrival); ``answered_twice`` holds any later answer to
    the same id, ``without_id`` answers whose id is null, ``missing_id`` those with no id
    member at all, ``notifications`` the server's notifications and ``server_requests`` its
    requests.
    """

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.responses: dict[Any, dict[str, Any]] = {}
        self.arrived: dict[Any, float] = {}
        self.notifications: list[dict[str, Any]] = []
        self.answered_twice: list[dict[str, Any]] = []
        self.without_id: list[dict[str, Any]] = []
        #: responses with no ``id`` member at all (JSON-RPC wants ``"id": null`` there)
        self.missing_id: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        #: why the reader stopped before the end of the stream (a malformed frame)
        self.read_error: str | None = None
        self._ids = itertools.count(1000)
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, *args: str, env: dict[str, str] | None = None, stderr: Stderr = None
    ) -> RawServer:
        """Start ``fimls --stdio ARGS``; its stderr is discarded unless ``stderr`` is given."""
        proc = await asyncio.create_subprocess_exec(
            *server_command("--stdio", *args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL if stderr is None else stderr,
            env=env,
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def send_bytes(self, data: bytes) -> None:
        """Write raw bytes to the server's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        """Write one message in a Content-Length frame."""
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def drain(self) -> None:
        """Wait until the stdin buffer is flushed down to its limit."""
        assert self.proc.stdin is not None
        await self.proc.stdin.drain()

    def request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        """Send a request (a fresh numeric id unless given); return its id."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    async def call(self, method: str, params: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        """Send a request and wait for its answer (the whole response message)."""
        return await self.response(self.request(method, params), timeout)

    async def response(self, msg_id: Any, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the answer to ``msg_id``."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: msg_id in self.responses), timeout
            )
            return self.responses[msg_id]

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 60.0) -> T:
        """Wait until ``predicate()`` (checked as messages arrive) is not None; return it."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: predicate() is not None), timeout)
            result = predicate()
            assert result is not None
            return result

    async def notification(
        self, method: str, timeout: float = 60.0, **match: Any
    ) -> dict[str, Any]:
        """Wait for a notification of ``method`` whose params have the ``match`` values."""

        def found() -> dict[str, Any] | None:
            for n in self.notifications:
                params = n.get("params") or {}
                if n["method"] == method and all(params.get(k) == v for k, v in match.items()):
                    return n
            return None

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
            result = found()
            assert result is not None
            return result

    async def initialize(
        self, capabilities: dict[str, Any] | None = None, **init_options: Any
    ) -> dict[str, Any]:
        """Send ``initialize`` (inline completion capability by default), then ``initialized``."""
        result = await self.call(
            "initialize",
            {
                "processId": None,
                "rootUri": None,
                "capabilities": capabilities or {"textDocument": {"inlineCompletion": {}}},
                "initializationOptions": init_options or None,
            },
        )
        self.notify("initialized", {})
        return result

    async def wait_ready(self, timeout: float = 600.0) -> dict[str, Any]:
        """Wait for ``fimls/status`` ``ready``."""
        return await self.notification("fimls/status", timeout, state="ready")

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        """Send ``didOpen`` (version 1)."""
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )

    def inline_params(
        self, uri: str, line: int, character: int, trigger_kind: int = 2
    ) -> dict[str, Any]:
        """Params of an inline completion request (automatic trigger by default)."""
        return {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": trigger_kind},
        }

    async def close(self, timeout: float = 10.0) -> int:
        """Send ``shutdown`` and ``exit``; return the exit code (killed after ``timeout``)."""
        if self.proc.returncode is None:
            try:
                await self.call("shutdown", timeout=timeout)
                self.notify("exit")
            except (asyncio.TimeoutError, ConnectionError):
                pass
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to end (kill it after ``timeout``); return its exit code."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            length = None
            while True:
                line = await stdout.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            if length is None:
                self.read_error = "frame without Content-Length"
                raise AssertionError(self.read_error)
            message = json.loads(await stdout.readexactly(length))
            async with self._arrived:
                self._record(message)
                self._arrived.notify_all()

    def _record(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            # a request from the server (e.g. workspace/configuration): answer null
            self.server_requests.append(message)
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        elif "id" not in message:
            self.missing_id.append(message)
        elif message["id"] is None:
            self.without_id.append(message)
        elif message["id"] in self.responses:
            self.answered_twice.append(message)
        else:
            self.responses[message["id"]] = message
            self.arrived[message["id"]] = time.perf_counter()
