"""The remote engine: the same completions from an inference server the team already runs.

Two protocols:

- ``openai``: ``POST /v1/completions`` with the raw prompt fimls renders (FIM template,
  context from other files, windows), streamed, with ``stop``, ``max_tokens``,
  ``temperature`` and, where the server knows them, ``top_k``, ``cache_prompt`` and
  ``logit_bias``. llama-server, vLLM, llama-cpp-python's server, TGI and Ollama speak it.
- ``infill``: llama-server's ``POST /infill`` with the prefix, suffix and context files
  (``input_extra``); the server lays out the prompt with the model's own FIM tokens.
  Code actions and warm-ups use ``/v1/completions`` of the same server.

At connect, the server is asked what it serves (``/v1/models``, llama-server's
``/props``) and, where it can tokenize (llama-server and vLLM ``/tokenize``,
llama-cpp-python ``/extras/tokenize``), whether the FIM tokens of each template are
single tokens of its vocabulary: the template comes from the model, as with a local
GGUF, else from its name, else from ``fimls.model.template``. Token budgets are counted
with a local vocabulary (the embedded model's, or ``fimls.model.path``'s), loaded
without weights; when the server's tokenizer gives the same ids for a probe text the
counts are exact and banned tokens (retries) can be sent as ``logit_bias``.

Streaming answers are cut by the same stop rule as local generation; cutting, like
cancellation, closes the connection, so the server stops generating. A server that
cannot be reached or answers garbage raises EngineUnavailable (the worker then retries
it with backoff); one that refuses a single request raises EngineRequestError.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import llama_cpp
from llama_cpp import _internals as internals

from lsp_server import model_store
from lsp_server.chat import ChatTemplate
from lsp_server.config import EngineSettings
from lsp_server.context import TokenCounter
from lsp_server.engine import init_backend, vocab_end_ids, vocab_line_break_ids
from lsp_server.errors import EngineRequestError, EngineUnavailable, ModelError, TemplateError
from lsp_server.generation import (
    EngineConfig,
    FimParts,
    Generation,
    GenerationResult,
    ModelInfo,
)
from lsp_server.http_stream import Cancelled, Connection, Endpoint, HttpError
from lsp_server.prompts import (
    BoundTemplate,
    Detection,
    FimTemplate,
    ModelFacts,
    bind_template,
    detect_template,
    load_templates,
    markers,
    special_tokens,
)
from lsp_server.stats import spread

log = logging.getLogger(__name__)

#: Text tokenized by both sides at connect: the same ids mean the same vocabulary.
PROBE_TEXT = (
    'def greet(name: str) -> str:\n    """Say hello — to «name»."""\n'
    '    return f"Hello, {name}!"  # 你好 ✓\n\tif x<=0: pass\r\n'
)
#: Latencies kept for the percentiles of ``fimls/stats``.
RECENT = 500


class TextVocab:
    """Token ids for an engine whose model runs elsewhere: a local vocabulary plus markers.

    Document text is tokenized with the local vocabulary (loaded without weights). Each
    special token of the template (FIM markers, stop and chat tokens) is one id: its own
    when the local vocabulary has it as a control token, else an id past the vocabulary.
    Ids turn back into the exact text they came from, which is what the server gets.
    """

    def __init__(self, model: internals.LlamaModel, special: Sequence[str]) -> None:
        self.model = model
        self.n_vocab = model.n_vocab()
        #: what a prompt given as ids starts with (servers add BOS to text themselves)
        self.bos = [model.token_bos()] if model.add_bos_token() else []
        self._vocab = model.vocab
        self._ids: dict[str, int] = {}
        self._texts: dict[int, str] = {}
        for text in dict.fromkeys(t for t in special if t):
            ids = list(model.tokenize(text.encode("utf-8"), False, True))
            if len(ids) == 1 and llama_cpp.llama_vocab_is_control(self._vocab, ids[0]):
                token = ids[0]
            else:
                token = self.n_vocab + len([t for t in self._texts if t >= self.n_vocab])
            self._ids[text] = token
            self._texts[token] = text
        alternatives = sorted(self._ids, key=len, reverse=True)
        self._split = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Ids of text; with ``special`` the markers in it become their single ids."""
        if not text:
            return []
        if not special or self._split is None:
            return self._plain(text)
        out: list[int] = []
        pos = 0
        for m in self._split.finditer(text):
            out += self._plain(text[pos : m.start()])
            out.append(self._ids[m.group()])
            pos = m.end()
        return out + self._plain(text[pos:])

    def _plain(self, text: str) -> list[int]:
        return list(self.model.tokenize(text.encode("utf-8"), False, False)) if text else []

    def detokenize(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """The text of ids; ``errors="ignore"`` drops a character cut by a window's edge."""
        return "".join(text for _, text in self.runs(tokens, errors))

    def runs(self, tokens: Sequence[int], errors: str = "replace") -> list[tuple[bool, str]]:
        """The text of ids in runs, each marked as special tokens or not."""
        out: list[tuple[bool, str]] = []
        plain: list[int] = []

        def flush() -> None:
            if plain:
                data = self.model.detokenize(plain, special=True)
                out.append((False, data.decode("utf-8", errors)))
                plain.clear()

        for token in tokens:
            text = self._texts.get(token)
            if text is None and 0 <= token < self.n_vocab:
                if llama_cpp.llama_vocab_is_control(self._vocab, token):
                    text = self.model.token_get_text(token)
            if text is None:
                plain.append(token)
                continue
            flush()
            if out and out[-1][0]:
                out[-1] = (True, out[-1][1] + text)
            else:
                out.append((True, text))
        flush()
        return out

    def id_of(self, text: str) -> int | None:
        """The single id of a marker, if it is one."""
        return self._ids.get(text)


@dataclass
class ServerFacts:
    """What a server said about itself at connect."""

    flavor: str  # llama-server | llama-cpp-python | vllm | openai (anything else)
    model: str | None  # the model name to ask for
    label: str  # what names the model (id, file name): for template detection by name
    n_ctx: int | None  # the context size it serves, when it says
    chat_template: str | None  # its chat template (llama-server)
    bos_token: str = ""
    eos_token: str = ""


class RemoteStats:
    """What the server did for us: requests, latency, errors (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.first_ms: deque[float] = deque(maxlen=RECENT)
        self.total_ms: deque[float] = deque(maxlen=RECENT)
        self.last_error = ""
        self._last_error_at = 0.0

    def answered(self, first_ms: float, total_ms: float, outcome: str) -> None:
        """One request that got an answer (``outcome``: complete, cut or cancelled)."""
        with self._lock:
            self.counts["requests"] += 1
            self.counts[outcome] += 1
            if first_ms > 0:
                self.first_ms.append(first_ms)
            if outcome != "cancelled":
                self.total_ms.append(total_ms)

    def cancelled_early(self) -> None:
        """One request cancelled before any answer came."""
        with self._lock:
            self.counts["requests"] += 1
            self.counts["cancelled"] += 1

    def failed(self, kind: str, message: str) -> None:
        """One request that failed: ``kind`` is connect, timeout, status, garbage or closed."""
        with self._lock:
            self.counts["requests"] += 1
            self.errors[kind] += 1
            self.last_error = message
            self._last_error_at = time.monotonic()

    def to_json(self) -> dict[str, object]:
        """The counters for ``fimls/stats`` ``remote``."""
        with self._lock:
            first, total = list(self.first_ms), list(self.total_ms)
            age = time.monotonic() - self._last_error_at if self._last_error_at else None
            return {
                "requests": self.counts["requests"],
                "complete": self.counts["complete"],
                "cut": self.counts["cut"],
                "cancelled": self.counts["cancelled"],
                "errors": dict(self.errors),
                "lastError": self.last_error,
                "lastErrorSecondsAgo": round(age, 1) if age is not None else None,
                "firstChunkMs": spread(first),
                "totalMs": spread(total),
            }


class RemoteEngine:
    """An inference server behind the engine interface (one thread calls it)."""

    def __init__(
        self,
        remote: EngineSettings,
        connection: Connection,
        facts: ServerFacts,
        vocab: TextVocab,
        template: BoundTemplate,
        chat: ChatTemplate,
        info: ModelInfo,
        exact: bool,
    ) -> None:
        self.remote = remote
        self._conn = connection
        self.facts = facts
        self.vocab = vocab
        self.template = template
        self.chat = chat
        self.info = info
        self.n_ctx = info.n_ctx
        self.exact = exact  # the server's tokenizer gives the local vocabulary's ids
        self.can_ban = exact  # banned first tokens (logit_bias) need the server's own ids
        self.stats = RemoteStats()
        self.count_tokens = TokenCounter(self.tokenize)
        self._stops = [s for s in template.template.stop if s.strip()]

    @property
    def wants_parts(self) -> bool:
        """``/infill`` takes the prompt's text parts and lays them out itself."""
        return self.remote.kind == "infill"

    # -- connect ----------------------------------------------------------------------

    @classmethod
    def connect(cls, config: EngineConfig) -> RemoteEngine:
        """Ask the server what it serves and choose the template.

        Raises EngineUnavailable (the server cannot be reached now: the worker tries
        again), ModelError (a setting that cannot work) or TemplateError.
        """
        remote = config.remote
        assert remote is not None and remote.url is not None
        started = time.perf_counter()
        try:
            endpoint = Endpoint.parse(
                remote.url,
                connect_timeout=remote.connect_timeout_ms / 1000,
                read_timeout=remote.request_timeout_ms / 1000,
                api_key_env=remote.api_key_env,
                tls_verify=remote.tls_verify,
                ca_file=remote.ca_file,
            )
            conn = Connection(endpoint)
        except (ValueError, OSError) as exc:
            raise ModelError(f"fimls.engine.url: {exc}") from None
        facts = _ask_server(conn, remote)
        tokenize = _remote_tokenizer(conn, facts)
        detection = _detect(facts, tokenize, config.template)
        template = detection.template
        vocab = _local_vocab(config.path, template)
        exact = tokenize is not None and _same_vocabulary(vocab, tokenize, template)
        try:
            bound = bind_template(template, vocab.tokenize, ())
        except TemplateError as exc:  # cannot happen: every marker is one id of TextVocab
            raise ModelError(f"template {template.name}: {exc}") from None
        n_ctx = min(config.n_ctx, facts.n_ctx) if facts.n_ctx else config.n_ctx
        counting = (
            "exact token counts"
            if exact
            else "approximate token counts" + ("" if tokenize else " (the server cannot tokenize)")
        )
        info = ModelInfo(
            name=Path(facts.label).name if "/" in facts.label else facts.label,
            description=f"{facts.flavor} at {endpoint.url} ({remote.kind}), {counting}",
            path=endpoint.url,
            size_bytes=0,
            embedded=False,
            template=template.name,
            order=template.order,
            n_ctx=n_ctx,
            threads=0,
            load_seconds=time.perf_counter() - started,
            template_reason=detection.reason,
            engine=remote.kind,
        )
        chat = ChatTemplate(facts.chat_template, template.chat, facts.bos_token, facts.eos_token)
        log.info(
            "connected to %s: %s serving %s, template %s (%s), n_ctx %d, %s",
            endpoint.url,
            facts.flavor,
            facts.model or facts.label,
            template.name,
            detection.reason,
            n_ctx,
            counting,
        )
        return cls(remote, conn, facts, vocab, bound, chat, info, exact)

    # -- tokens -----------------------------------------------------------------------

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Ids of the local vocabulary (markers as single ids with ``special``)."""
        return self.vocab.tokenize(text, special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ids, markers included."""
        return self.vocab.detokenize(tokens)

    def segments(self, tokens: Sequence[int]) -> list[tuple[bool, str]]:
        """The text of ids in runs, each marked as special or not."""
        return self.vocab.runs(tokens)

    def chat_prompt(self, system: str, user: str) -> list[int]:
        """An instruction prompt (the server adds BOS itself)."""
        return self.chat.tokens(system, user, self.tokenize)

    def _text(self, prompt: Sequence[int]) -> str:
        # a window cut inside a character leaves a broken byte at its edge: dropped
        return self.vocab.detokenize(prompt, errors="ignore")

    @functools.cached_property
    def end_ids(self) -> frozenset[int]:
        """Every id that ends a generation (meaningful with the server's own vocabulary)."""
        return vocab_end_ids(self.vocab.model, self.template.stop_ids)

    @functools.cached_property
    def line_break_ids(self) -> frozenset[int]:
        """Every id whose text starts with a line break."""
        return vocab_line_break_ids(self.vocab.model)

    def warm(self) -> None:
        """Compute the vocabulary tables retries need, when retries are possible."""
        if self.can_ban:
            _ = self.end_ids, self.line_break_ids

    # -- generation -------------------------------------------------------------------

    def generate(self, req: Generation) -> GenerationResult:
        """Stream a completion, cut it with the request's stop rule, close on cancel."""
        started = time.perf_counter()
        if req.parts is not None and self.remote.kind == "infill":
            path, body = "/infill", self._infill_body(req, req.parts)
        else:
            path, body = "/v1/completions", self._completion_body(req)
        text, reason = "", "cancelled"
        chunks = 0
        first = 0.0
        deadline = float("inf")
        server: dict[str, Any] = {}
        outcome = "complete"
        try:
            with contextlib.closing(self._conn.stream(path, body, req.cancel)) as events:
                for event in events:
                    delta, finish = self._read_event(event, path, server)
                    if delta and not first:
                        first = time.perf_counter()
                        if req.time_budget_ms > 0:
                            deadline = first + req.time_budget_ms / 1000
                    if delta:
                        text += delta
                        chunks += 1
                        cut = req.stop(text)
                        if cut is not None:
                            text, reason, outcome = text[:cut], "stop", "cut"
                            break
                        if "\n" in text and time.perf_counter() > deadline:
                            text, reason, outcome = text[: text.rindex("\n")], "time", "cut"
                            break
                    if finish is not None:
                        reason = finish
                if reason == "cancelled" and not req.cancel.is_set():
                    reason = "eog"  # the stream ended without saying why
        except Cancelled:
            reason, outcome = "cancelled", "cancelled"
        except HttpError as exc:
            if req.cancel.is_set():
                reason, outcome = "cancelled", "cancelled"
            else:
                self._fail(exc, path)
        if req.cancel.is_set() and outcome != "cut":
            reason, outcome = "cancelled", "cancelled"
        now = time.perf_counter()
        first_ms = (first - started) * 1000 if first else 0.0
        if outcome == "cancelled" and not first:
            self.stats.cancelled_early()
        else:
            self.stats.answered(first_ms, (now - started) * 1000, outcome)
        prompt_tokens = _int(server.get("prompt_tokens")) or len(req.prompt)
        costed = "cached_tokens" in server  # the server said what it had cached
        reused = min(_int(server.get("cached_tokens")), prompt_tokens)
        tokens = tuple(self.tokenize(text)) if self.exact and text else ()
        generated = _int(server.get("completion_tokens")) or max(chunks, len(tokens))
        return GenerationResult(
            text=text,
            stop_reason=reason,
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
            evaluated_tokens=prompt_tokens - reused if costed else 0,
            generated_tokens=generated,
            prompt_ms=first_ms,
            first_token_ms=first_ms,
            total_ms=(now - started) * 1000,
            tokens=tokens,
            costed=costed,
        )

    def prefill(
        self,
        prompt: Sequence[int],
        block: tuple[int, int] | None,
        document: str | None,
        documents: int,
        cancel: threading.Event,
        chunk: int = 0,
    ) -> int:
        """Have the server evaluate a prompt into its cache (one token generated).

        With ``infill`` the server lays out its own prompt, which this one would not
        match: nothing is sent.
        """
        if self.remote.kind == "infill" or not prompt:
            return 0
        result = self.generate(
            Generation(prompt=prompt, max_tokens=1, stop=lambda text: None, cancel=cancel)
        )
        return 0 if result.cancelled else result.evaluated_tokens

    def forget(self, document: str) -> None:
        """The server keeps no per-document state of ours."""

    def check(self) -> None:
        """Ask the server whether it is there (``/v1/models``); raise EngineUnavailable if not."""
        try:
            self._conn.get_json("/v1/models")
        except HttpError as exc:
            if exc.kind == "status" and exc.status == 404:
                return  # it answers, just not this
            raise EngineUnavailable(_unavailable(exc, self.remote)) from None

    def stats_json(self) -> dict[str, object]:
        """The server's share of ``fimls/stats``."""
        return {
            "kind": self.remote.kind,
            "url": self.info.path,
            "server": self.facts.flavor,
            "model": self.facts.model,
            "tokenCounts": "exact" if self.exact else "approximate",
            "connections": self._conn.connects,
            **self.stats.to_json(),
        }

    def close(self) -> None:
        """Close the connection and free the local vocabulary."""
        self._conn.close()
        self.vocab.model.close()

    # -- protocols --------------------------------------------------------------------

    def _sampling(self, req: Generation) -> dict[str, Any]:
        s = req.sampling
        body: dict[str, Any] = {"temperature": s.temperature, "seed": s.seed}
        if s.temperature > 0:
            body["top_p"] = s.top_p
            if self.facts.flavor != "openai":
                body["top_k"] = s.top_k
        if self.facts.flavor in ("llama-server", "llama-cpp-python"):
            # their defaults add samplers the local engine does not have (llama-cpp-python:
            # repeat_penalty 1.1, min_p 0.05): the same answers need them off
            body["repeat_penalty"] = 1.0
            body["min_p"] = 0.0
        if req.banned_first and self.can_ban:
            body["logit_bias"] = {str(t): -100 for t in sorted(req.banned_first)}
        return body

    def _prompt(self, prompt: Sequence[int]) -> str | list[int]:
        """The prompt as the server should read it.

        Token ids where the server takes them and has our vocabulary (llama-server,
        vLLM): exactly what the local model would evaluate, and text from the document
        can never turn into control tokens. Text otherwise, which the server tokenizes
        with its special tokens parsed: a document that spells one out (``<|fim_middle|>``)
        gets it as a token there.
        """
        ids_taken = self.facts.flavor in ("llama-server", "vllm")
        if ids_taken and self.exact and all(0 <= t < self.vocab.n_vocab for t in prompt):
            # the server adds BOS to text, not to ids: add it where the model wants one
            return self.vocab.bos + list(prompt)
        return self._text(prompt)

    def _completion_body(self, req: Generation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": self._prompt(req.prompt),
            "max_tokens": req.max_tokens,
            "stream": True,
            **self._sampling(req),
        }
        if self.facts.model:
            body["model"] = self.facts.model
        if self._stops:
            body["stop"] = self._stops
        if self.facts.flavor == "llama-server":
            # timings in every event: a stream fimls cuts early still says what was reused
            body["cache_prompt"] = True
            body["timings_per_token"] = True
        if self.facts.flavor == "vllm":
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        return body

    def _infill_body(self, req: Generation, parts: FimParts) -> dict[str, Any]:
        body: dict[str, Any] = {
            "input_prefix": parts.prefix,
            "input_suffix": parts.suffix,
            "prompt": parts.middle,
            "input_extra": [{"filename": path, "text": text} for path, text in parts.files],
            "n_predict": req.max_tokens,
            "stream": True,
            "cache_prompt": True,
            "timings_per_token": True,
            **self._sampling(req),
        }
        if self._stops:
            body["stop"] = self._stops
        return body

    def _read_event(self, event: Any, path: str, server: dict[str, Any]) -> tuple[str, str | None]:
        """The text an event adds and the finish reason it gives; raise HttpError on garbage."""
        where = self._conn.endpoint.url + path
        if not isinstance(event, dict):
            raise HttpError("garbage", f"{where}: an event that is not an object")
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise HttpError("status", f"{where}: error in the answer: {message}")
        _note_usage(event, server)
        if path == "/infill" or "content" in event and "choices" not in event:
            content = event.get("content")
            if not isinstance(content, str):
                raise HttpError("garbage", f"{where}: an event without text")
            finish = None
            if event.get("stop") is True:
                kind = event.get("stop_type")
                finish = "max-tokens" if kind == "limit" else "eog"
            return content, finish
        choices = event.get("choices")
        if not isinstance(choices, list):
            raise HttpError("garbage", f"{where}: an event without choices")
        if not choices:
            return "", None  # a usage-only event
        choice = choices[0]
        text = choice.get("text") if isinstance(choice, dict) else None
        if not isinstance(text, str):
            raise HttpError("garbage", f"{where}: a choice without text")
        reason = choice.get("finish_reason")
        finish = None
        if reason == "length":
            finish = "max-tokens"
        elif reason is not None:
            finish = "eog"
        return text, finish

    def _fail(self, exc: HttpError, path: str) -> NoReturn:
        self.stats.failed(exc.kind, str(exc))
        if exc.kind == "status" and exc.status in (400, 413, 422):
            log.warning("engine refused a request: %s", exc)
            raise EngineRequestError(str(exc)) from None
        raise EngineUnavailable(_unavailable(exc, self.remote, path)) from None


def _unavailable(exc: HttpError, remote: EngineSettings, path: str = "") -> str:
    """The status message for a server that cannot serve."""
    if exc.kind == "status" and exc.status in (401, 403):
        return f"{exc} (is the API key in ${remote.api_key_env} right?)"
    if exc.kind == "status" and exc.status == 404 and path:
        hint = (
            "llama-server's /infill: set fimls.engine.kind to openai for other servers"
            if path == "/infill"
            else f"{path}: is fimls.engine.url the server's base URL?"
        )
        return f"{exc} ({hint})"
    return str(exc)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _note_usage(event: dict[str, Any], server: dict[str, Any]) -> None:
    """Keep what an event says of the prompt: tokens, and those the server had cached."""
    usage = event.get("usage")
    if isinstance(usage, dict):
        for key in ("prompt_tokens", "completion_tokens"):
            if _int(usage.get(key)):
                server[key] = usage[key]
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and _int(details.get("cached_tokens")):
            server["cached_tokens"] = details["cached_tokens"]
    timings = event.get("timings")
    if isinstance(timings, dict):  # llama-server: cache_n reused, prompt_n evaluated
        cached, evaluated = _int(timings.get("cache_n")), _int(timings.get("prompt_n"))
        if cached or evaluated:
            server["cached_tokens"] = cached
            server["prompt_tokens"] = cached + evaluated
        if _int(timings.get("predicted_n")):
            server["completion_tokens"] = timings["predicted_n"]


# -- connect -------------------------------------------------------------------------


def _ask_server(conn: Connection, remote: EngineSettings) -> ServerFacts:
    """What the server serves: ``/v1/models``, and llama-server's ``/props``."""
    try:
        listing = conn.get_json("/v1/models")
    except HttpError as exc:
        if not (exc.kind == "status" and exc.status == 404):
            raise EngineUnavailable(_unavailable(exc, remote)) from None
        listing = None
    models = listing.get("data") if isinstance(listing, dict) else None
    entries = [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
    ids = [str(m.get("id")) for m in entries if m.get("id")]
    model = remote.model or (ids[0] if ids else None)
    if remote.model and ids and remote.model not in ids:
        log.warning("the server lists %s, not %s; asking for it anyway", ", ".join(ids), model)
    entry = next((m for m in entries if m.get("id") == model), {})
    n_ctx = _int(entry.get("max_model_len"))  # vLLM
    flavor = "vllm" if n_ctx or entry.get("owned_by") == "vllm" else "openai"
    if entry.get("owned_by") == "me":
        flavor = "llama-cpp-python"
    label = model or ""
    chat_template, bos, eos = None, "", ""
    try:
        props = conn.get_json("/props")
    except HttpError:
        props = None
    if isinstance(props, dict) and "default_generation_settings" in props:
        flavor = "llama-server"
        settings = props.get("default_generation_settings")
        if isinstance(settings, dict):
            n_ctx = _int(settings.get("n_ctx")) or n_ctx
        template = props.get("chat_template")
        chat_template = template if isinstance(template, str) and template else None
        bos = str(props.get("bos_token") or "")
        eos = str(props.get("eos_token") or "")
        path = props.get("model_path")
        if isinstance(path, str) and path and Path(path).name not in label:
            label = f"{label} {Path(path).name}".strip()
    meta = entry.get("meta")
    if isinstance(meta, dict) and not n_ctx:
        n_ctx = _int(meta.get("n_ctx_train"))
    label = label or remote.url or ""
    return ServerFacts(flavor, model, label, n_ctx or None, chat_template, bos, eos)


def _remote_tokenizer(conn: Connection, facts: ServerFacts) -> Callable[[str], list[int]] | None:
    """A function that tokenizes on the server (special tokens parsed), if it can."""
    model = facts.model
    tries: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        (
            "/tokenize",  # llama-server ("content") and vLLM ("prompt")
            lambda text: {
                "content": text,
                "prompt": text,
                "add_special": False,
                "parse_special": True,
                "add_special_tokens": False,
                **({"model": model} if model else {}),
            },
        ),
        ("/extras/tokenize", lambda text: {"input": text, **({"model": model} if model else {})}),
    ]
    if facts.flavor == "llama-cpp-python":
        tries.reverse()
    for path, body in tries:
        try:
            empty = _tokens(conn.post_json(path, body("")))
            probe = _tokens(conn.post_json(path, body("a")))
        except HttpError as exc:
            if exc.kind in ("status", "garbage"):
                continue
            raise EngineUnavailable(str(exc)) from None
        if empty is None or probe is None or probe[: len(empty)] != empty:
            continue
        skip = len(empty)  # a BOS the endpoint adds whatever it is asked

        def tokenize(text: str, path: str = path, body: Any = body, skip: int = skip) -> list[int]:
            try:
                tokens = _tokens(conn.post_json(path, body(text)))
            except HttpError as exc:
                raise EngineUnavailable(str(exc)) from None
            if tokens is None:
                raise EngineUnavailable(f"{conn.endpoint.url}{path}: no tokens in the answer")
            return tokens[skip:]

        log.debug("the server tokenizes at %s", path)
        return tokenize
    return None


def _tokens(answer: Any) -> list[int] | None:
    tokens = answer.get("tokens") if isinstance(answer, dict) else None
    if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens):
        return tokens
    return None


