"""Code actions, the pure part: what to offer, what to ask the model, how to edit.

Listing uses no model: tree-sitter finds the definition under the cursor, the request's
diagnostics give the fixes. Resolving asks the model (see :mod:`lsp_server.action_service`)
for as little as possible and builds the edit itself: a docstring action asks for the
docstring's text and inserts it in the language's convention, so the code around it
cannot change; a fix or a rewrite asks for the region's new code and turns the
difference into minimal line edits inside the region. Every edit is checked before it
is returned (:func:`check_edit`).
"""

from __future__ import annotations

import difflib
import posixpath
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Node, Tree

from lsp_server.documents import content, split_lines
from lsp_server.postprocess import LINE_COMMENTS
from lsp_server.pynames import undefined_names
from lsp_server.symbols import definition_name, is_definition
from lsp_server.syntax import count_errors, parse

DOCSTRING = "docstring"
FIX = "fix"
EXPLAIN = "explain"
TESTS = "tests"
REWRITE = "rewrite"
KINDS = (DOCSTRING, FIX, EXPLAIN, TESTS, REWRITE)

#: LSP code action kind of each action.
CODE_ACTION_KINDS = {
    DOCSTRING: "refactor.rewrite",
    FIX: "quickfix",
    EXPLAIN: "refactor.rewrite",
    TESTS: "source",
    REWRITE: "refactor.rewrite",
}

#: Most lines of code an action sends to the model.
MAX_REGION_LINES = 200
#: Lines around a diagnostic outside any definition that a fix sees.
FIX_CONTEXT_LINES = 8

_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "javascriptreact": "JavaScript (React)",
    "typescript": "TypeScript",
    "typescriptreact": "TypeScript (React)",
    "go": "Go",
    "rust": "Rust",
    "c": "C",
    "cpp": "C++",
    "java": "Java",
    "ruby": "Ruby",
    "lua": "Lua",
    "shellscript": "shell",
    "php": "PHP",
    "kotlin": "Kotlin",
    "swift": "Swift",
    "scala": "Scala",
    "haskell": "Haskell",
    "zig": "Zig",
    "csharp": "C#",
}

#: Doc comment convention by language id (those not listed use their line comments).
_JSDOC = (
    *("javascript", "javascriptreact", "typescript", "typescriptreact", "java", "php"),
    *("kotlin", "scala", "c", "cpp", "csharp", "swift"),
)
DOC_STYLES = {
    "python": "python",
    **dict.fromkeys(_JSDOC, "block"),
    "rust": "///",
    "zig": "///",
    "go": "go",
}


def language_name(language_id: str) -> str:
    """The language as a person names it."""
    return _NAMES.get(language_id, language_id or "plain text")


@dataclass(frozen=True)
class Target:
    """What an action acts on: travels as the code action's ``data``."""

    kind: str
    uri: str
    version: int
    start: int  # first line of the code the action reads
    end: int  # the line after its last
    name: str = ""  # the definition's name
    message: str = ""  # the diagnostic (fix)
    line: int = -1  # the diagnostic's line (fix)
    instruction: str = ""  # rewrite

    def to_json(self) -> dict[str, object]:
        """The JSON form (``data`` of a CodeAction, argument of a command)."""
        return {"fimls": 1, **asdict(self)}

    @classmethod
    def from_json(cls, raw: object) -> Target:
        """Parse the JSON form; raises ValueError with what is wrong."""
        if not isinstance(raw, Mapping) or raw.get("fimls") != 1:
            raise ValueError("not a fimls code action")
        types = {"kind": str, "uri": str, "version": int, "start": int, "end": int}
        types |= {"name": str, "message": str, "line": int, "instruction": str}
        values: dict[str, object] = {}
        for key, kind in types.items():
            if key not in raw:
                if key in ("kind", "uri", "version", "start", "end"):
                    raise ValueError(f"missing {key!r}")
                continue
            value = raw[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"{key!r} must be a {kind.__name__}")
            values[key] = value
        target = cls(**values)  # type: ignore[arg-type]
        if target.kind not in KINDS:
            raise ValueError(f"unknown action {target.kind!r}")
        if not 0 <= target.start <= target.end:
            raise ValueError("bad line range")
        return target


@dataclass(frozen=True)
class Offer:
    """One action to list."""

    title: str
    target: Target
    diagnostic: int = -1  # index of the diagnostic a fix addresses

    @property
    def code_kind(self) -> str:
        """The LSP CodeActionKind."""
        return CODE_ACTION_KINDS[self.target.kind]


