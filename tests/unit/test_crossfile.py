"""Definitions, the symbol index, names near the cursor, recent snippets (several languages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.crossfile import (
    RecentSnippets,
    WorkspaceIndexer,
    imports,
    module_match,
    nearby_names,
    pick_definitions,
)
from lsp_server.documents import split_lines
from lsp_server.symbols import Definition, SymbolIndex, extract

PY = '''import os


class Box:
    """A box."""

    def area(self, scale=1):
        """Return the area.

        More text.
        Even more.
        """
        return self.w * self.h * scale


# Build a box.
def make_box(w, h):
    return Box()
'''


def signatures(grammar: str, source: str) -> dict[str, str]:
    return {d.name: d.signature for d in extract(grammar, source.encode(), "f")}


def test_python_definitions_keep_signatures_and_docstrings_not_bodies() -> None:
    sigs = signatures("python", PY)
    assert set(sigs) == {"Box", "area", "make_box"}
    assert sigs["Box"] == 'class Box:\n    """A box."""'
    assert sigs["area"].startswith("class Box:\n    def area(self, scale=1):\n")
    assert '"""Return the area.' in sigs["area"] and "return self.w" not in sigs["area"]
    assert sigs["make_box"] == "# Build a box.\ndef make_box(w, h):"


@pytest.mark.parametrize(
    "grammar,source,expected",
    [
        (
            "typescript",
            "export function area(w: number): number {\n  return w;\n}\n"
            "export class Box {\n  scale(k: number): Box { return this; }\n}\n"
            "const twice = (x: number) => 2 * x;\n"
            "const show = (\n  box: Box,\n) => {\n  draw(box);\n};\n",
            {
                "area": "export function area(w: number): number",
                "Box": "export class Box",
                "scale": "export class Box\n  scale(k: number): Box",
                "twice": "const twice = (x: number) => 2 * x",
                "show": "const show = (box: Box) =>",
            },
        ),
        (
            "go",
            "package m\n// Area computes.\nfunc Area(w, h int) int {\n\treturn w*h\n}\n"
            "func (b *Box) Scale(k int) *Box { return b }\n",
            {
                "Area": "// Area computes.\nfunc Area(w, h int) int",
                "Scale": "func (b *Box) Scale(k int) *Box",
            },
        ),
        (
            "rust",
            "/// Area.\npub fn area(w: i32) -> i32 { w }\npub struct Bag { w: i32 }\n",
            {"area": "/// Area.\npub fn area(w: i32) -> i32", "Bag": "pub struct Bag"},
        ),
        ("c", "int area(int w, int h) { return w*h; }\n", {"area": "int area(int w, int h)"}),
        (
            "ruby",
            "class Box\n  def area(w)\n    w\n  end\nend\n",
            {"Box": "class Box", "area": "class Box\n  def area(w)"},
        ),
    ],
)
def test_definitions_in_other_languages(
    grammar: str, source: str, expected: dict[str, str]
) -> None:
    sigs = signatures(grammar, source)
    for name, signature in expected.items():
        assert sigs[name] == signature


@pytest.mark.parametrize(
    "grammar,source,expected",
    [
        (
            "python",
            'class Report:\n    """A report."""\n\n    def __init__(\n        self,\n'
            "        reqs: list[Req],\n    ) -> None:\n        self.reqs = reqs\n\n"
            "    def to_dict(self):\n        return {}\n",
            'class Report:\n    """A report."""\n    def __init__(self, reqs: list[Req]) -> None:',
        ),
        (
            "typescript",
            "export class Box {\n  constructor(private w: number, h: number) {}\n"
            "  area(): number { return 1; }\n}\n",
            "export class Box\n  constructor(private w: number, h: number)",
        ),
        (
            "java",
            "class Box {\n  Box(int w, int h) { }\n  int area() { return 1; }\n}\n",
            "class Box\n  Box(int w, int h)",
        ),
        (
            "ruby",
            "class Box\n  def initialize(w, h)\n    @w = w\n  end\nend\n",
            "class Box\n  def initialize(w, h)",
        ),
    ],
)
def test_a_class_shows_its_constructor(grammar: str, source: str, expected: str) -> None:
    sigs = {d.name: d.signature for d in extract(grammar, source.encode(), "f")}
    name = "Report" if grammar == "python" else "Box"
    assert sigs[name] == expected


