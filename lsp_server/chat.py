"""Instruction prompts for code actions: the model's chat template, rendered safely.

The template comes from the GGUF (``tokenizer.chat_template``, Jinja, rendered in a
sandbox) and else from the family's ``[chat]`` table in ``prompts/``. Message contents
are document text: they are tokenized without special tokens, so that a document that
contains ``<|im_end|>`` cannot end a turn; only the template's own text is tokenized
with them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server.prompts import ChatFormat

log = logging.getLogger(__name__)

#: tokenize(text, special) -> token ids
TokenizeFn = Callable[[str, bool], list[int]]


@dataclass(frozen=True)
class ChatTemplate:
    """How a system and a user message become the start of the assistant's answer."""

    jinja: str | None  # the GGUF's chat template
    fallback: ChatFormat | None  # the family's format from prompts/
    bos_token: str = ""
    eos_token: str = ""

    @property
    def available(self) -> bool:
        """Whether any instruction format is known for the model."""
        return bool(self.jinja) or self.fallback is not None

    @property
    def source(self) -> str:
        """Where the format comes from, for messages."""
        if self.jinja:
            return "the GGUF's chat template"
        return "prompts/" if self.fallback is not None else "none"

    def render(self, system: str, user: str) -> list[tuple[str, bool]]:
        """The prompt as (text, is document text) pieces.

        Raises ValueError when the model has no instruction format.
        """
        slots = {f"\x00fimls-{uuid.uuid4().hex}\x00": text for text in (system, user)}
        marks = list(slots)
        text = None
        if self.jinja:
            # some templates have no system turn: then both go in the user's message
            for messages in (
                [("system", marks[0]), ("user", marks[1])],
                [("user", f"{marks[0]}\n\n{marks[1]}")],
            ):
                try:
                    text = _render_jinja(self.jinja, messages, self.bos_token, self.eos_token)
                    break
                except Exception as exc:  # noqa: BLE001 - a template we cannot run
                    log.info("the GGUF's chat template failed (%s)", exc)
        if text is None or any(m not in text for m in marks):
            if self.fallback is None:
                raise ValueError("the model has no chat template (GGUF or prompts/ [chat])")
            text = self.fallback.render_text(marks[0], marks[1])
        pieces: list[tuple[str, bool]] = []
        rest = text
        while rest:
            at = [(rest.find(m), m) for m in marks if m in rest]
            if not at:
                pieces.append((rest, False))
                break
            pos, mark = min(at)
            if pos:
                pieces.append((rest[:pos], False))
            pieces.append((slots[mark], True))
            rest = rest[pos + len(mark) :]
        return [(t, doc) for t, doc in pieces if t]

    def tokens(self, system: str, user: str, tokenize: TokenizeFn) -> list[int]:
        """The prompt's token ids: the template's text with special tokens, contents without."""
        out: list[int] = []
        for text, is_document in self.render(system, user):
            out += tokenize(text, not is_document)
        return out

    @property
    def stop(self) -> tuple[str, ...]:
        """Texts that end the answer besides the model's end tokens."""
        return self.fallback.stop if self.fallback is not None else ()


def _render_jinja(source: str, turns: Sequence[tuple[str, str]], bos: str, eos: str) -> str:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    template = env.from_string(source)
    messages = [{"role": role, "content": content} for role, content in turns]
    rendered = template.render(
        messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
    )
    # a template that adds BOS itself: the engine adds it from the vocabulary
    return rendered[len(bos) :] if bos and rendered.startswith(bos) else rendered
