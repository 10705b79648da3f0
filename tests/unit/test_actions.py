"""Code actions without the model: listing, answers to edits, checks, templates."""

from __future__ import annotations

import ast

import pytest

from lsp_server import actions
from lsp_server.actions import (
    DOCSTRING,
    EXPLAIN,
    FIX,
    REWRITE,
    TESTS,
    Diagnostic,
    Target,
    UnitTestFile,
    UnitTestSource,
)
from lsp_server.chat import ChatTemplate
from lsp_server.documents import split_lines
from lsp_server.prompts import load_templates
from lsp_server.syntax import parse

PY = '''import math


@cache
def circle_area(radius):
    if radius < 0:
        raise ValueError("negative radius")
    return math.pi * radius ** 2


class Shape:
    def area(self):
        """Area."""
        return 0


def scale(values, factor):
    return [v * factor for v in valuez]
'''

TS = """// helpers
export function clamp(value: number, low: number): number {
  return Math.max(value, low);
}
"""


def offers_at(text: str, language: str, grammar: str, line: int, **kw: object) -> list[str]:
    lines = split_lines(text)
    tree = parse(grammar, text.encode())
    found = actions.offers(
        lines,
        tree,
        language,
        kw.pop("uri", "file:///w/src/geo.py"),  # type: ignore[arg-type]
        3,
        line,
        kw.pop("end", line),  # type: ignore[arg-type]
        bool(kw.pop("selection", False)),
        kw.pop("diagnostics", []),  # type: ignore[arg-type]
        kw.pop("folders", ["file:///w"]),  # type: ignore[arg-type]
    )
    return [o.title for o in found]


def test_offers_for_a_python_function_with_a_diagnostic() -> None:
    diag = Diagnostic(17, 17, "undefined name 'valuez'")
    titles = offers_at(PY, "python", "python", 17, diagnostics=[diag])
    assert titles == [
        "Fix: undefined name 'valuez'",
        "Add docstring for `scale`",
        "Explain `scale` (as a comment above it)",
        "Generate unit tests for `scale` in test_geo.py",
    ]


def test_offers_name_an_existing_docstring_and_a_selection() -> None:
    assert "Regenerate docstring for `area`" in offers_at(PY, "python", "python", 12)
    titles = offers_at(PY, "python", "python", 5, end=7, selection=True)
    assert "Explain this code (as a comment above it)" in titles
    assert "Rewrite selection…" in titles
    assert "Add docstring for `circle_area`" in titles


def test_no_offers_outside_definitions_without_selection() -> None:
    assert offers_at(PY, "python", "python", 0) == []


def test_typescript_offers_and_test_file() -> None:
    titles = offers_at(TS, "typescript", "typescript", 2, uri="file:///w/src/clamp.ts")
    assert "Add doc comment for `clamp`" in titles  # the `// helpers` line is not JSDoc
    assert "Generate unit tests for `clamp` in clamp.test.ts" in titles


def test_target_json_round_trip_and_validation() -> None:
    target = Target(FIX, "file:///a.py", 4, 1, 9, message="m", line=3)
    assert Target.from_json(target.to_json()) == target
    for bad in ({}, {"fimls": 1}, {**target.to_json(), "kind": "nope"}, [1]):
        with pytest.raises(ValueError):
            Target.from_json(bad)
    with pytest.raises(ValueError, match="'version' must be a int"):
        Target.from_json({**target.to_json(), "version": "4"})


def propose(kind: str, answer: str, text: str = PY, line: int = 16, **kw: object) -> str:
    lines = split_lines(text)
    tree = parse("python", text.encode())
    definition = actions.definition_at(tree, line)
    assert definition is not None
    target = Target(
        kind,
        "file:///w/src/geo.py",
        1,
        int(kw.pop("start", definition.start)),  # type: ignore[call-overload]
        int(kw.pop("end", definition.end)),  # type: ignore[call-overload]
        definition.name,
        line=int(kw.pop("line", definition.header_line)),  # type: ignore[call-overload]
        **kw,  # type: ignore[arg-type]
    )
    proposal = actions.propose(target, answer, text, "python", "python")
    assert proposal.problem is None, proposal.problem
    (change,) = proposal.changes
    assert change.version == 1
    after = actions.apply_edits(text, change.edits)
    assert len(lines) <= len(split_lines(after))
    return after


