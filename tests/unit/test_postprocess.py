"""Stop rules and final trimming (pure)."""

from __future__ import annotations

from lsp_server.context import Mode
from lsp_server.postprocess import finish, stop_rule
from tests.helpers import plan


def run(stop, text: str) -> str:  # type: ignore[no-untyped-def]
    """Feed text to a stop rule one character at a time, as tokens would arrive."""
    for i in range(1, len(text) + 1):
        cut = stop(text[:i])
        if cut is not None:
            return text[:i][:cut]
    return text


def test_single_line_stops_at_the_newline() -> None:
    p = plan("x = \n", 0, 4)
    assert p.mode is Mode.SINGLE_LINE
    assert run(stop_rule(p, 8), "compute(1)\nmore()") == "compute(1)"


def test_multi_line_stops_when_the_block_ends() -> None:
    p = plan("def f(n):\n    \n\nprint(f(2))\n", 1, 4)
    assert p.mode is Mode.MULTI_LINE
    out = run(stop_rule(p, 8), "if n < 2:\n        return n\n    return f(n - 1)\n\ndef g():\n")
    assert out == "if n < 2:\n        return n\n    return f(n - 1)\n"
    assert finish(out, p) == "if n < 2:\n        return n\n    return f(n - 1)"


def test_multi_line_after_a_block_opener() -> None:
    p = plan("function f() {\n}\n", 0, 14, "javascript")
    assert p.mode is Mode.MULTI_LINE
    out = run(stop_rule(p, 8), "\n  return 1;\n}\n\nfunction g() {}")
    assert finish(out, p) == "\n  return 1;"


def test_multi_line_limit() -> None:
    p = plan("items = [\n    \n]\n", 1, 4)
    out = run(stop_rule(p, 3), "1,\n    2,\n    3,\n    4,\n    5,\n")
    assert out == "1,\n    2,\n    3,"


def test_a_bracket_left_open_ends_with_the_line_that_closes_it() -> None:
    # Python: a call at the end of the line; arguments on that line or several
    p = plan("def f(cmd):\n    command = create(\n\n    return command\n", 1, 21)
    assert p.mode is Mode.MULTI_LINE
    out = run(stop_rule(p, 8), 'cmd, isolated=(")" in cmd))\n\n    return command.main()\n')
    assert finish(out, p) == 'cmd, isolated=(")" in cmd))'
    out = run(stop_rule(p, 8), "\n        cmd,\n        name,\n    )\n    command.run()\n")
    assert finish(out, p) == "\n        cmd,\n        name,\n    )"
    # a call that opens a block goes on with the block, to its end
    p = plan("def f(xs):\n    for i in range(\n", 1, 19)
    out = run(stop_rule(p, 8), "len(xs)):\n        a = g(i)\n        print(a)\n    return 2\n")
    assert finish(out, p) == "len(xs)):\n        a = g(i)\n        print(a)"
    # an operator at the end continues the expression; a comma ends it (an argument)
    p = plan("def f(x):\n    y = g(\n\n    return y\n", 1, 10)
    out = run(stop_rule(p, 8), "x) +\n        h(x)\n    return y\n")
    assert finish(out, p) == "x) +\n        h(x)"
    p = plan("show(\n    size(\n    name,\n)\n", 1, 9)
    assert run(stop_rule(p, 8), "total),\n    name,\n") == "total),"
    # JavaScript: a miscounted bracket (a regular expression) never lets the closing
    # brace of the enclosing function in
    p = plan("function f(s) {\n  const parts = s.split(\n}\n", 1, 24, "javascript")
    out = run(stop_rule(p, 8), "/\\(/);\n  return parts;\n}\n\nfunction g() {")
    assert finish(out, p) == "/\\(/);\n  return parts;"
    # JavaScript: a callback's body, then the call's close
    p = plan("items.forEach(\n", 0, 14, "javascript")
    out = run(stop_rule(p, 8), "(item) => {\n  show(item);\n});\nconsole.log(items);\n")
    assert finish(out, p) == "(item) => {\n  show(item);\n});"
    # Go: a composite literal
    p = plan("func f() {\n\tcfg := Config{\n}\n", 1, 15, "go")
    out = run(stop_rule(p, 8), '\n\t\tName: "a",\n\t}\n\treturn cfg\n')
    assert finish(out, p) == '\n\t\tName: "a",\n\t}'


def test_multi_line_stops_at_a_markdown_fence() -> None:
    p = plan("def f():\n    \n", 1, 4)
    out = run(stop_rule(p, 8), "return 1\n```\n\nThis code returns one.")
    assert finish(out, p) == "return 1"


def test_top_level_block_ends_at_a_blank_line() -> None:
    p = plan("import os\n\n", 1, 0)
    out = run(stop_rule(p, 8), "x = 1\ny = 2\n\nz = 3\n")
    assert finish(out, p) == "x = 1\ny = 2"


def test_repeating_the_suffix_stops() -> None:
    p = plan("if ready:\nstart()\n", 0, 9)
    assert p.mode is Mode.MULTI_LINE
    out = run(stop_rule(p, 8), "\n    prepare()\n    start()\n")
    assert finish(out, p) == "\n    prepare()"


def test_completion_that_only_repeats_what_follows_is_dropped() -> None:
    p = plan("print()\n", 0, 6)
    assert finish(")", p) is None
    p = plan("def f():\n    \n\n    return 1\n", 1, 4)
    assert finish("return 1", p) is None