@dataclass(frozen=True)
class Diagnostic:
    """The part of an LSP diagnostic an action needs."""

    start: int  # line
    end: int  # line
    message: str


@dataclass(frozen=True)
class Definition:
    """A function, method or class found with tree-sitter."""

    name: str
    start: int  # first line, with decorators, ``export`` and the like
    end: int  # the line after its last
    header_line: int  # the line the definition itself starts on
    node: Node = field(compare=False, repr=False)

    @property
    def is_function(self) -> bool:
        """Whether it is a function or method (not a class or type)."""
        kind = self.node.type
        if kind == "variable_declarator":
            return True
        return any(w in kind for w in ("function", "method", "constructor"))


def definition_at(tree: Tree, line: int) -> Definition | None:
    """The innermost definition that contains ``line``."""
    best: Node | None = None
    node: Node | None = tree.root_node
    while node is not None:
        inner = None
        for child in node.named_children:
            if child.start_point[0] <= line <= child.end_point[0]:
                inner = child
                break
        if inner is None:
            break
        if is_definition(inner) and definition_name(inner):
            best = inner
        node = inner
    if best is None:
        return None
    outer = best
    while outer.parent is not None and outer.parent.type in _WRAPPERS:
        outer = outer.parent
    if outer.type == "variable_declarator" or best.type == "variable_declarator":
        while outer.parent is not None and outer.parent.type in _DECLARATIONS:
            outer = outer.parent
    name = definition_name(best) or ""
    return Definition(name, outer.start_point[0], outer.end_point[0] + 1, best.start_point[0], best)


#: Nodes that wrap a definition and belong to it (decorators, ``export``).
_WRAPPERS = frozenset({"decorated_definition", "export_statement", "template_declaration"})
_DECLARATIONS = frozenset({"lexical_declaration", "variable_declaration", "export_statement"})


def offers(
    lines: Sequence[str],
    tree: Tree | None,
    language_id: str,
    uri: str,
    version: int,
    start: int,
    end: int,
    selection: bool,
    diagnostics: Sequence[Diagnostic],
    folders: Sequence[str] = (),
) -> list[Offer]:
    """The actions that make sense for lines ``start``..``end`` (inclusive).

    ``selection``: the range is not empty. Fixes come first, one per diagnostic.
    """
    found: list[Offer] = []
    total = len(lines)
    for i, diag in enumerate(diagnostics):
        outside = diag.start >= total or diag.start < 0 or diag.end < diag.start
        if outside or diag.end < start or diag.start > end or not diag.message.strip():
            continue
        a, b = fix_region(tree, diag.start, diag.end, total)
        message = " ".join(diag.message.split())
        target = Target(FIX, uri, version, a, b, message=message, line=diag.start)
        found.append(Offer(f"Fix: {_short(message)}", target, i))
    definition = definition_at(tree, start) if tree is not None else None
    if definition is not None and definition.end - definition.start > MAX_REGION_LINES:
        definition = None

    def on_definition(kind: str, d: Definition) -> Target:
        return Target(kind, uri, version, d.start, d.end, d.name, line=d.header_line)

    place = docstring_place(definition, lines, language_id) if definition else None
    if definition is not None and place is not None:
        verb = "Regenerate" if place.end > place.start else "Add"
        noun = "docstring" if language_id == "python" else "doc comment"
        title = f"{verb} {noun} for `{definition.name}`"
        found.append(Offer(title, on_definition(DOCSTRING, definition)))
    if selection and end - start < MAX_REGION_LINES:
        target = Target(EXPLAIN, uri, version, start, min(end + 1, total))
        found.append(Offer("Explain this code (as a comment above it)", target))
    elif definition is not None:
        title = f"Explain `{definition.name}` (as a comment above it)"
        found.append(Offer(title, on_definition(EXPLAIN, definition)))
    where = test_file(uri, language_id, folders)
    if definition is not None and definition.is_function and where is not None:
        shown = posixpath.basename(where.uri) if where.uri != uri else "this file"
        title = f"Generate unit tests for `{definition.name}` in {shown}"
        found.append(Offer(title, on_definition(TESTS, definition)))
    if selection and end - start < MAX_REGION_LINES:
        target = Target(REWRITE, uri, version, start, min(end + 1, total))
        found.append(Offer("Rewrite selection…", target))
    return found


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fix_region(tree: Tree | None, first: int, last: int, total: int) -> tuple[int, int]:
    """The lines [start, end) a fix shows and may change.

    The innermost definition around the diagnostic, or the lines around it when there
    is none (or it is too long).
    """
    definition = definition_at(tree, first) if tree is not None else None
    if (
        definition is not None
        and definition.end - definition.start <= MAX_REGION_LINES // 2
        and last < definition.end
    ):
        return definition.start, definition.end
    return max(0, first - FIX_CONTEXT_LINES), min(total, last + FIX_CONTEXT_LINES + 1)


