"""What the database layer needs to know of a store: its errors, its rules, its migrations.

The audit log and the consent store share one SQLite layer (``sqlite_db``) and one PostgreSQL
layer (``postgres_db``); each store hands them an :class:`ErrorKinds`, so that a library's
exception becomes the store's own error, with the store's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

#: Rows per statement or batch of parameters.
BATCH = 5_000

Migrations = tuple[tuple[int, tuple[str, ...]], ...]
"""(version, statements): applied in order, each once, recorded in the store's version table."""


@dataclass(frozen=True)
class ErrorKinds:
    """A store's error classes, its name in messages, and what its constraints mean."""

    what: str  # "audit log", "consent store"
    base: type[Exception]
    config: type[Exception]
    unavailable: type[Exception]
    invalid: type[Exception]
    rules: Mapping[str, str] = field(default_factory=dict)

    def broken(self, constraint: str | None) -> Exception:
        """``invalid``, saying which rule (by constraint name) was broken and that nothing was written."""
        rule = self.rules.get(constraint or "", f"a rule of the store was broken ({constraint or 'unknown'})")
        return self.invalid(f"refused, nothing written: {rule}")


class DatabaseBacked:
    """A store kept in a database layer (``self.db``): opening and closing go to it."""

    db: Any

    def _is_open(self) -> bool:
        return bool(self.db.is_open)

    async def _open_store(self) -> None:
        await self.db.open()

    async def _close_store(self) -> None:
        await self.db.aclose()


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
