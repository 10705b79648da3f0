"""Where documents live: workspace folders, and a document's path inside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse


def uri_path(uri: str) -> PurePosixPath | None:
    """The filesystem path of a ``file:`` URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return PurePosixPath(unquote(parsed.path))


def locate(uri: str, folders: Sequence[str]) -> tuple[str, str]:
    """(path relative to the innermost workspace folder holding it, that folder's name).

    Documents outside every folder (or not files) get their file name and the name of
    their directory.
    """
    path = uri_path(uri)
    name = PurePosixPath(urlparse(uri).path).name or uri
    if path is None:
        return name, ""
    best: PurePosixPath | None = None
    for folder in folders:
        root = uri_path(folder)
        if root is not None and path.is_relative_to(root):
            if best is None or len(root.parts) > len(best.parts):
                best = root
    if best is None:
        return name, path.parent.name
    return path.relative_to(best).as_posix(), best.name
