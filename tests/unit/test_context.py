"""Completion mode and prompt windows (pure)."""

from __future__ import annotations

import pytest

from lsp_server.context import (
    Mode,
    TokenCounter,
    choose_mode,
    definition_end,
    fit_windows,
    plan_completion,
)
from lsp_server.documents import split_lines
from tests.helpers import plan


@pytest.mark.parametrize(
    "before,after,next_indent,mode",
    [
        ("    return ", "", None, Mode.SINGLE_LINE),
        ("print(", ")", None, Mode.SINGLE_LINE),
        ("x = foo(a, ", "b)", None, Mode.SINGLE_LINE),
        # an empty line that ends its block, or the end of the file: write a block
        ("    ", "", None, Mode.MULTI_LINE),
        ("    ", "", 0, Mode.MULTI_LINE),
        ("", "", None, Mode.MULTI_LINE),
        # an empty line with code below at the same depth: one line
        ("    ", "", 4, Mode.SINGLE_LINE),
        ("", "", 0, Mode.SINGLE_LINE),
        # a block opener with an empty body, or with a body already there
        ("def f(x):", "", 0, Mode.MULTI_LINE),
        ("function f() {", "", None, Mode.MULTI_LINE),
        ("for x in xs do", "", None, Mode.MULTI_LINE),
        ("def f(x):", "", 4, Mode.SINGLE_LINE),
        ("def f(x):", "  # comment", None, Mode.SINGLE_LINE),
        ("func main() {", "", 0, Mode.MULTI_LINE),  # Go
        ("items.each do |item|", "", 0, Mode.MULTI_LINE),  # Ruby
        ("items.map { |a, b|", "", 0, Mode.MULTI_LINE),  # Ruby
        ("if x > 0 then", "", 0, Mode.MULTI_LINE),  # Lua
        ("area shape = go shape", "", None, Mode.SINGLE_LINE),  # Haskell, no opener
        ("  where", "", 0, Mode.MULTI_LINE),  # Haskell
        ("const f = (x: number) =>", "", 0, Mode.MULTI_LINE),  # TypeScript
        ("fn main() {", "}", None, Mode.SINGLE_LINE),  # Rust, the editor closed the brace
    ],
)
def test_choose_mode(before: str, after: str, next_indent: int | None, mode: Mode) -> None:
    assert choose_mode(before, after, "auto", next_indent) is mode


def test_plan_looks_at_the_next_code_line() -> None:
    assert plan("def f():\n    \n    return 1\n", 1, 4).mode is Mode.SINGLE_LINE
    assert plan("def f():\n    \n\nx = 1\n", 1, 4).mode is Mode.MULTI_LINE


def test_multiline_never() -> None:
    assert choose_mode("    ", "", "never") is Mode.SINGLE_LINE


def words(text: str) -> int:
    """A stand-in tokenizer for budgets: one token per whitespace-separated word."""
    return len(text.split())


def test_windows_cut_at_line_boundaries() -> None:
    text = "a a\nb b\nc c\nd d X e\nf f\ng g\n"
    p = plan(text, 3, 4)
    assert p.line_before == "d d " and p.line_after == "X e"
    w = fit_windows(p, words, prefix_budget=4, suffix_budget=4)
    assert w.prefix == "c c\nd d "  # whole lines only, nearest first
    assert w.suffix == "X e\nf f\n"


def test_zero_suffix_budget() -> None:
    p = plan("a\nb\n", 0, 1)
    assert fit_windows(p, words, 10, 0).suffix == ""


def test_overlong_current_line_is_cut_by_characters() -> None:
    line = " ".join(f"w{i}" for i in range(50))
    p = plan(line, 0, len(line))
    w = fit_windows(p, words, prefix_budget=5, suffix_budget=5)
    assert words(w.prefix) <= 5
    assert line.endswith(w.prefix) and w.prefix.strip()


def test_crlf_documents_give_lf_prompts() -> None:
    p = plan("a\r\nb\r\nc", 1, 1)
    assert p.eol == "\r\n"
    w = fit_windows(p, words, 10, 10)
    assert "\r" not in w.prefix + w.suffix


def test_healed_whitespace() -> None:
    assert plan("x = ", 0, 4).healed == " "
    assert plan("    ", 0, 4).healed == ""  # indentation is kept in the prompt
    assert plan("x =", 0, 3).healed == ""


def test_token_counter_caches() -> None:
    calls: list[str] = []

    def tokenize(text: str) -> list[int]:
        calls.append(text)
        return [0] * len(text)

    count = TokenCounter(tokenize, size=2)
    assert count("abc") == 3 and count("abc") == 3
    assert calls == ["abc"]
    count("d")
    count("e")  # evicts "abc"
    count("abc")
    assert calls == ["abc", "d", "e", "abc"]


def test_enclosing_headers_by_indentation() -> None:
    from lsp_server.context import enclosing_headers

    source = (
        "import os\n"
        "\n"
        "class Store:\n"
        "    items = []\n"
        "\n"
        "    def add(self, item):\n"
        "        if item:\n"
        "            self.items.append(item)\n"
        "            \n"
    )
    lines = split_lines(source)
    assert enclosing_headers(lines, 8) == [
        (2, "class Store:"),
        (5, "    def add(self, item):"),
        (6, "        if item:"),
    ]
    js = split_lines("export function f(a) {\n  for (const x of a) {\n    use(x);\n  }\n}\n")
    assert enclosing_headers(js, 2) == [
        (0, "export function f(a) {"),
        (1, "  for (const x of a) {"),
    ]


