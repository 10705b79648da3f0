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

_SLOT = re.compile(r"\{(prefix|suffix|repo|path|content)\}")

#: tokenize(text, special) -> token ids
TokenizeFn = Callable[[str, bool], list[int]]

#: The patterns of a template, with the slots each must contain exactly once.
PATTERNS = {
    "fim": ("prefix", "suffix"),
    "repo_header": ("repo",),
    "repo_file": ("path", "content"),
    "repo_current": ("path",),
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
        if sorted(slots) != sorted(PATTERNS[kind]):
            wanted = ", ".join("{" + s + "}" for s in PATTERNS[kind])
            raise TemplateError(f"{source}: {key} must contain {wanted}, each exactly once")
        return Pattern(raw)

    fim, repo, detect = table("fim"), table("repo"), table("detect")
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


_SPECIAL = re.compile(r"<[^<>\s]+>|\[[A-Z_]+\]")


def special_tokens(template: FimTemplate) -> list[str]:
    """Every special token string the template relies on (stop tokens and markers)."""
    seen: dict[str, None] = {}
    for pattern in template.patterns().values():
        for literal in pattern.literals():
            for marker in _SPECIAL.findall(literal):
                seen.setdefault(marker, None)
    for tok in [*template.stop, *template.detect_tokens]:
        seen.setdefault(tok.strip(), None)
    return [t for t in seen if t]


def detect_template(
    templates: Mapping[str, FimTemplate],
    is_single_token: Callable[[str], bool],
    model_name: str,
    requested: str | None = None,
) -> FimTemplate:
    """Choose the template for a model: the requested one, else the one its vocabulary fits."""
    if requested:
        if requested not in templates:
            known = ", ".join(sorted(templates))
            raise TemplateError(f"unknown template {requested!r}; known templates: {known}")
        return templates[requested]
    fitting = [t for t in templates.values() if all(map(is_single_token, t.detect_tokens))]
    if len(fitting) > 1:
        lowered = model_name.lower()
        named = [t for t in fitting if any(n in lowered for n in t.detect_names)]
        fitting = named or fitting
    if len(fitting) == 1:
        return fitting[0]
    how = "set fimls.model.template to one of: " + ", ".join(sorted(templates))
    if not fitting:
        raise TemplateError(
            f"model {model_name!r} has none of the FIM tokens of a known template; {how}"
        )
    names = ", ".join(t.name for t in fitting)
    raise TemplateError(f"model {model_name!r} fits several templates ({names}); {how}")


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
        and shift it (:class:`lsp_server.engine.Generation` ``block``).
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
    """Check that each special token is one token of the vocabulary; return the ids."""
    ids: dict[str, int] = {}
    for tok in special_tokens(template):
        got = tokenize(tok, True)
        if len(got) != 1:
            raise TemplateError(
                f"template {template.name!r} does not fit this model: {tok!r} is "
                f"{len(got)} tokens in its vocabulary, not one"
            )
        ids[tok] = got[0]
    patterns = {
        name: BoundPattern(p, tuple(tuple(tokenize(lit, True)) for lit in p.literals()))
        for name, p in template.patterns().items()
    }
    return BoundTemplate(
        template=template,
        patterns=patterns,
        stop_ids=frozenset(ids[s.strip()] for s in template.stop),
        bos=tuple(bos),
    )