def _detect(
    facts: ServerFacts, tokenize: Callable[[str], list[int]] | None, requested: str | None
) -> Detection:
    """The template: the setting, else the server's vocabulary, else the model's name.

    ``fimls.model.template`` wins when set; the model's name decides only for a server
    that does not tokenize.
    """
    templates = load_templates()
    cache: dict[str, bool] = {}

    def single(text: str) -> bool:
        if tokenize is None:
            return True  # unknown: the name decides
        if text not in cache:
            cache[text] = len(tokenize(text)) == 1
        return cache[text]

    model_facts = ModelFacts(name=facts.label, is_single=single)
    if tokenize is None and not requested:
        label = facts.label.lower()
        named = [t for t in templates.values() if any(n in label for n in t.detect_names)]
        if not named:
            known = ", ".join(sorted(templates))
            raise TemplateError(
                f"cannot tell the FIM template of {facts.label!r}: the server does not "
                f"tokenize and the name matches no family; set fimls.model.template to one "
                f"of: {known}"
            )
    detection = detect_template(templates, model_facts, requested)
    if tokenize is None and not requested:
        return Detection(detection.template, "the model's name (the server does not tokenize)")
    return detection


def _local_vocab(path: str | None, template: FimTemplate) -> TextVocab:
    """The vocabulary that counts tokens: ``fimls.model.path``'s GGUF, else the embedded one."""
    preset = model_store.PRESETS.get(path or model_store.QWEN_05B.name)
    if preset is not None:
        file = model_store.ensure_embedded_model(preset, None)
    else:
        assert path is not None
        file = model_store.check_user_model(path)
    init_backend()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    try:
        model = internals.LlamaModel(path_model=str(file), params=params, verbose=False)
    except (ValueError, OSError) as exc:
        raise ModelError(f"cannot read the vocabulary of {file}: {exc}") from None
    special = special_tokens(template)
    if template.chat is not None:
        for pattern in (template.chat.system, template.chat.user):
            special += markers(pattern)
        special += list(template.chat.stop)
    return TextVocab(model, special)


def _same_vocabulary(
    vocab: TextVocab, tokenize: Callable[[str], list[int]], template: FimTemplate
) -> bool:
    """Whether the server's tokenizer gives the local vocabulary's ids."""
    try:
        if tokenize(PROBE_TEXT) != vocab.tokenize(PROBE_TEXT):
            return False
        return all(tokenize(m) == [vocab.id_of(m)] for m in markers(template.fim))
    except EngineUnavailable:
        return False
