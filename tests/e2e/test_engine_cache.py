"""The engine's KV cache with the real model: bookkeeping, moved blocks, cancellation."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator

import pytest

from lsp_server.completion import build_prompt
from lsp_server.config import merge, parse_settings
from lsp_server.context import plan_completion
from lsp_server.documents import split_lines
from lsp_server.engine import Engine
from lsp_server.generation import ACTION_DOCUMENT, EngineConfig, Generation

SOURCE = textwrap.dedent(
    '''\
    import math


    def area(radius):
        """The area of a circle."""
        return math.pi * radius ** 2


    def circumference(radius):
        """The length of a circle's edge."""
        return 2 * math.pi * radius


    def describe(radius):
        text = f"r={radius}"
        return text


    def main():
        for r in range(3):
            print(describe(r), area(r), circumference(r))
    '''
)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    loaded = Engine.load(EngineConfig(None, None, n_ctx=2048, threads=2, n_batch=16))
    yield loaded
    loaded.close()


class CancelAfter(threading.Event):
    """A cancel flag that sets itself after being read ``reads`` times."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.reads = reads

    def is_set(self) -> bool:
        self.reads -= 1
        if self.reads < 0:
            self.set()
        return super().is_set()


def request(
    engine: Engine,
    text: str,
    line: int,
    index: int,
    *,
    document: str = "file:///a.py",
    cancel: threading.Event | None = None,
    shifted: bool = True,
    max_tokens: int = 8,
    settings: dict | None = None,
    cancel_after_tokens: int | None = None,
    middle_from: int | None = None,
):
    lines = split_lines(text)
    plan = plan_completion(
        lines,
        line,
        index,
        prefix_tokens=1024,
        suffix_tokens=256,
        multiline="never",
        language_id="python",
    )
    # these tests check the layouts' bookkeeping: the cursor line after the middle token
    # (off by default, README) unless a test says otherwise
    chosen = merge({"cache": {"lineAfterMiddle": True}}, settings)
    prompt = build_prompt(engine, plan, parse_settings(chosen)[0], middle_from)
    flag = cancel or threading.Event()
    calls = []

    def stop(out: str) -> int | None:
        calls.append(out)
        if cancel_after_tokens is not None and len(calls) >= cancel_after_tokens:
            flag.set()  # as $/cancelRequest does from the event loop
        return out.index("\n") if "\n" in out else None

    result = engine.generate(
        Generation(
            prompt.tokens,
            max_tokens,
            stop,
            flag,
            block=prompt.block,
            shifted_reuse=shifted,
            document=document,
            documents=2,
        )
    )
    return prompt, result


def assert_consistent(engine: Engine, prompt_tokens: list[int]) -> None:
    """The cells hold a prefix of the prompt (and what was generated), at 0..n-1."""
    cached = engine.cached_tokens
    n = min(len(cached), len(prompt_tokens))
    assert cached[:n] == prompt_tokens[:n]
    assert engine.cache_positions() == ((0, len(cached) - 1) if cached else (-1, -1))


def test_typing_then_a_line_break_evaluates_only_the_new_tokens(engine: Engine) -> None:
    statement = '    text = f"r={radius}"'
    where = SOURCE.index(statement)
    line = SOURCE[:where].count("\n")
    base = SOURCE[:where] + "    " + SOURCE[where + len(statement) :]
    prompt, first = request(engine, base, line, 4)
    assert_consistent(engine, prompt.tokens)
    typed = "text = f"
    for n in range(1, len(typed) + 1):
        text = base.replace("\n    \n", "\n    " + typed[:n] + "\n", 1)
        prompt, result = request(engine, text, line, 4 + n)
        assert result.evaluated_tokens <= 3, result  # only the end of the cursor line
        assert_consistent(engine, prompt.tokens)
    # Enter: the finished line moves into the prefix, the suffix's cells move after it
    finished = base.replace("\n    \n", "\n    " + typed + '"x"\n    \n', 1)
    prompt, result = request(engine, finished, line + 1, 4)
    assert result.shifted_tokens > 25 and result.evaluated_tokens < 20, result
    assert_consistent(engine, prompt.tokens)
    # the same without the move: the suffix is evaluated again
    request(engine, base, line, 4)
    prompt, full = request(engine, finished, line + 1, 4, shifted=False)
    assert full.shifted_tokens == 0 and full.evaluated_tokens > result.evaluated_tokens + 25
    assert_consistent(engine, prompt.tokens)


def test_lines_typed_below_the_middle_start_only_append(engine: Engine) -> None:
    statement = '    text = f"r={radius}"'
    where = SOURCE.index(statement)
    line = SOURCE[:where].count("\n")
    base = SOURCE[:where] + "    " + SOURCE[where + len(statement) :]
    prompt, _ = request(engine, base, line, 4, shifted=False, middle_from=line)
    assert prompt.middle_line == line
    text, row = base, line
    for typed in ('text = f"r={radius}"', "text += '!'", "print(text)"):
        text = text.replace("\n    \n", "\n    " + typed + "\n    \n", 1)
        row += 1
        prompt, result = request(engine, text, row, 4, shifted=False, middle_from=line)
        # the finished line and the next one's indentation: no suffix evaluated again
        assert prompt.middle_line == line and result.shifted_tokens == 0
        assert result.reused_tokens > 70 and result.evaluated_tokens <= 12, result
        assert_consistent(engine, prompt.tokens)
        assert prompt.tokens[-1] != engine.tokenize("<|fim_middle|>", True)[0]
    middle = engine.tokenize("<|fim_middle|>", True)[0]
    shown = engine.detokenize(prompt.tokens[prompt.tokens.index(middle) + 1 :])
    assert shown == "text = f\"r={radius}\"\n    text += '!'\n    print(text)\n    "
    # with the region off, the same line break evaluates the suffix again
    request(engine, text, row, 4, shifted=False, settings={"cache": {"middleTokens": 0}})
    text = text.replace("\n    \n", "\n    return text\n    \n", 1)
    off = {"cache": {"middleTokens": 0}}
    prompt, full = request(engine, text, row + 1, 4, shifted=False, settings=off)
    assert prompt.middle_line == row + 1 and full.evaluated_tokens > 25, full


def test_an_edit_above_invalidates_the_cache_from_there_on(engine: Engine) -> None:
    line = SOURCE.count("\n") - 1
    request(engine, SOURCE, line, 8)
    edited = SOURCE.replace("import math", "import math as m")
    prompt, result = request(engine, edited, line, 8, shifted=False)
    assert result.reused_tokens < 10 and result.evaluated_tokens > result.prompt_tokens - 10
    assert_consistent(engine, prompt.tokens)


def test_cancelled_prefill_and_decode_leave_a_consistent_cache(engine: Engine) -> None:
    line = SOURCE.count("\n") - 1  # cursor after `print(`: the model writes arguments
    other = SOURCE.replace("import math", "import cmath as math")  # not in the cache
    prompt, result = request(engine, other, line, 14, cancel=CancelAfter(3))
    assert result.cancelled and result.generated_tokens == 0
    assert 0 < len(engine.cached_tokens) < len(prompt.tokens)  # stopped between batches
    assert_consistent(engine, prompt.tokens)
    prompt, resumed = request(engine, other, line, 14)  # goes on from where it stopped
    assert resumed.reused_tokens >= 16 and not resumed.cancelled
    assert_consistent(engine, prompt.tokens)
    prompt, decode = request(engine, other, line, 14, max_tokens=32, cancel_after_tokens=2)
    assert decode.cancelled and len(decode.tokens) == 2
    assert_consistent(engine, prompt.tokens)
    prompt, after = request(engine, other, line, 14)
    assert after.evaluated_tokens == 1 and not after.cancelled
    assert_consistent(engine, prompt.tokens)


def test_switching_documents_restores_the_saved_state(engine: Engine) -> None:
    line = SOURCE.count("\n") - 1
    request(engine, SOURCE, line, 8, document="file:///a.py")
    other = "import os\n\n\ndef listing(path):\n    return os.listdir(path)\n"
    prompt_b, b = request(engine, other, 4, 4, document="file:///b.py")
    assert "file:///a.py" in engine.saved_documents and engine.saved_bytes > 0
    prompt_a, back = request(engine, SOURCE, line, 8, document="file:///a.py")
    assert back.restored and back.evaluated_tokens <= 2
    assert_consistent(engine, prompt_a.tokens)
    assert engine.saved_documents == ["file:///b.py"]


def test_the_cursor_line_after_the_middle_token_or_not(engine: Engine) -> None:
    line = SOURCE.count("\n") - 1  # `        print(describe(r), ...`
    middle = engine.tokenize("<|fim_middle|>", True)[0]
    typed, _ = request(engine, SOURCE, line, 14)  # after `print(`
    inline, _ = request(engine, SOURCE, line, 14, settings={"cache": {"lineAfterMiddle": False}})
    assert typed.tokens[-1] != middle and inline.tokens[-1] == middle
    assert engine.detokenize(typed.tokens[typed.tokens.index(middle) + 1 :]) == "print("
    assert typed.block is not None and typed.tokens[typed.block[1] - 1] == middle
    # the indentation stays in the prefix: at its end, nothing follows the middle token
    blank, _ = request(engine, SOURCE, line, 8)
    assert blank.tokens[-1] == middle


def test_a_code_action_between_completions_leaves_their_cache_right(engine: Engine) -> None:
    line = SOURCE.count("\n") - 1
    request(engine, SOURCE, line, 8, document="file:///a.py")
    chat = engine.chat_prompt("You are a programmer.", "Explain `area` in one sentence.")
    action = engine.generate(
        Generation(
            chat, 24, lambda out: None, threading.Event(), document=ACTION_DOCUMENT, documents=2
        )
    )
    assert action.generated_tokens > 0 and action.text.strip()
    assert engine.cached_tokens[: len(chat)] == chat  # the action used the live cells
    assert "file:///a.py" in engine.saved_documents
    prompt_a, back = request(engine, SOURCE, line, 8, document="file:///a.py")
    assert back.restored and back.evaluated_tokens <= 2  # the completion's state came back
    assert_consistent(engine, prompt_a.tokens)
    assert ACTION_DOCUMENT not in engine.saved_documents  # an action's state is not kept


def test_an_exception_during_generation_leaves_the_cache_consistent(engine: Engine) -> None:
    """A fault on the worker thread mid-generation (here the stop rule raising after the
    third token, as a post-processing bug would) must not corrupt the KV bookkeeping: the
    same request afterwards reuses the cache and gives the answer of a clean engine."""
    text = SOURCE.replace("    return text\n", "    return \n")
    line = text[: text.index("    return \n")].count("\n")
    engine.forget("file:///fault.py")
    clean_prompt, clean = request(engine, text, line, 11, document="file:///fault.py")
    other = SOURCE.replace("def main():", "def main(argv):")
    request(engine, other, 5, 4, document="file:///fault.py")  # the cache holds another prompt
    lines = split_lines(text)
    plan = plan_completion(
        lines,
        line,
        11,
        prefix_tokens=1024,
        suffix_tokens=256,
        multiline="never",
        language_id="python",
    )
    prompt = build_prompt(engine, plan, parse_settings({"cache": {"lineAfterMiddle": True}})[0])
    calls: list[str] = []

    def faulty_stop(out: str) -> int | None:
        calls.append(out)
        if len(calls) == 3:
            raise RuntimeError("a bug in a stop rule")
        return None

    with pytest.raises(RuntimeError):
        engine.generate(
            Generation(
                prompt.tokens,
                8,
                faulty_stop,
                threading.Event(),
                block=prompt.block,
                document="file:///fault.py",
                documents=2,
            )
        )
    assert_consistent(engine, prompt.tokens)
    again_prompt, again = request(engine, text, line, 11, document="file:///fault.py")
    assert again_prompt.tokens == clean_prompt.tokens
    assert again.text == clean.text
    assert again.reused_tokens >= len(prompt.tokens) - 2, again
    assert_consistent(engine, again_prompt.tokens)
