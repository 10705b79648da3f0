"""Context from other files: definitions of the names near the cursor, recent snippets.

:class:`WorkspaceIndexer` fills a :class:`~lsp_server.symbols.SymbolIndex` from the
workspace folders in a background thread, bounded in files and bytes, and keeps open
documents current. :func:`nearby_names` lists the identifiers the cursor's surroundings
use (imports first), :func:`pick_definitions` turns them into definitions from other
files, and :class:`RecentSnippets` remembers what was recently edited or looked at.
"""

from __future__ import annotations

import logging
import re
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lsp_server.documents import content
from lsp_server.symbols import Definition, SymbolIndex, extract
from lsp_server.syntax import EXTENSIONS
from lsp_server.workspace import is_source, source_files

log = logging.getLogger(__name__)

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_WORD_CHARS = string.ascii_letters + string.digits + "_$"
_IMPORT = re.compile(
    r"^\s*(from\s+\S+\s+import\b|import\b|#\s*include\b|use\b|require\b|using\b|"
    r"local\s+\w+\s*=\s*require\b|const\s+.*=\s*require\b)"
)
#: An identifier that is not an attribute (not right after a ".").
_REFERENCE = re.compile(r"(?<![.\w$])[A-Za-z_$][A-Za-z0-9_$]*")


def imported_names(lines: Sequence[str]) -> list[str]:
    """The names the import lines bring in (brackets may span several lines).

    Module paths are left out: ``from pkg.models.link import Link as L`` imports
    ``Link`` and ``L``, ``import {a, b} from './x'`` imports ``a`` and ``b``, and
    ``use a::b::{C, D};`` imports ``C`` and ``D``.
    """
    return [name for name, _ in imports(lines)]


