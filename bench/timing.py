"""Timing and goals for ``direct_path.py``: percentiles, a timed call, the goal table."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Goal:
    """One goal of the issue, as measured in this run."""

    name: str
    measured: str
    met: bool | None  # None: not measurable in this run


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of ``samples``, ``q`` in 0..100."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Seconds ``call()`` took, and what it returned."""
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


def report(goals: list[Goal]) -> bool:
    """Print the goal table; whether no goal was missed."""
    width = max(len(g.name) for g in goals)
    print("\n== goals (ratios measured in this run)")
    for g in goals:
        verdict = "n/a" if g.met is None else "MET" if g.met else "MISSED"
        print(f"{g.name:<{width}}  {verdict:<6}  {g.measured}")
    return all(g.met is not False for g in goals)
