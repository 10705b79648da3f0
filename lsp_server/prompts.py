"""FIM templates: load them from ``prompts/``, pick one for a model, render token ids.

A template is data (one TOML file per model family): the FIM pattern with ``{prefix}``
and ``{suffix}``, the stop tokens, and, for families trained on repositories, the
patterns of the repository header, of a context file and of the current file's header.
Rendering never lets document text become special tokens: the patterns' literal pieces
are tokenized with special tokens enabled, the slots (document text, paths) with them
disabled, and the ids are spliced.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from lsp_server.errors import TemplateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_SLOT = re.compile(r"\{(prefix|suffix|repo|path|content|system|user)\}")

#: tokenize(text, special) -> token ids
TokenizeFn = Callable[[str, bool], list[int]]

#: The patterns of a template, with the slots each must contain exactly once.
PATTERNS = {
    "fim": ("prefix", "suffix"),
    "repo_header": ("repo",),
    "repo_file": ("path", "content"),
    "repo_current": ("path",),
    "chat_system": ("system",),
    "chat_user": ("user",),
}


@dataclass(frozen=True)
class Pattern:
    """Literal text with ``{slot}`` placeholders."""

    text: str

    def pieces(self) -> list[tuple[str, str]]:
        """Split into ("literal", text) and ("slot", name) pieces."""
        out: list[tuple[str, str]] = []
        pos = 0
        for m in _SLOT.finditer(self.text):
            if m.start() > pos:
                out.append(("literal", self.text[pos : m.start()]))
            out.append(("slot", m.group(1)))
            pos = m.end()
        if pos < len(self.text):
            out.append(("literal", self.text[pos:]))
        return out

    def literals(self) -> list[str]:
        """The literal pieces, in order."""
        return [v for kind, v in self.pieces() if kind == "literal"]

    def fill(self, **values: str) -> str:
        """The pattern as text, for display."""
        return "".join(values[v] if kind == "slot" else v for kind, v in self.pieces())


@dataclass(frozen=True)
class ChatFormat:
    """An instruction (chat) format: a system turn, a user turn that opens the answer."""

    system: Pattern
    user: Pattern
    stop: tuple[str, ...]

    def render_text(self, system: str, user: str) -> str:
        """The whole prompt as text."""
        return self.system.fill(system=system) + self.user.fill(user=user)


@dataclass(frozen=True)
class FimTemplate:
    """One model family's fill-in-the-middle (and repository) format."""

    name: str
    family: str
    fim: Pattern
    stop: tuple[str, ...]
    detect_tokens: tuple[str, ...]
    detect_names: tuple[str, ...]
    repo_header: Pattern | None = None
    repo_file: Pattern | None = None
    repo_current: Pattern | None = None
    #: The text typed on the cursor line may follow the pattern (after the middle token)
    #: instead of ending the prefix, so that typing within a line only appends tokens.
    line_after_middle: bool = False
    #: general.architecture values of the family's GGUF files (to break a tie)
    detect_architectures: tuple[str, ...] = ()
    #: the instruction format for code actions when the GGUF has no chat template
    chat: ChatFormat | None = None

    @property
    def order(self) -> str:
        """``psm`` when the prefix comes first in the prompt, else ``spm``."""
        text = self.fim.text
        return "psm" if text.index("{prefix}") < text.index("{suffix}") else "spm"

    @property
    def has_repo_format(self) -> bool:
        """Whether the family has a multi-file (repository) prompt format."""
        return None not in (self.repo_header, self.repo_file, self.repo_current)

    def patterns(self) -> dict[str, Pattern]:
        """The template's patterns by name."""
        found = {
            "fim": self.fim,
            "repo_header": self.repo_header,
            "repo_file": self.repo_file,
            "repo_current": self.repo_current,
        }
        return {k: v for k, v in found.items() if v is not None}

    def render_text(self, prefix: str, suffix: str) -> str:
        """The FIM part as text (for display; the engine uses :class:`BoundTemplate`)."""
        return self.fim.fill(prefix=prefix, suffix=suffix)


def prompts_dir() -> Path:
    """Return the directory holding the template files.

    Installed wheels carry it as ``lsp_server/prompts``; a source checkout has it at the
    top level, next to the package.
    """
    packaged = Path(str(resources.files("lsp_server"))) / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "prompts"


