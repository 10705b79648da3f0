"""FIM templates: load them from ``prompts/``, pick one for a model, render token ids.

A template is data (one TOML file per model family). Rendering never lets document text
become special tokens: the template's literal pieces are tokenized with special tokens
enabled, the document's prefix and suffix with them disabled, and the ids are spliced.
"""

from __future__ import annotations

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

PLACEHOLDERS = ("prefix", "suffix")
_PLACEHOLDER = re.compile(r"\{(prefix|suffix)\}")

#: tokenize(text, special) -> token ids
TokenizeFn = Callable[[str, bool], list[int]]


@dataclass(frozen=True)
class FimTemplate:
    """One model family's fill-in-the-middle format."""

    name: str
    family: str
    pattern: str
    stop: tuple[str, ...]
    detect_tokens: tuple[str, ...]
    detect_names: tuple[str, ...]
    repo_name: str | None = None
    file_sep: str | None = None

    @property
    def order(self) -> str:
        """``psm`` when the prefix comes first in the prompt, else ``spm``."""
        return "psm" if self.pattern.index("{prefix}") < self.pattern.index("{suffix}") else "spm"

    def pieces(self) -> list[tuple[str, str]]:
        """Split the pattern into ("literal", text) and ("slot", name) pieces."""
        out: list[tuple[str, str]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(self.pattern):
            if m.start() > pos:
                out.append(("literal", self.pattern[pos : m.start()]))
            out.append(("slot", m.group(1)))
            pos = m.end()
        if pos < len(self.pattern):
            out.append(("literal", self.pattern[pos:]))
        return out

    def render_text(self, prefix: str, suffix: str) -> str:
        """Return the prompt as text (for display; the engine uses :class:`BoundTemplate`)."""
        values = {"prefix": prefix, "suffix": suffix}
        return "".join(values[v] if kind == "slot" else v for kind, v in self.pieces())


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

    fim, repo, detect = table("fim"), table("repo"), table("detect")
    pattern = text(fim, "template")
    assert pattern is not None
    for slot in PLACEHOLDERS:
        if pattern.count("{" + slot + "}") != 1:
            raise TemplateError(f"{source}: fim.template must contain {{{slot}}} exactly once")
    name = text(data, "name")
    assert name is not None
    return FimTemplate(
        name=name,
        family=text(data, "family", required=False) or name,
        pattern=pattern,
        stop=strings(fim, "stop"),
        detect_tokens=strings(detect, "tokens"),
        detect_names=tuple(n.lower() for n in strings(detect, "names")),
        repo_name=text(repo, "repo_name", required=False),
        file_sep=text(repo, "file_sep", required=False),
    )


def special_tokens(template: FimTemplate) -> list[str]:
    """Every special token string the template relies on."""
    literals = [v for kind, v in template.pieces() if kind == "literal"]
    extra = [t for t in (template.repo_name, template.file_sep) if t]
    seen: dict[str, None] = {}
    for tok in [*literals, *template.stop, *template.detect_tokens, *extra]:
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
class BoundTemplate:
    """A template checked against a vocabulary, with its special tokens as ids."""

    template: FimTemplate
    literal_ids: tuple[tuple[int, ...], ...]
    stop_ids: frozenset[int]
    bos: tuple[int, ...]

    def render(self, prefix: Sequence[int], suffix: Sequence[int]) -> list[int]:
        """Return the prompt's token ids for already tokenized prefix and suffix."""
        slots = {"prefix": prefix, "suffix": suffix}
        out = list(self.bos)
        literals = iter(self.literal_ids)
        for kind, value in self.template.pieces():
            out.extend(slots[value] if kind == "slot" else next(literals))
        return out

    @property
    def overhead(self) -> int:
        """Tokens the template adds around the document text."""
        return len(self.bos) + sum(len(ids) for ids in self.literal_ids)


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
    literal_ids = tuple(
        tuple(tokenize(v, True)) for kind, v in template.pieces() if kind == "literal"
    )
    return BoundTemplate(
        template=template,
        literal_ids=literal_ids,
        stop_ids=frozenset(ids[s.strip()] for s in template.stop),
        bos=tuple(bos),
    )
