"""Definitions in the workspace: what a symbol near the cursor is, from other files.

Definitions (functions, methods, classes, types, ...) are found with tree-sitter by node
type and their ``name`` field, in any grammar. Each keeps only its signature: the text
from its start to its body, the docstring (Python) or the comment lines right above it,
and for a member the header line of its container. The index maps names to definitions;
it is bounded in files and in bytes read, and updated file by file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from tree_sitter import Node, Tree

from lsp_server.syntax import parse

#: Node types that define something (a word of the type matches).
_DEFINES = re.compile(
    r"(^|_)(function|method|class|struct|interface|trait|enum|type_alias|type_spec|module"
    r"|impl|object|protocol|record|constructor|union|namespace)(_|$)|^(class|method|module)$"
)
_NOT_DEFINES = re.compile(
    r"parameter|argument|call|field|reference|type_arguments|_body$|_list$|_declarator$"
    r"|invocation|expression|template_function|_type$"
)
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "lambda"}
#: Definitions whose insides are local (not looked into for more definitions).
_LOCAL_INSIDE = re.compile(r"function|method|constructor|lambda|closure|variable_declarator")
#: Nodes that never contain definitions worth indexing (calls, expressions, strings).
_NO_DEFINITIONS_INSIDE = re.compile(r"expression$|call|invocation|argument|string|comment|literal")

MAX_SIGNATURE = 400
MAX_SIGNATURE_LINES = 6


@dataclass(frozen=True)
class Definition:
    """One definition's name, place and signature."""

    name: str
    kind: str
    path: str
    line: int
    signature: str


def extract(grammar: str, source: bytes, path: str, tree: Tree | None = None) -> list[Definition]:
    """Definitions in a file's source (parsed unless its current tree is given)."""
    tree = tree or parse(grammar, source)
    found: list[Definition] = []
    at: dict[int, int] = {}  # a definition node's start byte: its place in found
    constructors: dict[int, str] = {}  # a class's start byte: its constructor's header
    for node, container in _walk(tree.root_node):
        name = definition_name(node)
        assert name is not None
        signature = _signature(node, container, source, grammar)
        at[node.start_byte] = len(found)
        found.append(Definition(name, node.type, path, node.start_point[0], signature))
        if container is not None and (name in CONSTRUCTORS or node.type in CONSTRUCTORS):
            lead = _line_start(source, node.start_byte)
            constructors.setdefault(container.start_byte, lead + _header(node, source))
    for start, constructor in constructors.items():
        if start in at:
            found[at[start]] = _with_constructor(found[at[start]], constructor)
    return found


#: Constructor names (Python, JavaScript/TypeScript, Ruby) and node types (Java, C#...).
CONSTRUCTORS = frozenset({"__init__", "constructor", "initialize", "constructor_declaration"})


def _with_constructor(d: Definition, constructor: str) -> Definition:
    """A class's definition with its constructor's header (what a call of it takes).

    The docstring goes when both would not fit in :data:`MAX_SIGNATURE`.
    """
    signature = d.signature + "\n" + constructor
    if len(signature) > MAX_SIGNATURE:
        signature = d.signature.split("\n", 1)[0] + "\n" + constructor
    return replace(d, signature=signature[:MAX_SIGNATURE])


def _walk(root: Node) -> Iterator[tuple[Node, Node | None]]:
    """Definition nodes with their innermost enclosing definition (if any)."""
    stack: list[tuple[Node, Node | None]] = [(root, None)]
    while stack:
        node, container = stack.pop()
        inner = container
        if node.is_named and is_definition(node) and definition_name(node) is not None:
            yield node, container
            inner = node
            if _LOCAL_INSIDE.search(node.type):
                continue  # what a function defines inside is local to it
        elif node is not root and _NO_DEFINITIONS_INSIDE.search(node.type):
            continue
        stack.extend((child, inner) for child in reversed(node.children) if child.is_named)


def is_definition(node: Node) -> bool:
    """Whether a node defines a function, method, class, type... (by its node type)."""
    kind = node.type
    if kind == "variable_declarator":
        value = node.child_by_field_name("value")
        return value is not None and value.type in _FUNCTION_VALUES
    if kind.endswith("_specifier"):  # C: `struct foo *p` names a type, `struct foo {}` defines it
        return node.child_by_field_name("body") is not None
    return bool(_DEFINES.search(kind)) and not _NOT_DEFINES.search(kind)


def definition_name(node: Node) -> str | None:
    """The name a definition node defines (its last dotted part), or None."""
    name = node.child_by_field_name("name")
    if name is None:
        # C and C++: function_definition -> declarator: function_declarator -> identifier
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in (
            "identifier",
            "field_identifier",
            "qualified_identifier",
        ):
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    if name is None or name.text is None:
        return None
    text = name.text.decode("utf-8", "replace")
    return text.rsplit(".", 1)[-1].rsplit("::", 1)[-1] or None


def _header(node: Node, source: bytes) -> str:
    """The definition's text up to its body, at most a few lines.

    A parameter list spread over several lines is joined into one (``def f(a, b) -> T:``)
    so that a long one is shown whole, unless a comment or a multi-line string would
    swallow what follows it.
    """
    body = node.child_by_field_name("body")
    value = node.child_by_field_name("value")
    if body is None and value is not None:  # `const f = (a) => {...}`: up to its block
        inner = value.child_by_field_name("body")
        body = inner if inner is not None and inner.type == "statement_block" else None
    end = body.start_byte if body is not None else node.end_byte
    text = source[node.start_byte : end].decode("utf-8", "replace").rstrip()
    lines = [line.rstrip() for line in text.split("\n")]
    if len(lines) > 1 and not _UNJOINABLE.search(text):
        lines = _join_brackets(lines)
    return "\n".join(lines[:MAX_SIGNATURE_LINES])