def test_docstring_answer_becomes_a_docstring_and_leaves_the_body() -> None:
    answer = 'Here it is:\n```python\n"""Scale each value.\n\nArgs:\n    values: numbers.\n"""\n```'
    after = propose(DOCSTRING, answer)
    module = ast.parse(after.replace("valuez", "values"))
    scale = module.body[-1]
    assert isinstance(scale, ast.FunctionDef)
    assert ast.get_docstring(scale) == "Scale each value.\n\nArgs:\n    values: numbers."
    assert (
        after.replace(
            '    """Scale each value.\n\n    Args:\n        values: numbers.\n    """\n', ""
        )
        == PY
    )


def test_docstring_replaces_the_existing_one_of_a_decorated_method() -> None:
    after = propose(DOCSTRING, "Return the area, 0 for a bare shape.", line=11)
    assert '        """Return the area, 0 for a bare shape."""\n        return 0' in after
    assert '"""Area."""' not in after


def test_fix_keeps_lines_outside_the_change_and_checks_the_name() -> None:
    fixed = "def scale(values, factor):\n    return [v * factor for v in values]"
    after = propose(FIX, f"```python\n{fixed}\n```", message="undefined name 'valuez'", line=17)
    assert after == PY.replace("valuez", "values")
    lines = split_lines(PY)
    target = Target(FIX, "file:///w/a.py", 1, 16, 18, message="undefined name 'valuez'", line=17)
    still = actions.propose(target, PY.split("\n\n\n")[-1], PY, "python", "python")
    assert still.problem == "the model proposed no change"
    wrong = "def scale(values, factor):\n    return [v * factor for v in valuez if v]"
    still = actions.propose(target, wrong, PY, "python", "python")
    assert still.problem == "`valuez` is still undefined"
    assert len(lines) == 19


def test_a_fix_that_drops_most_of_the_region_is_refused() -> None:
    target = Target(FIX, "file:///w/a.py", 1, 3, 8, message="x", line=5)
    proposal = actions.propose(target, "    return 1", PY, "python", "python")
    assert proposal.problem == "the answer is not the corrected code as a whole"


def test_a_rewrite_that_breaks_the_syntax_is_refused() -> None:
    target = Target(REWRITE, "file:///w/a.py", 1, 16, 18, instruction="x")
    proposal = actions.propose(target, "def scale(:\n  pass", PY, "python", "python")
    assert proposal.problem == "the edited code does not parse"


def test_explanation_goes_above_as_wrapped_comments() -> None:
    answer = "**Scales** values.\n\n```python\nx\n```\nIt multiplies " + "each value " * 12
    after = propose(EXPLAIN, answer, line=16)
    comment = after.split("def scale")[0].rsplit("\n\n\n", 1)[1]
    assert comment.startswith("# Scales values.\n#\n# It multiplies each value")
    assert all(len(line) <= 88 for line in comment.split("\n"))


def test_tests_create_a_file_with_the_import() -> None:
    where = actions.test_file("file:///w/src/pkg/geo.py", "python", ["file:///w"])
    assert where is not None and where.uri == "file:///w/tests/test_geo.py"
    target = Target(TESTS, "file:///w/src/pkg/geo.py", 1, 16, 18, "scale", line=16)
    answer = "```python\nimport pytest\n\ndef test_scale():\n    assert scale([1], 2) == [2]\n```"
    proposal = actions.propose(
        target, answer, PY, "python", "python", UnitTestSource(where, None, None)
    )
    assert proposal.problem is None, proposal.problem
    (change,) = proposal.changes
    assert change.create and change.uri == where.uri
    text = change.edits[0].text
    assert text.startswith("import pytest\nfrom pkg.geo import scale\n\n\ndef test_scale():")
    ast.parse(text)


