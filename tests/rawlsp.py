"""A raw JSON-RPC peer for tests that must send what no well-behaved client would."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from lsp_server.lsp_client import server_command


class RawServer:
    """``fimls --stdio`` driven with hand-made frames; collects everything it sends."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.responses: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.answered_twice: list[dict[str, Any]] = []
        self.without_id: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1000)
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> RawServer:
        proc = await asyncio.create_subprocess_exec(
            *server_command("--stdio", *args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
        )
        return cls(proc)

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    async def call(self, method: str, params: Any = None, timeout: float = 60.0) -> dict[str, Any]:
        return await self.response(self.request(method, params), timeout)

    async def response(self, msg_id: Any, timeout: float = 60.0) -> dict[str, Any]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: msg_id in self.responses), timeout
            )
            return self.responses[msg_id]

    async def notification(
        self, method: str, timeout: float = 60.0, **match: Any
    ) -> dict[str, Any]:
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
        return await self.notification("fimls/status", timeout, state="ready")

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}},
        )

    def inline_params(self, uri: str, line: int, character: int) -> dict[str, Any]:
        return {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 2},
        }

    async def close(self, timeout: float = 10.0) -> int:
        if self.proc.returncode is None:
            try:
                await self.call("shutdown", timeout=timeout)
                self.notify("exit")
            except (asyncio.TimeoutError, ConnectionError):
                pass
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float = 10.0) -> int:
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
            assert length is not None, "frame without Content-Length"
            message = json.loads(await stdout.readexactly(length))
            async with self._arrived:
                if "method" in message and "id" in message:
                    # a request from the server (e.g. workspace/configuration): answer null
                    self.server_requests.append(message)
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                elif "method" in message:
                    self.notifications.append(message)
                elif message.get("id") is None:
                    self.without_id.append(message)
                elif message["id"] in self.responses:
                    self.answered_twice.append(message)
                else:
                    self.responses[message["id"]] = message
                self._arrived.notify_all()
