"""Counters behind fimls/stats."""

from __future__ import annotations

from lsp_server.generation import GenerationResult
from lsp_server.stats import Stats, percentile


def test_percentile() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.5
    assert 95 <= percentile(values, 95) <= 96


def test_stats_json() -> None:
    stats = Stats()
    stats.record_request("suggestion", 100.0)
    stats.record_request("empty", 300.0)
    stats.record_request("cancelled", 5.0)
    stats.record_generation(GenerationResult("x", "eog", 50, 40, 10, 3, 30.0, 31.0, 80.0))
    data = stats.to_json()
    assert data["requests"] == {
        "total": 3,
        "suggestion": 1,
        "empty": 1,
        "cancelled": 1,
        "error": 0,
        "notReady": 0,
        "skipped": 0,
    }
    assert data["latencyMs"] == {"p50": 200.0, "p95": 290.0, "count": 2}
    engine = data["engine"]
    assert isinstance(engine, dict)
    assert engine["reusedTokens"] == 40 and engine["evaluatedTokens"] == 10
    assert engine["stopReasons"] == {"eog": 1}


def test_acceptances_split_full_and_partial() -> None:
    stats = Stats()
    assert stats.to_json()["acceptances"] == {"total": 0, "full": 0, "partial": 0, "chars": 0}
    stats.record_acceptance(12, 12)
    stats.record_acceptance(12, 5)
    assert stats.to_json()["acceptances"] == {"total": 2, "full": 1, "partial": 1, "chars": 17}
