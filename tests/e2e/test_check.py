"""`fimls check` end to end: the README's first command."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

from tests.engines import EngineProcess


def test_fimls_check_reports_a_real_completion() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "fimls check: OK" in out
    assert "template:   qwen2.5-coder (PSM, from the FIM tokens in its vocabulary)" in out
    assert "models:     qwen2.5-coder-0.5b (in use), qwen2.5-coder-1.5b (" in out
    assert "suggestion: 'a + b'" in out
    assert "first completion:" in out and "typed as shown:" in out
    # after one more character, the model reads again only what follows the cursor line's
    # start (PSM: the typed character and the suffix); the lines above stay in the cache
    warm = re.search(
        r"warm completion: +\d+ ms \(prompt (\d+) tokens: (\d+) evaluated, (\d+) reused", out
    )
    assert warm is not None, out
    prompt, evaluated, reused = (int(n) for n in warm.groups())
    assert evaluated + reused == prompt and 0 < evaluated <= 24 and reused >= 12, out
    assert "server exit code: 0" in out


def test_fimls_check_fails_without_a_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "check", "--model", str(tmp_path / "none.gguf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout
    assert "fimls check: FAILED" in proc.stdout


def test_fimls_check_with_a_remote_engine(inference_server: EngineProcess) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lsp_server", "check", "--engine-url", inference_server.url],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"engine:     openai: llama-cpp-python at {inference_server.url} (openai)" in out
    assert "exact token counts" in out
    assert "template:   qwen2.5-coder (PSM, from the FIM tokens in its vocabulary)" in out
    assert "suggestion: 'a + b'" in out
    # llama-cpp-python's server does not report its prompt cache: not shown as evaluated
    assert "tokens, the engine does not say how many it had cached;" in out
    assert "fimls check: OK" in out


def test_fimls_check_names_an_engine_that_does_not_answer() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        proc = subprocess.run(
            [sys.executable, "-m", "lsp_server", "check", "--engine-url", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    assert f"error:      {url}/v1/models: connection refused" in proc.stdout
    assert "fimls check: FAILED" in proc.stdout