@pytest.mark.parametrize(
    "grammar,source,expected",
    [
        (
            "python",
            "def get(\n    name: str,\n    home: str | None = None,\n    prefix: list[\n"
            "        str\n    ] = (),\n) -> Scheme:\n    return 1\n"
            "class Box(\n    Base,\n    metaclass=Meta,\n):\n    pass\n",
            {
                "get": "def get(name: str, home: str | None = None, prefix: list[str] = ())"
                " -> Scheme:",
                "Box": "class Box(Base, metaclass=Meta):",
            },
        ),
        (
            "typescript",
            "export function area(\n  w: number,\n  h: number,\n): number {\n  return w;\n}\n",
            {"area": "export function area(w: number, h: number): number"},
        ),
        (  # braces keep their lines; a comment keeps the parameters' lines
            "go",
            "package m\ntype Box struct {\n\tW int\n}\n"
            "func Area(\n\tw int, // width\n\th int,\n) int {\n\treturn w\n}\n",
            {
                "Box": "type Box struct {\n\tW int\n}",
                "Area": "func Area(\n\tw int, // width\n\th int,\n) int",
            },
        ),
    ],
)
def test_parameter_lists_over_several_lines_are_joined(
    grammar: str, source: str, expected: dict[str, str]
) -> None:
    assert signatures(grammar, source) == expected


def test_index_replaces_and_bounds_files() -> None:
    index = SymbolIndex(max_files=2)
    index.set_file("a", [Definition("f", "function", "a", 1, "def f():")])
    index.set_file("b", [Definition("f", "function", "b", 3, "def f(x):")])
    assert [d.path for d in index.lookup("f")] == ["a", "b"]
    assert not index.set_file("c", [])  # full
    index.set_file("a", [Definition("g", "function", "a", 1, "def g():")])
    assert [d.path for d in index.lookup("f")] == ["b"]
    index.remove_file("b")
    assert index.lookup("f") == [] and len(index) == 1


def test_index_bounds_the_characters_it_holds() -> None:
    big = [Definition(f"f{i}", "function", "a", i, "def f(): ..." * 10) for i in range(10)]
    index = SymbolIndex(max_chars=3000)
    assert index.set_file("a", big)
    held = index.chars
    assert 0 < held <= 3000
    assert not index.set_file("b", big)  # would exceed the bound
    assert index.lookup("f0") and index.chars == held
    assert index.set_file("a", big[:2])  # replacing frees what the file held
    assert index.chars < held
    assert index.set_file("b", big[2:5])
    index.remove_file("a")
    index.remove_file("b")
    assert index.chars == 0


def test_nearby_names_prefer_imports_then_distance_and_skip_the_typed_word() -> None:
    lines = split_lines(
        "from shapes import Circle, area\nimport helpers\n\n"
        "def f(xs):\n    total = compute(xs)\n    return resu\n"
    )
    names = nearby_names(lines, 5, len("    return resu"))
    assert names[:2] == ["Circle", "area"]  # imported names, not module paths
    assert "compute" in names and "total" in names
    assert "resu" not in names  # the word being typed
    assert "return" not in names and "import" not in names
    # Python: a name from another file must be imported; nearest use first
    lines = split_lines(
        "from shapes import Circle, area\n\ndef f(r):\n    a = area(r)\n    total = \n"
    )
    assert nearby_names(lines, 4, 12, imports_only=True) == ["area", "Circle"]


@pytest.mark.parametrize(
    "statement,names",
    [
        ("from pip._internal.models.link import Link as L", ["Link", "L"]),
        ("import os.path", []),
        ("import { parse, render as r } from './view';", ["parse", "render", "r"]),
        ("import React from 'react';", ["React"]),
        ("use std::collections::{HashMap, HashSet};", ["HashMap", "HashSet"]),
        ('#include "foo/bar.h"', []),
        ("local util = require('util')", ["util"]),
    ],
)
def test_imported_names_leave_module_paths_out(statement: str, names: list[str]) -> None:
    from lsp_server.crossfile import imported_names

    assert imported_names([statement]) == names


