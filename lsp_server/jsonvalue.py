"""JSON values from what pygls makes of untyped (custom) messages."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """Turn attrs objects and named tuples back into JSON dicts and lists.

    pygls gives custom params and results such shapes.
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        return {a.name: plain(getattr(value, a.name)) for a in value.__attrs_attrs__}
    return value
