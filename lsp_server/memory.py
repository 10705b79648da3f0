"""How much memory a model may take here, and a refusal when it would not fit.

A model is mapped from its file and read whole on every token: when its weights do not
fit in memory the machine pages for each keystroke (or the process is killed), so a model
larger than a hard limit is refused before loading, with the figures. The hard limits are
the ones that bind a process on Linux: the machine's memory (``MemTotal``), the cgroup's
``memory.max`` (containers, systemd units), and the address-space limit (``ulimit -v``),
which a mapped file counts against. More than is free now (``MemAvailable``) only warns:
the kernel can still reclaim caches or swap.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from lsp_server.errors import ModelError

#: cgroup v1 writes "no limit" as a number near 2**63.
UNLIMITED = 2**60

#: Room beyond the file for the KV cache, compute buffers and the process itself.
OVERHEAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """Bytes still available under one limit, and what the limit is."""

    available: int
    source: str
    #: a hard limit refuses the model; a soft one (what is free now) only warns
    hard: bool = True


def meminfo(text: str, key: str = "MemAvailable") -> int | None:
    """A field (``MemAvailable``, ``MemTotal``) of the text of /proc/meminfo, in bytes."""
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return None


def cgroup_available(limit: str, current: str, stat: str) -> int | None:
    """What a cgroup may still charge: its limit minus what it uses, page cache aside.

    Takes the texts of cgroup v2's memory.max, memory.current and memory.stat (or v1's
    memory.limit_in_bytes, memory.usage_in_bytes and memory.stat).
    """
    limit = limit.strip()
    if not limit.isdigit() or int(limit) >= UNLIMITED:
        return None
    reclaimable = 0
    for line in stat.splitlines():
        key, _, value = line.partition(" ")
        if key in ("inactive_file", "active_file") and value.strip().isdigit():
            reclaimable += int(value)
    used = max(0, int(current.strip() or 0) - reclaimable)
    return max(0, int(limit) - used)


def address_space_available(soft_limit: int, vm_size: int) -> int | None:
    """What ``ulimit -v`` leaves, given the process's current virtual size."""
    if soft_limit == resource.RLIM_INFINITY or soft_limit < 0:
        return None
    return max(0, soft_limit - vm_size)


def limits() -> list[Limit]:
    """The limits that bind this process now (empty where none can be read)."""
    found: list[Limit] = []
    info = _read("/proc/meminfo")
    total = meminfo(info, "MemTotal")
    if total is not None:
        found.append(Limit(total, "the machine's memory (MemTotal)"))
    available = meminfo(info, "MemAvailable")
    if available is not None:
        found.append(Limit(available, "the memory free now (MemAvailable)", hard=False))
    group = _own_cgroup()
    if group is not None:
        v2 = (group / "memory.max").exists()
        names = (
            ("memory.max", "memory.current")
            if v2
            else ("memory.limit_in_bytes", "memory.usage_in_bytes")
        )
        cgroup = cgroup_available(
            _read(group / names[0]), _read(group / names[1]), _read(group / "memory.stat")
        )
        if cgroup is not None:
            found.append(Limit(cgroup, f"the cgroup's memory limit ({group})"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    space = address_space_available(soft, _vm_size())
    if space is not None:
        found.append(Limit(space, "the address-space limit (ulimit -v)"))
    return found


def check_fits(path: Path, found: list[Limit] | None = None) -> list[str]:
    """Raise ModelError when the model file (plus working room) exceeds a hard limit.

    Returns warnings for the soft ones it exceeds (memory the kernel may still free by
    reclaiming caches or swapping: the model loads, maybe slowly).
    """
    size = path.stat().st_size
    need = size + OVERHEAD_BYTES
    warnings = []
    for limit in limits() if found is None else found:
        if need <= limit.available:
            continue
        text = (
            f"model {path} needs about {_gib(need)} of memory ({_gib(size)} of weights), "
            f"more than the {_gib(limit.available)} left under {limit.source}"
        )
        if limit.hard:
            raise ModelError(f"{text}; pick a smaller model (fimls.model.path) or free memory")
        warnings.append(f"{text}: it may be slow until memory is freed")
    return warnings


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except (OSError, ValueError):
        return ""


def _own_cgroup() -> Path | None:
    """The memory cgroup folder of this process (v2, else v1), if it is mounted."""
    root = Path("/sys/fs/cgroup")
    for line in _read("/proc/self/cgroup").splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.strip().lstrip("/")
        if number == "0" and controllers == "":
            candidates = [root / path, root]
            marker = "memory.max"
        elif "memory" in controllers.split(","):
            candidates = [root / "memory" / path, root / "memory"]
            marker = "memory.limit_in_bytes"
        else:
            continue
        for group in candidates:
            if (group / marker).exists():
                return group
    return None


def _vm_size() -> int:
    for line in _read(f"/proc/{os.getpid()}/status").splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0