#: What makes a header's lines unsafe to join: comments and multi-line strings.
_UNJOINABLE = re.compile(r"#|//|/\*|--|\"\"\"|\'\'\'|`")


def _join_brackets(lines: list[str]) -> list[str]:
    """Lines broken inside round or square brackets joined into one.

    Single spaces between the parts, none after the opening bracket, and no trailing
    comma before the closing one.
    """
    out = [lines[0]]
    depth = _depth(lines[0])
    for line in lines[1:]:
        part = line.strip()
        if depth <= 0:
            out.append(line)
        elif part:
            last = out[-1]
            if part[0] in ")]":
                last = last.rstrip(",")
            elif not last.endswith(("(", "[")):
                last += " "
            out[-1] = last + part
        depth += _depth(line)
    return out


def _depth(text: str) -> int:
    return text.count("(") + text.count("[") - text.count(")") - text.count("]")


def _leading_comments(node: Node, source: bytes) -> str:
    """Comment lines directly above a node."""
    lines: list[str] = []
    prev = node.prev_named_sibling
    row = node.start_point[0]
    while prev is not None and "comment" in prev.type and prev.end_point[0] >= row - 1:
        text = source[prev.start_byte : prev.end_byte].decode("utf-8", "replace")
        lines.insert(0, text)
        row = prev.start_point[0]
        prev = prev.prev_named_sibling
    return "\n".join(lines[-4:])


def _python_docstring(node: Node, source: bytes) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children:
        first = first.named_children[0]  # older grammars wrap the docstring
    if first.type != "string":
        return ""
    text = source[first.start_byte : first.end_byte].decode("utf-8", "replace")
    lines = text.split("\n")
    if len(lines) > 4:
        inner = lines[1][: len(lines[1]) - len(lines[1].lstrip())]
        lines = [*lines[:3], inner + '..."""']
    return "\n".join(lines)


def _line_start(source: bytes, offset: int) -> str:
    """The text of a line from its start up to ``offset`` (indentation, ``export ``...)."""
    start = source.rfind(b"\n", 0, offset) + 1
    return source[start:offset].decode("utf-8", "replace")


def _signature(node: Node, container: Node | None, source: bytes, grammar: str) -> str:
    lead = _line_start(source, node.start_byte)
    indent = lead[: len(lead) - len(lead.lstrip())]
    header = lead + _header(node, source)
    parts = []
    if container is not None:
        outer = _line_start(source, container.start_byte)
        parts.append(outer + _header(container, source).split("\n")[0])
    comments = _leading_comments(node, source)
    if comments:
        lines = [indent + line.strip() for line in comments.split("\n") if line.strip()]
        parts.append("\n".join(lines))
    parts.append(header)
    if grammar == "python":
        doc = _python_docstring(node, source)
        if doc:
            body_indent = indent + "    "
            parts.append(body_indent + doc.lstrip())
    return "\n".join(parts)[:MAX_SIGNATURE]


def _size(d: Definition) -> int:
    """Characters a definition holds (a memory bound, not an exact measure)."""
    return len(d.name) + len(d.signature) + 64


class SymbolIndex:
    """Definitions by name across files; safe to use from several threads.

    Bounded in files and in the characters of the definitions it holds: a file that
    would exceed either is not added (its place goes to the files indexed earlier).
    """

    def __init__(self, max_files: int = 5000, max_chars: int = 32 * 1024 * 1024) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, list[Definition]] = {}
        self._by_name: dict[str, list[Definition]] = {}
        self._chars = 0
        self.max_files = max_files
        self.max_chars = max_chars

    def set_file(self, path: str, definitions: Iterable[Definition]) -> bool:
        """Replace a file's definitions; False when the index is full."""
        defs = list(definitions)
        size = sum(_size(d) for d in defs)
        with self._lock:
            old = sum(_size(d) for d in self._files.get(path, ()))
            if path not in self._files and len(self._files) >= self.max_files:
                return False
            if self._chars - old + size > self.max_chars:
                return False
            self._drop(path)
            self._files[path] = defs
            self._chars += size
            for d in defs:
                self._by_name.setdefault(d.name, []).append(d)
            return True

    def remove_file(self, path: str) -> None:
        """Forget a file."""
        with self._lock:
            self._drop(path)

    def remove_prefix(self, prefix: str) -> None:
        """Forget every file whose path starts with ``prefix`` (a removed folder)."""
        with self._lock:
            for path in [p for p in self._files if p.startswith(prefix)]:
                self._drop(path)

    def names_in(self, path: str) -> set[str]:
        """The names a file defines."""
        with self._lock:
            return {d.name for d in self._files.get(path, ())}

    def lookup(self, name: str) -> list[Definition]:
        """Definitions of a name, in any file."""
        with self._lock:
            return list(self._by_name.get(name, ()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    @property
    def definitions(self) -> int:
        """How many definitions are indexed."""
        with self._lock:
            return sum(len(v) for v in self._files.values())

    @property
    def chars(self) -> int:
        """Characters held, by the measure that bounds the index."""
        with self._lock:
            return self._chars

    def _drop(self, path: str) -> None:
        for d in self._files.get(path, ()):
            self._chars -= _size(d)
        for d in self._files.pop(path, ()):
            same = self._by_name.get(d.name)
            if same is not None:
                same[:] = [x for x in same if x.path != path]
                if not same:
                    del self._by_name[d.name]