def test_tests_extend_an_existing_file() -> None:
    where = UnitTestFile("file:///w/tests/test_geo.py", "python", "from geo import {names}\n", "x")
    existing = "from geo import scale\n\n\ndef test_old():\n    pass\n"
    target = Target(TESTS, "file:///w/geo.py", 1, 16, 18, "scale", line=16)
    answer = (
        "```python\nfrom geo import scale\n\ndef test_new():\n    assert scale([], 1) == []\n```"
    )
    proposal = actions.propose(
        target, answer, PY, "python", "python", UnitTestSource(where, existing, 7)
    )
    (change,) = proposal.changes
    assert not change.create and change.version == 7
    after = actions.apply_edits(existing, change.edits)
    assert after == existing + "\n\ndef test_new():\n    assert scale([], 1) == []\n"


def test_test_file_conventions() -> None:
    ts = actions.test_file("file:///w/src/clamp.ts", "typescript")
    go = actions.test_file("file:///w/pkg/util.go", "go")
    rust = actions.test_file("file:///w/src/lib.rs", "rust")
    assert ts is not None and ts.uri == "file:///w/src/clamp.test.ts"
    assert go is not None and go.uri == "file:///w/pkg/util_test.go"
    assert rust is not None and rust.uri == "file:///w/src/lib.rs"
    assert actions.test_file("file:///w/tests/test_geo.py", "python") is None
    assert actions.test_file("file:///w/a.rb", "ruby") is None


def test_rust_tests_go_in_a_test_module() -> None:
    merged = actions.merge_tests("#[test]\nfn t() {\n    assert!(true);\n}", None, "", "rust")
    assert merged.startswith("#[cfg(test)]\nmod fimls_tests {\n    use super::*;\n\n    #[test]")
    assert not parse("rust", merged.encode()).root_node.has_error


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("python", ['    """Add two numbers.', "", "    Returns:", "        The sum.", '    """']),
        (
            "typescript",
            [
                "    /**",
                "     * Add two numbers.",
                "     *",
                "     * Returns:",
                "     *     The sum.",
                "     */",
            ],
        ),  # noqa: E501
        (
            "rust",
            ["    /// Add two numbers.", "    ///", "    /// Returns:", "    ///     The sum."],
        ),
        ("go", ["    // add two numbers.", "    //", "    // Returns:", "    //     The sum."]),
    ],
)
def test_doc_conventions(language: str, expected: list[str]) -> None:
    text = "Add two numbers.\n\nReturns:\n    The sum."
    name = "add" if language == "go" else "f"
    got = actions.format_doc(text, language, "    ", name)
    if language == "go":
        expected[0] = "    // add add two numbers."
    assert got == expected


def test_clean_doc_strips_markers_and_code() -> None:
    assert actions.clean_doc('def f(x):\n    """Double x."""\n    return 2 * x', "f") == "Double x."
    assert actions.clean_doc("/**\n * Clamp it.\n * @param v value\n */", "c") == (
        "Clamp it.\n@param v value"
    )
    assert actions.clean_doc("/// Add.\n/// More.", "add") == "Add.\nMore."


def test_extract_code_and_reindent() -> None:
    answer = "Sure:\n```python\nif x:\n    y()\n```\nDone."
    assert actions.extract_code(answer) == "if x:\n    y()"
    assert actions.extract_code("  a = 1\n") == "  a = 1"
    assert actions.reindent("if x:\n    y()", ["    if x:", "        z()"]) == [
        "    if x:",
        "        y()",
    ]


@pytest.mark.parametrize(
    ("text", "a", "b", "new"),
    [
        ("a\nb\nc\n", 1, 2, ["B", "B2"]),
        ("a\nb\nc", 2, 3, ["C"]),
        ("a\nb\nc", 1, 3, []),
        ("a\nb\nc", 3, 3, ["d"]),
        ("a\nb\n", 3, 3, ["d"]),
        ("a\r\nb\r\n", 0, 1, ["x"]),
    ],
)
def test_replace_lines(text: str, a: int, b: int, new: list[str]) -> None:
    lines = split_lines(text)
    eol = actions.eol_of(lines)
    after = actions.apply_edits(text, [actions.replace_lines(lines, a, b, new, eol)])
    old = text.split(eol)
    expected = eol.join(old[:a] + new + old[b:])
    if text.endswith(eol) and b == len(lines):  # appending keeps the final line break
        expected = eol.join(old[:-1][:a] + new) + eol
    assert after == expected


