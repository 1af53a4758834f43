"""Row helpers the audit log and the consent store share: batches, limits, times, paging.

Their database layer is ``gateway.stores`` (shared with the crosswalk).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

#: Rows per statement or batch of parameters.
BATCH = 5_000


def chunks(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def check_limit(limit: object, most: int = 10_000) -> int:
    """``limit`` if it is a whole number from 0 to ``most``, else ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= most:
        raise ValueError(f"limit must be a whole number from 0 to {most}, not {limit!r}")
    return limit


def stamp(at: datetime) -> str:
    """``at`` in UTC as fixed-width text (``2024-05-02T12:30:00.000000Z``): sorts as time."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(value: str | datetime) -> datetime:
    """A time read back: SQLite gives :func:`stamp` text, PostgreSQL a datetime."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(UTC)


def newest_first(parts: Iterable[tuple[str, Any]], limit: int, style: str) -> tuple[str, list[Any]]:
    """``WHERE ... ORDER BY id DESC LIMIT n`` over the parts whose value is not None.

    Each part is ``(condition, value)`` with ``{}`` where the parameter goes; ``style`` is
    ``?`` (SQLite) or ``$`` (PostgreSQL, numbered).
    """
    conditions, params = ["true"], []
    for condition, value in parts:
        if value is None:
            continue
        params.append(value)
        conditions.append(condition.format("?" if style == "?" else f"${len(params)}"))
    params.append(limit)
    mark = "?" if style == "?" else f"${len(params)}"
    return f"WHERE {' AND '.join(conditions)} ORDER BY id DESC LIMIT {mark}", params
