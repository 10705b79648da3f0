"""Settings: defaults, camelCase parsing, problems reported instead of failing."""

from __future__ import annotations

import re
from pathlib import Path

from lsp_server.config import Settings, merge, parse_settings, reference, unwrap_section


def test_defaults_when_nothing_is_given() -> None:
    settings, problems = parse_settings(None)
    assert settings == Settings()
    assert problems == []
    assert settings.completion.temperature == 0.0  # greedy by default
    assert settings.model.context_size == 4096


def test_camel_case_keys() -> None:
    settings, problems = parse_settings(
        {"model": {"contextSize": 2048, "path": "/m.gguf"}, "completion": {"maxTokens": 64}}
    )
    assert problems == []
    assert settings.model.context_size == 2048
    assert settings.model.path == "/m.gguf"
    assert settings.completion.max_tokens == 64
    assert settings.completion.max_lines == Settings().completion.max_lines


def test_unknown_and_invalid_values_are_reported_and_defaulted() -> None:
    settings, problems = parse_settings(
        {
            "completion": {"maxTokens": "many", "max_lines": 3, "multiline": "sometimes"},
            "context": {"prefixTokens": 0},
            "model": 7,
            "nonsense": True,
        }
    )
    assert settings == Settings()
    text = "\n".join(problems)
    assert "fimls.completion.maxTokens: expected an integer from 1 to 4096" in text
    assert "did you mean fimls.completion.maxLines" in text
    assert 'expected "auto" or "never"' in text
    assert "fimls.context.prefixTokens" in text
    assert "fimls.model: expected an object" in text
    assert "fimls.nonsense: unknown setting" in text
    assert len(problems) == 6


def test_booleans_are_not_integers_and_integral_floats_are() -> None:
    settings, problems = parse_settings({"completion": {"maxTokens": True}})
    assert problems and settings.completion.max_tokens == 128
    settings, problems = parse_settings({"completion": {"maxTokens": 64.0}})
    assert not problems and settings.completion.max_tokens == 64


def test_not_an_object() -> None:
    settings, problems = parse_settings(["x"])
    assert settings == Settings()
    assert problems == ['fimls: expected an object, got ["x"]; using defaults']


def test_section_and_merge() -> None:
    assert unwrap_section({"fimls": {"a": 1}}) == {"a": 1}
    assert unwrap_section({"a": 1}) == {"a": 1}
    # eglot pushes every server's section at once
    assert unwrap_section({"pylsp": {"x": 1}, "fimls": {"a": 1}}) == {"a": 1}
    base = {"completion": {"maxTokens": 10, "maxLines": 2}}
    assert merge(base, {"completion": {"maxLines": 3}}) == {
        "completion": {"maxTokens": 10, "maxLines": 3}
    }
    assert merge(base, None) == base
    # Lua clients (Neovim) send an empty table as []
    assert unwrap_section([]) == {} and unwrap_section({"fimls": []}) == {}
    assert parse_settings([]) == (Settings(), [])
    assert parse_settings({"completion": []}) == (Settings(), [])
    # a setting cleared in the editor (sent as null) goes back to its default
    start = {"model": {"path": "/m.gguf", "threads": 2}}
    assert merge(start, {"model": {"path": None}}) == {"model": {"threads": 2}}
    assert parse_settings(merge(start, {"model": {"path": None}}))[0].model.path is None


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- settings:begin -->")[1].split("<!-- settings:end -->")[0]
    rows = re.findall(r"^\| `(fimls\.[^`]+)` \| `([^`]+)` \| (.+) \|$", block, re.M)
    assert rows == reference(), "README settings table is out of date"


def test_engine_settings() -> None:
    settings, problems = parse_settings(
        {
            "engine": {
                "kind": "infill",
                "url": "http://gpu-box:8080",
                "model": "qwen2.5-coder-7b",
                "apiKeyEnv": "TEAM_LLM_KEY",
                "requestTimeoutMs": 5000,
                "tlsVerify": False,
            }
        }
    )
    assert problems == []
    engine = settings.engine
    assert (engine.kind, engine.url, engine.model) == (
        "infill",
        "http://gpu-box:8080",
        "qwen2.5-coder-7b",
    )
    assert engine.api_key_env == "TEAM_LLM_KEY"
    assert engine.request_timeout_ms == 5000 and engine.connect_timeout_ms == 3000
    assert engine.tls_verify is False
    assert Settings().engine.kind == "local"  # the in-process model by default
    _, problems = parse_settings({"engine": {"kind": "ollama", "requestTimeoutMs": 10}})
    assert len(problems) == 2 and "fimls.engine.kind" in problems[0]


def test_an_api_key_in_settings_is_refused_without_echoing_it() -> None:
    settings, problems = parse_settings(
        {"engine": {"url": "http://gpu-box:8080", "apiKey": "sk-live-123456"}}
    )
    assert settings.engine.url == "http://gpu-box:8080"
    assert len(problems) == 1
    assert "fimls.engine.apiKey: not read" in problems[0]
    assert "fimls.engine.apiKeyEnv" in problems[0]
    assert "sk-live-123456" not in problems[0]


def test_a_key_pasted_as_the_variable_name_is_refused_without_echoing_it() -> None:
    settings, problems = parse_settings({"engine": {"apiKeyEnv": "sk-live-123456"}})
    assert settings.engine.api_key_env == "FIMLS_API_KEY"
    assert problems == [
        "fimls.engine.apiKeyEnv: expected an environment variable name, got a value that is "
        'not shown; using the default "FIMLS_API_KEY"'
    ]
    assert parse_settings({"engine": {"apiKeyEnv": "TEAM_KEY_2"}})[0].engine.api_key_env == (
        "TEAM_KEY_2"
    )
