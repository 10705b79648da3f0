"""Pure: recent completions, answered again without the model.

A completion depends only on what its prompt shows (greedy decoding is deterministic),
so the text a :class:`~lsp_server.context.CompletionPlan` gathers around the cursor is a
key that cannot go stale: an edit anywhere the prompt sees makes another key. Two kinds
of hits:

- ``exact``: the same text around the cursor again (a character typed and deleted, an
  undo, the cursor back where it was, a prefetched completion after an acceptance);
- ``typed``: the user typed the start of a suggestion on screen; the rest of it is the
  answer (the text around the cursor is otherwise the same).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from lsp_server.context import CompletionPlan


def plan_key(plan: CompletionPlan, extra: Hashable = None) -> Hashable:
    """What a completion depends on besides the text before the cursor on its line.

    ``extra``: anything else it depends on (the settings, the model).
    """
    return (
        extra,
        plan.language_id,
        plan.path,
        plan.repo,
        plan.line_after,
        plan.lines_before,
        plan.lines_after,
        plan.headers,
        plan.pieces,
        plan.eol,
    )


@dataclass(frozen=True)
class Recalled:
    """A completion answered from memory."""

    text: str  # "" when the model had nothing to suggest there
    kind: str  # exact | typed


class CompletionMemory:
    """The last completions per document, least recently used dropped first."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        # (uri, key) -> {line_before: text}, most recent last
        self._entries: OrderedDict[tuple[str, Hashable], OrderedDict[str, str]] = OrderedDict()
        self._count = 0

    def put(self, uri: str, key: Hashable, line_before: str, text: str) -> None:
        """Remember the completion made after ``line_before`` (``""``: none was made)."""
        group = self._entries.setdefault((uri, key), OrderedDict())
        self._entries.move_to_end((uri, key))
        if line_before not in group:
            self._count += 1
        group[line_before] = text
        group.move_to_end(line_before)
        while self._count > self._size:
            oldest_key, oldest = next(iter(self._entries.items()))
            oldest.popitem(last=False)
            self._count -= 1
            if not oldest:
                del self._entries[oldest_key]

    def get(self, uri: str, key: Hashable, line_before: str) -> Recalled | None:
        """The completion for this text around the cursor, if one is known."""
        group = self._entries.get((uri, key))
        if group is None:
            return None
        text = group.get(line_before)
        if text is not None:
            return Recalled(text, "exact")
        for before, shown in reversed(group.items()):
            if not shown or not line_before.startswith(before):
                continue
            typed = line_before[len(before) :]
            rest = shown[len(typed) :]
            if shown.startswith(typed) and rest.strip():
                return Recalled(rest, "typed")
        return None

    def forget(self, uri: str) -> None:
        """Drop a document's completions (it was closed)."""
        for key in [k for k in self._entries if k[0] == uri]:
            self._count -= len(self._entries.pop(key))

    def clear(self) -> None:
        """Drop everything (another model was loaded)."""
        self._entries.clear()
        self._count = 0

    def __len__(self) -> int:
        return self._count
