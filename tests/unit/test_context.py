"""Completion mode and prompt windows (pure)."""

from __future__ import annotations

import pytest

from lsp_server.context import (
    CompletionPlan,
    Mode,
    TokenCounter,
    choose_mode,
    fit_windows,
    plan_completion,
)
from lsp_server.documents import split_lines


@pytest.mark.parametrize(
    "before,after,mode",
    [
        ("    return ", "", Mode.SINGLE_LINE),
        ("print(", ")", Mode.SINGLE_LINE),
        ("x = foo(a, ", "b)", Mode.SINGLE_LINE),
        ("    ", "", Mode.MULTI_LINE),
        ("", "", Mode.MULTI_LINE),
        ("def f(x):", "", Mode.MULTI_LINE),
        ("function f() {", "", Mode.MULTI_LINE),
        ("for x in xs do", "", Mode.MULTI_LINE),
        ("def f(x):", "  # comment", Mode.SINGLE_LINE),
    ],
)
def test_choose_mode(before: str, after: str, mode: Mode) -> None:
    assert choose_mode(before, after, "auto") is mode


def test_multiline_never() -> None:
    assert choose_mode("    ", "", "never") is Mode.SINGLE_LINE


def words(text: str) -> int:
    """A stand-in tokenizer for budgets: one token per whitespace-separated word."""
    return len(text.split())


def plan(text: str, line: int, index: int) -> CompletionPlan:
    return plan_completion(
        split_lines(text),
        line,
        index,
        prefix_tokens=100,
        suffix_tokens=100,
        multiline="auto",
        language_id="python",
    )


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
