"""An audit hook for the privacy tests, installed when the server's interpreter starts.

tests/e2e/test_privacy.py puts this folder first on the server's PYTHONPATH, so Python
imports this module at start-up (before fimls) and every audit event the server raises
(PEP 578) passes through :func:`_hook`. With ``FIMLS_AUDIT_LOG`` set it appends one JSON
object per line to that file:

- ``start``: the process (pid, argv, cwd, network namespace);
- ``network``: any socket, name lookup or URL event; connects, binds, sends and lookups
  are refused (the hook raises), so the server must work without them;
- ``write``: opens that can write (mode w/a/x/+, or O_WRONLY/O_RDWR/O_CREAT/O_TRUNC/
  O_APPEND) and every call that creates, renames, removes or changes a file;
- ``read``: opens of paths under the folders in ``FIMLS_AUDIT_WATCH``;
- ``exec``: code objects run whose file is not a real file, or is under a watched folder
  (imports are ``exec`` events too: those of real files elsewhere are left out), with the
  strings the code holds, and ``compile`` events of such code;
- ``process``: ``os.system``, ``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``,
  ``os.spawn*``, ``os.fork``, ``pty.spawn``; ``dlopen``: libraries loaded by ctypes.

Markers (``FIMLS_AUDIT_MARKERS``, separated by the path separator) are looked for in the
strings of executed and compiled code: ``markers`` lists those found.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import types
from typing import Any

_LOG = os.environ.get("FIMLS_AUDIT_LOG")

NETWORK_REFUSED = {
    "socket.bind",
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyaddr",
    "socket.gethostbyname",
    "socket.getnameinfo",
    "socket.sendmsg",
    "socket.sendto",
    "urllib.Request",
    "http.client.connect",
    "http.client.send",
    "ftplib.connect",
    "smtplib.connect",
    "imaplib.open",
    "poplib.connect",
    "nntplib.connect",
    "telnetlib.Telnet.open",
    "webbrowser.open",
}
NETWORK_PREFIXES = ("socket.", "urllib.", "http.", "ssl.", "ftplib.", "smtplib.", "imaplib.")
NETWORK_PREFIXES += ("poplib.", "nntplib.", "telnetlib.", "webbrowser.")
#: Local questions, not traffic: recorded but neither refused nor counted as network.
NETWORK_HARMLESS = {"socket.gethostname", "socket.sethostname"}

#: event -> indexes of its arguments that name a path written to
WRITES = {
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.lchmod": (0,),
    "os.utime": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.copyfile": (1,),
    "shutil.copymode": (1,),
    "shutil.copystat": (1,),
    "shutil.copytree": (1,),
    "shutil.rmtree": (0,),
    "shutil.move": (0, 1),
    "shutil.chown": (0,),
    "shutil.make_archive": (0,),
    "shutil.unpack_archive": (1,),
    "tempfile.mkstemp": (0,),
    "tempfile.mkdtemp": (0,),
    "sqlite3.connect": (0,),
    "dbm.open": (0,),
}
#: events whose dir_fd argument (an index) makes a relative path relative to a folder
DIR_FD = {"os.mkdir": 2, "os.remove": 1, "os.rmdir": 1, "os.chmod": 2, "os.utime": 3}

PROCESSES = {
    "os.system",
    "subprocess.Popen",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.startfile",
    "pty.spawn",
}

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_STRINGS_LIMIT = 20_000


def _path(value: Any, dir_fd: Any = None) -> Any:
    """A path argument as an absolute str (an fd stays an int)."""
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    try:
        value = os.fspath(value)
    except TypeError:
        return repr(value)
    if not isinstance(value, str):
        value = os.fsdecode(value)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(value):
        try:
            base = os.readlink(f"/proc/self/fd/{dir_fd}")
        except OSError:
            base = f"<fd {dir_fd}>"
        return os.path.join(base, value)
    return os.path.abspath(value)


def _strings(code: types.CodeType, found: list[str]) -> None:
    """Collect the strings a code object holds (constants, names), nested code too."""
    for item in (code.co_filename, code.co_name, *code.co_names, *code.co_varnames):
        found.append(item)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _strings(const, found)
        elif isinstance(const, (str, bytes)):
            text = const if isinstance(const, str) else const.decode("latin-1")
            found.append(text)
        elif isinstance(const, (tuple, frozenset)):
            found.extend(repr(c) for c in const)


def _install(log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    watched = tuple(
        os.path.join(os.path.abspath(p), "")
        for p in os.environ.get("FIMLS_AUDIT_WATCH", "").split(os.pathsep)
        if p
    )
    markers = [m for m in os.environ.get("FIMLS_AUDIT_MARKERS", "").split(os.pathsep) if m]
    local = threading.local()

    def emit(kind: str, event: str, **fields: Any) -> None:
        record = {"kind": kind, "event": event, "pid": os.getpid(), **fields}
        line = json.dumps(record, default=repr) + "\n"
        os.write(fd, line.encode("utf-8", "replace"))

    def is_watched(path: Any) -> bool:
        return isinstance(path, str) and os.path.join(path, "").startswith(watched)

    def found_markers(texts: list[str]) -> list[str]:
        return [m for m in markers if any(m in t for t in texts)]

    def on_open(event: str, args: tuple[Any, ...]) -> None:
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        writes = writes or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        where = _path(path)
        if writes:
            emit("write", event, paths=[where], mode=mode, flags=flags)
        elif is_watched(where):
            emit("read", event, paths=[where], mode=mode, flags=flags)

    def on_exec(event: str, args: tuple[Any, ...]) -> None:
        code = args[0] if args else None
        if not isinstance(code, types.CodeType):
            emit("exec", event, filename=None, code=repr(code)[:2000])
            return
        filename = code.co_filename
        real = os.path.isfile(filename)
        if real and not is_watched(os.path.abspath(filename)):
            return  # an import of an installed module
        texts: list[str] = []
        _strings(code, texts)
        joined = "\n".join(texts)
        emit(
            "exec",
            event,
            filename=filename,
            name=code.co_name,
            real_file=real,
            markers=found_markers(texts),
            strings=joined[:_STRINGS_LIMIT],
        )

    def on_compile(event: str, args: tuple[Any, ...]) -> None:
        source, filename = (tuple(args) + (None, None))[:2]
        name = os.fsdecode(filename) if isinstance(filename, bytes) else filename
        if isinstance(name, str) and os.path.isfile(name) and not is_watched(_path(name)):
            return
        if isinstance(source, bytes):
            text = source.decode("utf-8", "replace")
        elif isinstance(source, str):
            text = source
        else:
            text = repr(source)
        emit("compile", event, filename=repr(filename), markers=found_markers([text]))

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if getattr(local, "busy", False):
            return
        local.busy = True
        try:
            if event == "open":
                on_open(event, args)
            elif event == "exec":
                on_exec(event, args)
            elif event == "compile":
                on_compile(event, args)
            elif event in WRITES:
                dir_fd = (
                    args[DIR_FD[event]] if event in DIR_FD and len(args) > DIR_FD[event] else None
                )
                paths = [_path(args[i], dir_fd) for i in WRITES[event] if i < len(args)]
                emit("write", event, paths=paths, args=[repr(a)[:300] for a in args])
            elif event in PROCESSES:
                emit("process", event, args=[repr(a)[:2000] for a in args], argv=_argv(args))
            elif event == "ctypes.dlopen":
                emit("dlopen", event, args=[repr(a)[:300] for a in args])
            elif event.startswith(NETWORK_PREFIXES):
                if event == "socket.__new__":
                    family = args[1] if len(args) > 1 else None
                    emit("socket", event, family=family, unix=family == 1)
                elif event in NETWORK_HARMLESS:
                    emit("local", event, args=[repr(a)[:300] for a in args])
                else:
                    refused = event in NETWORK_REFUSED
                    emit("network", event, args=[repr(a)[:300] for a in args], refused=refused)
                    if refused:
                        raise PermissionError(f"{event}: network refused by the privacy test")
        finally:
            local.busy = False

    try:
        netns = os.readlink("/proc/self/ns/net")
    except OSError:
        netns = None
    emit(
        "start",
        "start",
        argv=sys.argv,
        orig_argv=getattr(sys, "orig_argv", None),
        cwd=os.getcwd(),
        netns=netns,
    )
    sys.addaudithook(hook)


def _argv(args: tuple[Any, ...]) -> list[str] | None:
    """The argument list of a process event (the second argument of most)."""
    for value in args[1:2]:
        if isinstance(value, (list, tuple)):
            return [os.fsdecode(v) if isinstance(v, bytes) else str(v) for v in value]
    return None


if _LOG:
    _install(_LOG)
