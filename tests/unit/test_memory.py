"""The memory limits a model must fit under, read from the kernel's own files."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from lsp_server.errors import ModelError
from lsp_server.memory import (
    OVERHEAD_BYTES,
    Limit,
    address_space_available,
    cgroup_available,
    check_fits,
    limits,
    meminfo,
)

MEMINFO = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n"


def test_meminfo() -> None:
    assert meminfo(MEMINFO) == 2048 * 1024
    assert meminfo(MEMINFO, "MemTotal") == 24000000 * 1024
    assert meminfo("MemTotal: 1 kB\n") is None


def test_cgroup_v2_and_v1() -> None:
    stat = "anon 100\ninactive_file 300\nactive_file 200\n"
    assert cgroup_available("1000\n", "900\n", stat) == 1000 - (900 - 500)
    assert cgroup_available("max\n", "900\n", stat) is None
    assert cgroup_available("9223372036854771712\n", "5", "") is None  # v1's "unlimited"
    assert cgroup_available("1000", "5000", "") == 0


def test_address_space() -> None:
    assert address_space_available(resource.RLIM_INFINITY, 10) is None
    assert address_space_available(1000, 300) == 700
    assert address_space_available(100, 300) == 0


def test_check_fits_names_the_figures_and_the_limit(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    with model.open("wb") as fh:
        fh.truncate(3 * 2**30)
    room = 3 * 2**30 + OVERHEAD_BYTES
    assert check_fits(model, [Limit(room, "a")]) == []
    # more than is free now only warns
    warnings = check_fits(model, [Limit(room - 1, "the memory free now", hard=False)])
    assert len(warnings) == 1 and "the memory free now" in warnings[0]
    with pytest.raises(ModelError) as err:
        check_fits(model, [Limit(room, "a"), Limit(room - 1, "the cgroup's memory limit")])
    message = str(err.value)
    assert "3.0 GiB of weights" in message and "the cgroup's memory limit" in message


def test_this_machine_has_a_memory_limit() -> None:
    found = limits()
    assert any("MemTotal" in limit.source and limit.hard for limit in found)
    assert any("MemAvailable" in limit.source and not limit.hard for limit in found)
    assert all(limit.available >= 0 for limit in found)
