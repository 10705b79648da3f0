"""The server's system calls under ``strace``: what native code does too.

The audit hook sees Python; llama.cpp, tree-sitter and git are native. Where strace works,
a session runs under ``strace -ff`` with a seccomp filter (only the traced calls stop the
process), and these helpers read its per-thread files: writes to files, sockets and
connects, and programs executed.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FILE_CALLS = (
    "open openat openat2 creat rename renameat renameat2 unlink unlinkat mkdir mkdirat rmdir "
    "link linkat symlink symlinkat truncate chmod fchmodat chown fchownat lchown utimensat "
    "mknod mknodat"
).split()
NET_CALLS = "socket connect bind listen sendto sendmsg".split()
EXEC_CALLS = "execve execveat".split()
OPENS = {"open", "openat", "openat2", "creat"}
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")

_CALL = re.compile(r"^(?P<name>\w+)\((?P<rest>.*)$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FD_PATH = re.compile(r"(?:\d+|AT_FDCWD)<([^<>]*)(?:<[^>]*>)?>")
_RESULT = re.compile(r"\)\s+=\s+(?P<ret>-?\d+)(?:<(?P<path>[^<>]*)(?:<[^>]*>)?>)?")


@dataclass
class Syscall:
    """One traced call."""

    tid: int
    name: str
    line: str
    paths: list[str]
    ok: bool


def strace_prefix(out: Path) -> list[str] | None:
    """The command prefix that traces a program into ``out/sys.<tid>``, if strace works."""
    if shutil.which("strace") is None:
        return None
    base = ["strace", "-f", "-qq", "--seccomp-bpf"]
    try:
        done = subprocess.run(
            [*base, "-e", "trace=execve", "-o", os.devnull, "true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None  # no ptrace here (a container without CAP_SYS_PTRACE), or an old strace
    traced = ",".join(FILE_CALLS + NET_CALLS + EXEC_CALLS)
    return [*base, "-ff", "-yy", "-s", "4096", "-e", f"trace={traced}", "-o", str(out / "sys")]


def _unescape(text: str) -> str:
    return codecs.decode(text.encode("latin-1", "backslashreplace"), "unicode_escape")


def read_syscalls(out: Path) -> list[Syscall]:
    """Every traced call in the files strace wrote (``sys.<tid>``)."""
    calls = []
    for file in sorted(out.glob("sys.*")):
        tid = int(file.suffix[1:])
        for line in file.read_text(errors="replace").splitlines():
            m = _CALL.match(line)
            if m is None:
                continue  # signals, exits
            name = m["name"]
            result = _RESULT.search(line)
            ok = result is not None and int(result["ret"]) >= 0
            calls.append(Syscall(tid, name, line, _paths(name, line, result), ok))
    return calls


def _paths(name: str, line: str, result: re.Match[str] | None) -> list[str]:
    """Absolute paths a file call names (what an open returned, when it succeeded)."""
    if name in OPENS and result is not None and result["path"]:
        return [result["path"].split("<")[0]]  # "/dev/null<char 1:3>": the device's numbers
    args = line[line.index("(") + 1 :]
    found = []
    base = None
    for token in re.finditer(rf"{_FD_PATH.pattern}|{_STRING.pattern}", args):
        if token.group(1) is not None:
            base = token.group(1)
            continue
        path = _unescape(token.group(2))
        if not os.path.isabs(path) and base:
            path = os.path.join(base, path)
        found.append(os.path.normpath(path))
        base = None
    return found


def writes(calls: list[Syscall]) -> list[Syscall]:
    """Calls that create, change or remove files (opens that can write, attempts too)."""
    found = []
    for call in calls:
        if call.name in OPENS:
            flags = call.line.split(",")
            if call.name == "creat" or any(f in part for part in flags for f in _WRITE_FLAGS):
                found.append(call)
        elif call.name in FILE_CALLS:
            found.append(call)
    return found


def network(calls: list[Syscall]) -> list[Syscall]:
    """Sockets other than local socket pairs, and every connect, bind or listen."""
    found = []
    for call in calls:
        if call.name == "socket":
            if not call.line.startswith(("socket(AF_UNIX", "socket(AF_LOCAL")):
                found.append(call)
        elif call.name in ("connect", "bind", "listen"):
            found.append(call)
        elif call.name in ("sendto", "sendmsg"):
            fd = _FD_PATH.search(call.line)
            if not (fd and fd.group(1).startswith("UNIX")):
                found.append(call)
    return found


def executions(calls: list[Syscall]) -> list[tuple[Syscall, list[str]]]:
    """Each program executed (attempts too), with its argv."""
    found = []
    for call in calls:
        if call.name in EXEC_CALLS:
            args = call.line[call.line.index("(") + 1 :]
            argv_text = args[args.index("[") + 1 : args.index("]")] if "[" in args else ""
            argv = [_unescape(s) for s in _STRING.findall(argv_text)]
            found.append((call, argv))
    return found
