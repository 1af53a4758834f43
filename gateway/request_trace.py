"""What one request asked of its sources: every call, its round trips, cache hits and timings.

The resolver adds one :class:`SourceCall` per fetch. Every response carries the freshness of
each source's data in ``extensions.freshness`` (live, or cached and how old); an admin who asks
for it (``"extensions": {"explain": true}`` in the request body) also gets the whole plan in
``extensions.explain``: which sources, which statements (SQL with placeholders, never values)
and HTTP calls, how many round trips, cache hits and timings (docs/performance.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.query import Cond, Expr, Query


@dataclass(slots=True)
class SourceCall:
    """One fetch of one source: what for, what it sent, what it cost."""

    source: str
    step: str  # lookup, members, page, record, transactions, interactions
    entity: str
    started_ms: float  # since the request began
    ms: float = 0.0
    rows: int = 0
    cached_age: float | None = None  # seconds; None: read live
    statements: list[str] = field(default_factory=list)
    parameters: int = 0
    error: str | None = None


@dataclass
class RequestTrace:
    """The calls of one request, in the order they started."""

    calls: list[SourceCall] = field(default_factory=list)
    origin: float = field(default_factory=time.perf_counter)

    def start(self, source: str, step: str, query: Query) -> SourceCall:
        call = SourceCall(source, step, query.entity,
                          round((time.perf_counter() - self.origin) * 1000, 3),
                          parameters=_values(query.where) + (query.after is not None)
                          + (query.limit is not None))
        self.calls.append(call)
        return call

    def end(self, call: SourceCall, rows: int | None, trips: list[str],
            error: str | None = None) -> None:
        call.ms = round((time.perf_counter() - self.origin) * 1000 - call.started_ms, 3)
        call.rows = rows or 0
        call.statements = trips
        call.error = error

    @property
    def round_trips(self) -> int:
        return sum(len(c.statements) for c in self.calls)

    def freshness(self, readable: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Per source the request may read: live, or the age of its oldest cached part.

        Every readable source is listed, called or not, so that the list says nothing of what
        the request found (a customer outside the row scope reads like one that does not exist).
        """
        out = {name: {"cached": False, "ageSeconds": 0.0} for name in readable}
        for call in self.calls:
            seen = out.get(call.source)
            if seen is None or call.error is not None:
                continue
            if call.cached_age is not None:
                seen["cached"] = True
                seen["ageSeconds"] = max(seen["ageSeconds"], round(call.cached_age, 3))
        return out

    def explain(self) -> dict[str, Any]:
        """The plan as it ran, for an admin."""
        return {
            "sourceCalls": len(self.calls),
            "roundTrips": self.round_trips,
            "cacheHits": sum(c.cached_age is not None for c in self.calls),
            "sources": sorted({c.source for c in self.calls}),
            "calls": [{
                "source": c.source, "step": c.step, "entity": c.entity,
                "startedMs": c.started_ms, "ms": c.ms, "rows": c.rows,
                "cached": c.cached_age is not None,
                **({"ageSeconds": round(c.cached_age, 3)} if c.cached_age is not None else {}),
                "roundTrips": len(c.statements), "statements": c.statements,
                "parameters": c.parameters,
                **({"error": c.error} if c.error else {}),
            } for c in self.calls],
        }


def _values(expr: Expr | None) -> int:
    """How many values a filter carries (they are elided from the plan: only counted)."""
    if expr is None:
        return 0
    if isinstance(expr, Cond):
        return len(expr.value) if isinstance(expr.value, tuple | list | set | frozenset) else 1
    return sum(_values(part) for part in expr.parts)
