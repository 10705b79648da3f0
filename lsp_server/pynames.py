"""Names a Python completion gets wrong: undefined ones, and locals used before assignment.

Small models often write a line that uses a name nothing defines (``min_number``), that
leaves undefined a name the code below the cursor needs (the loop that should bind
``elem``), or that reads a local the function only assigns further down. Python's own
``symtable`` and ``ast`` find these in the top-level definition around the cursor; the
names that the rest of the file (outside that definition) mentions count as defined.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from collections.abc import Iterable, Iterator

_BUILTINS = frozenset(dir(builtins)) | {"__file__", "__name__", "__doc__", "__builtins__"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def identifiers(lines: Iterable[str]) -> frozenset[str]:
    """Every identifier-like word in some lines (the names known outside the window)."""
    return frozenset(word for line in lines for word in _IDENTIFIER.findall(line))


def name_flaw(before: str, inserted: str, after: str, outside: frozenset[str]) -> str | None:
    """Why ``inserted`` between ``before`` and ``after`` gets names wrong, or None.

    None also when the code does not parse (the syntax check judges that).
    """
    text = before + inserted + after
    undefined = _undefined(text, outside)
    if undefined is None:
        return None
    if undefined:
        return f"undefined name {sorted(undefined)[0]}"
    first = before.count("\n") + 1
    last = first + inserted.count("\n")
    early = _used_before_assignment(text, first, last)
    return f"{early} used before assignment" if early else None


def undefined_names(text: str) -> set[str] | None:
    """Names a Python module reads that nothing defines (None when it does not parse)."""
    return _undefined(text, frozenset())


def _undefined(text: str, outside: frozenset[str]) -> set[str] | None:
    """Names read in the code that no scope defines (None when it does not parse)."""
    try:
        top = symtable.symtable(text, "<completion>", "exec")
    except (SyntaxError, ValueError):
        return None
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    defined |= {t.get_name() for t in top.get_children()}  # def and class at the top
    missing: set[str] = set()
    for table in _tables(top):
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if not symbol.is_referenced() or not symbol.is_global():
                continue
            if table is not top and symbol.is_declared_global():
                continue
            if symbol.is_assigned() and table is top:
                continue
            if name not in defined and name not in _BUILTINS and name not in outside:
                missing.add(name)
    return missing


def _tables(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def _used_before_assignment(text: str, first: int, last: int) -> str | None:
    """A local that lines ``first``..``last`` read before the function first binds it."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    function = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno or node.lineno
            if node.lineno < first and last <= end:
                if function is None or node.lineno > function.lineno:
                    function = node  # the innermost one
    if function is None:
        return None
    params = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    bound: dict[str, int] = {}
    reads: list[ast.Name] = []
    loops: list[ast.AST] = []
    for node in _own_nodes(function):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                reads.append(node)
            else:
                bound[node.id] = min(bound.get(node.id, node.lineno), node.lineno)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                bound[name] = min(bound.get(name, node.lineno), node.lineno)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                bound[name] = 0
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound[node.name] = min(bound.get(node.name, node.lineno), node.lineno)
        elif isinstance(node, _SCOPES) and not isinstance(node, ast.Lambda):
            bound[node.name] = min(bound.get(node.name, node.lineno), node.lineno)
        if isinstance(node, _LOOPS):
            loops.append(node)
    for read in reads:
        if not first <= read.lineno <= last or read.id in params:
            continue
        line = bound.get(read.id)
        if line is None or line <= last:
            continue
        if any(_inside(read, loop) and _spans(loop, line) for loop in loops):
            continue  # a loop may bind it on an earlier turn
        return read.id
    return None


def _own_nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The function's nodes, not those of nested functions, classes or comprehensions."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES + _COMPREHENSIONS):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _inside(node: ast.AST, outer: ast.AST) -> bool:
    line = getattr(node, "lineno", 0)
    return bool(outer.lineno <= line <= (outer.end_lineno or outer.lineno))  # type: ignore[attr-defined]


def _spans(loop: ast.AST, line: int) -> bool:
    return bool(loop.lineno <= line <= (loop.end_lineno or loop.lineno))  # type: ignore[attr-defined]