# -- docstrings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DocPlace:
    """Where a doc comment goes: replace lines [start, end) (an insertion when equal)."""

    start: int
    end: int
    indent: str


def docstring_place(
    definition: Definition, lines: Sequence[str], language_id: str
) -> DocPlace | None:
    """Where the definition's docstring or doc comment goes (None: no place for one)."""
    style = DOC_STYLES.get(language_id, "line")
    if style == "python":
        body = definition.node.child_by_field_name("body")
        if body is None or not body.named_children:
            return None
        first = body.named_children[0]
        colon = body.prev_sibling
        header_end = colon.end_point[0] if colon is not None else definition.header_line
        if first.start_point[0] <= header_end:
            return None  # `def f(): return 1`: no line of its own for a docstring
        indent = _indent(content(lines[first.start_point[0]]))
        doc = _python_doc_node(definition.node)
        if doc is not None:
            return DocPlace(doc.start_point[0], doc.end_point[0] + 1, indent)
        return DocPlace(first.start_point[0], first.start_point[0], indent)
    if language_id not in _NAMES and style == "line":
        return None
    at = definition.start
    indent = _indent(content(lines[at]))
    return DocPlace(at - _doc_lines_above(lines, at, style, language_id), at, indent)


def _python_doc_node(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        if first.named_children[0].type == "string" and len(first.named_children) == 1:
            return first
    if first.type == "string":
        return first
    return None


def _doc_lines_above(lines: Sequence[str], line: int, style: str, language_id: str) -> int:
    """How many lines right above ``line`` are its doc comment (replaced, not kept).

    Only the convention's own form counts (``/** */``, ``///``, Go's ``//``), so that a
    plain comment above a definition is never taken for its documentation.
    """
    above = [content(lines[i]).strip() for i in range(line - 1, -1, -1)]
    if style == "block":
        if not above or not above[0].endswith("*/"):
            return 0
        for n, text in enumerate(above, start=1):
            if text.startswith("/*"):
                return n if text.startswith("/**") else 0
        return 0
    mark = {"///": "///", "go": "//"}.get(style) or LINE_COMMENTS.get(language_id, "//")
    n = 0
    for text in above:
        if not text.startswith(mark) or (mark == "#" and text.startswith(("#!", "#["))):
            break
        n += 1
    return n


def clean_doc(text: str, name: str) -> str:
    """The docstring's text from the model's answer: markers, quotes and code removed."""
    text = text.replace("\r\n", "\n")
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(2)
    quoted = re.search(r'("""|\'\'\')(.*?)(\1|$)', text, re.S)
    if quoted and quoted.group(2).strip():
        text = quoted.group(2)
    block = re.search(r"/\*\*?(.*?)(\*/|$)", text, re.S)
    if block and block.group(1).strip():
        text = block.group(1)
    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        stripped = re.sub(r"^(///|//!|//|#+|--+|\*)\s?", "", stripped) if stripped != "*" else ""
        out.append(line[: len(line) - len(line.lstrip())] + stripped)
    text = textwrap.dedent("\n".join(out)).strip("\n")
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and _looks_like_header(lines[0], name):
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[:40])


def _looks_like_header(line: str, name: str) -> bool:
    words = ("def ", "async def ", "function ", "fn ", "func ", "class ", "export ", "pub ")
    stripped = line.strip()
    return bool(name) and stripped.startswith(words) and name in stripped


