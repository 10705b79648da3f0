"""``fimls prompt FILE:LINE:COL``: print the exact prompt the server would send the model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcException

from lsp_server.documents import index_to_column, split_lines
from lsp_server.lsp_client import FimlsClient, server_command
from lsp_server.workspace import LANGUAGES


def parse_location(text: str) -> tuple[Path, int, int]:
    """``FILE:LINE:COL`` with 1-based line and column (as editors show them)."""
    parts = text.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"expected FILE:LINE:COL, got {text!r}")
    line, col = int(parts[1]), int(parts[2])
    if line < 1 or col < 1:
        raise ValueError("LINE and COL count from 1")
    return Path(parts[0]), line - 1, col - 1


def workspace_root(path: Path) -> Path:
    """The git work tree holding a file, else its directory."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return Path(out)
    except (OSError, subprocess.SubprocessError):
        return path.parent


async def fetch_prompt(
    path: Path, line: int, column: int, model: str | None, settings: dict[str, Any] | None
) -> dict[str, Any]:
    """Start the server, open the file and ask ``fimls/prompt`` at the position."""
    text = path.read_text(encoding="utf-8")
    lines = split_lines(text)
    if line >= len(lines):
        raise ValueError(f"{path} has {len(lines)} lines")
    character = index_to_column(lines[line].rstrip("\r\n"), column, "utf-16")
    client = FimlsClient()
    await client.start(server_command("--stdio", *(["--model", model] if model else [])))
    try:
        root = workspace_root(path.resolve())
        await client.handshake(initialization_options=settings, root_uri=root.as_uri())
        status = await client.wait_model()
        if status.get("state") != "ready":
            raise RuntimeError(f"the model did not load: {status.get('message')}")
        await client.wait_index(60)  # cross-file context comes from the workspace index
        uri = path.resolve().as_uri()
        client.open(uri, text, LANGUAGES.get(path.suffix, "plaintext"))
        result = await client.prompt(uri, line, character)
        return {**result, "model": status.get("model")}
    finally:
        await client.stop()


def render(result: dict[str, Any], tty: bool) -> str:
    """The prompt text with special tokens marked (inverse video on a terminal)."""
    out = []
    for segment in result["segments"]:
        text = segment["text"]
        if segment["special"]:
            text = f"\x1b[7m{text}\x1b[0m" if tty else f"«{text}»"
        out.append(text)
    return "".join(out)


def main(location: str, model: str | None, settings: dict[str, Any] | None) -> int:
    """Print the template, the completion mode and the prompt."""
    try:
        path, line, column = parse_location(location)
        result = asyncio.run(fetch_prompt(path, line, column, model, settings))
    except (OSError, ValueError, RuntimeError, JsonRpcException) as exc:
        print(f"fimls prompt: {exc}", file=sys.stderr)
        return 2
    m = result.get("model") or {}
    print(f"model:    {m.get('name')} ({m.get('path')})")
    reason = m.get("templateReason")
    print(f"template: {result['template']}" + (f" (from {reason})" if reason else ""))
    skipped = result.get("skipped")
    why = f" (inside a {skipped}: only an invoked completion)" if skipped else ""
    print(f"mode:     {result['mode']}{why}")
    print(f"tokens:   {result['tokens']}")
    print("-" * 72)
    print(render(result, sys.stdout.isatty()))
    return 0
