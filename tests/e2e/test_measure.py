"""fimls eval and fimls bench, run as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from lsp_server.measure.bench import NO_CACHE
from tests.engines import EngineProcess
from tests.unit.test_measure import write_repo


def fimls(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lsp_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


SMALL = (
    "def area(w, h):\n    result = w * h\n    result = abs(result)\n    return result\n\n\n"
    "def perimeter(w, h):\n    total = 2 * (w + h)\n    total = abs(total)\n    return total\n"
)


def bench_small(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``fimls bench`` retyping one short function, a key every 30 ms; the JSON report."""
    source = tmp_path / "small.py"
    source.write_text(SMALL)
    out = tmp_path / "bench.json"
    proc = fimls(
        "bench",
        "--file",
        str(source),
        "--functions",
        "1",
        "--every",
        "4",
        "--interval-ms",
        "30",
        *args,
        "--output",
        str(out),
        cwd=tmp_path,
    )
    return proc, out


def test_eval_humaneval_single_line_through_the_server(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = fimls(
        "eval",
        "humaneval-single-line",
        "--limit",
        "6",
        "--seed",
        "2",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("humaneval-single-line [fimls]: 6 tasks, pass@1 ")
    report = json.loads(out.read_text())
    assert report["config"] == "fimls" and report["model"]["template"] == "qwen2.5-coder"
    assert len(report["tasks"]) == 6
    assert all(t["passed"] in (True, False) for t in report["tasks"])
    summary = report["summary"]
    assert summary["errors"] == 0
    # the small model fills most of these lines correctly; 0 would mean a broken pipeline
    assert summary["passAt1"] > 0
    assert summary["latencyMs"]["p50"] > 0


def test_eval_warm_types_the_cursor_line_into_a_cache_left_by_the_line_above(
    tmp_path: Path,
) -> None:
    out = tmp_path / "warm.json"
    proc = fimls(
        "eval",
        "humaneval-single-line",
        "--limit",
        "3",
        "--warm",
        "--settings",
        '{"cache": {"shiftedReuse": true}, "context": {"suffixScope": "file"}}',
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["summary"]["errors"] == 0 and len(report["tasks"]) == 3
    # the holes were answered after a line break typed into a cache left by the line above
    assert report["server"]["cache"]["shiftedReuses"] >= 1  # the others have short suffixes


def test_eval_raw_baseline(tmp_path: Path) -> None:
    out = tmp_path / "raw.json"
    proc = fimls(
        "eval",
        "humaneval-single-line",
        "--limit",
        "4",
        "--baseline",
        "raw",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["config"] == "raw"
    assert all("\n" not in (t["completion"] or "") for t in report["tasks"])


def test_eval_repo_suite(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_repo(repo)
    out = tmp_path / "repo.json"
    proc = fimls(
        "eval", "repo", str(repo), "--limit", "4", "--seed", "1", "--output", str(out), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "repo [fimls]: 4 tasks" in proc.stdout
    assert "pass@1" not in proc.stdout  # no tests to run in a repository
    report = json.loads(out.read_text())
    assert {t["kind"] for t in report["tasks"]} == {"line-remainder", "block"}
    assert all(0.0 <= t["similarity"] <= 1.0 for t in report["tasks"])
    # nothing is written into the repository
    assert sorted(p.name for p in repo.iterdir()) == [
        "data.bin.py",
        "main.js",
        "node_modules",
        "pkg",
    ]


def test_bench_with_compare(tmp_path: Path) -> None:
    proc, out = bench_small(
        tmp_path,
        "--settings",
        '{"cache": {"shiftedReuse": true}, "context": {"suffixScope": "file"}}',
        "--compare",
        "no-cache",
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert "pause latency p50" in table and "would accept" in table
    assert "base" in table and "compare" in table and "ratio" in table
    data = json.loads(out.read_text())
    base, compare = data["results"]
    for result in (base, compare):
        assert result["sent"] == result["keystrokes"] == data["keystrokes"] > 0
        assert result["errors"] == 0
        assert result["pauses"] == len(result["latencies_ms"]) > 0
        assert result["summary"]["serverRssMiB"] > 100
        assert result["generations"] > 0
    assert compare["settings"] == NO_CACHE
    # with the moves on, each new line moves the suffix (the other function) instead of
    # evaluating it again
    assert base["shifted_reuses"] >= 1 and compare["shifted_reuses"] == 0
    assert compare["memory_answers"] == 0
    assert "prompt tokens evaluated / answer, median" in table


def test_bench_compares_the_local_model_with_an_inference_server(
    tmp_path: Path, inference_server: EngineProcess
) -> None:
    proc, out = bench_small(tmp_path, "--compare", inference_server.url)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert re.search(rf"engine +local +{re.escape(inference_server.url)} +-", table), table
    assert "engine first chunk p50" in table
    local, remote = json.loads(out.read_text())["results"]
    assert local["settings"] is None
    assert remote["settings"] == {"engine": {"kind": "openai", "url": inference_server.url}}
    assert local["remote"] is None
    assert remote["remote"]["requests"] > 0 and remote["remote"]["errors"] == {}
    assert remote["remote"]["firstChunkMs"]["count"] > 0
    for result in (local, remote):
        assert result["sent"] == result["keystrokes"] > 0 and result["errors"] == 0
        assert result["pauses"] == len(result["latencies_ms"]) > 0
    # the same trace typed into both: the same keystrokes and pauses
    assert local["keystrokes"] == remote["keystrokes"] and local["pauses"] == remote["pauses"]
    # without the model in its process, the server is much smaller
    assert remote["summary"]["serverRssMiB"] < local["summary"]["serverRssMiB"]


def test_bench_on_a_file_without_bodies_is_a_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "flat.py"
    source.write_text("x = 1\n")
    proc = fimls("bench", "--file", str(source), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("fimls bench: no function bodies")
    assert "Traceback" not in proc.stderr


def test_eval_repo_without_sources_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = fimls("eval", "repo", str(tmp_path / "empty"), cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("fimls eval: no source files found")