def format_doc(text: str, language_id: str, indent: str, name: str) -> list[str]:
    """The doc comment's lines (without line ends) in the language's convention."""
    style = DOC_STYLES.get(language_id, "line")
    lines = text.split("\n")
    if style == "python":
        body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        lines = body.split("\n")
        if len(lines) == 1:
            return [f'{indent}"""{lines[0]}"""']
        inner = [f"{indent}{line}" if line.strip() else "" for line in lines[1:]]
        return [f'{indent}"""{lines[0]}', *inner, f'{indent}"""']
    if style == "block":
        inner = [f"{indent} * {line}".rstrip() for line in text.replace("*/", "* /").split("\n")]
        return [f"{indent}/**", *inner, f"{indent} */"]
    if style == "go" and name and not text.startswith(name):
        first = lines[0]
        lines[0] = f"{name} {first[:1].lower()}{first[1:]}" if first else name
    mark = {"///": "///", "go": "//"}.get(style) or LINE_COMMENTS.get(language_id, "//")
    return [f"{indent}{mark} {line}".rstrip() for line in lines]


# -- code answers -------------------------------------------------------------------------

_FENCE = re.compile(r"```([\w+#.-]*)[ \t]*\n(.*?)(?:\n```|$)", re.S)


def extract_code(text: str) -> str:
    """The code of the model's answer: its first fenced block, or the whole answer."""
    text = text.replace("\r\n", "\n")
    fenced = _FENCE.search(text)
    code = fenced.group(2) if fenced else text
    lines = [line.rstrip() for line in code.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def reindent(code: str, original: Sequence[str]) -> list[str]:
    """The code's lines, shifted to the original region's indentation when it lost it."""
    new = code.split("\n")
    want = min((len(_indent(t)) for t in original if t.strip()), default=0)
    have = min((len(_indent(t)) for t in new if t.strip()), default=0)
    if have >= want or not new:
        return new
    pad = next((_indent(t) for t in original if t.strip()), "")[: want - have]
    return [pad + t if t.strip() else t for t in new]


@dataclass(frozen=True)
class Edit:
    """Replace [start, end) (line, column in code points) with ``text``."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


def replace_lines(lines: Sequence[str], a: int, b: int, new: Sequence[str], eol: str) -> Edit:
    """An edit that replaces document lines [a, b) with ``new`` (lines without ends)."""
    total = len(lines)
    if a == b == total and total > 1 and lines[-1] == "":
        a = b = total - 1  # at the end of a text that ends with a line break
    if b < total:
        return Edit((a, 0), (b, 0), "".join(t + eol for t in new))
    last = content(lines[total - 1]) if total else ""
    end = (total - 1, len(last)) if total else (0, 0)
    if a < b:
        if new:
            return Edit((a, 0), end, eol.join(new))
        if a > 0:
            return Edit((a - 1, len(content(lines[a - 1]))), end, "")
        return Edit((0, 0), end, "")
    return Edit(end, end, "".join(eol + t for t in new))


def diff_edits(
    lines: Sequence[str], start: int, end: int, new: Sequence[str], eol: str
) -> list[Edit]:
    """Minimal line edits that turn document lines [start, end) into ``new``."""
    old = [content(t) for t in lines[start:end]]
    edits = []
    matcher = difflib.SequenceMatcher(None, old, list(new), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            edits.append(replace_lines(lines, start + i1, start + i2, new[j1:j2], eol))
    return edits


def append_edit(text: str, block: str, breaks: int) -> Edit:
    """An edit that adds ``block`` at the end of ``text``.

    ``breaks`` line breaks separate it from the last code (two blank lines: 3); the
    text's own line break style is kept.
    """
    lines = split_lines(text)
    eol = eol_of(lines)
    tail = text[len(text.rstrip("\r\n")) :]
    have = tail.count("\n") or tail.count("\r")
    body = eol.join(block.rstrip("\n").split("\n")) + eol
    end = (len(lines) - 1, len(content(lines[-1])))
    lead = eol * max(0, breaks - have) if text.strip() else ""
    return Edit(end, end, lead + body)


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """The text after non-overlapping edits (positions in code points of the old text)."""
    lines = split_lines(text)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(pos: tuple[int, int]) -> int:
        line, col = pos
        if line >= len(lines):
            return len(text)
        return offsets[line] + min(col, len(content(lines[line])))

    out = text
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        out = out[: at(edit.start)] + edit.text + out[at(edit.end) :]
    return out


def eol_of(lines: Sequence[str]) -> str:
    """The document's line break."""
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith("\n"):
            return "\n"
    return "\n"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


# -- explanations -------------------------------------------------------------------------


def clean_prose(text: str) -> str:
    """The explanation's text: code blocks and markdown emphasis removed, paragraphs kept."""
    text = re.sub(r"```.*?(```|$)", "", text.replace("\r\n", "\n"), flags=re.S)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"^#+\s*", "", text, flags=re.M)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def format_comment(text: str, language_id: str, indent: str, width: int = 88) -> list[str]:
    """Prose as comment lines (without line ends), wrapped to ``width``."""
    block = {"css": ("/*", "*/"), "html": ("<!--", "-->"), "xml": ("<!--", "-->")}
    room = max(40, width - len(indent) - 3)
    wrapped: list[str] = []
    for paragraph in text.split("\n\n"):
        if wrapped:
            wrapped.append("")
        wrapped += textwrap.wrap(paragraph, room, break_on_hyphens=False) or [""]
    if language_id in block:
        first, last = block[language_id]
        body = [f"{indent}{line.replace(last, '')}".rstrip() for line in wrapped]
        return [f"{indent}{first}", *body, f"{indent}{last}"]
    mark = LINE_COMMENTS.get(language_id, "//")
    return [f"{indent}{mark} {line}".rstrip() for line in wrapped]


