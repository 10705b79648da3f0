"""Run generated code in a child process with limits; a hang or a crash is a failure.

The program runs in ``python -I`` (isolated: no user site, no environment variables
honoured) in a fresh temporary directory that is its home and working directory. A small
launcher sets limits on CPU time, address space, file size and open files and replaces
the socket module's connect functions (so network use fails) before it runs the program;
a wall-clock timeout kills the program's whole process group. This protects against
accidents in model output; it is not a security boundary against hostile code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

#: Runs first in the child: apply the limits, disable the network, then run the program.
LAUNCHER = """\
import resource, runpy, socket, sys
cpu, memory, files, nofile = (int(v) for v in sys.argv[1:5])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
def no_network(*args, **kwargs):
    raise OSError("network access is disabled in the fimls eval sandbox")
socket.socket.connect = no_network
socket.socket.connect_ex = no_network
socket.socket.sendto = no_network
socket.create_connection = no_network
socket.getaddrinfo = no_network
sys.argv = ["program.py"]
runpy.run_path("program.py", run_name="__main__")
"""


@dataclass(frozen=True)
class Limits:
    """Resource limits for one program."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    open_files: int = 64


@dataclass(frozen=True)
class Outcome:
    """How a program ended."""

    passed: bool
    reason: str  # passed | failed | timeout | killed
    returncode: int | None
    output: str  # the end of stdout and stderr, for the report


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run Python source; it passes when it exits with status 0 within the limits."""
    with tempfile.TemporaryDirectory(prefix="fimls-eval-") as tmp:
        program = os.path.join(tmp, "program.py")
        with open(program, "w", encoding="utf-8") as fh:
            fh.write(source)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "TMPDIR": tmp,
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                LAUNCHER,
                str(limits.cpu_seconds),
                str(limits.memory_bytes),
                str(limits.file_bytes),
                str(limits.open_files),
            ],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            return Outcome(False, "timeout", None, _tail(out))
        finally:
            _kill_group(proc)  # anything it left running in its session
        code = proc.returncode
        if code == 0:
            return Outcome(True, "passed", 0, _tail(out))
        return Outcome(False, "killed" if code < 0 else "failed", code, _tail(out))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(data: bytes | None, limit: int = 600) -> str:
    text = (data or b"").decode("utf-8", "replace")
    return text[-limit:]
