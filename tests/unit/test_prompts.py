"""FIM templates: the shipped data files, detection, binding, rendering."""

from __future__ import annotations

import pytest

from lsp_server.errors import TemplateError
from lsp_server.prompts import (
    bind_template,
    detect_template,
    load_templates,
    parse_template,
    special_tokens,
)

VOCAB = {
    "<|fim_prefix|>": 1,
    "<|fim_suffix|>": 2,
    "<|fim_middle|>": 3,
    "<|endoftext|>": 4,
    "<|fim_pad|>": 5,
    "<|repo_name|>": 6,
    "<|file_sep|>": 7,
    "<|im_start|>": 8,
    "<|im_end|>": 9,
}


def tokenize(text: str, special: bool) -> list[int]:
    """Special tokens are single ids when parsed; any other text is one id per char."""
    if special and text in VOCAB:
        return [VOCAB[text]]
    return [100 + ord(c) for c in text]


def test_shipped_qwen_template() -> None:
    qwen = load_templates()["qwen2.5-coder"]
    assert qwen.order == "psm"
    assert qwen.render_text("P", "S") == "<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>"
    assert "<|endoftext|>" in qwen.stop and "<|file_sep|>" in qwen.stop
    assert set(special_tokens(qwen)) == set(VOCAB)
    assert qwen.has_repo_format
    assert qwen.repo_file is not None
    assert qwen.repo_file.fill(path="a.py", content="x = 1") == "<|file_sep|>a.py\nx = 1\n"


def test_repository_patterns_render_paths_as_text() -> None:
    bound = bind_template(load_templates()["qwen2.5-coder"], tokenize)
    path = tokenize("a.py", False)
    assert bound.repo_header([300]) == [6, 300, *tokenize("\n", False)]
    assert bound.repo_current(path) == [7, *path, *tokenize("\n", False)]
    assert bound.repo_file(path, [301])[:1] == [7]


def test_render_splices_ids_and_never_parses_document_text() -> None:
    qwen = load_templates()["qwen2.5-coder"]
    bound = bind_template(qwen, tokenize)
    prefix = tokenize("a<|fim_middle|>", False)  # document text that looks special
    ids = bound.render(prefix, [200])
    assert ids == [1, *prefix, 2, 200, 3]
    assert ids.count(3) == 1
    assert bound.overhead == 3
    assert bound.stop_ids == {4, 1, 2, 3, 5, 6, 7, 8, 9}


def test_bos_is_prepended_when_the_model_wants_it() -> None:
    bound = bind_template(load_templates()["qwen2.5-coder"], tokenize, bos=[0])
    assert bound.render([], [])[0] == 0


def test_bind_refuses_a_vocabulary_without_the_tokens() -> None:
    def plain(text: str, special: bool) -> list[int]:
        return [ord(c) for c in text]

    with pytest.raises(TemplateError, match="does not fit this model"):
        bind_template(load_templates()["qwen2.5-coder"], plain)


def test_detection() -> None:
    templates = load_templates()
    single = lambda s: s in VOCAB  # noqa: E731
    assert detect_template(templates, single, "Qwen2.5 Coder 0.5B").name == "qwen2.5-coder"
    with pytest.raises(TemplateError, match="none of the FIM tokens"):
        detect_template(templates, lambda s: False, "mystery-model")
    with pytest.raises(TemplateError, match="unknown template"):
        detect_template(templates, single, "x", requested="codellama9")


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "x", "fim": {"template": "{prefix}"}}, "{suffix}"),
        ({"name": "x", "fim": {"template": "{prefix}{suffix}{prefix}"}}, "{prefix}"),
        ({"fim": {"template": "{prefix}{suffix}"}}, "name"),
        ({"name": "x", "fim": {"template": "{prefix}{suffix}", "stop": [1]}}, "stop"),
        (
            {"name": "x", "fim": {"template": "{prefix}{suffix}"}, "repo": {"header": "{repo}"}},
            "needs header, file and current",
        ),
        (
            {
                "name": "x",
                "fim": {"template": "{prefix}{suffix}"},
                "repo": {"header": "R", "file": "{path}{content}", "current": "{path}"},
            },
            "must contain {repo}",
        ),
    ],
)
def test_template_validation(data: dict[str, object], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(data, "bad.toml")
