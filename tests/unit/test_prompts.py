"""FIM templates: the shipped data files, detection, binding, rendering."""

from __future__ import annotations

import pytest

from lsp_server.errors import TemplateError
from lsp_server.prompts import (
    ModelFacts,
    bind_template,
    detect_template,
    load_templates,
    model_facts,
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


def facts(tokens: set[str], name: str = "", arch: str = "", **fim: str) -> ModelFacts:
    return ModelFacts(name, tokens.__contains__, architecture=arch, fim_tokens=fim)


QWEN = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "<|fim_pad|>"}
GEMMA = {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"}
STAR = {"<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"}
DEEPSEEK = {
    "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581hole\uff5c>",
    "<\uff5cfim\u2581end\uff5c>",
}


@pytest.mark.parametrize(
    "model,expected",
    [
        (facts(QWEN, "Qwen2.5 Coder 0.5B Instruct AWQ", "qwen2"), "qwen2.5-coder"),
        (facts(QWEN, "some fine-tune"), "qwen2.5-coder"),  # the vocabulary alone tells
        (facts(GEMMA, "codegemma-2b", "gemma"), "codegemma"),
        (facts(STAR, "starcoder2-3b", "starcoder2"), "starcoder"),
        (facts(STAR, "Granite 20b Code Base", "starcoder"), "granite-code"),
        (facts(STAR, "granite-3b-code-instruct", "llama"), "granite-code"),
        (facts(STAR, "stable-code-3b", "stablelm"), "stable-code"),
        (facts(DEEPSEEK, "DeepSeek-Coder-V2-Lite-Instruct", "deepseek2"), "deepseek-coder-v2"),
        (facts(DEEPSEEK, "deepseek-coder-6.7b-instruct", "llama"), "deepseek-coder"),
        # the longest name found decides between families with the same tokens
        (facts(DEEPSEEK, "deepseek-coder-v2-lite-base"), "deepseek-coder-v2"),
        (facts({"[SUFFIX]", "[PREFIX]"}, "Codestral-22B-v0.1", "llama"), "codestral"),
        (facts({"<fim-prefix>", "<fim-suffix>", "<fim-middle>"}, "santacoder"), "santacoder"),
        # the GGUF's FIM keys come before the vocabulary (Code Llama's are "▁<PRE>"...)
        (
            facts(
                set(),
                "CodeLlama-7b",
                "llama",
                pre="\u2581<PRE>",
                suf="\u2581<SUF>",
                mid="\u2581<MID>",
            ),
            "codellama",
        ),
        (facts(QWEN, "x", pre="<|fim_prefix|>", suf="<|fim_suffix|>"), "qwen2.5-coder"),
    ],
)
def test_detection(model: ModelFacts, expected: str) -> None:
    assert detect_template(load_templates(), model).template.name == expected


def test_detection_says_what_it_found_and_never_guesses() -> None:
    templates = load_templates()
    with pytest.raises(TemplateError, match="none of the FIM tokens") as info:
        detect_template(templates, facts(set(), "mystery-model", "llama"))
    assert "fimls.model.template" in str(info.value) and "'mystery-model'" in str(info.value)
    # StarCoder's tokens, a neutral architecture and a name of none of the families
    with pytest.raises(TemplateError, match="several templates") as info:
        detect_template(templates, facts(STAR, "my-model", "gptneox"))
    assert "granite-code, stable-code, starcoder" in str(info.value)
    with pytest.raises(TemplateError, match="which no template in prompts/ uses"):
        detect_template(templates, facts(QWEN, "x", pre="<PREFIX_TOKEN>"))
    with pytest.raises(TemplateError, match="unknown template"):
        detect_template(templates, facts(QWEN, "x"), requested="codellama9")
    chosen = detect_template(templates, facts(set(), "x"), requested="starcoder")
    assert chosen.template.name == "starcoder" and chosen.reason == "fimls.model.template"


def test_model_facts_read_the_fim_keys() -> None:
    meta = {
        "general.name": "CodeLlama 7B",
        "general.architecture": "llama",
        "tokenizer.ggml.prefix_token_id": "32007",  # the older key
        "tokenizer.ggml.fim_suf_token_id": "32008",
        "tokenizer.ggml.fim_mid_token_id": "99999",  # not in the vocabulary
    }
    texts = {32007: "\u2581<PRE>", 32008: "\u2581<SUF>"}
    got = model_facts(meta, "file", lambda s: False, texts.get)
    assert got.fim_tokens == {"pre": "\u2581<PRE>", "suf": "\u2581<SUF>"}
    assert got.name == "CodeLlama 7B" and got.architecture == "llama"
    assert model_facts({}, "file", lambda s: False, texts.get).name == "file"


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


# The FIM prompt for prefix "def f(x):\n    " and suffix "\n    return y\n", as each
# family's authors document it (the source is cited in each template file).
P, S = "def f(x):\n    ", "\n    return y\n"
GOLDEN = {
    # Qwen2.5-Coder model card, "Code Completion"
    "qwen2.5-coder": f"<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>",
    # CodeGemma model card, "Code completion" (same tokens, another vocabulary)
    "codegemma": f"<|fim_prefix|>{P}<|fim_suffix|>{S}<|fim_middle|>",
    # DeepSeek-Coder README, "Code Insertion"
    "deepseek-coder": f"<\uff5cfim\u2581begin\uff5c>{P}<\uff5cfim\u2581hole\uff5c>{S}"
    "<\uff5cfim\u2581end\uff5c>",
    "deepseek-coder-v2": f"<\uff5cfim\u2581begin\uff5c>{P}<\uff5cfim\u2581hole\uff5c>{S}"
    "<\uff5cfim\u2581end\uff5c>",
    # StarCoder model card / bigcode FIM examples
    "starcoder": f"<fim_prefix>{P}<fim_suffix>{S}<fim_middle>",
    "granite-code": f"<fim_prefix>{P}<fim_suffix>{S}<fim_middle>",
    "stable-code": f"<fim_prefix>{P}<fim_suffix>{S}<fim_middle>",
    # SantaCoder model card, "Fill-in-the-middle"
    "santacoder": f"<fim-prefix>{P}<fim-suffix>{S}<fim-middle>",
    # Meta's "<PRE> {pre} <SUF>{suf} <MID>": the spaces before SUF and MID are part of
    # those tokens ("\u2581<SUF>"), the one after PRE is SentencePiece's before the prefix
    "codellama": f"\u2581<PRE>{P}\u2581<SUF>{S}\u2581<MID>",
    # Mistral's Codestral FIM (mistral-common): suffix first, then the prefix
    "codestral": f"[SUFFIX]{S}[PREFIX]{P}",
}


def test_every_family_renders_its_documented_format() -> None:
    templates = load_templates()
    assert set(GOLDEN) == set(templates)
    for name, expected in GOLDEN.items():
        assert templates[name].render_text(P, S) == expected, name
    assert templates["codestral"].order == "spm"
    assert all(t.order == "psm" for n, t in templates.items() if n != "codestral")


def test_every_family_has_an_instruction_format_and_sources() -> None:
    for name, template in load_templates().items():
        assert template.chat is not None, name
        text = template.chat.render_text("SYS", "USER")
        assert text.index("SYS") < text.index("USER"), name


def test_starcoder_1_has_no_repository_tokens_so_the_format_is_dropped() -> None:
    starcoder = load_templates()["starcoder"]
    star1 = {t: i for i, t in enumerate(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"])}
    star2 = {**star1, "<repo_name>": 3, "<file_sep>": 4, "<|endoftext|>": 5}

    def vocabulary(known: dict[str, int]):  # type: ignore[no-untyped-def]
        def tokenize(text: str, special: bool) -> list[int]:
            if special and text in known:
                return [known[text]]
            return [100 + ord(c) for c in text]

        return tokenize

    assert not bind_template(starcoder, vocabulary(star1)).has_repo_format
    bound = bind_template(starcoder, vocabulary(star2))
    assert bound.has_repo_format and bound.stop_ids == {0, 1, 2, 3, 4, 5}