# -- tests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitTestFile:
    """Where generated tests go, and how they reach the code under test."""

    uri: str
    language_id: str
    header: str  # the lines a new file starts with (imports)
    framework: str  # what the prompt asks the tests to use


def test_file(uri: str, language_id: str, folders: Sequence[str] = ()) -> UnitTestFile | None:
    """The conventional test file for a source file (None for unsupported languages)."""
    if not uri.startswith("file://"):
        return None
    path = PurePosixPath(uri[len("file://") :])
    stem, suffix = path.stem, path.suffix
    if language_id == "python":
        if stem.startswith("test_") or "tests" in path.parts[:-1]:
            return None
        root = _root(path, folders)
        relative = path.relative_to(root).with_suffix("")
        parts = list(relative.parts)
        if parts and parts[0] == "src":
            parts = parts[1:]
        module = ".".join(parts)
        test = root / "tests" / f"test_{stem}.py"
        header = f"from {module} import {{names}}\n"
        return UnitTestFile("file://" + str(test), "python", header, "pytest")
    if language_id in ("javascript", "typescript", "javascriptreact", "typescriptreact"):
        if ".test." in path.name or ".spec." in path.name:
            return None
        test = path.with_name(f"{stem}.test{suffix}")
        header = f'import {{ {{names}} }} from "./{stem}";\n'
        return UnitTestFile(
            "file://" + str(test), language_id, header, "Jest (describe, test, expect)"
        )
    if language_id == "go":
        if stem.endswith("_test"):
            return None
        test = path.with_name(f"{stem}_test.go")
        header = 'package {package}\n\nimport "testing"\n'
        return UnitTestFile("file://" + str(test), "go", header, "the testing package")
    if language_id == "rust":
        return UnitTestFile(uri, "rust", "", "#[test] functions in a #[cfg(test)] module")
    return None


def _root(path: PurePosixPath, folders: Sequence[str]) -> PurePosixPath:
    best: PurePosixPath | None = None
    for folder in folders:
        if not folder.startswith("file://"):
            continue
        root = PurePosixPath(folder[len("file://") :])
        if root in path.parents and (best is None or len(root.parts) > len(best.parts)):
            best = root
    return best or path.parent


def go_package(lines: Sequence[str]) -> str:
    """The ``package`` of a Go file."""
    for line in lines:
        m = re.match(r"\s*package\s+(\w+)", line)
        if m:
            return m.group(1)
    return "main"


def test_header(where: UnitTestFile, names: Sequence[str], lines: Sequence[str]) -> str:
    """The first lines of a new test file."""
    return where.header.replace("{names}", ", ".join(names)).replace("{package}", go_package(lines))


def merge_tests(code: str, existing: str | None, header: str, language_id: str) -> str:
    """The test code to write: imports first, the header's among them, no duplicates.

    For an existing file the header is left out and so are the import lines it has.
    """
    is_import = re.compile(r"^(import |from \S+ import |use )")
    have = set(existing.split("\n")) if existing else set()
    head = [] if existing else header.rstrip("\n").split("\n") if header.strip() else []
    lines = code.split("\n")
    if language_id == "go" or existing:
        lines = [t for t in lines if not t.startswith("package ")]
    imports: list[str] = []
    body_start = 0
    in_group = False  # inside Go's `import (...)`
    for i, line in enumerate(lines):
        if in_group or line.startswith("import ("):
            in_group = line.strip() != ")"
            imports.append(line)
            body_start = i + 1
            continue
        if is_import.match(line) or (not line.strip() and imports):
            if line.strip() and line not in have and line not in imports and line not in head:
                imports.append(line)
            body_start = i + 1
            continue
        break
    body = lines[body_start:]
    if head and language_id != "go":
        head_imports = [t for t in head if t.strip()]
        top = [*(t for t in imports if t not in head_imports), *head_imports]
    else:
        top = [*head, *([""] if head and imports else []), *imports]
    while body and not body[0].strip():
        body.pop(0)
    if language_id == "rust":
        body = _rust_test_module(body)
    gap = ["", ""] if language_id == "python" else [""]
    text = "\n".join(top + (gap if top and body else []) + body)
    return text.strip("\n") + "\n"


