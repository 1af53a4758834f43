"""Round trips to a source, as the gateway's explain and counters see them.

A connector calls :func:`note` once per statement it sends or HTTP request it makes, with a
description that carries no value (SQL with placeholders, ``POST /crm/v3/objects/contacts/search``).
The gateway wraps a fetch in :func:`recording` to learn what that fetch cost; outside a
recording, :func:`note` is one context-variable read. The recording follows the fetch into the
tasks it spawns (asyncio copies the context), and concurrent fetches never see each other's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[list[str] | None] = ContextVar("panorama_round_trips", default=None)


def note(description: str) -> None:
    """Record one round trip of the current fetch, if it is being recorded."""
    trips = _current.get()
    if trips is not None:
        trips.append(description)


@contextlib.contextmanager
def recording() -> Iterator[list[str]]:
    """Collect the round trips made inside the block, in order."""
    trips: list[str] = []
    token = _current.set(trips)
    try:
        yield trips
    finally:
        _current.reset(token)
