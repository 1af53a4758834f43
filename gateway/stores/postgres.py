"""A store's PostgreSQL schema, through an asyncpg pool: the layer the crosswalk, audit log
and consent store share when gateway replicas keep them in one database.

The schema is created if missing and migrated under an advisory lock, so replicas starting at
once do not both create the tables. Library exceptions become the store's own errors here, with
any password scrubbed from the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import asyncpg.exceptions as pg  # type: ignore[import-untyped]

from gateway.stores.location import redact_url
from gateway.stores.types import DatabaseBacked, ErrorKinds, Migrations

#: Library exceptions that mean the database cannot be reached or refused us.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, pg.PostgresConnectionError, pg.InterfaceError,
    pg.InvalidAuthorizationSpecificationError, pg.InvalidCatalogNameError,
    pg.InsufficientPrivilegeError, pg.InsufficientResourcesError, pg.OperatorInterventionError,
)

#: A pooled connection, for the stores' annotations (asyncpg itself stays in this module).
Connection = asyncpg.Connection


class PostgresDatabase:
    """A pool on ``dsn`` whose ``search_path`` is ``schema``, migrated on open.

    ``lock`` names the advisory lock migrations take (default: by version table and schema),
    ``name`` is the store in the message when it is used before it is opened.
    """

    def __init__(self, dsn: str, schema: str, migrations: Migrations, errors: ErrorKinds,
                 version_table: str, *, pool_size: int = 5, lock: str | None = None,
                 name: str | None = None) -> None:
        self.dsn = dsn
        self.schema = schema
        self.migrations = migrations
        self.errors = errors
        self.version_table = version_table
        self.pool_size = pool_size
        self.lock = lock or f"panorama:{version_table}:{schema}"
        self.name = name or f"the {errors.what} {self!r}"
        self._pool: asyncpg.Pool | None = None
        self._open_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"{redact_url(self.dsn)} (schema {self.schema})"

    def _scrub(self, text: str) -> str:
        try:
            password = urlsplit(self.dsn).password
        except ValueError:
            password = None
        return text.replace(password, "***") if password else text

    def translate(self, exc: BaseException, error: type[Exception] | None = None) -> Exception | None:
        """The store's error for a library exception (``error`` for a broken rule); None for
        anything else (a bug)."""
        if isinstance(exc, pg.IntegrityConstraintViolationError):
            return self.errors.broken(getattr(exc, "constraint_name", None), error)
        if isinstance(exc, UNAVAILABLE):
            return self.errors.unavailable(
                f"{self.errors.what} database {redact_url(self.dsn)} cannot be used"
                f" ({type(exc).__name__}: {self._scrub(str(exc))}); check {self.errors.url} and"
                " that PostgreSQL is running")
        if isinstance(exc, pg.PostgresError):
            return self.errors.base(f"{self.errors.what} database {redact_url(self.dsn)}: "
                                    f"{type(exc).__name__}: {self._scrub(str(exc))}")
        return None

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @asynccontextmanager
    async def connection(self, transaction: bool = False, error: type[Exception] | None = None,
                         **options: Any) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (in a transaction with ``options`` if asked), errors translated;
        ``error`` (default: the store's ``invalid``) for a broken rule."""
        if self._pool is None:
            raise self.errors.base(f"{self.name} is not open: await open() first")
        try:
            async with self._pool.acquire() as conn:
                if not transaction:
                    yield conn
                    return
                async with conn.transaction(**options):
                    yield conn
        except tuple(self.errors.refusals) as exc:
            raise self.errors.refused(type(exc), str(exc)) from exc
        except Exception as exc:
            translated = self.translate(exc, error)
            if translated is None:
                raise
            raise translated from exc

    async def fetch(self, sql: str, *params: Any) -> list[Any]:
        """Every row of a query."""
        async with self.connection() as conn:
            return list(await conn.fetch(sql, *params))

    async def open(self) -> None:
        """Connect, create the schema if missing, migrate (idempotent)."""
        async with self._open_lock:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size, timeout=10,
                server_settings={"search_path": self.schema, "application_name": "panorama"})
        except ValueError as exc:  # asyncpg's DSN parser
            raise self.errors.config(f"{self.errors.what} URL {redact_url(self.dsn)}:"
                                     f" {self._scrub(str(exc))}") from None
        except Exception as exc:
            translated = self.translate(exc)
            if translated is None:
                raise
            raise translated from exc
        self._pool = pool
        try:
            async with self.connection(transaction=True) as conn:
                await self._migrate(conn)
        except BaseException:
            await self.aclose()
            raise

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        # Two gateways starting at once must not both create the tables.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.lock)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {self.version_table}"
                           " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)")
        current = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {self.version_table}")
        for version, statements in self.migrations:
            if version > current:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {self.version_table} VALUES ($1, now())", version)

    async def aclose(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, OSError, pg.InterfaceError):
                pool.terminate()


class PostgresBacked(DatabaseBacked):
    """What a store kept in a :class:`PostgresDatabase` (``self.db``) says of itself."""

    db: PostgresDatabase

    @property
    def dsn(self) -> str:
        return self.db.dsn

    @property
    def schema(self) -> str:
        return self.db.schema

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db!r})"
