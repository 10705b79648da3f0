"""What an engine is: the generation request and result, and the interface both engines offer.

The completion and action pipelines build prompts as token ids of the engine's vocabulary
and hand a :class:`Generation` to whichever engine is configured: the in-process
llama.cpp model (:mod:`lsp_server.engine`) or an inference server over HTTP
(:mod:`lsp_server.remote`). Nothing here touches llama.cpp or the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from lsp_server.chat import ChatTemplate
from lsp_server.config import EngineSettings
from lsp_server.prompts import BoundTemplate


@dataclass(frozen=True)
class FimParts:
    """The text of a FIM prompt, for servers that assemble it themselves."""

    prefix: str
    suffix: str
    middle: str  # text typed after the middle token (``cache.lineAfterMiddle``)
    files: tuple[tuple[str, str], ...]  # (path, text) of context from other files
    path: str  # the current file's path in the workspace


@dataclass(frozen=True)
class EngineConfig:
    """What to load and how; ``path`` None means the embedded default model."""

    path: str | None
    template: str | None
    n_ctx: int
    threads: int
    n_batch: int
    #: where the tokens come from: None for the in-process model, else an inference server
    #: (``fimls.engine``, its ``url`` set)
    remote: EngineSettings | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, for status messages, ``fimls check`` and ``fimls/stats``."""

    name: str
    description: str
    path: str
    size_bytes: int
    embedded: bool
    template: str
    order: str
    n_ctx: int
    threads: int
    load_seconds: float
    template_reason: str = ""  # what the template was chosen from
    engine: str = "local"  # fimls.engine.kind

    def to_json(self) -> dict[str, object]:
        """Return the camelCase JSON form sent to clients."""
        return {
            "name": self.name,
            "description": self.description,
            "path": self.path,
            "sizeBytes": self.size_bytes,
            "embedded": self.embedded,
            "template": self.template,
            "templateReason": self.template_reason,
            "order": self.order,
            "contextSize": self.n_ctx,
            "threads": self.threads,
            "loadSeconds": round(self.load_seconds, 3),
            "engine": self.engine,
        }


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; temperature 0 is greedy."""

    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.9
    seed: int = 0


#: The document key of code actions: their KV state is not kept among the documents'.
ACTION_DOCUMENT = "fimls:action"

#: stop(text) -> None to go on, or the length of ``text`` to keep and stop.
StopFn = Callable[[str], "int | None"]


@dataclass(frozen=True)
class Generation:
    """One generation request."""

    prompt: Sequence[int]
    max_tokens: int
    stop: StopFn
    cancel: threading.Event
    sampling: Sampling = Sampling()
    banned_first: frozenset[int] = frozenset()  # tokens the completion may not start with
    #: [start, end) of the prompt's movable block (:mod:`lsp_server.reuse`), or None.
    block: tuple[int, int] | None = None
    shifted_reuse: bool = True  # whether the block's cells may be moved (an approximation)
    #: The document the prompt is for: the engine keeps the KV state of recent ones.
    document: str | None = None
    documents: int = 0  # how many other documents' KV states to keep in memory
    #: Once a line break was generated, stop after this many milliseconds of decoding and
    #: keep the whole lines (0: no limit).
    time_budget_ms: int = 0
    #: Prompt tokens per llama.cpp batch (0: the context's batch size). Cancellation is
    #: seen between batches: background work uses small ones to yield quickly.
    chunk: int = 0
    #: Give up, leaving the cache as it is, when more prompt tokens than this would have to
    #: be evaluated (0: no limit): a prefetch must not replace the cache the user needs.
    evaluate_limit: int = 0
    #: The prompt's parts as text, for engines that build the FIM prompt themselves
    #: (llama-server's ``/infill``); None for the others.
    parts: FimParts | None = None


@dataclass(frozen=True)
class GenerationResult:
    """The text generated and what it cost."""

    text: str
    stop_reason: str  # eog | stop | max-tokens | context-full | time | cancelled | skipped
    prompt_tokens: int
    reused_tokens: int
    evaluated_tokens: int
    generated_tokens: int
    prompt_ms: float
    first_token_ms: float
    total_ms: float
    tokens: tuple[int, ...] = ()  # the tokens of ``text`` as generated
    shifted_tokens: int = 0  # of the reused tokens, those moved to a new position
    restored: bool = False  # the document's saved KV state was loaded first
    #: whether reused/evaluated are known: an inference server may not say what it had
    #: cached (llama-cpp-python's), nor one whose stream was cancelled before its first
    #: event; then both are 0 and only ``prompt_tokens`` counts
    costed: bool = True

    @property
    def cancelled(self) -> bool:
        """True when the request was cancelled before it finished."""
        return self.stop_reason == "cancelled"


class ModelEngine(Protocol):
    """What the completion and action pipelines need of an engine (one thread calls it)."""

    @property
    def info(self) -> ModelInfo:
        """What was loaded."""
        ...

    @property
    def n_ctx(self) -> int:
        """The context size in tokens: prompt plus completion."""
        ...

    @property
    def template(self) -> BoundTemplate:
        """The model's FIM template, bound to its vocabulary."""
        ...

    @property
    def chat(self) -> ChatTemplate:
        """The instruction format of code actions."""
        ...

    @property
    def count_tokens(self) -> Callable[[str], int]:
        """Token count of a piece of text, cached."""
        ...

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Token ids of text without BOS; special tokens are parsed only when asked."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens included."""
        ...

    def segments(self, tokens: Sequence[int]) -> list[tuple[bool, str]]:
        """The text of tokens in runs, each marked as special tokens or not."""
        ...

    def chat_prompt(self, system: str, user: str) -> list[int]:
        """An instruction prompt's tokens; ValueError when the model has no chat format."""
        ...

    def generate(self, req: Generation) -> GenerationResult:
        """Evaluate the prompt and generate until a stop."""
        ...

    def prefill(
        self,
        prompt: Sequence[int],
        block: tuple[int, int] | None,
        document: str | None,
        documents: int,
        cancel: threading.Event,
        chunk: int = 0,
    ) -> int:
        """Bring a prompt into the cache without generating; return the tokens evaluated."""
        ...

    def forget(self, document: str) -> None:
        """A document was closed: drop what is kept for it."""
        ...

    @property
    def end_ids(self) -> frozenset[int]:
        """Every token that ends a generation."""
        ...

    @property
    def line_break_ids(self) -> frozenset[int]:
        """Every token whose text starts with a line break."""
        ...

    @property
    def can_ban(self) -> bool:
        """Whether ``Generation.banned_first`` is honoured (retries depend on it)."""
        ...

    @property
    def wants_parts(self) -> bool:
        """Whether the engine reads ``Generation.parts`` (it renders the prompt itself)."""
        ...

    def warm(self) -> None:
        """Prepare what the first request would otherwise wait for."""
        ...

    def check(self) -> None:
        """Raise EngineUnavailable when the engine cannot serve now (a cheap probe)."""
        ...

    def stats_json(self) -> dict[str, object] | None:
        """What the engine counts of itself for ``fimls/stats`` (None: nothing)."""
        ...

    def close(self) -> None:
        """Free what the engine holds."""
        ...