def _rust_test_module(body: list[str]) -> list[str]:
    joined = "\n".join(body)
    if re.search(r"#\[cfg\(test\)\]", joined):
        return body
    inner = [("    " + t) if t.strip() else "" for t in body]
    return ["#[cfg(test)]", "mod fimls_tests {", "    use super::*;", "", *inner, "}"]


# -- checks -------------------------------------------------------------------------------


def syntax_errors(grammar: str | None, text: str) -> int:
    """Syntax errors tree-sitter finds in a text (0 without a grammar)."""
    if grammar is None:
        return 0
    return count_errors(parse(grammar, text.encode("utf-8")).root_node)


def check_edit(
    kind: str,
    grammar: str | None,
    before: str,
    after: str,
    target: Target,
    language_id: str,
) -> str | None:
    """Why an edited document is not acceptable (None when it is).

    The edit may add no syntax error; a change must change something; a Python fix of
    an undefined name must leave that name defined.
    """
    if after == before:
        return "the model proposed no change"
    if syntax_errors(grammar, after) > syntax_errors(grammar, before):
        return "the edited code does not parse"
    if kind == FIX and language_id == "python":
        name = undefined_name(target.message)
        if name is not None:
            missing = undefined_names(after)
            if missing is not None and name in missing:
                return f"`{name}` is still undefined"
    return None


def undefined_name(message: str) -> str | None:
    """The name an "undefined name" diagnostic is about (pyflakes, Ruff, Pyright, mypy)."""
    m = re.search(r"undefined name\s+[`'\"]([\w.]+)", message, re.I) or re.search(
        r"[`'\"]([\w.]+)[`'\"]\s+is not defined", message
    )
    return m.group(1) if m else None


# -- prompts ------------------------------------------------------------------------------

SYSTEM = (
    "You are an expert {language} programmer working inside a code editor. Answer with "
    "exactly what is asked, in the form asked, and nothing else."
)


def region_code(lines: Sequence[str], start: int, end: int) -> str:
    """Lines [start, end) of the document, without their line ends."""
    return "\n".join(content(t) for t in lines[start:end])


def build_messages(
    target: Target,
    lines: Sequence[str],
    language_id: str,
    path: str,
    *,
    context: str = "",
    retry_reason: str = "",
) -> tuple[str, str]:
    """The system and user messages for an action.

    ``context``: more code the model should see (the test file's current start).
    ``retry_reason``: why the previous answer was refused.
    """
    lang = language_name(language_id)
    fence = language_id if language_id in _NAMES else ""
    code = region_code(lines, target.start, target.end)
    block = f"```{fence}\n{code}\n```"
    system = SYSTEM.format(language=lang)
    name = f"`{target.name}`" if target.name else "the code"
    if target.kind == DOCSTRING:
        if language_id == "python":
            ask = (
                f"Write the docstring for {name} below, in Google style: a one-line summary "
                "ending with a period; then, if it takes parameters, a blank line and an "
                "`Args:` section with one line per parameter; then a `Returns:` section if "
                "it returns a value. Reply with the docstring's text only: no quotes, no "
                "code."
            )
        elif DOC_STYLES.get(language_id) == "block":
            ask = (
                f"Write the documentation comment for {name} below. First say what it "
                "does in one sentence; then write one `@param name description` line per "
                "parameter, and a `@returns description` line if it returns a value. Reply "
                "with the comment's text only: no /** */ markers, no code."
            )
        else:
            ask = (
                f"Write the documentation comment for {name} below: a one-sentence summary "
                "of what it does, then, if useful, one short sentence about its parameters "
                "and result. Reply with the comment's text only: no comment markers, no code."
            )
        user = f"{ask}\n\n{block}"
    elif target.kind == FIX:
        line = content(lines[target.line]) if 0 <= target.line < len(lines) else ""
        user = (
            f"This {lang} code from {path} has an error:\n{target.message}\n"
            f"on the line: `{line.strip()}`\n\n{block}\n\n"
            "Fix the error, changing as little as possible. Reply with the whole corrected "
            f"code above in one ```{fence} block, and nothing else."
        )
    elif target.kind == EXPLAIN:
        user = (
            f"Explain what this {lang} code from {path} does, for a programmer reading it: "
            "its purpose first, then how it works, in at most 5 sentences of plain text (no "
            f"lists, no code).\n\n{block}"
        )
    elif target.kind == TESTS:
        user = (
            f"Write unit tests for {name} from {path}:\n\n{block}\n\n{context}"
            "Write 2 or 3 short tests: the normal case and an edge case, with concrete "
            f"expected values. Reply with the test code only, in one ```{fence} block."
        )
    else:
        instruction = target.instruction.strip()
        user = (
            f"Rewrite this {lang} code from {path} as asked: {instruction}\n\n{block}\n\n"
            "Keep its behaviour unless asked otherwise. Reply with the new code that "
            f"replaces it, in one ```{fence} block, and nothing else."
        )
    if retry_reason:
        user += f"\n\nYour previous answer was not usable ({retry_reason}). Try again."
    return system, user