@pytest.mark.parametrize(
    "statement,found",
    [
        (
            "from pip._internal.locations import get_scheme",
            [("get_scheme", "pip._internal.locations")],
        ),
        ("from .base import A, B", [("A", ".base"), ("B", ".base")]),
        ("import { parse } from '../view/parse';", [("parse", "../view/parse")]),
        (
            "use crate::shapes::{Circle, Square};",
            [("Circle", "crate.shapes"), ("Square", "crate.shapes")],
        ),
        ("import com.acme.shapes.Circle;", [("Circle", "com.acme.shapes")]),
    ],
)
def test_imports_name_their_modules(statement: str, found: list[tuple[str, str]]) -> None:
    assert imports([statement]) == found


@pytest.mark.parametrize(
    "path,module,name,score",
    [
        ("file:///r/pip/_internal/locations/__init__.py", "pip._internal.locations", "x", 6),
        ("file:///r/locations/_distutils.py", "pip._internal.locations", "x", 1),  # inside
        ("file:///r/other/_distutils.py", "pip._internal.locations", "x", 0),
        ("file:///r/src/view/parse.ts", "../view/parse", "parse", 4),
        ("file:///r/src/view/parse.ts", "../view/parse.js", "parse", 4),
        ("file:///r/src/view/index.js", "./view", "parse", 2),
        ("file:///r/src/com/acme/shapes/Circle.java", "com.acme.shapes", "Circle", 8),
        ("file:///r/src/shapes/mod.rs", "crate::shapes", "Circle", 2),
        ("file:///r/other.py", "", "x", 0),
    ],
)
def test_module_match_scores_the_path_segments_a_module_names(
    path: str, module: str, name: str, score: int
) -> None:
    assert module_match(path, module, name) == score


def test_pick_definitions_prefers_the_imported_module() -> None:
    index = SymbolIndex()
    for path in ("file:///r/locations/__init__.py", "file:///r/locations/_distutils.py"):
        index.set_file(path, [Definition("get_scheme", "f", path, 0, "def get_scheme():")])
    index.set_file(
        "file:///r/req/req_set.py", [Definition("get", "f", "file:///r/req/req_set.py", 5, "")]
    )
    # a re-exported name: defined in a file inside the module's folder
    for path in ("file:///r/scripts/utils.py", "file:///r/pkg/utils/helpers.py"):
        index.set_file(path, [Definition("load", "f", path, 0, "def load():")])
    modules = {
        "get_scheme": "pip._internal.locations",
        "get": "pip._vendor.requests",  # not the workspace's
        "load": "pkg.utils",
    }
    names = ["get_scheme", "get", "load"]
    picked = pick_definitions(index, names, "file:///r/a.py", modules)
    # the module's own file only; nothing for a name from a module outside the workspace
    assert [d.path for d in picked] == [
        "file:///r/locations/__init__.py",
        "file:///r/pkg/utils/helpers.py",
    ]
    # a relative module that names no file keeps every find; no module, the same
    for modules in ({"get": ".", "load": "pkg.utils"}, {"load": "pkg.utils"}):
        picked = pick_definitions(index, ["get", "load"], "file:///r/a.py", modules)
        assert [d.path for d in picked] == [
            "file:///r/req/req_set.py",
            "file:///r/pkg/utils/helpers.py",
        ]


def test_pick_definitions_skips_the_current_file_and_what_it_defines() -> None:
    index = SymbolIndex()
    index.set_file("file:///a.py", [Definition("run", "f", "file:///a.py", 0, "def run():")])
    index.set_file(
        "file:///b.py",
        [
            Definition("run", "f", "file:///b.py", 0, "def run(x):"),
            Definition("area", "f", "file:///b.py", 3, "def area(x):"),
        ],
    )
    picked = pick_definitions(index, ["run", "area", "missing"], exclude="file:///a.py")
    assert [(d.name, d.path) for d in picked] == [("area", "file:///b.py")]


def test_imports_over_several_lines_and_no_attribute_names() -> None:
    lines = split_lines(
        "from pkg.ops import (\n    check_set,\n    make_set,\n)\n"
        "import { parse,\n  render } from './view';\n\n"
        "def f(options):\n    result = options.run(check_set)\n    \n"
    )
    names = nearby_names(lines, 9, 4)
    assert names.index("make_set") < names.index("result")  # imports first
    assert {"check_set", "make_set", "parse", "render"} <= set(names)
    assert "run" not in names  # an attribute: whose run is unknown