@cache
def load_templates(directory: Path | None = None) -> dict[str, FimTemplate]:
    """Load every ``*.toml`` template, keyed by name."""
    directory = directory or prompts_dir()
    templates: dict[str, FimTemplate] = {}
    for path in sorted(directory.glob("*.toml")):
        template = parse_template(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        templates[template.name] = template
    if not templates:
        raise TemplateError(f"no FIM templates found in {directory}")
    return templates


def parse_template(data: Mapping[str, object], source: str) -> FimTemplate:
    """Validate one template file's data."""

    def table(key: str) -> Mapping[str, object]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            raise TemplateError(f"{source}: [{key}] must be a table")
        return value

    def text(tab: Mapping[str, object], key: str, required: bool = True) -> str | None:
        value = tab.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise TemplateError(f"{source}: {key} must be a non-empty string")
        return value

    def strings(tab: Mapping[str, object], key: str) -> tuple[str, ...]:
        value = tab.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise TemplateError(f"{source}: {key} must be a list of non-empty strings")
        return tuple(value)

    def pattern(tab: Mapping[str, object], key: str, kind: str, required: bool) -> Pattern | None:
        raw = text(tab, key, required)
        if raw is None:
            return None
        slots = [v for k, v in Pattern(raw).pieces() if k == "slot"]
        if kind == "repo_current" and not slots:
            return Pattern(raw)  # StarCoder2 leaves the current file's path out
        if sorted(slots) != sorted(PATTERNS[kind]):
            wanted = ", ".join("{" + s + "}" for s in PATTERNS[kind])
            raise TemplateError(f"{source}: {key} must contain {wanted}, each exactly once")
        return Pattern(raw)

    fim, repo, detect, chat = table("fim"), table("repo"), table("detect"), table("chat")
    fim_pattern = pattern(fim, "template", "fim", required=True)
    assert fim_pattern is not None
    name = text(data, "name")
    assert name is not None
    template = FimTemplate(
        name=name,
        family=text(data, "family", required=False) or name,
        fim=fim_pattern,
        stop=strings(fim, "stop"),
        detect_tokens=strings(detect, "tokens"),
        detect_names=tuple(n.lower() for n in strings(detect, "names")),
        repo_header=pattern(repo, "header", "repo_header", required=False),
        repo_file=pattern(repo, "file", "repo_file", required=False),
        repo_current=pattern(repo, "current", "repo_current", required=False),
    )
    if repo and not template.has_repo_format:
        raise TemplateError(f"{source}: [repo] needs header, file and current")
    if chat:
        system = pattern(chat, "system", "chat_system", required=True)
        user = pattern(chat, "user", "chat_user", required=True)
        assert system is not None and user is not None
        chat_format = ChatFormat(system, user, strings(chat, "stop"))
        template = dataclasses.replace(template, chat=chat_format)
    archs = tuple(a.lower() for a in strings(detect, "architectures"))
    template = dataclasses.replace(template, detect_architectures=archs)
    after_middle = fim.get("current_line_after_middle", False)
    if not isinstance(after_middle, bool):
        raise TemplateError(f"{source}: current_line_after_middle must be true or false")
    if after_middle:
        if fim_pattern.pieces()[-1][0] != "literal":
            raise TemplateError(
                f"{source}: current_line_after_middle needs a template that ends with its "
                "middle token"
            )
        template = dataclasses.replace(template, line_after_middle=True)
    return template


_SPECIAL = re.compile(r"▁?<[^<>\s]+>|\[[A-Z_]+\]")


def markers(pattern: Pattern) -> list[str]:
    """The special tokens written in a pattern's literal pieces, in order."""
    return [m for literal in pattern.literals() for m in _SPECIAL.findall(literal)]


def special_tokens(template: FimTemplate) -> list[str]:
    """Every special token string the template relies on (stop tokens and markers)."""
    seen: dict[str, None] = {}
    for pattern in template.patterns().values():
        for marker in markers(pattern):
            seen.setdefault(marker, None)
    for tok in [*template.stop, *template.detect_tokens]:
        seen.setdefault(tok.strip(), None)
    return [t for t in seen if t]


def required_tokens(template: FimTemplate) -> list[str]:
    """The tokens the template cannot do without: FIM markers and identifying tokens."""
    seen = dict.fromkeys([*markers(template.fim), *template.detect_tokens])
    return list(seen)


#: GGUF keys naming a FIM token id, by the role the token plays (llama.cpp's names; the
#: ``prefix/suffix/middle_token_id`` forms are the older ones, still written for Code Llama).
FIM_KEYS = {
    "pre": ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
    "suf": ("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
    "mid": ("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
}


@dataclass(frozen=True)
class ModelFacts:
    """What a model file says that tells its FIM template."""

    name: str  # general.name (else the file name)
    is_single: Callable[[str], bool]  # whether a text is one (special) token
    basename: str = ""  # general.basename
    architecture: str = ""  # general.architecture
    fim_tokens: Mapping[str, str] = dataclasses.field(default_factory=dict)  # role -> text

    def describe(self) -> str:
        """The model as a message names it."""
        arch = f", architecture {self.architecture!r}" if self.architecture else ""
        return f"model {self.name!r}{arch}"


@dataclass(frozen=True)
class Detection:
    """The chosen template and what it was chosen from."""

    template: FimTemplate
    reason: str


def detect_template(
    templates: Mapping[str, FimTemplate], facts: ModelFacts, requested: str | None = None
) -> Detection:
    """Choose the template for a model, or say why none can be chosen.

    In order: the ``requested`` name (``fimls.model.template``); the FIM token ids the
    GGUF names (``tokenizer.ggml.fim_*_token_id``); the templates whose identifying
    tokens are all single tokens of the vocabulary. A tie is broken by the templates
    listing the GGUF's ``general.architecture``, then by the longest of their names found
    in ``general.name``/``general.basename``; what is still a tie is an error, never a
    guess.
    """
    how = "set fimls.model.template to one of: " + ", ".join(sorted(templates))
    if requested:
        if requested not in templates:
            known = ", ".join(sorted(templates))
            raise TemplateError(f"unknown template {requested!r}; known templates: {known}")
        return Detection(templates[requested], "fimls.model.template")
    if facts.fim_tokens:
        wanted = {_bare(text) for text in facts.fim_tokens.values()}
        found = ", ".join(f"{role}={text!r}" for role, text in sorted(facts.fim_tokens.items()))
        fitting = [t for t in templates.values() if wanted <= {_bare(m) for m in markers(t.fim)}]
        reason = f"the GGUF's FIM token ids ({found})"
        if not fitting:
            raise TemplateError(
                f"{facts.describe()} names FIM tokens {found}, which no template in "
                f"prompts/ uses; {how}"
            )
        in_vocabulary = [t for t in fitting if all(map(facts.is_single, t.detect_tokens))]
        if in_vocabulary and len(in_vocabulary) < len(fitting):
            fitting, reason = in_vocabulary, f"{reason} and its vocabulary"
    else:
        fitting = [t for t in templates.values() if all(map(facts.is_single, t.detect_tokens))]
        reason = "the FIM tokens in its vocabulary"
        if not fitting:
            raise TemplateError(
                f"{facts.describe()} has none of the FIM tokens of a known template; {how}"
            )
    if len(fitting) > 1:
        arch = facts.architecture.lower()
        by_arch = [t for t in fitting if arch and arch in t.detect_architectures]
        if by_arch and len(by_arch) < len(fitting):
            fitting, reason = by_arch, f"{reason} and its architecture {arch!r}"
    if len(fitting) > 1:
        label = f"{facts.name} {facts.basename}".lower()
        score = {
            t.name: max((len(n) for n in t.detect_names if n in label), default=0) for t in fitting
        }
        best = max(score.values())
        if best > 0:
            fitting = [t for t in fitting if score[t.name] == best]
            reason = f"{reason} and its name"
    if len(fitting) > 1:
        names = ", ".join(sorted(t.name for t in fitting))
        raise TemplateError(
            f"{facts.describe()} fits several templates ({names}): they use the same FIM "
            f"tokens and its name does not tell them apart; {how}"
        )
    return Detection(fitting[0], reason)


def model_facts(
    metadata: Mapping[str, str],
    fallback_name: str,
    is_single: Callable[[str], bool],
    token_text: Callable[[int], str | None],
) -> ModelFacts:
    """The facts detection needs from a GGUF's metadata and vocabulary."""
    fim: dict[str, str] = {}
    for role, keys in FIM_KEYS.items():
        for key in keys:
            raw = metadata.get(key, "")
            text = token_text(int(raw)) if raw.isdigit() else None
            if text:
                fim[role] = text
                break
    return ModelFacts(
        name=metadata.get("general.name") or fallback_name,
        is_single=is_single,
        basename=metadata.get("general.basename", ""),
        architecture=metadata.get("general.architecture", ""),
        fim_tokens=fim,
    )


def _bare(token: str) -> str:
    """A token's text without SentencePiece's space mark (Code Llama's ``▁<PRE>``)."""
    return token.strip().removeprefix("\u2581")


@dataclass(frozen=True)
class BoundPattern:
    """A pattern with its literal pieces tokenized."""

    pattern: Pattern
    literal_ids: tuple[tuple[int, ...], ...]

    def render(self, **slots: Sequence[int]) -> list[int]:
        """Token ids with the slots' (already tokenized) contents spliced in."""
        return self.render_spans(**slots)[0]

    def render_spans(self, **slots: Sequence[int]) -> tuple[list[int], dict[str, int]]:
        """Token ids, and where each slot's contents end in them."""
        out: list[int] = []
        ends: dict[str, int] = {}
        literals = iter(self.literal_ids)
        for kind, value in self.pattern.pieces():
            out.extend(slots[value] if kind == "slot" else next(literals))
            if kind == "slot":
                ends[value] = len(out)
        return out, ends

    @property
    def overhead(self) -> int:
        """Tokens the pattern adds around its slots."""
        return sum(len(ids) for ids in self.literal_ids)


@dataclass(frozen=True)
class BoundTemplate:
    """A template checked against a vocabulary, with its special tokens as ids."""

    template: FimTemplate
    patterns: Mapping[str, BoundPattern]
    stop_ids: frozenset[int]
    bos: tuple[int, ...]

    def render(self, prefix: Sequence[int], suffix: Sequence[int]) -> list[int]:
        """A whole prompt without repository context: BOS and the FIM part."""
        return [*self.bos, *self.fim(prefix, suffix)]

    def fim(self, prefix: Sequence[int], suffix: Sequence[int]) -> list[int]:
        """The FIM part of a prompt."""
        return self.patterns["fim"].render(prefix=prefix, suffix=suffix)

    def fim_block(self, prefix: Sequence[int], suffix: Sequence[int]) -> tuple[list[int], int]:
        """The FIM part, and where its prefix ends when the suffix follows it (else -1).

        In prefix-suffix-middle order, what follows the prefix (suffix and markers) does
        not change when the user edits the prefix: the engine can keep it in the KV cache
        and shift it (:class:`lsp_server.generation.Generation` ``block``).
        """
        tokens, ends = self.patterns["fim"].render_spans(prefix=prefix, suffix=suffix)
        return tokens, ends["prefix"] if ends["prefix"] < ends["suffix"] else -1

    def repo_header(self, repo: Sequence[int]) -> list[int]:
        """The repository header (only for templates with a repository format)."""
        return self.patterns["repo_header"].render(repo=repo)

    def repo_file(self, path: Sequence[int], content: Sequence[int]) -> list[int]:
        """One context file."""
        return self.patterns["repo_file"].render(path=path, content=content)

    def repo_current(self, path: Sequence[int]) -> list[int]:
        """The header of the file being completed."""
        return self.patterns["repo_current"].render(path=path)

    @property
    def has_repo_format(self) -> bool:
        """Whether repository context can be rendered."""
        return "repo_file" in self.patterns

    @property
    def overhead(self) -> int:
        """Tokens the FIM part adds around the document text (BOS included)."""
        return len(self.bos) + self.patterns["fim"].overhead


def bind_template(
    template: FimTemplate, tokenize: TokenizeFn, bos: Sequence[int] = ()
) -> BoundTemplate:
    """Check the template against a vocabulary; return it with its special tokens as ids.

    The FIM markers and the family's identifying tokens must each be one token of the
    vocabulary, else the template is refused. Stop tokens the vocabulary lacks are left
    out (the model cannot write them), and so is the repository format when one of its
    markers is missing (StarCoder 1 has the FIM tokens of StarCoder 2, not its
    repository tokens).
    """

    def single(text: str) -> int | None:
        got = tokenize(text, True)
        return got[0] if len(got) == 1 else None

    for tok in required_tokens(template):
        got = tokenize(tok, True)
        if len(got) != 1:
            raise TemplateError(
                f"template {template.name!r} does not fit this model: {tok!r} is "
                f"{len(got)} tokens in its vocabulary, not one"
            )
    usable = template
    if template.has_repo_format:
        repo = [usable.repo_header, usable.repo_file, usable.repo_current]
        if any(single(m) is None for p in repo if p is not None for m in markers(p)):
            usable = dataclasses.replace(
                usable, repo_header=None, repo_file=None, repo_current=None
            )
    stop_ids = {single(s.strip()) for s in template.stop}
    patterns = {
        name: BoundPattern(p, tuple(tuple(tokenize(lit, True)) for lit in p.literals()))
        for name, p in usable.patterns().items()
    }
    return BoundTemplate(
        template=usable,
        patterns=patterns,
        stop_ids=frozenset(i for i in stop_ids if i is not None),
        bos=tuple(bos),
    )
