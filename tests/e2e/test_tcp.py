"""`fimls --tcp`: one client over a loopback socket."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from lsp_server.lsp_client import FimlsClient
from tests.conftest import doc_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_tcp_transport(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsp_server",
        "--tcp",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        client = FimlsClient()
        for _ in range(100):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await client.handshake()
        assert (await client.wait_model())["state"] == "ready"
        uri = doc_uri(tmp_path, "tcp.py")
        client.open(uri, "def add(a, b):\n    return ")
        result = await client.inline(uri, 1, 11)
        assert result.items and "a + b" in str(result.items[0].insert_text)
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert proc.stdout is not None
        assert await proc.stdout.read() == b"", "nothing may be written to stdout"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