#: Most characters of an explanation (it is cut after its last sentence within them).
MAX_EXPLANATION = 600


def answer_stop(kind: str) -> Callable[[str], int | None]:
    """When to stop generating an action's answer (the length to keep), or None to go on.

    Code answers stop when their fenced block closes; an explanation when it is long
    enough (at a sentence's end) or turns into code.
    """

    def code(text: str) -> int | None:
        opened = re.search(r"```[\w+#.-]*[ \t]*\n", text)
        if opened is None:
            return None
        closed = text.find("\n```", opened.end() - 1)
        return closed + 4 if closed >= 0 else None

    def prose(text: str) -> int | None:
        if "```" in text:
            return text.index("```")
        if len(text) < MAX_EXPLANATION:
            return None
        end = max(text.rfind(". ", 0, MAX_EXPLANATION), text.rfind(".\n", 0, MAX_EXPLANATION))
        return end + 1 if end > 0 else MAX_EXPLANATION

    def docstring(text: str) -> int | None:
        return code(text) if text.lstrip().startswith("```") else None

    return {EXPLAIN: prose, DOCSTRING: docstring}.get(kind, code)


#: Most tokens generated for each action.
MAX_TOKENS = {DOCSTRING: 256, FIX: 1024, EXPLAIN: 320, TESTS: 768, REWRITE: 1024}


# -- proposals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """Edits of one file; ``create`` makes it first."""

    uri: str
    version: int | None  # None: a file the editor does not have open
    edits: tuple[Edit, ...]
    text: str  # the text the edits' positions refer to ("" for a new file)
    create: bool = False


@dataclass(frozen=True)
class UnitTestSource:
    """The test file as it is now (``text`` None: it does not exist)."""

    where: UnitTestFile
    text: str | None
    version: int | None


@dataclass(frozen=True)
class Proposal:
    """The changes an answer makes, or why it cannot be used."""

    changes: tuple[FileChange, ...] = ()
    problem: str | None = None


#: A fix must keep at least this share of the region's lines (difflib ratio): an answer
#: with only the corrected line would otherwise delete the rest.
FIX_MIN_SIMILARITY = 0.5


@dataclass(frozen=True)
class _Source:
    """The document an answer is turned into edits of."""

    text: str
    lines: list[str]
    language_id: str
    grammar: str | None
    eol: str


def propose(
    target: Target,
    answer: str,
    text: str,
    language_id: str,
    grammar: str | None,
    tests: UnitTestSource | None = None,
) -> Proposal:
    """Turn the model's answer into checked edits of the document (and the test file)."""
    lines = split_lines(text)
    src = _Source(text, lines, language_id, grammar, eol_of(lines))
    if target.end > len(lines):
        return Proposal(problem="the document is shorter than the action's code")
    if target.kind == DOCSTRING:
        return _docstring(target, answer, src)
    if target.kind == EXPLAIN:
        prose = clean_prose(answer)
        if len(prose.split()) < 3:
            return Proposal(problem="the explanation is empty")
        indent = _indent(content(lines[target.start])) if lines else ""
        comment = format_comment(prose, language_id, indent)
        return _checked(
            target, src, [replace_lines(lines, target.start, target.start, comment, src.eol)]
        )
    if target.kind == TESTS:
        assert tests is not None
        return _tests(target, answer, src, tests)
    code = extract_code(answer)
    if not code.strip():
        return Proposal(problem="the answer has no code")
    # the answer has no blank lines around it: those of the region stay as they are
    start, end = target.start, target.end
    while start < end and not content(lines[start]).strip():
        start += 1
    while end > start and not content(lines[end - 1]).strip():
        end -= 1
    original = [content(t) for t in lines[start:end]]
    new = reindent(code, original)
    if target.kind == FIX:
        ratio = difflib.SequenceMatcher(None, original, new, autojunk=False).ratio()
        if ratio < FIX_MIN_SIMILARITY:
            return Proposal(problem="the answer is not the corrected code as a whole")
    return _checked(target, src, diff_edits(lines, start, end, new, src.eol))


