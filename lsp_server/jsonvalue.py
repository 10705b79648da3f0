"""JSON values from what pygls makes of untyped (custom) messages."""

from __future__ import annotations

from typing import Any

#: Deepest nesting taken from a peer; LSP's own messages nest less than 20 levels.
MAX_DEPTH = 100


def plain(value: Any, depth: int = 0) -> Any:
    """Turn attrs objects and named tuples back into JSON dicts and lists.

    pygls gives custom params and results such shapes. Raises ValueError for a value
    nested deeper than :data:`MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    depth += 1
    if isinstance(value, dict):
        return {k: plain(v, depth) for k, v in value.items()}
    if hasattr(value, "_asdict"):
        return {k: plain(v, depth) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        return {a.name: plain(getattr(value, a.name), depth) for a in value.__attrs_attrs__}
    return value
