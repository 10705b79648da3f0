"""Pure scoring helpers: normalized exact match, edit similarity, percentiles."""

from __future__ import annotations


def normalize(text: str) -> str:
    """Drop trailing whitespace on every line and trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def edit_similarity(a: str, b: str) -> float:
    """1 - distance / longer length, on whitespace-normalized text (1.0 for two empties)."""
    a, b = normalize(a), normalize(b)
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / longest