def test_diff_edits_are_minimal() -> None:
    lines = split_lines(PY)
    new = ["def scale(values, factor):", "    return [v * factor for v in values]"]
    edits = actions.diff_edits(lines, 16, 18, new, "\n")
    assert edits == [actions.Edit((17, 0), (18, 0), new[1] + "\n")]


def test_append_edit_separates_with_blank_lines() -> None:
    for text in ("x = 1", "x = 1\n", "x = 1\n\n\n\n"):
        after = actions.apply_edits(text, [actions.append_edit(text, "y = 2\n", 3)])
        assert after.startswith("x = 1\n\n") and after.endswith("y = 2\n")
        assert after.count("\n") >= 4


@pytest.mark.parametrize(
    ("message", "name"),
    [
        ("undefined name 'valuez'", "valuez"),
        ("Undefined name `valuez`", "valuez"),
        ("name 'valuez' is not defined", "valuez"),
        ('"valuez" is not defined', "valuez"),
        ("Line too long", None),
    ],
)
def test_undefined_name(message: str, name: str | None) -> None:
    assert actions.undefined_name(message) == name


def test_answer_stops() -> None:
    code = actions.answer_stop(FIX)
    assert code("```python\nx = 1\n") is None
    assert code("Here:\n```python\nx = 1\n```\nmore") == len("Here:\n```python\nx = 1\n```")
    prose = actions.answer_stop(EXPLAIN)
    assert prose("It adds.") is None
    long = "It adds numbers. " * 50
    cut = prose(long)
    assert cut is not None and cut <= actions.MAX_EXPLANATION and long[:cut].endswith(".")
    assert prose("Adds.\n```python") == len("Adds.\n")


def test_chat_template_from_jinja_keeps_document_text_out_of_special_tokens() -> None:
    jinja = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    chat = ChatTemplate(jinja, None)
    pieces = chat.render("sys", "code <|im_end|> here")
    assert pieces == [
        ("<|im_start|>system\n", False),
        ("sys", True),
        ("<|im_end|>\n<|im_start|>user\n", False),
        ("code <|im_end|> here", True),
        ("<|im_end|>\n<|im_start|>assistant\n", False),
    ]
    calls: list[tuple[str, bool]] = []
    chat.tokens("sys", "u", lambda text, special: calls.append((text, special)) or [1])
    assert [special for _, special in calls] == [True, False, True, False, True]


def test_chat_template_without_system_turn_and_fallback() -> None:
    jinja = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}"
        "[INST] {{ messages[0]['content'] }} [/INST]"
    )
    assert ChatTemplate(jinja, None).render("S", "U") == [
        ("[INST] ", False),
        ("S", True),
        ("\n\n", False),
        ("U", True),
        (" [/INST]", False),
    ]
    qwen = load_templates()["qwen2.5-coder"].chat
    rendered = ChatTemplate(None, qwen).render("S", "U")
    assert "".join(t for t, _ in rendered) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    with pytest.raises(ValueError, match="no chat template"):
        ChatTemplate(None, None).render("S", "U")


def test_blank_lines_around_the_region_are_kept() -> None:
    target = Target(REWRITE, "file:///w/a.py", 1, 2, 9, instruction="hints")
    answer = "```python\n@cache\ndef circle_area(radius: float) -> float:\n    return radius\n```"
    proposal = actions.propose(target, answer, PY, "python", "python")
    (change,) = proposal.changes
    after = actions.apply_edits(PY, change.edits)
    assert after.startswith("import math\n\n\n@cache\ndef circle_area(radius: float) -> float:")
    assert "    return radius\n\n\nclass Shape:" in after


def test_a_docstring_that_repeats_the_code_is_refused() -> None:
    target = Target(DOCSTRING, "file:///w/a.py", 1, 16, 18, "scale", line=16)
    answer = "def scale(values, factor):\n    return [v * factor for v in valuez]"
    proposal = actions.propose(target, answer, PY, "python", "python")
    assert proposal.problem == "the answer repeats the code instead of documenting it"
