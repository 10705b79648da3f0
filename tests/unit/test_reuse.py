"""KV bookkeeping: what a new prompt keeps of the cached tokens, after any edits."""

from __future__ import annotations

import random

from lsp_server.reuse import MIN_BLOCK, ReusePlan, apply_plan, common_prefix, plan_reuse

PRE, SUF, MID = 1, 2, 3  # marker tokens; text tokens are >= 10


def render(prefix: list[int], suffix: list[int], middle: list[int]) -> tuple[list[int], tuple]:
    """A prefix-suffix-middle prompt with the cursor line after the middle marker."""
    head = [0, PRE, *prefix]
    tokens = [*head, SUF, *suffix, MID, *middle]
    return tokens, (len(head), len(head) + len(suffix) + 2)


def plan(cached, cached_block, prompt, block, shift=True) -> ReusePlan:
    return plan_reuse(cached, cached_block, prompt, block, shift=shift, max_gap=256, capacity=4096)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_typing_on_the_cursor_line_only_appends() -> None:
    suffix = list(range(100, 160))
    before, block = render([10, 11, 12], suffix, [20])
    after, block2 = render([10, 11, 12], suffix, [20, 21])
    p = plan(before + [99], block, after, block2)  # 99: a token generated last time
    assert not p.moves and p.keep == len(before)
    assert apply_plan(before + [99], p, after) == after[: p.keep]


def test_a_finished_line_moving_into_the_prefix_moves_the_suffix() -> None:
    suffix = list(range(100, 160))
    typed = [20, 21, 22]
    before, block = render([10, 11, 12], suffix, typed)
    after, block2 = render([10, 11, 12, *typed, 5], suffix, [30])  # 5: the line break
    p = plan(before, block, after, block2)
    assert p.keep == 5 and p.moves == ((5, 5 + 62, 9),)  # prefix kept, 4 new tokens, block moved
    assert p.gaps == [(5, 9)]
    cells = apply_plan(before, p, after)
    assert cells == after[: p.ready] and p.ready == len(after) - 1
    assert p.reused == 5 + 62


def test_no_move_when_switched_off_or_too_short_or_the_suffix_changed() -> None:
    suffix = list(range(100, 160))
    before, block = render([10], suffix, [20])
    after, block2 = render([10, 20, 5], suffix, [])
    assert not plan(before, block, after, block2, shift=False).moves
    short = list(range(100, 100 + MIN_BLOCK - 3))
    b2, k2 = render([10], short, [20])
    a2, k3 = render([10, 20, 5], short, [])
    assert not plan(b2, k2, a2, k3).moves
    changed, block3 = render([10, 20, 5], [*suffix[:-1], 7], [])
    assert not plan(before, block, changed, block3).moves


def test_no_move_when_the_gap_is_too_long_or_the_cache_too_small() -> None:
    suffix = list(range(100, 160))
    before, block = render([10], suffix, [20])
    after, block2 = render([10, *range(200, 260)], suffix, [])
    assert (
        plan_reuse(before, block, after, block2, shift=True, max_gap=8, capacity=4096).moves == ()
    )
    assert (
        plan_reuse(before, block, after, block2, shift=True, max_gap=256, capacity=90).moves == ()
    )


def test_a_window_start_that_moved_down_moves_the_rest_left() -> None:
    suffix = list(range(100, 160))
    prefix = list(range(200, 260))
    typed = [20, 21, 22]
    before, block = render(prefix, suffix, typed)
    # Enter, and the window now starts 10 tokens later: its text continues in the cache
    after, block2 = render([*prefix[10:], *typed, 5], suffix, [30])
    p = plan(before, block, after, block2)
    assert p.keep == 2 and p.moves[0] == (12, 62, 2)  # the rest of the prefix, 10 left
    assert p.moves[1][2] == block2[0] and len(p.moves) == 2  # then the suffix block
    assert p.gaps == [(2, 2), (52, 56)]  # only the finished line is evaluated
    assert apply_plan(before, p, after) == after[: p.ready]


def test_the_last_prompt_token_is_always_evaluated() -> None:
    tokens, block = render([10, 11], list(range(100, 140)), [])
    p = plan(tokens, block, tokens, block)
    assert p.keep == len(tokens) - 1
    # the block ends the prompt: it is moved without its last token
    after, block2 = render([10, 11, 12], list(range(100, 140)), [])
    moved = plan(tokens, block, after, block2)
    assert moved.moves and moved.ready == len(after) - 1


def test_any_sequence_of_edits_keeps_cells_equal_to_the_prompt() -> None:
    """Random typing, line breaks, edits above and below, cancelled prefills."""
    rng = random.Random(7)
    prefix = [rng.randrange(10, 60) for _ in range(80)]
    suffix = [rng.randrange(10, 60) for _ in range(70)]
    middle: list[int] = []
    cached: list[int] = []
    cached_block = None
    moves = 0
    continued = 0
    for _step in range(3000):
        r = rng.random()
        if r < 0.55:
            middle.append(rng.randrange(10, 60))  # a keystroke on the cursor line
        elif r < 0.65 and middle:
            middle.pop()  # backspace
        elif r < 0.78:
            prefix += [*middle, 5]  # Enter: the line moves into the prefix
            middle = []
        elif r < 0.85 and prefix:
            i = rng.randrange(len(prefix))  # an edit above the cursor
            prefix[i : i + rng.randrange(3)] = [rng.randrange(10, 60)] * rng.randrange(3)
        elif r < 0.9 and suffix:
            i = rng.randrange(len(suffix))  # an edit below the cursor
            suffix[i : i + 1] = [rng.randrange(10, 60)] * rng.randrange(1, 3)
        elif len(prefix) > 40:
            prefix = prefix[rng.randrange(1, 20) :]  # the window start moves
        prompt, block = render(prefix[-300:], suffix[:120], middle)
        p = plan(cached, cached_block, prompt, block)
        cells = apply_plan(cached, p, prompt)
        assert cells == prompt[: len(cells)]
        assert len(cells) == p.ready < len(prompt)
        moves += bool(p.moves)
        continued += len(p.moves) == 2 or (len(p.moves) == 1 and p.moves[0][2] < p.moves[0][0])
        for start, _end, new in p.moves[:-1]:
            assert new <= start  # every move but the last goes left
        if rng.random() < 0.1:  # cancelled during the prefill: part of the rest evaluated
            cached = prompt[: rng.randrange(len(cells), len(prompt))]
            cached_block = block if len(cached) >= block[1] else None
        else:  # evaluated, then some tokens generated after it
            cached = prompt + [rng.randrange(10, 60) for _ in range(rng.randrange(5))]
            cached_block = block
    assert moves > 100 and continued > 20
