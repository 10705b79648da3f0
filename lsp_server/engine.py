"""The one llama.cpp model of the server: load it, tokenize, and generate with KV reuse.

An :class:`Engine` is not thread-safe; :class:`lsp_server.worker.ModelWorker` owns it and
calls it from a single thread. Generation keeps what :func:`lsp_server.reuse.plan_reuse`
says of the previous prompt's KV cells (the common prefix, and cells moved to new
positions, assembled in the spare one of two sequences that share one unified cache),
evaluates the rest in batches (checking for cancellation between them), then decodes
one token at a time, checking cancellation, the caller's stop rule and the time budget
after every token. The KV states of recently used other documents are kept in memory
and loaded again when their document comes back.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp
from llama_cpp import _internals as internals

from lsp_server import memory, model_store
from lsp_server.chat import ChatTemplate
from lsp_server.context import TokenCounter
from lsp_server.errors import ModelError
from lsp_server.generation import (
    ACTION_DOCUMENT,
    EngineConfig,
    Generation,
    GenerationResult,
    ModelInfo,
    Sampling,
)
from lsp_server.prompts import (
    BoundTemplate,
    Detection,
    FimTemplate,
    bind_template,
    detect_template,
    load_templates,
    model_facts,
)
from lsp_server.reuse import ReusePlan, common_prefix, plan_reuse

log = logging.getLogger(__name__)
llama_log = logging.getLogger("lsp_server.llama_cpp")


@dataclass(frozen=True)
class _SavedState:
    """A document's KV cells (llama.cpp's sequence state) and the tokens they hold."""

    tokens: list[int]
    block: tuple[int, int] | None
    data: bytes


class _LlamaLog:
    """Route llama.cpp's log lines into Python logging (never to stdout).

    The last error lines are kept so that a failed load can say why.
    """

    # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line
    LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}

    def __init__(self) -> None:
        self.errors: deque[str] = deque(maxlen=8)
        self._level = logging.DEBUG
        self._partial = ""
        self._callback = llama_cpp.llama_log_callback(self._on_log)

    def install(self) -> None:
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))

    def _on_log(self, level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        if level != 5:  # 5 continues the previous line
            self._level = self.LEVELS.get(level, logging.DEBUG)
        self._partial += text.decode("utf-8", "replace")
        if not self._partial.endswith("\n"):
            return
        line, self._partial = self._partial.rstrip(), ""
        if not line:
            return
        if self._level >= logging.ERROR:
            self.errors.append(line)
        # llama.cpp is chatty: its info goes to our DEBUG, its warnings (mostly notes about
        # the model file) to our INFO; its errors stay errors.
        level = {logging.WARNING: logging.INFO, logging.ERROR: logging.ERROR}.get(
            self._level, logging.DEBUG
        )
        llama_log.log(level, "%s", line)


_LOG = _LlamaLog()
_LOG.install()
_BACKEND = threading.Lock()
_backend_ready = False


def init_backend() -> None:
    """Initialize llama.cpp's backend once per process."""
    global _backend_ready
    with _BACKEND:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


def _utf8_prefix(data: bytes) -> str:
    """Decode bytes, leaving out a multi-byte character that is not complete yet."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8", "replace")
        return data.decode("utf-8", "replace")


def ends_generation(vocab: llama_cpp.llama_vocab_p, stop_ids: frozenset[int], token: int) -> bool:
    """Whether a token ends a generation: a stop token, end-of-generation or a control token."""
    return (
        token in stop_ids
        or bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        or bool(llama_cpp.llama_vocab_is_control(vocab, token))
    )


def vocab_end_ids(model: internals.LlamaModel, stop_ids: frozenset[int]) -> frozenset[int]:
    """Every token of a vocabulary that ends a generation (0.2 s for 150k tokens)."""
    vocab = model.vocab
    return frozenset(t for t in range(model.n_vocab()) if ends_generation(vocab, stop_ids, t))


def vocab_line_break_ids(model: internals.LlamaModel) -> frozenset[int]:
    """Every token whose text starts with a line break, spaces before it included."""
    found = set()
    for t in range(model.n_vocab()):
        piece = model.token_to_piece(t, special=False).lstrip(b" \t")
        if piece[:1] in (b"\n", b"\r"):
            found.add(t)
    return frozenset(found)


def choose_template(
    model: internals.LlamaModel, fallback_name: str, requested: str | None
) -> tuple[str, Detection, BoundTemplate]:
    """The model's name, its detected template and that template bound to its vocabulary.

    Needs only the vocabulary: works on a model loaded with ``vocab_only``.
    """

    def tokenize(text: str, special: bool) -> list[int]:
        return list(model.tokenize(text.encode("utf-8"), False, special))

    def token_text(token: int) -> str | None:
        return model.token_get_text(token) if 0 <= token < model.n_vocab() else None

    def single(text: str) -> bool:
        return len(tokenize(text, True)) == 1

    facts = model_facts(model.metadata(), fallback_name, single, token_text)
    detection = detect_template(load_templates(), facts, requested)
    bos = [model.token_bos()] if model.add_bos_token() and model.token_bos() >= 0 else []
    return facts.name, detection, bind_template(detection.template, tokenize, bos)


def chat_template(model: internals.LlamaModel, template: FimTemplate) -> ChatTemplate:
    """The model's instruction format: the GGUF's chat template, else the family's."""

    def text(token: int) -> str:
        return model.token_get_text(token) if 0 <= token < model.n_vocab() else ""

    jinja = model.metadata().get("tokenizer.chat_template") or None
    return ChatTemplate(jinja, template.chat, text(model.token_bos()), text(model.token_eos()))