def test_window_keeps_the_headers_it_would_drop() -> None:
    body = "".join(f"        step{i} = {i}\n" for i in range(30))
    source = "class Store:\n    def add(self, item):\n" + body + "        \n"
    p = plan(source, 32, 8)
    assert p.headers == ((0, "class Store:"), (1, "    def add(self, item):"))
    w = fit_windows(p, words, prefix_budget=40, suffix_budget=10)
    assert w.prefix.startswith("class Store:\n    def add(self, item):\n        step")
    assert "step0 =" not in w.prefix  # the window itself starts lower
    # with room for everything, the headers appear once, where they are
    w = fit_windows(p, words, prefix_budget=1000, suffix_budget=10)
    assert w.prefix.count("class Store:") == 1 and w.prefix.startswith("class Store:")


def test_the_prefix_window_starts_at_an_anchor_and_stays_there() -> None:
    text = "".join(f"w{i}\n" for i in range(200))
    starts = []
    for line in range(100, 140):
        p = plan(text, line, 0)
        w = fit_windows(p, words, prefix_budget=64, suffix_budget=4, anchor=16)
        first = int(w.prefix.split("\n")[0][1:])
        assert first % 16 == 0 and line - first <= 64
        starts.append(first)
    assert len(set(starts)) <= 4  # it moved 2 or 3 times over 40 lines, not 40 times
    slid = [
        fit_windows(plan(text, line, 0), words, 64, 4).prefix.split("\n")[0]
        for line in range(100, 110)
    ]
    assert len(set(slid)) == 10


def test_typing_on_the_cursor_line_does_not_move_the_window() -> None:
    text = "".join(f"w{i} v\n" for i in range(100)) + "x\n"
    firsts = set()
    for n in range(1, 7):  # within the allowance for the cursor line (60 // 8 words)
        p = plan(text.replace("\nx\n", "\n" + "y " * n + "\n"), 100, 2 * n)
        window = fit_windows(p, words, prefix_budget=60, suffix_budget=4, anchor=1)
        assert window.prefix.endswith("y " * n)
        firsts.add(window.prefix.split()[0])
    assert len(firsts) == 1


def test_new_lines_below_the_middle_start_do_not_move_the_window() -> None:
    text = "".join(f"w{i} v\n" for i in range(200))
    firsts = set()
    for line in range(120, 136):  # 16 lines of 2 words fill the room of 32
        p = plan(text, line, len(f"w{line} v"))
        w = fit_windows(p, words, 128, 4, anchor=1, middle_from=120, middle_tokens=32)
        assert w.middle_line == 120 and w.prefix[w.middle_at :].startswith("w120 v")
        assert w.prefix.endswith(f"w{line} v") and words(w.prefix) <= 128
        firsts.add(w.prefix.split()[0])
    assert len(firsts) == 1  # the same lines above the middle region: the cache keeps them
    # past its room, the region starts again at the cursor line
    p = plan(text, 136, 6)
    w = fit_windows(p, words, 128, 4, anchor=1, middle_from=120, middle_tokens=32)
    assert w.middle_line == 136 and w.prefix[w.middle_at :] == "w136 v"
    assert w.prefix.split()[0] not in firsts


@pytest.mark.parametrize("middle_from", [None, 130, 40])
def test_the_middle_region_starts_at_the_cursor_line_unless_it_fits(
    middle_from: int | None,
) -> None:
    # none asked for, one below the cursor, one too far above: the cursor line
    text = "".join(f"w{i} v\n" for i in range(200))
    p = plan(text, 120, 3)
    w = fit_windows(p, words, 128, 4, middle_from=middle_from, middle_tokens=32)
    assert w.middle_line == 120 and w.prefix[w.middle_at :] == "w12"


def test_without_a_middle_region_the_windows_are_unchanged() -> None:
    text = "".join(f"w{i} v\n" for i in range(200))
    p = plan(text, 120, 3)
    plain = fit_windows(p, words, 128, 4, anchor=16)
    assert fit_windows(p, words, 128, 4, anchor=16, middle_from=118) == plain
    assert plain.middle_line == 120 and plain.prefix[plain.middle_at :] == "w12"


DEFINITIONS = """import os


class Box:
    def size(self):
        total = 0
        for x in self.items:
            total += x

        return total

    def name(self):
        return "box"


def main():
    pass
"""


@pytest.mark.parametrize(
    ("line", "index", "end"),
    [
        (6, 12, 11),  # in a loop body: the method's end (blank lines kept), not the loop's
        (7, 12, 11),
        (4, 8, 15),  # a method's header line is in the class
        (12, 8, 15),  # the last method ends where the class does
        (16, 4, 18),  # the last function: the file's end
        (0, 3, None),  # top-level code
        (8, 0, None),  # an empty line (no indentation yet) counts as top level
    ],
)
def test_definition_end(line: int, index: int, end: int | None) -> None:
    lines = split_lines(DEFINITIONS)
    assert definition_end(lines, line, index) == end


def test_definition_end_on_a_new_indented_line() -> None:
    lines = split_lines(DEFINITIONS.replace("def main():\n", "def main():\n    \n"))
    assert definition_end(lines, 16, 4) == 19


def test_suffix_scope_definition_stops_at_the_function() -> None:
    lines = split_lines(DEFINITIONS)
    kw = dict(prefix_tokens=100, suffix_tokens=100, multiline="auto", language_id="python")
    whole = plan_completion(lines, 5, 16, **kw)  # type: ignore[arg-type]
    scoped = plan_completion(lines, 5, 16, suffix_scope="definition", **kw)  # type: ignore[arg-type]
    assert "".join(whole.lines_after).endswith("def main():\n    pass\n")
    assert "".join(scoped.lines_after) == "".join(lines[6:11])