def imports(lines: Sequence[str]) -> list[tuple[str, str]]:
    """(name, module path) for each name the import lines bring in.

    The module path is as written (``pkg.models.link``, ``./view``, ``std::io``; empty
    when the statement names none): :func:`module_match` compares it with file paths.
    """
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        text = content(lines[i])[:MAX_LINE_CHARS]
        i += 1
        if not _IMPORT.match(text):
            continue
        statement = text
        depth = _bracket_depth(text)
        stop = min(len(lines), i + 50)
        while depth > 0 and i < stop:
            more = content(lines[i])[:MAX_LINE_CHARS]
            statement += " " + more
            depth += _bracket_depth(more)
            i += 1
        found.extend(_imported(statement))
    return found


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`|<[^>]*>")
_FROM_IMPORT = re.compile(r"^\s*from\s+(\S+)\s+import\b(.*)$", re.S)
_PATH_SEGMENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?=\s*(\.|::|/))")


def _imported(statement: str) -> list[tuple[str, str]]:
    """(name, module) for each name one import statement brings in."""
    statement = statement.split("#", 1)[0] if "#include" not in statement else ""
    quoted = _QUOTED.search(statement)
    statement = _QUOTED.sub(" ", statement)
    match = _FROM_IMPORT.match(statement)
    if match:  # Python: what follows `import`
        module = match.group(1)
        return [(n, module) for n in _IDENT.findall(match.group(2)) if n not in _IMPORT_WORDS]
    if re.match(r"^\s*import\s+[\w.]+(\s+as\s+\w+)?\s*$", statement):
        return []  # Python's `import a.b`: a module, not a definition
    segments = [m for m in _PATH_SEGMENT.finditer(statement) if m.group() not in _IMPORT_WORDS]
    starts = {m.start() for m in segments}
    if quoted:  # JavaScript's `from './view'`, Lua's `require('util')`
        module = quoted.group()[1:-1]
    else:  # Rust's `use a::b::{C}`, Java's `import a.b.C;`
        module = ".".join(m.group() for m in segments)
    return [
        (m.group(), module)
        for m in _IDENT.finditer(statement)
        if m.start() not in starts and m.group() not in _IMPORT_WORDS
    ]


#: Module paths relative to the importing file (Python, JavaScript, Rust).
_RELATIVE = re.compile(r"\.|(super|self)\b")
#: File names that stand for their folder (a package's or module's own file).
_FOLDER_FILES = frozenset({"__init__", "index", "mod"})


def module_match(path: str, module: str, name: str) -> int:
    """How well a module path names a definition's file: 0 when not at all.

    Twice the number of trailing path segments it names (``pkg.models.link`` names
    ``.../models/link.py`` by 2, hence 4; ``pkg.models`` names ``.../models/__init__.py``
    by 1), or one less for a file inside the module's folder (``pkg.models`` re-exporting
    ``.../models/link.py``'s names). Java's ``a.b.C`` names ``.../a/b/C.java`` whole (the
    imported name is the file's); ``./view.js`` names ``.../view.ts``.
    """
    parts = [p for p in re.split(r"[/\\]", path) if p]
    if not parts:
        return 0
    parts[-1] = parts[-1].split(".", 1)[0]
    if parts[-1] in _FOLDER_FILES:
        parts.pop()
    if "/" in module:  # a path: `./lib/view.js`
        wanted = [p for p in module.split("/") if p not in ("", ".", "..")]
        if wanted:
            wanted[-1] = wanted[-1].split(".", 1)[0]
    else:  # dotted or `::`: `pkg.models`, `crate::shapes`
        wanted = [p for p in re.split(r"\.|::", module) if p]
    return max(
        2 * _common_tail(parts, wanted),
        2 * _common_tail(parts, [*wanted, name]),
        2 * _common_tail(parts[:-1], wanted) - 1,
    )


def _common_tail(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


_IMPORT_WORDS = frozenset("import from use require using as local const let var type".split())


def _bracket_depth(text: str) -> int:
    return text.count("(") + text.count("{") - text.count(")") - text.count("}")


#: Words too common to be worth a definition lookup.
_COMMON = frozenset(
    "if else elif for while do return def class function func fn let var const import from "
    "as in is not and or None True False null nil true false self this super new async await "
    "try except catch finally raise throw with yield lambda pass break continue public "
    "private protected static void int str float bool string int32 int64 usize u8 i32 i64 "
    "struct enum impl trait type interface package go range len print println "
    "end then local require use mut pub match case switch default sizeof typeof".split()
)


#: Lines at the top of a file read for its imports.
IMPORT_LINES = 300
#: Characters of one line that :func:`nearby_names` reads (minified code has long lines).
MAX_LINE_CHARS = 1000
#: Most names :func:`nearby_names` returns.
MAX_NAMES = 200


def nearby_names(
    lines: Sequence[str],
    line: int,
    index: int,
    before: int = 40,
    after: int = 10,
    imports_only: bool = False,
    imported: Sequence[str] | None = None,
) -> list[str]:
    """Identifiers the code around the cursor uses, most relevant first.

    Names imported by the file come first, then names by distance from the cursor (the
    cursor line only up to the cursor, and only whole words, so that the list stays the
    same while a word is being typed). Attribute names (after a ``.``) are left out:
    which class's ``run`` they mean is unknown, and every class has one. With
    ``imports_only`` (Python, where a name from another file must be imported), only
    imported names, those used nearest the cursor first. ``imported``: the file's
    :func:`imported_names`, when the caller has them already.
    """
    if imported is None:
        imported = imported_names(lines[:IMPORT_LINES])
    current = content(lines[line])[:index][-MAX_LINE_CHARS:]
    word_end = len(current.rstrip(_WORD_CHARS))
    order = list(reversed(_REFERENCE.findall(current[:word_end])))
    for distance in range(1, max(before, after) + 1):
        if distance <= before and line - distance >= 0:
            text = content(lines[line - distance])[:MAX_LINE_CHARS]
            order.extend(reversed(_REFERENCE.findall(text)))
        if distance <= after and line + distance < len(lines):
            order.extend(_REFERENCE.findall(content(lines[line + distance])[:MAX_LINE_CHARS]))
    if imports_only:
        wanted = set(imported)
        candidates = [*(n for n in order if n in wanted), *imported]
    else:
        candidates = [*imported, *order]
    seen: dict[str, None] = {}
    for name in candidates:
        if len(name) > 1 and name not in _COMMON:
            seen.setdefault(name, None)
            if len(seen) >= MAX_NAMES:
                break
    return list(seen)


def pick_definitions(
    index: SymbolIndex,
    names: Sequence[str],
    exclude: str,
    modules: Mapping[str, str] | None = None,
    per_name: int = 2,
    limit: int = 40,
) -> list[Definition]:
    """Definitions of the names in other files than ``exclude``, in the names' order.

    A name that ``exclude`` defines itself is skipped. Where ``modules`` says which
    module a name is imported from, only the definitions in the files that match the
    module path best are kept (``from pkg.locations import get_scheme`` picks
    ``pkg/locations/__init__.py``'s ``get_scheme``, not another file's), and none when
    no file matches a module that is not relative (``from packaging import Requirement``
    is not the workspace's own ``Requirement``).
    """
    picked: list[Definition] = []
    seen: set[tuple[str, int]] = set()
    local = index.names_in(exclude)  # the file's own definitions are what it means
    for name in names:
        if name in local:
            continue
        found = [d for d in index.lookup(name) if d.path != exclude]
        module = (modules or {}).get(name)
        if module and found:
            scores = [module_match(d.path, module, name) for d in found]
            best = max(scores)
            if best > 0:
                found = [d for d, score in zip(found, scores, strict=True) if score == best]
            elif not _RELATIVE.match(module):
                continue  # from a module outside the workspace: another thing of that name
        for d in found[:per_name]:
            key = (d.path, d.line)
            if key not in seen:
                seen.add(key)
                picked.append(d)
        if len(picked) >= limit:
            break
    return picked


@dataclass(frozen=True)
class Snippet:
    """A piece of a document that was edited or looked at recently."""

    uri: str
    first_line: int
    text: str


class RecentSnippets:
    """The last few places edited or viewed, one per (document, region)."""

    def __init__(self, size: int = 16, radius: int = 6) -> None:
        self._items: OrderedDict[tuple[str, int], Snippet] = OrderedDict()
        self._size = size
        self._radius = radius

    def touch(self, uri: str, lines: Sequence[str], line: int) -> None:
        """Remember the region around a line of a document (newest last)."""
        first = max(0, line - self._radius)
        last = min(len(lines), line + self._radius + 1)
        text = "".join(content(x) + "\n" for x in lines[first:last]).rstrip("\n")
        if not text.strip():
            return
        region = first // (2 * self._radius + 1)
        for key in [k for k in self._items if k[0] == uri and abs(k[1] - region) <= 1]:
            del self._items[key]
        self._items[(uri, region)] = Snippet(uri, first, text)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def forget(self, uri: str) -> None:
        """Drop a document's snippets (it was closed)."""
        for key in [k for k in self._items if k[0] == uri]:
            del self._items[key]

    def others(self, uri: str, limit: int = 8) -> list[Snippet]:
        """The most recent snippets of documents other than ``uri``, newest first."""
        out = [s for s in reversed(self._items.values()) if s.uri != uri]
        return out[:limit]


class WorkspaceIndexer:
    """Keep a symbol index of the workspace, from one background thread.

    :meth:`start` indexes the workspace folders' files; :meth:`update` re-indexes an
    open document from its text, :meth:`reload` a closed one from disk, and
    :meth:`remove` drops one. All the parsing happens on the indexer's thread, never on
    the caller's (the server's event loop); updates of one document coalesce, and the
    folder walk applies pending updates between files, so an open document's text
    always wins over its file on disk. ``done`` is set whenever no work is pending.
    """

    def __init__(
        self,
        index: SymbolIndex,
        max_files: int = 5000,
        max_file_bytes: int = 512 * 1024,
        max_total_bytes: int = 64 << 20,
    ) -> None:
        self.index = index
        self.max_files = max_files
        self.max_file_bytes = max_file_bytes
        self._max_total = max_total_bytes
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._walks: list[tuple[list[Path], Callable[[str], bool]]] = []
        self._changes: OrderedDict[str, Callable[[], None]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.files = 0
        self.seconds = 0.0
        self.done = threading.Event()  # set whenever no indexing is pending
        self.done.set()

    def start(self, folders: Sequence[Path], skip: Callable[[str], bool]) -> None:
        """Index the folders' files (``skip(uri)`` for documents that are open)."""
        self._submit(walk=(list(folders), skip))

    def update(self, uri: str, grammar: str | None, source: bytes) -> None:
        """Index an open document's text with its grammar (None: it has no definitions)."""
        if grammar is None or len(source) > self.max_file_bytes:
            self._submit(uri, lambda: self.index.remove_file(uri))
        else:
            self._submit(uri, lambda: self._index(uri, grammar, source))

    def reload(self, uri: str, path: Path) -> None:
        """Index a file from disk (a document was closed), or forget it if it is gone."""

        def job() -> None:
            if is_source(path, self.max_file_bytes):
                try:
                    self.index_file(uri, path.suffix, path.read_bytes())
                    return
                except OSError:
                    pass
            self.index.remove_file(uri)

        self._submit(uri, job)

    def remove_folder(self, prefix: str) -> None:
        """Forget the definitions of every file whose URI starts with ``prefix``."""
        self._submit(prefix, lambda: self.index.remove_prefix(prefix))

    def remove(self, uri: str) -> None:
        """Forget a document's definitions."""
        self._submit(uri, lambda: self.index.remove_file(uri))

    def stop(self) -> None:
        """Stop indexing (the index keeps what it has)."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self.done.set()

    def index_file(self, uri: str, suffix: str, source: bytes) -> None:
        """(Re)index one file's definitions (on the indexer's thread)."""
        grammar = EXTENSIONS.get(suffix)
        if grammar is not None:
            self._index(uri, grammar, source)

    def _index(self, uri: str, grammar: str, source: bytes) -> None:
        try:
            definitions = extract(grammar, source, uri)
        except Exception:  # a grammar crash must not stop the index
            log.debug("could not index %s", uri, exc_info=True)
            return
        self.index.set_file(uri, definitions)

    def _submit(
        self,
        uri: str = "",
        job: Callable[[], None] | None = None,
        walk: tuple[list[Path], Callable[[str], bool]] | None = None,
    ) -> None:
        with self._lock:
            if self._stop.is_set():  # shut down: nothing runs any more
                return
            if job is not None:
                self._changes.pop(uri, None)
                self._changes[uri] = job  # the newest change of a document wins
            if walk is not None:
                self._walks.append(walk)
            self.done.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="fimls-index", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not (self._walks or self._changes or self._stop.is_set()):
                    self.done.set()
                    self._lock.wait()
                walk = self._walks.pop(0) if self._walks else None
            if walk is not None:
                self._walk(*walk)
            self._apply_changes()

    def _apply_changes(self) -> None:
        while True:
            with self._lock:
                if not self._changes:
                    return
                _, job = self._changes.popitem(last=False)
            try:
                job()
            except Exception:  # best effort: completions go on without it
                log.exception("indexing a document failed")

    def _walk(self, folders: list[Path], skip: Callable[[str], bool]) -> None:
        started = time.perf_counter()
        total = 0
        try:
            for folder in folders:
                files = source_files(folder, set(EXTENSIONS), self.max_file_bytes, self.max_files)
                for path in files:
                    if self._stop.is_set() or self.files >= self.max_files:
                        return
                    if total >= self._max_total:
                        log.info("workspace index stopped at %d MiB read", total >> 20)
                        return
                    uri = path.as_uri()
                    if skip(uri):
                        continue
                    try:
                        source = path.read_bytes()
                    except OSError:
                        continue
                    total += len(source)
                    self.index_file(uri, path.suffix, source)
                    self.files += 1
                    self._apply_changes()  # open documents' text wins over their files
                    time.sleep(0.001)  # let the model thread have the CPU first
        except Exception:  # indexing is best effort; completions go on without it
            log.exception("workspace indexing failed")
        finally:
            self.seconds += time.perf_counter() - started
            log.info(
                "indexed %d files, %d definitions in %.1f s",
                self.files,
                self.index.definitions,
                self.seconds,
            )
