"""What the database layer needs to know of a store: its errors, its rules, its migrations.

Each store hands the SQLite layer (``sqlite``) or the PostgreSQL layer (``postgres``) an
:class:`ErrorKinds`, so that a library's exception becomes the store's own error, in the
store's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Migrations = tuple[tuple[int, tuple[str, ...]], ...]
"""(version, statements): applied in order, each once, recorded in the store's version table."""


@dataclass(frozen=True)
class ErrorKinds:
    """A store's error classes, its name in messages, and what its constraints mean."""

    what: str  # "crosswalk", "audit log", "consent store"
    base: type[Exception]
    config: type[Exception]
    unavailable: type[Exception]
    invalid: type[Exception]  # raised for a broken rule unless the transaction names another
    rules: Mapping[str, str] = field(default_factory=dict)  # constraint name -> the rule
    #: Error class -> what its refusal means ("index run rejected, nothing applied"). One of
    #: these raised inside a transaction is raised again with that prefix.
    refusals: Mapping[type[Exception], str] = field(default_factory=dict)
    refusal: str = "refused, nothing written"  # the prefix for a class not in ``refusals``
    url: str = "the store URL"  # what to check when the database cannot be reached

    def rule(self, constraint: str | None) -> str:
        """What a violated constraint means, by name."""
        return self.rules.get(constraint or "", f"a rule of the store was broken ({constraint or 'unknown'})")

    def refused(self, error: type[Exception], detail: str) -> Exception:
        """``error`` with a message saying that nothing was written, and why."""
        return error(f"{self.refusals.get(error, self.refusal)}: {detail}")

    def broken(self, constraint: str | None, error: type[Exception] | None = None) -> Exception:
        """``error`` (default ``invalid``) saying which rule was broken and that nothing was written."""
        return self.refused(error or self.invalid, self.rule(constraint))


class DatabaseBacked:
    """A store kept in a database layer (``self.db``): opening and closing go to it."""

    db: Any

    def _is_open(self) -> bool:
        return bool(self.db.is_open)

    async def _open_store(self) -> None:
        await self.db.open()

    async def _close_store(self) -> None:
        await self.db.aclose()
