"""Helpers shared by the unit tests."""

from __future__ import annotations

from lsp_server.context import CompletionPlan, plan_completion
from lsp_server.documents import split_lines


def plan(text: str, line: int, index: int, language: str = "python") -> CompletionPlan:
    """The completion plan at (line, index) of ``text`` with generous budgets."""
    return plan_completion(
        split_lines(text),
        line,
        index,
        prefix_tokens=100,
        suffix_tokens=100,
        multiline="auto",
        language_id=language,
    )