class Engine:
    """A loaded model and its context."""

    def __init__(
        self,
        model: internals.LlamaModel,
        ctx: internals.LlamaContext,
        template: BoundTemplate,
        info: ModelInfo,
        n_batch: int,
        chat: ChatTemplate | None = None,
    ) -> None:
        self._model = model
        self._ctx = ctx
        self._vocab = model.vocab
        self.template = template
        #: the instruction format of code actions
        self.chat = chat or ChatTemplate(None, template.template.chat)
        self.info = info
        self.n_ctx = info.n_ctx
        self._n_batch = n_batch
        self._batch = internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._n_vocab = model.n_vocab()
        self._mem = llama_cpp.llama_get_memory(ctx.ctx)
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._mem))
        # The live state: the sequence in use (0 or 1: a moved block is built in the
        # other one), the tokens its KV cells hold by position, the previous prompt's
        # movable block, and the document it was for.
        self._seq = 0
        self._kv: list[int] = []
        self._block: tuple[int, int] | None = None
        self._document: str | None = None
        #: Other documents' KV states, least recently used first.
        self._saved: OrderedDict[str, _SavedState] = OrderedDict()
        self._greedy = internals.LlamaSampler()
        self._greedy.add_greedy()
        #: Token count of a piece of text, cached (lines repeat between keystrokes).
        self.count_tokens = TokenCounter(self.tokenize)

    @classmethod
    def load(cls, config: EngineConfig, progress: model_store.ProgressFn | None = None) -> Engine:
        """Obtain, verify and load the model; raise ModelError or TemplateError."""
        started = time.perf_counter()
        preset = model_store.PRESETS.get(config.path or model_store.QWEN_05B.name)
        if preset is not None:  # a preset's name always means the preset, never a file
            path, embedded = model_store.ensure_embedded_model(preset, progress), True
        else:
            assert config.path is not None
            path, embedded = model_store.check_user_model(config.path), False
        for warning in memory.check_fits(path):
            log.warning("%s", warning)
        init_backend()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        _LOG.errors.clear()
        try:
            model = internals.LlamaModel(path_model=str(path), params=model_params, verbose=True)
        except (ValueError, OSError) as exc:
            why = "; ".join(_LOG.errors) or str(exc)
            raise ModelError(f"cannot load model {path}: {why}") from exc
        n_ctx = min(config.n_ctx, model.n_ctx_train()) if model.n_ctx_train() > 0 else config.n_ctx
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        ctx_params.n_batch = config.n_batch
        ctx_params.n_ubatch = config.n_batch
        ctx_params.n_threads = config.threads
        ctx_params.n_threads_batch = config.threads
        # two sequences sharing one cache: a moved block is assembled in the spare one
        ctx_params.n_seq_max = 2
        ctx_params.kv_unified = True
        ctx_params.no_perf = True
        try:
            ctx = internals.LlamaContext(model=model, params=ctx_params, verbose=True)
        except (ValueError, OSError) as exc:
            model.close()
            why = "; ".join(_LOG.errors) or str(exc)
            raise ModelError(f"cannot create a context for {path}: {why}") from exc

        try:
            name, detection, bound = choose_template(model, path.stem, config.template)
            template = detection.template
        except BaseException:
            ctx.close()
            model.close()
            raise
        info = ModelInfo(
            name=name,
            description=model.desc(),
            path=str(path),
            size_bytes=path.stat().st_size,
            embedded=embedded,
            template=template.name,
            order=template.order,
            template_reason=detection.reason,
            n_ctx=n_ctx,
            threads=config.threads,
            load_seconds=time.perf_counter() - started,
        )
        log.info(
            "loaded %s (%s) from %s in %.2f s", name, info.description, path, info.load_seconds
        )
        return cls(model, ctx, bound, info, config.n_batch, chat_template(model, template))

    #: banned first tokens are honoured, and the prompt is given as token ids
    can_ban = True
    wants_parts = False

    def check(self) -> None:
        """The in-process model is always there once loaded."""

    def stats_json(self) -> dict[str, object] | None:
        """Nothing beyond what ``fimls/stats`` reports of every engine."""
        return None

    def close(self) -> None:
        """Free the context and the model."""
        self._greedy.close()
        self._batch.close()
        self._ctx.close()
        self._model.close()

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Tokenize text without BOS; special tokens are parsed only when asked."""
        if not text:
            return []
        return list(self._model.tokenize(text.encode("utf-8"), False, special))

    def chat_prompt(self, system: str, user: str) -> list[int]:
        """An instruction prompt's tokens (BOS, then the chat template with the messages).

        Raises ValueError when the model has no instruction format.
        """
        return list(self.template.bos) + self.chat.tokens(system, user, self.tokenize)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Return the text of tokens, special tokens included."""
        return self._model.detokenize(list(tokens), special=True).decode("utf-8", "replace")

    def segments(self, tokens: Sequence[int]) -> list[tuple[bool, str]]:
        """The text of tokens in runs, each marked as special (control) tokens or not."""
        runs: list[tuple[bool, list[int]]] = []
        for token in tokens:
            special = bool(llama_cpp.llama_vocab_is_control(self._vocab, token))
            if runs and runs[-1][0] == special:
                runs[-1][1].append(token)
            else:
                runs.append((special, [token]))
        return [(special, self.detokenize(ids)) for special, ids in runs]

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens the live KV cells hold, by position (a copy, for tests and stats)."""
        return list(self._kv)

    def cache_positions(self) -> tuple[int, int]:
        """The live sequence's lowest and highest KV position (-1, -1 when empty)."""
        return (
            llama_cpp.llama_memory_seq_pos_min(self._mem, self._seq),
            llama_cpp.llama_memory_seq_pos_max(self._mem, self._seq),
        )

    def generate(self, req: Generation) -> GenerationResult:
        """Evaluate the prompt (reusing the KV cache) and generate until a stop."""
        started = time.perf_counter()
        prompt = list(req.prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) >= self.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens does not fit n_ctx {self.n_ctx}")
        filled = self._fill(
            prompt,
            req.block,
            document=req.document,
            documents=req.documents,
            shift=req.shifted_reuse,
            chunk=req.chunk,
            cancel=req.cancel,
            limit=req.evaluate_limit,
        )
        if filled is None:
            return GenerationResult(
                text="",
                stop_reason="skipped",
                prompt_tokens=len(prompt),
                reused_tokens=0,
                evaluated_tokens=0,
                generated_tokens=0,
                prompt_ms=0.0,
                first_token_ms=0.0,
                total_ms=(time.perf_counter() - started) * 1000,
            )
        kept, restored, reused, evaluated = filled
        prompt_done = time.perf_counter()
        text, reason, first_token = "", "cancelled", prompt_done
        tokens: list[int] = []
        generated = 0
        if len(self._kv) >= len(prompt):
            text, reason, tokens, first_token = self._complete(req, len(prompt))
            generated = len(tokens) + (reason == "eog")
        now = time.perf_counter()
        return GenerationResult(
            text=text,
            stop_reason=reason,
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            evaluated_tokens=evaluated,
            generated_tokens=generated,
            prompt_ms=(prompt_done - started) * 1000,
            first_token_ms=(first_token - started) * 1000,
            total_ms=(now - started) * 1000,
            tokens=tuple(tokens),
            shifted_tokens=reused - kept,
            restored=restored,
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
        """Evaluate a prompt into the KV cache without generating (warm-up).

        Returns how many tokens were evaluated.
        """
        tokens = list(prompt)[: self.n_ctx - 1]
        filled = self._fill(
            tokens,
            block,
            document=document,
            documents=documents,
            shift=False,
            chunk=chunk,
            cancel=cancel,
        )
        return filled[3] if filled is not None else 0  # None only with a limit

    def _fill(
        self,
        prompt: list[int],
        block: tuple[int, int] | None,
        *,
        document: str | None,
        documents: int,
        shift: bool,
        chunk: int,
        cancel: threading.Event,
        limit: int = 0,
    ) -> tuple[int, bool, int, int] | None:
        """Bring a prompt into the KV cache: the document's state, then the reuse plan.

        Returns (common prefix kept, document state restored, tokens reused, tokens
        evaluated), or None, the cache untouched past the document switch, when more
        than ``limit`` tokens (0: no limit) would have to be evaluated.
        """
        restored = self._switch_document(document, prompt, documents)
        chunk = min(chunk or self._n_batch, self._n_batch)
        plan = plan_reuse(
            self._kv,
            self._block,
            prompt,
            block,
            shift=shift and self._can_shift,
            max_gap=chunk,
            capacity=self.n_ctx - 1,
        )
        if limit and len(prompt) - plan.reused > limit:
            return None
        gap = self._carry_out(plan, prompt)
        reused = len(self._kv) - gap  # the kv holds a prefix of the prompt now
        evaluated = gap + self._evaluate(prompt, len(self._kv), cancel, chunk)
        self._block = block if block and len(self._kv) >= block[1] else None
        return plan.keep, restored, reused, evaluated

    def _carry_out(self, plan: ReusePlan, prompt: list[int]) -> int:
        """Arrange the KV cells as the plan says; return how many gap tokens were evaluated.

        Afterwards the live cells hold a prefix of the prompt (``self._kv``).
        """
        self._block = None
        if not plan.moves:
            self._truncate(plan.keep)
            return 0
        seq, other = self._seq, 1 - self._seq
        mem = self._mem
        # The kept prefix is shared with the spare sequence (a unified cache copies no
        # data); the live one keeps only the cells that move. In order, each gap is
        # evaluated into the spare sequence, then the next cells move and join it.
        llama_cpp.llama_memory_seq_rm(mem, other, -1, -1)
        llama_cpp.llama_memory_seq_cp(mem, seq, other, 0, plan.keep)
        edge = 0
        for start, end, _new in plan.moves:
            llama_cpp.llama_memory_seq_rm(mem, seq, edge, start)
            edge = end
        llama_cpp.llama_memory_seq_rm(mem, seq, edge, -1)
        kv = list(prompt[: plan.keep])
        evaluated = 0
        try:
            for (gap_start, gap_end), (start, end, new) in zip(plan.gaps, plan.moves, strict=True):
                gap = prompt[gap_start:gap_end]
                if gap:
                    self._decode_into(other, gap, gap_start)
                    kv += gap
                    evaluated += len(gap)
                llama_cpp.llama_memory_seq_add(mem, seq, start, end, new - start)
                llama_cpp.llama_memory_seq_cp(mem, seq, other, new, new + end - start)
                llama_cpp.llama_memory_seq_rm(mem, seq, new, new + end - start)
                kv += self._kv[start:end]
        except RuntimeError:
            kv = []  # the failed decode cleared the whole cache
            raise
        finally:
            llama_cpp.llama_memory_seq_rm(mem, seq, -1, -1)
            self._seq = other
            self._kv = kv
        return evaluated

    def _truncate(self, keep: int) -> None:
        """Drop the live sequence's cells from position ``keep`` on."""
        if keep < len(self._kv):
            if not llama_cpp.llama_memory_seq_rm(self._mem, self._seq, keep, -1):
                llama_cpp.llama_memory_seq_rm(self._mem, self._seq, -1, -1)
                keep = 0
            del self._kv[keep:]

    def _switch_document(self, document: str | None, prompt: list[int], keep: int) -> bool:
        """Save the live KV state of another document and load this one's, if it helps.

        Returns True when the document's saved state was loaded.
        """
        if document is None or document == self._document:
            self._document = document
            return False
        if keep > 0 and self._document not in (None, ACTION_DOCUMENT) and self._kv:
            self._save(self._document)
        saved = self._saved.pop(document, None)
        while len(self._saved) > keep:
            self._saved.popitem(last=False)
        self._document = document
        if saved is None or common_prefix(saved.tokens, prompt) <= common_prefix(self._kv, prompt):
            return False
        return self._restore(saved)

    def _save(self, document: str) -> None:
        size = llama_cpp.llama_state_seq_get_size(self._ctx.ctx, self._seq)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buffer, size, self._seq)
        if written <= 0:
            return
        self._saved[document] = _SavedState(
            list(self._kv), self._block, bytes(memoryview(buffer)[:written])
        )
        self._saved.move_to_end(document)

    def _restore(self, saved: _SavedState) -> bool:
        llama_cpp.llama_memory_seq_rm(self._mem, self._seq, -1, -1)
        self._kv, self._block = [], None
        data = (ctypes.c_uint8 * len(saved.data)).from_buffer_copy(saved.data)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, data, len(saved.data), self._seq) <= 0:
            llama_cpp.llama_memory_seq_rm(self._mem, self._seq, -1, -1)
            return False
        self._kv, self._block = list(saved.tokens), saved.block
        return True

    def forget(self, document: str) -> None:
        """Drop a closed document's saved KV state."""
        self._saved.pop(document, None)

    @property
    def saved_documents(self) -> list[str]:
        """Documents whose KV state is kept in memory, least recently used first."""
        return list(self._saved)

    @property
    def saved_bytes(self) -> int:
        """Memory taken by the saved KV states."""
        return sum(len(s.data) for s in self._saved.values())

    def _evaluate(self, prompt: list[int], start: int, cancel: threading.Event, size: int) -> int:
        """Decode prompt[start:] in chunks of ``size``; return how many tokens were decoded."""
        pos = start
        while pos < len(prompt) and not cancel.is_set():
            chunk = prompt[pos : pos + size]
            self._decode(chunk, pos)
            pos += len(chunk)
        return pos - start

    def _complete(self, req: Generation, pos: int) -> tuple[str, str, list[int], float]:
        """Sample tokens after the prompt; return (text, reason, tokens, first-token time)."""
        sampler = self._sampler(req.sampling)
        first = self._sampler(req.sampling, req.banned_first) if req.banned_first else sampler
        out = bytearray()
        text = ""
        tokens: list[int] = []
        first_token = time.perf_counter()
        deadline = float("inf")
        try:
            while not req.cancel.is_set():
                token = (first if not tokens else sampler).sample(self._ctx, -1)
                if not tokens:
                    first_token = time.perf_counter()
                    if req.time_budget_ms > 0:
                        deadline = first_token + req.time_budget_ms / 1000
                if self._ends_generation(token):
                    return text, "eog", tokens, first_token
                tokens.append(token)
                out += self._model.token_to_piece(token, special=False).rstrip(b"\0")
                text = _utf8_prefix(bytes(out))
                cut = req.stop(text)
                if cut is not None:
                    return text[:cut], "stop", tokens, first_token
                if len(tokens) >= req.max_tokens:
                    return text, "max-tokens", tokens, first_token
                if pos >= self.n_ctx:
                    return text, "context-full", tokens, first_token
                if "\n" in text and time.perf_counter() > deadline:
                    return text[: text.rindex("\n")], "time", tokens, first_token
                self._decode([token], pos)
                pos += 1
            return text, "cancelled", tokens, first_token
        finally:
            for s in {sampler, first}:
                if s is not self._greedy:
                    s.close()

    def warm(self) -> None:
        """Compute the vocabulary tables that retries need (0.4 s for 150k tokens)."""
        _ = self.end_ids, self.line_break_ids

    @functools.cached_property
    def end_ids(self) -> frozenset[int]:
        """Every token that ends a generation (stop, end-of-generation and control tokens)."""
        return vocab_end_ids(self._model, self.template.stop_ids)

    @functools.cached_property
    def line_break_ids(self) -> frozenset[int]:
        """Every token whose text starts with a line break, spaces before it included."""
        return vocab_line_break_ids(self._model)

    def _ends_generation(self, token: int) -> bool:
        return ends_generation(self._vocab, self.template.stop_ids, token)

    def _decode(self, tokens: Sequence[int], pos: int) -> None:
        self._decode_into(self._seq, tokens, pos)
        self._kv.extend(tokens)

    def _decode_into(self, seq: int, tokens: Sequence[int], pos: int) -> None:
        self._batch.set_batch(batch=tokens, n_past=pos, logits_all=False)
        for i in range(len(tokens)):
            self._batch.batch.seq_id[i][0] = seq
        try:
            self._ctx.decode(self._batch)
        except RuntimeError:
            # A failed decode leaves the cache in an unknown state: start afresh next time.
            llama_cpp.llama_memory_clear(self._mem, True)
            self._kv.clear()
            self._block = None
            raise

    def _sampler(
        self, sampling: Sampling, banned: frozenset[int] = frozenset()
    ) -> internals.LlamaSampler:
        if sampling.temperature <= 0 and not banned:
            return self._greedy
        sampler = internals.LlamaSampler()
        if banned:
            sampler.add_logit_bias(self._n_vocab, {t: float("-inf") for t in banned})
        if sampling.temperature <= 0:
            sampler.add_greedy()
            return sampler
        sampler.add_top_k(sampling.top_k)
        sampler.add_top_p(sampling.top_p, 1)
        sampler.add_temp(sampling.temperature)
        sampler.add_dist(sampling.seed)
        return sampler