def test_suffix_overlap_is_trimmed() -> None:
    p = plan("print()\n", 0, 6)
    assert finish('"hello")', p) == '"hello"'


def test_whitespace_only_is_dropped() -> None:
    p = plan("x = \n", 0, 4)
    assert finish("   ", p) is None
    assert finish("", p) is None


def test_healing_removes_the_space_the_prompt_left_out() -> None:
    p = plan("name = \n", 0, 7)
    assert finish(' "fimls"', p) == '"fimls"'
    assert finish('"fimls"', p) == '"fimls"'


def test_line_restart_is_removed() -> None:
    p = plan("for i in range():\n", 0, 15)
    assert finish("i in range(len(xs)):", p) == "len(xs)"
    p = plan("total = a\n", 0, 9)
    assert finish(" + b", p) == " + b"  # short overlaps are not restarts


def test_crlf_documents_get_crlf_completions() -> None:
    p = plan("def f():\r\n    \r\n", 1, 4)
    assert finish("x = 1\n    return x", p) == "x = 1\r\n    return x"


def test_extra_indentation_after_the_cursor_is_removed() -> None:
    p = plan("def f(xs):\n    for x in xs:\n        print(x)\n    \n", 3, 4)
    assert finish("    return xs", p) == "return xs"
    # continuation lines keep their indentation relative to the first line
    p = plan("def f(xs):\n    total = 0\n    \n", 2, 4)
    assert p.mode is Mode.MULTI_LINE
    out = run(stop_rule(p, 8), "    for x in xs:\n            total += x\n        return total\n")
    assert finish(out, p) == "for x in xs:\n        total += x\n    return total"


def test_indentation_kept_where_the_editor_did_not_indent_after_an_opener() -> None:
    # the editor kept the opener's indentation: the model's extra level is right
    p = plan("def f(x):\n    if x:\n    \n", 2, 4)
    assert finish("    return 1", p) == "    return 1"
    # a cursor at column 0 leaves indentation to the model
    p = plan("def f(x):\n\n", 1, 0)
    assert finish("    return 1", p) == "    return 1"


def test_tab_indentation() -> None:
    p = plan("func f() {\n\tx := 1\n\t\n}\n", 2, 1, "go")
    assert finish("\treturn x", p) == "return x"


def test_dead_code_after_a_jump_is_flagged() -> None:
    from lsp_server.postprocess import makes_dead_code

    p = plan('def f(s):\n    """Doc."""\n    \n    for c in s:\n        pass\n', 2, 4)
    assert makes_dead_code("return s", p)  # the loop below would never run
    assert not makes_dead_code("total = 0", p)
    p = plan("def f(s):\n    for c in s:\n        \n    return s\n", 2, 8)
    assert not makes_dead_code("break", p)  # the next line is outside the loop
    p = plan("function f(x) {\n  if (x) {\n    \n  }\n}\n", 2, 4, "javascript")
    assert not makes_dead_code("return 1;", p)
    p = plan("switch (x) {\n  case 1:\n    \n  case 2:\n    y();\n}\n", 2, 4, "c")
    assert not makes_dead_code("break;", p)
    p = plan("function f(err, cb) {\n  if (err) \n  cb(null);\n}\n", 1, 11, "javascript")
    assert not makes_dead_code("return cb(err);", p)  # the jump is the if's body


def test_code_is_expected_after_openers_operators_and_keywords() -> None:
    from lsp_server.postprocess import expects_code

    cases = [
        ("def f(a, b):\n    return \n", 1, 11, "python", True),
        ("def f(a, b):\n    return\n", 1, 10, "python", False),  # no space: may end here
        ("def f(a, b):\n    \n", 1, 4, "python", True),  # a new line in a block
        ("x = foo(\n", 0, 8, "python", True),
        ("x = foo()\n", 0, 9, "python", False),
        ("const total = \n", 0, 14, "javascript", True),
        ("const total = items.\n", 0, 20, "javascript", True),
        ("fmt.Println()\n", 0, 12, "go", True),  # arguments, before the editor's ")"
        ("let v = vec![1, \n", 0, 16, "rust", True),
        ("local t = {\n", 0, 11, "lua", True),
        ("if x then\n  y()\nend\n", 1, 5, "lua", False),
        ("foo(a, b)\n", 0, 4, "ruby", False),  # code follows the cursor on the line
    ]
    for text, line, col, language, expected in cases:
        assert expects_code(plan(text, line, col, language)) is expected, (text, col)


def test_unprocessed_text_keeps_what_the_model_wrote() -> None:
    from lsp_server.completion import unprocessed

    p = plan("def f(x):\n    return \n", 1, 11)
    assert unprocessed(" x + 1  \nmore", p) == " x + 1"  # only the line and its end trimmed
    assert unprocessed("   \n", p) is None
    block = plan("def f(x):\n    \n", 1, 4)
    assert block.mode is Mode.MULTI_LINE
    assert unprocessed("y = x  \n    return y\n\n", block) == "y = x\n    return y"


def test_comment_only_completions_in_several_languages() -> None:
    from lsp_server.postprocess import comment_only

    assert comment_only("# Your code here", "python")
    assert comment_only("// TODO: implement\n// more", "javascript")
    assert comment_only("-- the sum", "lua")
    assert comment_only("/* sum the items */", "c")
    assert not comment_only("return x  # done", "python")
    assert not comment_only("// explain\nreturn x;", "java")
    assert not comment_only("", "python")
    assert not comment_only("-- not a comment in C", "c")
