"""Template detection on real GGUF files: one small vocabulary-only file per family.

Each file is written with the ``gguf`` package (the family's special tokens, its
``general.name`` and ``general.architecture``, FIM keys where its converter writes them)
and loaded by llama.cpp with ``vocab_only``: detection and binding see what they would
see in the family's real model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import gguf
import llama_cpp
import pytest
from llama_cpp import _internals as internals

from lsp_server.engine import choose_template
from lsp_server.errors import TemplateError
from lsp_server.prompts import Pattern, load_templates, markers, required_tokens


def byte_level_alphabet() -> list[str]:
    """GPT-2's 256 byte-level characters: every text tokenizes with them."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    kept += range(ord("®"), ord("ÿ") + 1)
    chars, extra = list(kept), 0
    for byte in range(256):
        if byte not in kept:
            kept.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_vocabulary(
    path: Path,
    arch: str,
    name: str,
    specials: Sequence[str],
    keys: Mapping[str, str] = {},
) -> dict[str, int]:
    """A GGUF holding only a vocabulary; ``keys`` maps metadata keys to special tokens."""
    tokens = [*byte_level_alphabet(), "ab", *specials]
    ids = {token: i for i, token in enumerate(tokens)}
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    normal = len(tokens) - len(specials)
    writer.add_token_types(
        [gguf.TokenType.NORMAL] * normal + [gguf.TokenType.CONTROL] * len(specials)
    )
    writer.add_token_merges(["a b"])
    writer.add_eos_token_id(normal)
    for key, token in keys.items():
        writer.add_uint32(key, ids[token])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return ids


def load_vocabulary(path: Path) -> internals.LlamaModel:
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    return internals.LlamaModel(path_model=str(path), params=params, verbose=False)


@pytest.fixture
def vocabulary(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    loaded: list[internals.LlamaModel] = []

    def make(arch: str, name: str, specials: Sequence[str], keys: Mapping[str, str] = {}):  # type: ignore[no-untyped-def]
        path = tmp_path / f"{len(loaded)}.gguf"
        ids = write_vocabulary(path, arch, name, specials, keys)
        loaded.append(load_vocabulary(path))
        return loaded[-1], ids

    yield make
    for model in loaded:
        model.close()


# (template, general.name, general.architecture, FIM keys its converter writes)
FAMILIES = [
    ("qwen2.5-coder", "Qwen2.5 Coder 1.5B Instruct", "qwen2", {}),
    ("codegemma", "codegemma-7b", "gemma", {}),
    ("deepseek-coder", "deepseek-coder-6.7b-base", "llama", {}),
    ("deepseek-coder-v2", "DeepSeek-Coder-V2-Lite-Base", "deepseek2", {}),
    ("starcoder", "starcoder2-3b", "starcoder2", {}),
    ("granite-code", "granite-8b-code-base", "llama", {}),
    ("stable-code", "stable-code-3b", "stablelm", {}),
    ("santacoder", "santacoder", "gpt2", {}),
    (
        "codellama",
        "CodeLlama-7b-hf",
        "llama",
        {
            "tokenizer.ggml.prefix_token_id": "\u2581<PRE>",
            "tokenizer.ggml.suffix_token_id": "\u2581<SUF>",
            "tokenizer.ggml.middle_token_id": "\u2581<MID>",
        },
    ),
    ("codestral", "Codestral-22B-v0.1", "llama", {}),
]


def family_tokens(name: str) -> list[str]:
    """The special tokens a model of the family has: its markers and its stop tokens."""
    template = load_templates()[name]
    found = [*required_tokens(template), *template.stop]
    for pattern in template.patterns().values():
        found += markers(pattern)
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("family,name,arch,keys", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_is_detected_from_its_gguf(
    vocabulary,
    family: str,
    name: str,
    arch: str,
    keys: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    model, ids = vocabulary(arch, name, family_tokens(family), keys)
    got_name, detection, bound = choose_template(model, "file", None)
    assert got_name == name and detection.template.name == family
    assert ("FIM token ids" in detection.reason) == bool(keys)
    # the FIM markers are the vocabulary's own ids
    literals = bound.template.fim.literals()
    expected = [[ids[m] for m in markers(Pattern(lit))] for lit in literals]
    assert [list(lit) for lit in bound.patterns["fim"].literal_ids] == expected
    assert {ids[s] for s in bound.template.stop if s in ids} == bound.stop_ids


def test_a_tie_or_no_fim_tokens_is_an_error_that_says_what_was_found(vocabulary) -> None:  # type: ignore[no-untyped-def]
    model, _ = vocabulary("gptneox", "my-model", ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"])
    with pytest.raises(TemplateError, match="several templates") as info:
        choose_template(model, "file", None)
    message = str(info.value)
    assert "'my-model'" in message and "'gptneox'" in message
    assert "granite-code, stable-code, starcoder" in message
    assert "fimls.model.template" in message
    # the setting decides
    _, detection, _ = choose_template(model, "file", "granite-code")
    assert detection.template.name == "granite-code"
    plain, _ = vocabulary("llama", "tinyllama", ["<s>", "</s>"])
    with pytest.raises(TemplateError, match="none of the FIM tokens"):
        choose_template(plain, "file", None)
    # a template whose tokens the vocabulary lacks is refused, even when asked for
    with pytest.raises(TemplateError, match="does not fit this model"):
        choose_template(plain, "file", "qwen2.5-coder")


def test_fim_keys_come_before_the_vocabulary(vocabulary) -> None:  # type: ignore[no-untyped-def]
    # a Qwen vocabulary whose GGUF names the FIM tokens: the keys pick the candidates,
    # the vocabulary tells Qwen from CodeGemma
    keys = {
        "tokenizer.ggml.fim_pre_token_id": "<|fim_prefix|>",
        "tokenizer.ggml.fim_suf_token_id": "<|fim_suffix|>",
        "tokenizer.ggml.fim_mid_token_id": "<|fim_middle|>",
    }
    model, _ = vocabulary("qwen2", "finetune", family_tokens("qwen2.5-coder"), keys)
    _, detection, bound = choose_template(model, "file", None)
    assert detection.template.name == "qwen2.5-coder" and bound.has_repo_format
    assert "FIM token ids" in detection.reason
