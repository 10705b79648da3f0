"""Pure: which KV-cache cells a new prompt can keep from the previous one.

The cache holds the tokens of the previous prompt (and what was generated after it) at
positions 0, 1, 2... A new prompt keeps the longest common prefix in place. Past that,
a prompt in prefix-suffix-middle order has a *block* (the FIM suffix and its markers)
that an edit of the prefix does not change: when the previous prompt had the same block,
its cells are moved to the block's new position (``llama_memory_seq_add``) instead of
being evaluated again, and only the tokens between the common prefix and the block (the
edit), and those after the block (the text typed on the cursor line), are evaluated.

The moved cells did not attend to the edited tokens: an approximation, measured by
``fimls eval --warm`` and switched by ``fimls.cache.shiftedReuse``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: A block shorter than this is evaluated again rather than moved.
MIN_BLOCK = 16


@dataclass(frozen=True)
class ReusePlan:
    """How to turn the cached tokens into the new prompt's first tokens."""

    keep: int  # cached tokens [0, keep) stay where they are
    #: (old start, old end, new start), by new start: cached tokens [old start, old end)
    #: move to start at new start; the prompt's tokens between them (the gaps) are
    #: evaluated in order. Every move but the last goes left (new start <= old start), so
    #: that moved cells never land on cells still waiting to move.
    moves: tuple[tuple[int, int, int], ...] = ()

    @property
    def reused(self) -> int:
        """Cached tokens the prompt keeps."""
        return self.keep + sum(end - start for start, end, _ in self.moves)

    @property
    def gaps(self) -> list[tuple[int, int]]:
        """[start, end) of the prompt tokens evaluated before each moved block."""
        out = []
        pos = self.keep
        for start, end, new in self.moves:
            out.append((pos, new))
            pos = new + end - start
        return out

    @property
    def ready(self) -> int:
        """Prompt tokens in the cache once the plan is carried out: the rest is evaluated."""
        if not self.moves:
            return self.keep
        start, end, new = self.moves[-1]
        return new + end - start


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


#: How far into the prompt past the common prefix the search for the continuation of
#: the text starts (a window start that moved retokenizes its first line or so).
SEARCH_SKIP = 8


def plan_reuse(
    cached: Sequence[int],
    cached_block: tuple[int, int] | None,
    prompt: Sequence[int],
    block: tuple[int, int] | None,
    *,
    shift: bool,
    max_gap: int,
    capacity: int,
) -> ReusePlan:
    """Decide what of ``cached`` the ``prompt`` keeps.

    The common prefix stays. With ``shift``, two kinds of moved cells follow it:

    - the *continuation*: when the prompt's next tokens are found further on in the cache
      (the prefix window's start moved down and lines dropped out of it), the cells from
      there move left, as far as the two agree;
    - the *block* (``cached_block`` and ``block``: [start, end) of the FIM suffix and its
      markers in each): when it is unchanged, its cells move to its new position.

    A move needs at least :data:`MIN_BLOCK` tokens; the tokens evaluated before and
    between moves are at most ``max_gap`` (they are evaluated before the moves finish),
    and the cache (``capacity`` cells) must hold old and new cells at once. The last
    prompt token is never kept: its logits are needed.
    """
    keep = common_prefix(cached, prompt)
    if keep >= len(prompt):
        keep = len(prompt) - 1
    if not shift:
        return ReusePlan(keep)
    last = len(prompt) - 1  # tokens [0, last) may come from the cache
    moves: list[tuple[int, int, int]] = []
    pos, old = keep, keep  # next prompt token to place; cached tokens before it are used
    block_start = block[0] if block else last
    continuation = _continuation(cached, prompt, keep, min(block_start, last))
    if continuation is not None:
        found, new, length = continuation
        moves.append((found, found + length, new))
        pos, old = new + length, found + length
    if block and cached_block:
        start, end = block
        old_start, _ = cached_block
        end = min(end, last)
        length = end - start
        if (
            old <= old_start
            and pos <= start
            and length >= MIN_BLOCK
            and old_start + length <= len(cached)
            and list(cached[old_start : old_start + length]) == list(prompt[start:end])
        ):
            moves.append((old_start, old_start + length, start))
    plan = ReusePlan(keep, tuple(moves))
    gap = sum(b - a for a, b in plan.gaps)
    if not moves or gap > max_gap or len(cached) + gap > capacity:
        return ReusePlan(keep)
    return plan


def _continuation(
    cached: Sequence[int], prompt: Sequence[int], keep: int, limit: int
) -> tuple[int, int, int] | None:
    """Where the prompt's text past ``keep`` continues further on in the cache.

    Returns (cached start, prompt start, length), or None.
    """
    for skip in range(SEARCH_SKIP + 1):
        new = keep + skip
        probe = list(prompt[new : new + MIN_BLOCK])
        if new + MIN_BLOCK > limit:
            return None
        first = probe[0]
        for found in range(new + 1, len(cached) - MIN_BLOCK + 1):
            if cached[found] == first and list(cached[found : found + MIN_BLOCK]) == probe:
                length = min(common_prefix(cached[found:], prompt[new:limit]), limit - new)
                return found, new, length
    return None


def apply_plan(cached: Sequence[int], plan: ReusePlan, prompt: Sequence[int]) -> list[int]:
    """The tokens the cache holds after the plan and before the rest is evaluated.

    What the engine does to the KV cells, done to the token list: the kept prefix, then
    for each move the gap evaluated from the prompt and the moved cells.
    """
    out = list(cached[: plan.keep])
    for (gap_start, gap_end), (start, end, _new) in zip(plan.gaps, plan.moves, strict=True):
        out += list(prompt[gap_start:gap_end])
        out += list(cached[start:end])
    return out
