"""Completions answered from memory: the same text again, or typed as suggested."""

from __future__ import annotations

from lsp_server.documents import Cursor, TextDocument
from lsp_server.recall import CompletionMemory, plan_key
from tests.helpers import plan

TEXT = "def f(x):\n    return x\n\nvalue = \nprint(value)\n"


def test_the_same_text_around_the_cursor_is_an_exact_hit() -> None:
    memory = CompletionMemory()
    p = plan(TEXT, 3, 8)
    memory.put("a", plan_key(p), p.line_before, "f(1)")
    again = plan(TEXT, 3, 8)
    hit = memory.get("a", plan_key(again), again.line_before)
    assert hit is not None and (hit.text, hit.kind) == ("f(1)", "exact")
    assert memory.get("b", plan_key(again), again.line_before) is None  # another document


def test_typing_the_start_of_the_suggestion_gives_the_rest() -> None:
    memory = CompletionMemory()
    p = plan(TEXT, 3, 8)
    memory.put("a", plan_key(p), p.line_before, "f(1) + 2")
    typed = TEXT.replace("value = \n", "value = f(\n")
    q = plan(typed, 3, 10)
    hit = memory.get("a", plan_key(q), q.line_before)
    assert hit is not None and (hit.text, hit.kind) == ("1) + 2", "typed")
    other = TEXT.replace("value = \n", "value = g(\n")  # not what was suggested
    r = plan(other, 3, 10)
    assert memory.get("a", plan_key(r), r.line_before) is None
    done = TEXT.replace("value = \n", "value = f(1) + 2\n")  # all of it typed: ask the model
    d = plan(done, 3, 16)
    assert memory.get("a", plan_key(d), d.line_before) is None


def test_an_edit_elsewhere_in_the_window_is_a_miss() -> None:
    memory = CompletionMemory()
    p = plan(TEXT, 3, 8)
    memory.put("a", plan_key(p), p.line_before, "f(1)")
    above = plan(TEXT.replace("return x", "return 2 * x"), 3, 8)
    below = plan(TEXT.replace("print(value)", "print(value, 2)"), 3, 8)
    for q in (above, below):
        assert memory.get("a", plan_key(q), q.line_before) is None
    assert memory.get("a", plan_key(p, extra="other settings"), p.line_before) is None


def test_empty_answers_are_remembered_but_never_continued() -> None:
    memory = CompletionMemory()
    p = plan(TEXT, 3, 8)
    memory.put("a", plan_key(p), p.line_before, "")
    hit = memory.get("a", plan_key(p), p.line_before)
    assert hit is not None and hit.text == ""
    q = plan(TEXT.replace("value = \n", "value = f\n"), 3, 9)
    assert memory.get("a", plan_key(q), q.line_before) is None


def test_least_recently_used_entries_go_first_and_documents_are_forgotten() -> None:
    memory = CompletionMemory(size=3)
    p = plan(TEXT, 3, 8)
    for i in range(5):
        memory.put("a", plan_key(p), f"x{i}", str(i))
    assert len(memory) == 3
    assert memory.get("a", plan_key(p), "x0") is None
    assert memory.get("a", plan_key(p), "x4") is not None
    memory.put("b", plan_key(p), "y", "1")
    memory.forget("a")
    assert len(memory) == 1 and memory.get("b", plan_key(p), "y") is not None
    memory.clear()
    assert len(memory) == 0


def test_a_document_with_a_suggestion_inserted() -> None:
    doc = TextDocument("file:///a.py", TEXT, 1, "python")
    single, end = doc.with_insertion(Cursor(3, 8), "f(1)")
    assert single.line_text(3) == "value = f(1)" and end == Cursor(3, 12)
    multi, end = doc.with_insertion(Cursor(3, 8), "f(\n    1)")
    assert multi.lines[3:5] == ["value = f(\n", "    1)\n"] and end == Cursor(4, 6)
    assert doc.line_text(3) == "value = "  # the original is untouched
    same = TextDocument("file:///a.py", TEXT.replace("value = ", "value = f(1)"), 2, "python")
    assert single.lines == same.lines
