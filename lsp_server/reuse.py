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
    #: (old start, old end, new start): cached tokens [old start, old end) move to start
    #: at new start; the prompt's tokens [keep, new start) are evaluated before them.
    move: tuple[int, int, int] | None = None

    @property
    def reused(self) -> int:
        """Cached tokens the prompt keeps."""
        return self.keep + (self.move[1] - self.move[0] if self.move else 0)

    @property
    def gap(self) -> tuple[int, int]:
        """[start, end) of the prompt tokens evaluated before the moved block."""
        return (self.keep, self.move[2]) if self.move else (self.keep, self.keep)

    @property
    def ready(self) -> int:
        """Prompt tokens in the cache once the plan is carried out: the rest is evaluated."""
        if self.move is None:
            return self.keep
        return self.move[2] + self.move[1] - self.move[0]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


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

    ``cached_block`` and ``block``: [start, end) of the movable block in each (see the
    module). The last prompt token is never kept: its logits are needed, so it is always
    evaluated. A block is moved only when ``shift`` allows it, when it is at least
    :data:`MIN_BLOCK` tokens, when the tokens to evaluate before it are at most
    ``max_gap`` (they are evaluated in one batch, before the move), and when the cache
    (``capacity`` cells) holds the old cells and the new ones at once.
    """
    keep = common_prefix(cached, prompt)
    if keep >= len(prompt):
        keep = len(prompt) - 1
    if not (shift and block and cached_block):
        return ReusePlan(keep)
    start, end = block
    old_start, old_end = cached_block
    end = min(end, len(prompt) - 1)  # the last token is evaluated for its logits
    length = end - start
    if (
        keep >= start
        or keep > old_start
        or length < MIN_BLOCK
        or old_start + length > len(cached)
        or start - keep > max_gap
        or len(cached) + start - keep > capacity
        or list(cached[old_start : old_start + length]) != list(prompt[start:end])
    ):
        return ReusePlan(keep)
    return ReusePlan(keep, (old_start, old_start + length, start))


def apply_plan(cached: Sequence[int], plan: ReusePlan, prompt: Sequence[int]) -> list[int]:
    """The tokens the cache holds after the plan and before the rest is evaluated.

    What the engine does to the KV cells, done to the token list: the kept prefix, the
    gap evaluated from the prompt, the moved block.
    """
    out = list(cached[: plan.keep])
    if plan.move is not None:
        old_start, old_end, start = plan.move
        out += list(prompt[plan.keep : start])
        out += list(cached[old_start:old_end])
    return out