def test_recent_snippets() -> None:
    snippets = RecentSnippets(size=2, radius=1)
    lines = split_lines("a\nb\nc\nd\ne\n")
    snippets.touch("file:///x", lines, 2)
    snippets.touch("file:///y", lines, 0)
    snippets.touch("file:///x", lines, 3)  # same region of x: replaces, becomes newest
    assert [(s.uri, s.text) for s in snippets.others("file:///z")] == [
        ("file:///x", "c\nd\ne"),
        ("file:///y", "a\nb"),
    ]
    assert [s.uri for s in snippets.others("file:///x")] == ["file:///y"]
    snippets.forget("file:///y")
    assert snippets.others("file:///x") == []


def test_workspace_indexer_skips_ignored_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text("def helper(x):\n    return x\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "dep.js").write_text("function hidden() {}\n")
    (tmp_path / "blob.py").write_bytes(b"def f():\x00\n")
    (tmp_path / "open.py").write_text("def opened():\n    pass\n")
    index = SymbolIndex()
    indexer = WorkspaceIndexer(index)
    indexer.start([tmp_path], skip=lambda uri: uri.endswith("open.py"))
    assert indexer.done.wait(30)
    assert [d.name for d in index.lookup("helper")] == ["helper"]
    assert index.lookup("hidden") == [] and index.lookup("f") == [] and index.lookup("opened") == []
    assert indexer.files == 1


@pytest.mark.parametrize(
    "grammar,source,expected",
    [
        ("java", "class A { void f(List<X> list) { list.add(x); } }", ["A", "f"]),
        ("rust", "struct Bag { w: i32 }\nfn f() -> Bag { Bag { w: 1 } }", ["Bag", "f"]),
        (
            "c",
            "int g(struct foo *p, enum color c) { return 0; }\nstruct foo { int x; };",
            ["g", "foo"],
        ),
        (
            "cpp",
            "int h() { return max<int>(1, 2); }\nnamespace ns { class K {}; }",
            ["h", "ns", "K"],
        ),
        (
            "javascript",
            "const f = (a) => { function inner() {} return a; };\nclass C { m(x) {} }",
            ["f", "C", "m"],
        ),
        ("python", "def outer():\n    def local():\n        pass\n    return local\n", ["outer"]),
    ],
)
def test_uses_and_local_definitions_are_not_indexed(
    grammar: str, source: str, expected: list[str]
) -> None:
    assert [d.name for d in extract(grammar, source.encode(), "x")] == expected


def test_pieces_fit_their_budgets_and_a_share_of_the_context() -> None:
    from lsp_server.completion import choose_pieces
    from lsp_server.config import Settings
    from lsp_server.context import ContextPiece

    def count(text: str) -> int:
        return len(text.split())

    pieces = [ContextPiece("definition", f"m{i}.py", 0, "word " * 50) for i in range(10)]
    pieces += [ContextPiece("recent", "r.py", i * 20, "word " * 50) for i in range(5)]
    settings = Settings()  # 384 tokens of definitions, 192 of recent snippets
    chosen = choose_pieces(pieces, count, settings)
    assert sum(p.kind == "definition" for p in chosen) == 6  # 6 x 55 <= 384
    assert sum(p.kind == "recent" for p in chosen) == 3
    assert [p.path for p in chosen] == sorted(p.path for p in chosen)  # a stable order
    small = choose_pieces(pieces, count, settings, limit=200)
    assert sum(count(p.text) + count(p.path) + 4 for p in small) <= 200
    assert {p.kind for p in small} == {"definition", "recent"}


def test_comment_block_uses_each_languages_comments() -> None:
    from lsp_server.completion import comment_block

    files = [("lib.py", "def f(x):\n    '''Doc.'''")]
    assert comment_block(files, "python").startswith("# Context from other files:\n# lib.py\n")
    assert comment_block(files, "lua").splitlines()[2] == "-- def f(x):"
    assert comment_block(files, "go").splitlines()[1] == "// lib.py"
    css = comment_block([("a.css", "x */ y")], "css")
    assert css.startswith("/*\n") and css.rstrip().endswith("*/") and css.count("*/") == 1
    assert comment_block(files, "json") == ""
    assert comment_block([], "python") == ""
