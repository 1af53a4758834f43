"""A store's SQLite file, through aiosqlite: the layer the crosswalk, audit log and consent
store share.

WAL mode; one writer connection (a write takes an asyncio lock, then ``BEGIN IMMEDIATE``, which
also serializes writers of other processes sharing the file) and one reader connection, which
in WAL mode sees the last committed state without waiting for a writer. A long walk (the audit
log's ``verify``) gets a connection of its own and one read transaction: a consistent snapshot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.stores.types import DatabaseBacked, ErrorKinds, Migrations

#: (sqlite3 error name prefix, what to do about it); the last one is the default.
HINTS = (
    ("SQLITE_BUSY", "another process held the file too long; retry, or look for a stuck writer"),
    ("SQLITE_NOTADB", "it is not a SQLite database: name another file"),
    ("SQLITE_FULL", "the disk is full"),
    ("", "check that the file and its directory are writable"),
)

_PRAGMAS = ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON", "busy_timeout = 10000")


def constraint_of(exc: sqlite3.IntegrityError, reports: Sequence[tuple[str, str]] = ()) -> str | None:
    """The name of the constraint sqlite3 reports: named in its message, or by ``reports``.

    ``reports`` are (prefix of the message, constraint name), for the constraints sqlite3 does
    not name (unique keys, foreign keys, NOT NULL).
    """
    message = str(exc)
    if message.startswith("CHECK constraint failed: "):
        return message.partition(": ")[2]
    return next((name for prefix, name in reports if message.startswith(prefix)), None)

#: A connection, for the stores' annotations (aiosqlite itself stays in this module).
Connection = aiosqlite.Connection


class SQLiteDatabase:
    """One SQLite file (created with its parent directories), migrated on open.

    ``hints`` replace :data:`HINTS`, ``reports`` name constraints (see :func:`constraint_of`),
    ``setup`` statements run on the writer after migrating, ``name`` is the store in the
    message when it is used before it is opened.
    """

    def __init__(self, path: Path | str, migrations: Migrations, errors: ErrorKinds,
                 version_table: str, *, hints: Sequence[tuple[str, str]] = HINTS,
                 reports: Sequence[tuple[str, str]] = (), setup: Sequence[str] = (),
                 name: str | None = None) -> None:
        self.path = Path(path)
        self.migrations = migrations
        self.errors = errors
        self.version_table = version_table
        self.hints = hints
        self.reports = reports
        self.setup = setup
        self.name = name or f"the {errors.what} at {self.path}"
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    def unavailable(self, exc: BaseException) -> Exception:
        name = getattr(exc, "sqlite_errorname", "") or ""
        hint = next((h for prefix, h in self.hints if name.startswith(prefix)), self.hints[-1][1])
        return self.errors.unavailable(f"{self.errors.what} file {self.path}: {exc}; {hint}")

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def open(self) -> None:
        """Connect and migrate (idempotent; two tasks opening at once open once)."""
        async with self._lock:
            if self._writer is None:
                await self._open()

    async def _open(self) -> None:
        if self.path.is_dir():
            raise self.errors.config(f"{self.errors.what} path {self.path} is a directory; name a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self.unavailable(exc) from exc
        try:
            for pragma in _PRAGMAS:
                await self._writer.execute(f"PRAGMA {pragma}")
            await self._migrate(self._writer)
            for statement in self.setup:
                await self._writer.execute(statement)
            self._reader = await self._connect_reader()
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, sqlite3.Error):
                raise self.unavailable(exc) from exc
            raise

    async def _connect_reader(self) -> aiosqlite.Connection:
        reader = await aiosqlite.connect(self.path, isolation_level=None, iter_chunk_size=1000)
        for pragma in ("query_only = ON", "busy_timeout = 10000"):
            await reader.execute(f"PRAGMA {pragma}")
        return reader

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(f"CREATE TABLE IF NOT EXISTS {self.version_table}"
                             " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            found = await db.execute_fetchall(f"SELECT coalesce(max(version), 0) FROM {self.version_table}")
            current = next(iter(found))[0]
            for version, statements in self.migrations:
                if version > current:
                    for statement in statements:
                        await db.execute(statement)
                    await db.execute(f"INSERT INTO {self.version_table} VALUES (?, ?)",
                                     (version, datetime.now(UTC).isoformat()))
        except BaseException:
            await db.rollback()
            raise
        await db.commit()

    async def aclose(self) -> None:
        """Close both connections (idempotent)."""
        writer, reader, self._writer, self._reader = self._writer, self._reader, None, None
        for conn in (reader, writer):
            if conn is not None:
                await conn.close()

    def _connection(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise self.errors.base(f"{self.name} is not open: await open() first")
        return conn

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a query, on the reader."""
        try:
            return list(await self._connection(self._reader).execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc

    async def stream(self, sql: str, params: Sequence[Any] = ()) -> AsyncIterator[Any]:
        """The rows of a query on the reader, one at a time."""
        reader = self._connection(self._reader)
        try:
            async with reader.execute(sql, params) as cursor:
                async for row in cursor:
                    yield row
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc

    @asynccontextmanager
    async def write(self, error: type[Exception] | None = None) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed at the end, rolled back on any error.

        A broken constraint raises ``error`` (default: the store's ``invalid``) with its rule.
        """
        async with self._lock:
            db = self._connection(self._writer)
            try:
                await db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self.unavailable(exc) from exc
            try:
                yield db
                await db.commit()
            except BaseException as exc:
                await db.rollback()
                if isinstance(exc, Exception) and isinstance(exc, tuple(self.errors.refusals)):
                    raise self.errors.refused(type(exc), str(exc)) from exc
                if isinstance(exc, sqlite3.IntegrityError):
                    raise self.errors.broken(constraint_of(exc, self.reports), error) from exc
                if isinstance(exc, sqlite3.Error):
                    raise self.unavailable(exc) from exc
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection of its own in one read transaction: every read sees the same state."""
        self._connection(self._writer)
        try:
            conn = await self._connect_reader()
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc
        try:
            await conn.execute("BEGIN")
            yield conn
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc
        finally:
            await conn.close()


class SQLiteBacked(DatabaseBacked):
    """What a store kept in a :class:`SQLiteDatabase` (``self.db``) says of itself."""

    db: SQLiteDatabase

    @property
    def path(self) -> Path:
        return self.db.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
