"""Reading what the audit hook recorded, folder snapshots, and sockets from /proc."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOOK_DIR = Path(__file__).parent / "hook"

#: Writes that are the interpreter's, not the server's: the standard streams and the
#: null device (fds are ints and always allowed).
DEVICES = {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"}


@dataclass
class AuditLog:
    """The JSON lines the hook in ``tests/privacy/hook/sitecustomize.py`` wrote."""

    events: list[dict[str, Any]]

    @classmethod
    def read(cls, path: Path) -> AuditLog:
        events = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    events.append(json.loads(line))
        return cls(events)

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] in kinds]


def inside(path: object, folder: Path) -> bool:
    """Whether ``path`` (a str) is ``folder`` or inside it."""
    if not isinstance(path, str):
        return False
    return os.path.join(path, "").startswith(os.path.join(str(folder), ""))


def is_bytecode(path: object) -> bool:
    """A ``__pycache__`` file Python writes for a module it imports (the interpreter's)."""
    if not isinstance(path, str):
        return False
    folder, name = os.path.split(path)
    return os.path.basename(folder) == "__pycache__" and ".pyc" in name


Snapshot = dict[str, tuple[int, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every entry under ``root`` (the root too): file type, size and mtime in ns."""
    found: Snapshot = {}
    for here, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if here == str(root) else [*dirs, *files]:
            path = os.path.join(here, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (
                stat.S_IFMT(st.st_mode),
                st.st_size,
                st.st_mtime_ns,
            )
    return found


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """What was added, removed or changed, one line each."""
    lines = [f"added {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    lines += [
        f"changed {p}: {before[p]} -> {after[p]}"
        for p in sorted(before.keys() & after.keys())
        if before[p] != after[p]
    ]
    return lines


def netns_prefix() -> list[str] | None:
    """A command prefix that runs a program in a new network namespace, if one works.

    ``unshare -n`` needs root; ``unshare -rn`` (a user namespace) works unprivileged
    where the kernel allows it.
    """
    for prefix in (["unshare", "-n"], ["unshare", "-r", "-n"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return None


def own_netns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return None


def _ipv4(hex_address: str) -> str:
    return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_address)[::-1])


def _ipv6(hex_address: str) -> str:
    raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, 32, 8))
    return socket.inet_ntop(socket.AF_INET6, raw)


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of each TCP socket the process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    found = []
    for table, decode in (("tcp", _ipv4), ("tcp6", _ipv6)):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # TCP_LISTEN
                address, port = local.split(":")
                found.append((decode(address), int(port, 16)))
    return found


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 and global IPv6 addresses that are not loopback."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in zip(lines, lines[1:], strict=False):
        if line.strip() == "/32 host LOCAL":
            address = previous.split()[-1]
            if not address.startswith("127."):
                found.add(address)
    try:
        rows = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        rows = []
    for row in rows:
        fields = row.split()
        if len(fields) >= 4 and fields[3] == "00":  # global scope
            address = _ipv6_plain(fields[0])
            if address != "::1":
                found.add(address)
    return sorted(found)


def _ipv6_plain(hex_address: str) -> str:
    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hex_address))
