"""A progress bar on stderr: redrawn in place on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    """Call with (done, total); draws ``label [####----] 42% done/total unit``."""

    def __init__(
        self, label: str, unit: str = "", scale: float = 1.0, stream: TextIO | None = None
    ):
        self._label = label
        self._unit = unit
        self._scale = scale
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._last = -1

    def __call__(self, done: int, total: int, note: str = "") -> None:
        """Report progress; off a terminal only every 25 % is printed."""
        pct = 100 * done // max(total, 1)
        step = pct if self._tty else pct - pct % 25
        if step == self._last and done < total:
            return
        if step == self._last and not self._tty:
            return
        self._last = step
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        amount = f"{done / self._scale:.0f}/{total / self._scale:.0f}{self._unit}"
        line = f"{self._label} [{bar}] {pct:3d}% {amount}{' ' + note if note else ''}"
        if self._tty:
            end = "\n" if done >= total else ""
            self._stream.write("\r" + line + "\x1b[K" + end)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def bytes_bar(label: str) -> ProgressBar:
    """A progress bar that counts MiB."""
    return ProgressBar(label, unit=" MiB", scale=2**20)
