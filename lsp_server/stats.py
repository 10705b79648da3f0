"""Counters of what the server did, read by ``fimls/stats`` (and so by check and bench).

Two kinds of records: requests (what the editor saw: outcome and latency, recorded on the
event loop) and generations (what the model did: prompt tokens evaluated or reused, tokens
generated, why it stopped; recorded on the model thread, also for requests that were
cancelled while the model worked).
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter, deque
from dataclasses import dataclass

from lsp_server.generation import GenerationResult

RECENT = 1000


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (1-99) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[max(0, min(98, round(q) - 1))]


def spread(values: list[float]) -> dict[str, float | int]:
    """``{"p50", "p95", "count"}`` of values, as ``fimls/stats`` reports them."""
    return {
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "count": len(values),
    }


@dataclass(frozen=True)
class RequestRecord:
    """One completion request as the editor saw it."""

    outcome: str  # suggestion | empty | cancelled | error | not-ready | skipped
    latency_ms: float
    #: milliseconds queued, in prefill, decoding and post-processing (model answers only)
    phases: tuple[float, float, float, float] | None = None
    evaluated: int | None = None  # prompt tokens the answer cost (0 from memory)


class Stats:
    """Totals since start, plus recent records for percentiles."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.requests: deque[RequestRecord] = deque(maxlen=RECENT)
        self.generations: deque[GenerationResult] = deque(maxlen=RECENT)
        self.totals: Counter[str] = Counter()
        self.action_seconds: deque[float] = deque(maxlen=RECENT)

    def record_request(
        self,
        outcome: str,
        latency_ms: float,
        phases: tuple[float, float, float, float] | None = None,
        evaluated: int | None = None,
    ) -> None:
        """Count one answered request (event loop)."""
        with self._lock:
            self.outcomes[outcome] += 1
            self.requests.append(RequestRecord(outcome, latency_ms, phases, evaluated))

    def count(self, name: str) -> None:
        """Count one event: an answer from memory, a prefetch, a warm-up."""
        with self._lock:
            self.totals[name] += 1

    def record_generation(self, result: GenerationResult) -> None:
        """Count one model generation (model thread)."""
        with self._lock:
            self.generations.append(result)
            self.totals["generations"] += 1
            self.totals["costedGenerations"] += result.costed
            self.totals["promptTokens"] += result.prompt_tokens
            self.totals["reusedTokens"] += result.reused_tokens
            self.totals["evaluatedTokens"] += result.evaluated_tokens
            self.totals["generatedTokens"] += result.generated_tokens
            self.totals["shiftedTokens"] += result.shifted_tokens
            self.totals["prefixReuses"] += result.reused_tokens > result.shifted_tokens
            self.totals["shiftedReuses"] += result.shifted_tokens > 0
            self.totals["documentRestores"] += result.restored
            self.totals[f"stop.{result.stop_reason}"] += 1

    def record_action(self, kind: str, outcome: str, seconds: float, attempts: int) -> None:
        """Count one resolved code action (event loop).

        ``outcome``: ok | failed | cancelled | stale; ``attempts``: model answers asked.
        """
        with self._lock:
            self.totals[f"action.{outcome}"] += 1
            self.totals[f"action.kind.{kind}"] += 1
            self.totals["action.attempts"] += attempts
            if outcome == "ok":
                self.action_seconds.append(seconds)

    def record_acceptance(self, chars: int, accepted: int) -> None:
        """Count one accepted suggestion of ``chars`` characters, ``accepted`` of them taken."""
        with self._lock:
            self.totals["accept.total"] += 1
            self.totals["accept.full" if accepted >= chars else "accept.partial"] += 1
            self.totals["accept.chars"] += accepted

    def to_json(self) -> dict[str, object]:
        """Return the camelCase JSON form of ``fimls/stats``."""
        with self._lock:
            answered = [r.latency_ms for r in self.requests if r.outcome in ("suggestion", "empty")]
            phases = [r.phases for r in self.requests if r.phases is not None]
            costs = [float(r.evaluated) for r in self.requests if r.evaluated is not None]
            recent = list(self.generations)[-20:]
            action_seconds = list(self.action_seconds)
            totals = dict(self.totals)
            outcomes = dict(self.outcomes)
        return {
            "requests": {
                "total": sum(outcomes.values()),
                "suggestion": outcomes.get("suggestion", 0),
                "empty": outcomes.get("empty", 0),
                "cancelled": outcomes.get("cancelled", 0),
                "error": outcomes.get("error", 0),
                "notReady": outcomes.get("not-ready", 0),
                "skipped": outcomes.get("skipped", 0),
            },
            "latencyMs": spread(answered),
            "evaluatedTokensPerAnswer": spread(costs),
            "engine": {
                "generations": totals.get("generations", 0),
                # those whose reused and evaluated tokens are known (all, locally)
                "costedGenerations": totals.get("costedGenerations", 0),
                "promptTokens": totals.get("promptTokens", 0),
                "reusedTokens": totals.get("reusedTokens", 0),
                "evaluatedTokens": totals.get("evaluatedTokens", 0),
                "generatedTokens": totals.get("generatedTokens", 0),
                "shiftedTokens": totals.get("shiftedTokens", 0),
                "stopReasons": {
                    k.split(".", 1)[1]: v for k, v in totals.items() if k.startswith("stop.")
                },
            },
            "cache": {
                "prefixReuses": totals.get("prefixReuses", 0),
                "shiftedReuses": totals.get("shiftedReuses", 0),
                "documentRestores": totals.get("documentRestores", 0),
                "memoryExact": totals.get("memory.exact", 0),
                "memoryTyped": totals.get("memory.typed", 0),
                "prefetched": totals.get("prefetched", 0),
                "warmedUp": totals.get("warmedUp", 0),
            },
            "phasesMs": {
                name: {
                    "p50": round(percentile([p[i] for p in phases], 50), 1),
                    "p95": round(percentile([p[i] for p in phases], 95), 1),
                }
                for i, name in enumerate(("queue", "prefill", "decode", "postprocess"))
            },
            "actions": {
                **{o: totals.get(f"action.{o}", 0) for o in ("ok", "failed", "cancelled", "stale")},
                "attempts": totals.get("action.attempts", 0),
                "byKind": {
                    k.rsplit(".", 1)[1]: v
                    for k, v in totals.items()
                    if k.startswith("action.kind.")
                },
                "secondsP50": round(percentile(action_seconds, 50), 2),
            },
            "acceptances": {
                k: totals.get(f"accept.{k}", 0) for k in ("total", "full", "partial", "chars")
            },
            "recentGenerations": [_generation_json(g) for g in recent],
        }


def _generation_json(g: GenerationResult) -> dict[str, object]:
    return {
        "promptTokens": g.prompt_tokens,
        "reusedTokens": g.reused_tokens,
        "evaluatedTokens": g.evaluated_tokens,
        "generatedTokens": g.generated_tokens,
        "shiftedTokens": g.shifted_tokens,
        "restored": g.restored,
        "promptMs": round(g.prompt_ms, 1),
        "firstTokenMs": round(g.first_token_ms, 1),
        "totalMs": round(g.total_ms, 1),
        "stopReason": g.stop_reason,
        "costed": g.costed,
    }