def _checked(target: Target, src: _Source, edits: list[Edit]) -> Proposal:
    after = apply_edits(src.text, edits)
    problem = check_edit(target.kind, src.grammar, src.text, after, target, src.language_id)
    if problem is not None:
        return Proposal(problem=problem)
    return Proposal((FileChange(target.uri, target.version, tuple(edits), src.text),))


def _docstring(target: Target, answer: str, src: _Source) -> Proposal:
    if src.grammar is None:
        return Proposal(problem=f"no grammar for {language_name(src.language_id)}")
    tree = parse(src.grammar, src.text.encode("utf-8"))
    definition = definition_at(tree, target.line)
    if definition is None or definition.name != target.name:
        return Proposal(problem=f"`{target.name}` is no longer at line {target.line + 1}")
    place = docstring_place(definition, src.lines, src.language_id)
    if place is None:
        return Proposal(problem=f"`{target.name}` has no place for a docstring")
    doc = clean_doc(answer, target.name)
    if not doc.strip():
        return Proposal(problem="the docstring is empty")
    code = {content(t).strip() for t in src.lines[definition.start : definition.end]}
    if any(len(t.strip()) > 8 and t.strip() in code for t in doc.split("\n")):
        return Proposal(problem="the answer repeats the code instead of documenting it")
    formatted = format_doc(doc, src.language_id, place.indent, target.name)
    return _checked(
        target, src, [replace_lines(src.lines, place.start, place.end, formatted, src.eol)]
    )


def _tests(target: Target, answer: str, src: _Source, tests: UnitTestSource) -> Proposal:
    code = extract_code(answer)
    if not code.strip():
        return Proposal(problem="the answer has no test code")
    where, grammar, language_id = tests.where, src.grammar, src.language_id
    header = test_import(target, src.text, grammar, src.lines, where)
    if where.uri == target.uri:  # tests in the same file (Rust): appended to it
        merged = merge_tests(code, src.text, header, language_id)
        return _checked(target, src, [append_edit(src.text, merged, 2)])
    merged = merge_tests(code, tests.text, header, language_id)
    if syntax_errors(grammar, merged):
        return Proposal(problem="the generated tests do not parse")
    if not re.search(r"\b(test|it|describe|assert)\w*", merged, re.I):
        return Proposal(problem="the answer has no tests")
    if tests.text is None:
        new_text = merged.replace("\n", src.eol)
        edit = Edit((0, 0), (0, 0), new_text)
        return Proposal((FileChange(where.uri, None, (edit,), "", create=True),))
    edit = append_edit(tests.text, merged, 3 if language_id == "python" else 2)
    if syntax_errors(grammar, apply_edits(tests.text, [edit])) > syntax_errors(grammar, tests.text):
        return Proposal(problem="the generated tests do not parse")
    return Proposal((FileChange(where.uri, tests.version, (edit,), tests.text),))


def test_import(
    target: Target, text: str, grammar: str | None, lines: Sequence[str], where: UnitTestFile
) -> str:
    """The first lines of a new test file for the target (its imports)."""
    if where.uri == target.uri:
        return ""
    return test_header(where, [_importable(target, text, grammar)], lines)


def _importable(target: Target, text: str, grammar: str | None) -> str:
    """What a test imports to reach the definition: the class of a method, else its name."""
    if grammar is None:
        return target.name
    tree = parse(grammar, text.encode("utf-8"))
    definition = definition_at(tree, target.line)
    node = definition.node.parent if definition is not None else None
    while node is not None:
        if is_definition(node) and "class" in node.type and definition_name(node):
            return definition_name(node) or target.name
        node = node.parent
    return target.name
