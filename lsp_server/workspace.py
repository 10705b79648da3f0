"""The workspace: folders, a document's path in them, and the source files they hold."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

#: File extensions of source files, with their LSP language ids.
LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".lua": "lua",
    ".sh": "shellscript",
    ".bash": "shellscript",
    ".zsh": "shellscript",
    ".php": "php",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sc": "scala",
    ".hs": "haskell",
    ".zig": "zig",
    ".cs": "csharp",
}

#: Folders never searched for source files (dependencies, builds, caches, VCS data).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        "build",
        "dist",
        "target",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".idea",
        ".vscode",
    }
)


def uri_path(uri: str) -> PurePosixPath | None:
    """The filesystem path of a ``file:`` URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return PurePosixPath(unquote(parsed.path))


def locate(uri: str, folders: Sequence[str]) -> tuple[str, str]:
    """(path relative to the innermost workspace folder holding it, that folder's name).

    Documents outside every folder (or not files) get their file name and the name of
    their directory.
    """
    path = uri_path(uri)
    name = PurePosixPath(urlparse(uri).path).name or uri
    if path is None:
        return name, ""
    best: PurePosixPath | None = None
    for folder in folders:
        root = uri_path(folder)
        if root is not None and path.is_relative_to(root):
            if best is None or len(root.parts) > len(best.parts):
                best = root
    if best is None:
        return name, path.parent.name
    return path.relative_to(best).as_posix(), best.name


#: Most paths a walk of a folder outside git looks at (a home folder has millions).
MAX_WALK = 200_000


def source_files(
    root: Path, suffixes: Collection[str], max_bytes: int, limit: int = 100_000
) -> list[Path]:
    """Source files under a folder, skipping ignored, oversized and binary files.

    In a git work tree these are the files git tracks or would track (``.gitignore``
    applies); elsewhere a walk that skips hidden folders and :data:`SKIP_DIRS`, and
    stops after :data:`MAX_WALK` files.
    """
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        candidates = [root / p for p in out.decode("utf-8", "replace").split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        candidates = list(itertools.islice(_walk(root), MAX_WALK))
    files: list[Path] = []
    for path in sorted(candidates):
        if len(files) >= limit:
            break
        inside = path.relative_to(root).parts if path.is_relative_to(root) else path.parts
        if path.suffix not in suffixes or any(part in SKIP_DIRS for part in inside):
            continue
        if is_source(path, max_bytes):
            files.append(path)
    return files


def is_source(path: Path, max_bytes: int) -> bool:
    """Whether a path is a readable text file of at most ``max_bytes`` (no NUL byte)."""
    try:
        if not path.is_file() or path.stat().st_size > max_bytes:
            return False
        with path.open("rb") as fh:
            return b"\0" not in fh.read(8192)
    except OSError:
        return False


def _walk(root: Path) -> Iterator[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name in SKIP_DIRS or entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry
