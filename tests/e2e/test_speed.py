"""What makes a keystroke cheap, through the real server: memory, prefetch, reuse, warm-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from lsp_server.lsp_client import FimlsClient
from tests.conftest import Launch, doc_uri

ADD = "def add(a, b):\n    return \n\n\nprint(add(1, 2))\n"
NUMBERS = (
    "import math\n\n\n"
    "def area(radius):\n"
    '    """The area of a circle."""\n'
    "    return math.pi * radius ** 2\n\n\n"
    "def circumference(radius):\n"
    "    \n\n\n"
    "def main():\n"
    "    for r in range(3):\n"
    "        print(area(r), circumference(r))\n"
)
#: every request answered by the model, nothing in the background
MODEL_ONLY = {"warmup": False, "prefetch": False, "completions": False}


async def ready(launch: Launch, **settings: Any) -> FimlsClient:
    client = await launch(initialization_options=settings or None)
    assert (await client.wait_model())["state"] == "ready"
    return client


def text_of(result: Any) -> str:
    assert result.items, "no suggestion"
    item = result.items[0].insert_text
    return item if isinstance(item, str) else item.value


async def stats_when(client: FimlsClient, done: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Poll ``fimls/stats`` until ``done(stats)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await client.stats()
        if done(stats) or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.1)


async def test_typing_the_suggestion_and_accepting_it_are_answered_from_memory(
    launch: Launch, tmp_path: Path
) -> None:
    client = await ready(launch, cache={"warmup": False})
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    shown = text_of(await client.inline(uri, 1, 11))
    assert shown.startswith("a")
    # the user types the suggestion's first character: the rest comes from memory
    client.change(uri, 2, shown[0], (1, 11), (1, 11))
    rest = text_of(await client.inline(uri, 1, 12))
    assert rest == shown[1:]
    # the prefetch (as if accepted) ran in the background
    stats = await stats_when(client, lambda s: s["cache"]["prefetched"] >= 1)
    assert stats["cache"]["memoryTyped"] == 1 and stats["cache"]["prefetched"] >= 1
    generations = stats["engine"]["generations"]
    # accepting the rest: the completion after it is already known
    client.change(uri, 3, rest, (1, 12), (1, 12))
    await client.inline(uri, 1, 11 + len(shown))
    after = await client.stats()
    assert after["cache"]["memoryExact"] == 1
    assert after["engine"]["generations"] == generations  # no model run for it
    answers = after["evaluatedTokensPerAnswer"]
    assert answers["count"] == 3 and answers["p50"] == 0


async def test_an_edit_elsewhere_is_not_answered_from_memory_and_undo_is(
    launch: Launch, tmp_path: Path
) -> None:
    client = await ready(launch, cache={"warmup": False, "prefetch": False})
    uri = doc_uri(tmp_path, "add.py")
    client.open(uri, ADD)
    await client.inline(uri, 1, 11)
    client.change(uri, 2, "c, ", (0, 8), (0, 8))  # def add(c, a, b):
    await client.inline(uri, 1, 11)
    stats = await client.stats()
    assert stats["cache"]["memoryExact"] == 0 and stats["engine"]["generations"] == 2
    edited = stats["recentGenerations"][-1]
    assert edited["evaluatedTokens"] > 5  # from the edit on, evaluated again
    client.change(uri, 3, "", (0, 8), (0, 11))  # undo
    await client.inline(uri, 1, 11)
    stats = await client.stats()
    assert stats["cache"]["memoryExact"] == 1 and stats["engine"]["generations"] == 2


async def test_new_lines_only_append_to_the_prompt(launch: Launch, tmp_path: Path) -> None:
    # the layout that appends (off by default, README): the lines typed since the prefix
    # was cut follow the middle token
    client = await ready(launch, cache={**MODEL_ONLY, "lineAfterMiddle": True})
    uri = doc_uri(tmp_path, "circle.py")
    client.open(uri, NUMBERS)
    line = NUMBERS.split("\n").index("def circumference(radius):") + 1
    await client.inline(uri, line, 4)
    version, column = 1, 4
    for typed in ("r = float(radius)", "d = 2 * r", "return math.pi * d"):
        for ch in typed:
            version += 1
            client.change(uri, version, ch, (line, column), (line, column))
            column += 1
        await client.inline(uri, line, column)
        version += 1
        client.change(uri, version, "\n    ", (line, column), (line, column))
        line, column = line + 1, 4
        await client.inline(uri, line, column)
    stats = await client.stats()
    runs = stats["recentGenerations"]
    assert len(runs) >= 7 and runs[0]["reusedTokens"] == 0  # the first run: all of it
    assert runs[0]["evaluatedTokens"] == runs[0]["promptTokens"] > 25
    # each later run evaluates what was typed since the one before it, no suffix again
    assert max(g["evaluatedTokens"] for g in runs[1:]) <= 12, runs
    assert all(g["shiftedTokens"] == 0 for g in runs)


async def test_a_line_break_moves_the_suffix_instead_of_evaluating_it(
    launch: Launch, tmp_path: Path
) -> None:
    # the moves are off by default: an approximation that costs quality (README)
    client = await ready(
        launch,
        cache={**MODEL_ONLY, "shiftedReuse": True, "lineAfterMiddle": True, "middleTokens": 0},
        context={"suffixScope": "file"},  # the suffix is the next function: something to move
    )
    uri = doc_uri(tmp_path, "circle.py")
    client.open(uri, NUMBERS)
    line = NUMBERS.split("\n").index("def circumference(radius):") + 1
    version = 1
    typed = "return 2 * math.pi * radius"
    for n, ch in enumerate(typed):
        version += 1
        client.change(uri, version, ch, (line, 4 + n), (line, 4 + n))
        await client.inline(uri, line, 5 + n)
    version += 1
    client.change(uri, version, "\n    ", (line, 4 + len(typed)), (line, 4 + len(typed)))
    await client.inline(uri, line + 1, 4)
    stats = await client.stats()
    last = stats["recentGenerations"][-1]
    assert stats["cache"]["shiftedReuses"] == 1 and last["shiftedTokens"] > 20
    assert last["evaluatedTokens"] < 25, last
    typing = stats["recentGenerations"][-len(typed) : -1]
    assert max(g["evaluatedTokens"] for g in typing) <= 3  # a keystroke: its own tokens


async def test_warm_up_then_switching_documents_keeps_each_cache(
    launch: Launch, tmp_path: Path
) -> None:
    # without recent snippets: a snippet of add.py would change circle.py's prompt
    client = await ready(
        launch, cache={"prefetch": False, "completions": False}, context={"recent": False}
    )
    a, b = doc_uri(tmp_path, "circle.py"), doc_uri(tmp_path, "add.py")
    client.open(a, NUMBERS)
    stats = await stats_when(client, lambda s: s["cache"]["warmedUp"] >= 1)
    assert stats["cache"]["warmedUp"] == 1
    last = len(NUMBERS.split("\n")) - 2
    await client.inline(a, last, 8)
    first = (await client.stats())["recentGenerations"][-1]
    # the warm-up held everything up to the cursor line
    assert first["reusedTokens"] > first["promptTokens"] * 0.7, first
    client.open(b, ADD)
    await client.inline(b, 1, 11)
    await client.inline(a, last, 8)
    stats = await client.stats()
    restored = [g for g in stats["recentGenerations"] if g["restored"]]
    assert stats["cache"]["documentRestores"] == len(restored) == 1
    assert restored[0]["evaluatedTokens"] <= 2, restored  # then retries, if any, follow
