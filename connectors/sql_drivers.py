"""Drivers behind the SQL connector: bounded pools, catalog queries, parameter types, errors.

A driver runs SQL that ``connectors.sql_statements`` built, with its parameters, on one
engine. What differs between engines is declared as class attributes, in tables: the placeholder style,
the connection keys, how parameters are coerced to a column's declared type (asyncpg refuses
``'3'`` for an integer column; MariaDB would read ``'1) OR (1=1'`` as 1), and how the
library's exceptions map onto the connector error tree. The connector translates errors once,
at its boundary, with :meth:`Driver.translate`.

Catalog queries are fixed, engine-specific SQL text (information_schema, PRAGMA functions):
there is nothing to transpile in them, and their values are parameters like any other.
"""

from __future__ import annotations

import asyncio
import errno
import math
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import asyncmy
import asyncmy.errors
import asyncpg  # type: ignore[import-untyped]
import asyncpg.exceptions as pg  # type: ignore[import-untyped]
from asyncmy.constants import CR, ER

from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    UpstreamError,
)
from connectors.round_trips import note

Row = Sequence[Any]
Coercer = Callable[[Any], Any]
ErrorTable = Mapping[type[BaseException], type[ConnectorError]]

#: What a coercer returns for a value that no row of the column can equal (``'abc'`` for an
#: integer column): the condition is decided without asking the source.
NO_MATCH: Any = object()


# --- parameter coercion: the value in the type of the column it is compared with ---------

_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def to_int(bits: int) -> Coercer:
    """Integers and digit strings, within a signed ``bits``-bit column's range."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def coerce(value: Any) -> Any:
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            value = int(value)
        elif isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return value if ok else NO_MATCH

    return coerce


def to_decimal(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return NO_MATCH
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return NO_MATCH
    return number if number.is_finite() else NO_MATCH


def to_float(value: Any) -> Any:
    number = to_decimal(value)
    return NO_MATCH if number is NO_MATCH else float(number)


def to_text(value: Any) -> Any:
    """Numbers compare with text columns as their decimal text (a CRM id against a varchar)."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


def to_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else NO_MATCH
    except ValueError:
        return NO_MATCH


def to_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) else NO_MATCH
    except ValueError:
        return NO_MATCH


def to_iso_text(value: Any) -> Any:
    """SQLite stores dates as ISO text; compare with the same text it holds."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, date) else value


def as_is(value: Any) -> Any:
    return value


# (lower-case part of the declared type, coercer): first match wins, so specific names lead.
_TEXT_AND_NUMBERS: tuple[tuple[str, Coercer], ...] = (
    ("interval", as_is), ("point", as_is),
    ("int", to_int(64)),
    ("char", to_text), ("text", to_text), ("clob", to_text),
    ("numeric", to_decimal), ("decimal", to_decimal),
    ("double", to_float), ("real", to_float), ("float", to_float),
)


# --- the drivers -----------------------------------------------------------------------

#: Library exceptions every driver maps the same way.
COMMON_ERRORS: ErrorTable = {
    TimeoutError: SourceTimeout,
    OSError: SourceUnavailable,  # refused, unreachable, DNS, TLS
}


class Driver:
    """A bounded pool of connections to one engine, created on first use, and its habits."""

    #: sqlglot dialect the connector renders for this driver.
    dialect: ClassVar[str] = ""
    #: The n-th parameter (1-based) in SQL text, as a ``str.format`` pattern over ``n``.
    placeholder: ClassVar[str] = "?"
    #: Keys a source's ``connection`` mapping may hold, and those it must hold.
    connection_keys: ClassVar[frozenset[str]] = frozenset()
    required_keys: ClassVar[frozenset[str]] = frozenset()
    #: Declared column type (lower-case substring) -> parameter coercer; first match wins.
    coercers: ClassVar[tuple[tuple[str, Coercer], ...]] = _TEXT_AND_NUMBERS
    #: Library exception class -> connector error, looked up along the exception's MRO.
    errors: ClassVar[ErrorTable] = COMMON_ERRORS
    #: Engine error code (see :meth:`error_code`) -> connector error; wins over ``errors``.
    error_codes: ClassVar[Mapping[object, type[ConnectorError]]] = {}

    def __init__(self, connection: Mapping[str, Any], pool_size: int) -> None:
        self.connection = dict(connection)
        self.pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Run one SELECT and return its rows as sequences, in select-list order."""
        raise NotImplementedError

    async def columns(self, schema: str | None, table: str) -> dict[str, str]:
        """Column name -> declared type of ``table``, in table order; empty if there is none."""
        raise NotImplementedError

    async def tables(self, schema: str | None) -> dict[str, dict[str, str]]:
        """Tables and views of ``schema`` (default: the connection's own) -> column name ->
        declared type, columns in table order."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        """Connections open right now (never more than ``pool_size``)."""
        raise NotImplementedError

    async def _create_pool(self) -> Any:
        raise NotImplementedError

    async def _close_pool(self, pool: Any) -> None:
        raise NotImplementedError

    async def pool(self) -> Any:
        """The pool, created inside the running loop on first use."""
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await self._create_pool()
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await self._close_pool(pool)

    #: Parts of declared types whose values sort in time order (dates, timestamps, epoch
    #: numbers); text does not qualify, whatever it holds.
    chronological_types: ClassVar[tuple[str, ...]] = (
        "date", "time", "int", "numeric", "decimal", "real", "double", "float")

    def chronological(self, declared_type: str) -> bool:
        """Whether a column of ``declared_type`` sorts its values in time order."""
        declared = declared_type.lower()
        return any(part in declared for part in self.chronological_types)

    #: Parts of declared types whose values are exact numbers: SUM over them stays exact.
    exact_types: ClassVar[tuple[str, ...]] = ("int", "numeric", "decimal")
    #: Parts of declared types that hold dates or times the engine compares as such, so that a
    #: date parameter means the same instant in the source as in the gateway.
    temporal_types: ClassVar[tuple[str, ...]] = ("date", "time")

    def exact(self, declared_type: str) -> bool:
        """Whether sums over a column of ``declared_type`` are exact (no float on the way)."""
        declared = declared_type.lower()
        return "point" not in declared and any(p in declared for p in self.exact_types)

    def temporal(self, declared_type: str) -> bool:
        """Whether a column of ``declared_type`` can be compared with a date parameter."""
        declared = declared_type.lower()
        return any(part in declared for part in self.temporal_types)

    def coercer(self, declared_type: str) -> Coercer:
        """How values compared with a column of ``declared_type`` are passed."""
        declared = declared_type.lower()
        return next((c for part, c in self.coercers if part in declared), as_is)

    @classmethod
    def error_code(cls, exc: BaseException) -> object | None:
        """The engine's code for ``exc`` (SQLSTATE, MySQL errno...), safe to show."""
        return None

    @classmethod
    def translate(cls, exc: BaseException) -> type[ConnectorError] | None:
        """The connector error for a library exception; None for anything else (a bug)."""
        code = cls.error_code(exc)
        if code is not None and code in cls.error_codes:
            return cls.error_codes[code]
        return next((cls.errors[c] for c in type(exc).__mro__ if c in cls.errors), None)


class PostgresDriver(Driver):
    """asyncpg: ``$n`` parameters, strictly typed."""

    dialect = "postgres"
    placeholder = "${n}"
    connection_keys = frozenset({"dsn", "host", "port", "user", "password", "database"})
    coercers = (
        ("smallint", to_int(16)), ("bigint", to_int(64)), ("integer", to_int(32)),
        ("timestamp", to_datetime), ("date", to_date),
        *_TEXT_AND_NUMBERS,
    )
    errors = {
        **COMMON_ERRORS,
        pg.PostgresConnectionError: SourceUnavailable,
        pg.InvalidAuthorizationSpecificationError: SourceUnavailable,  # unknown role, password
        pg.InvalidCatalogNameError: SourceUnavailable,  # the database does not exist
        pg.InsufficientPrivilegeError: SourceUnavailable,
        pg.InsufficientResourcesError: SourceUnavailable,  # too many connections
        pg.OperatorInterventionError: SourceUnavailable,  # shutting down, starting up
        pg.QueryCanceledError: SourceTimeout,  # statement_timeout
        pg.UndefinedTableError: SourceConfigError,
        pg.UndefinedColumnError: SourceConfigError,
        pg.InvalidSchemaNameError: SourceConfigError,
        pg.PostgresError: UpstreamError,
        pg.InterfaceError: UpstreamError,
        pg.InternalClientError: UpstreamError,
    }

    @classmethod
    def error_code(cls, exc: BaseException) -> object | None:
        return getattr(exc, "sqlstate", None)

    async def _create_pool(self) -> asyncpg.Pool:
        # min_size=0: nothing connects until the first query, and idle sources hold nothing.
        return await asyncpg.create_pool(
            min_size=0, max_size=self.pool_size,
            server_settings={"application_name": "panorama"}, **self.connection)

    async def _close_pool(self, pool: asyncpg.Pool) -> None:
        try:
            await asyncio.wait_for(pool.close(), 5)
        except TimeoutError:
            pool.terminate()

    @property
    def size(self) -> int:
        return self._pool.get_size() if self._pool is not None else 0

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        note(sql)
        pool = await self.pool()
        async with pool.acquire() as conn:
            return await conn.fetch(sql, *params)

    async def columns(self, schema: str | None, table: str) -> dict[str, str]:
        rows = await self.rows(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = COALESCE($1::text, current_schema()) AND table_name = $2"
            " ORDER BY ordinal_position", (schema, table))
        return {name: kind for name, kind in rows}

    async def tables(self, schema: str | None) -> dict[str, dict[str, str]]:
        rows = await self.rows(
            "SELECT CASE WHEN table_schema = current_schema() THEN table_name"
            " ELSE table_schema || '.' || table_name END, column_name, data_type"
            " FROM information_schema.columns"
            " WHERE CASE WHEN $1::text IS NULL THEN table_schema = ANY (current_schemas(false))"
            " ELSE table_schema = $1 END"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            " ORDER BY 1, ordinal_position", (schema,))
        return _group(rows)


class MariaDBDriver(Driver):
    """asyncmy: ``%s`` parameters, interpolated by the client."""

    dialect = "mysql"
    placeholder = "%s"
    connection_keys = frozenset({"host", "port", "user", "password", "database"})
    errors = {
        **COMMON_ERRORS,
        asyncmy.errors.InterfaceError: SourceUnavailable,  # used a connection that is gone
        asyncmy.errors.MySQLError: UpstreamError,
    }
    error_codes = {
        **dict.fromkeys((
            CR.CR_CONNECTION_ERROR, CR.CR_CONN_HOST_ERROR, CR.CR_UNKNOWN_HOST,
            CR.CR_SERVER_GONE_ERROR, CR.CR_SERVER_LOST, CR.CR_SERVER_LOST_EXTENDED,
            ER.CON_COUNT_ERROR, ER.ACCESS_DENIED_ERROR, ER.DBACCESS_DENIED_ERROR, ER.BAD_DB_ERROR,
            ER.HOST_IS_BLOCKED, ER.HOST_NOT_PRIVILEGED, ER.SERVER_SHUTDOWN,
            ER.TABLEACCESS_DENIED_ERROR, ER.COLUMNACCESS_DENIED_ERROR,
            1927,  # MariaDB ER_CONNECTION_KILLED
        ), SourceUnavailable),
        **dict.fromkeys((ER.NO_SUCH_TABLE, ER.BAD_FIELD_ERROR, ER.BAD_TABLE_ERROR,
                         ER.UNKNOWN_TABLE), SourceConfigError),
        **dict.fromkeys((
            ER.LOCK_WAIT_TIMEOUT,
            1969,  # MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
            3024,  # MySQL ER_QUERY_TIMEOUT (max_execution_time)
        ), SourceTimeout),
    }
    _renamed: ClassVar[Mapping[str, str]] = {"database": "db"}

    @classmethod
    def error_code(cls, exc: BaseException) -> object | None:
        code = exc.args[0] if isinstance(exc, asyncmy.errors.MySQLError) and exc.args else None
        return code if isinstance(code, int) else None

    async def _create_pool(self) -> Any:
        options = {self._renamed.get(k, k): v for k, v in self.connection.items()}
        if "port" in options:
            options["port"] = int(options["port"])
        return await asyncmy.create_pool(
            minsize=0, maxsize=self.pool_size, autocommit=True, charset="utf8mb4", **options)

    async def _close_pool(self, pool: Any) -> None:
        pool.terminate()
        await pool.wait_closed()

    @property
    def size(self) -> int:
        return self._pool.size if self._pool is not None else 0

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        note(sql)
        pool = await self.pool()
        async with pool.acquire() as conn:
            try:
                async with conn.cursor() as cursor:
                    await cursor.execute(sql, tuple(params) or None)
                    return await cursor.fetchall()
            except asyncio.CancelledError:
                # Cut off mid-protocol: the connection cannot be reused; the pool drops it.
                conn.close()
                raise

    async def columns(self, schema: str | None, table: str) -> dict[str, str]:
        rows = await self.rows(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = COALESCE(%s, DATABASE()) AND table_name = %s"
            " ORDER BY ordinal_position", (schema, table))
        return {name: kind for name, kind in rows}

    async def tables(self, schema: str | None) -> dict[str, dict[str, str]]:
        rows = await self.rows(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = COALESCE(%s, DATABASE())"
            " ORDER BY table_name, ordinal_position", (schema,))
        return _group(rows)


class _SQLitePool:
    """Up to ``size`` read-only connections, opened on demand and kept in a queue of slots."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.open: set[aiosqlite.Connection] = set()
        # A slot holds an open connection or None (not opened yet, or dropped).
        self._slots: asyncio.Queue[aiosqlite.Connection | None] = asyncio.LifoQueue()
        for _ in range(size):
            self._slots.put_nowait(None)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._slots.get()
        try:
            if conn is None:
                # Checked first: aiosqlite leaves a thread behind when connecting fails.
                if not self.path.is_file():
                    raise FileNotFoundError(errno.ENOENT, "no database file")
                # mode=ro: never create a database, never write to one.
                conn = await aiosqlite.connect(self.path.as_uri() + "?mode=ro", uri=True)
                self.open.add(conn)
            yield conn
        except asyncio.CancelledError:
            # The query keeps running in the connection's thread: interrupt it, then close
            # (quick once interrupted) so the thread ends while the loop can still hear it.
            if conn is not None:
                self.open.discard(conn)
                await conn.interrupt()
                await conn.close()
                conn = None
            raise
        finally:
            self._slots.put_nowait(conn)

    async def close(self) -> None:
        for conn in list(self.open):
            self.open.discard(conn)
            await conn.close()


class SQLiteDriver(Driver):
    """aiosqlite over a database file opened read-only: Panorama never writes to a source."""

    dialect = "sqlite"
    placeholder = "?"
    connection_keys = frozenset({"path"})
    required_keys = frozenset({"path"})
    coercers = (
        ("int", to_int(64)),  # SQLite's own affinity rules, in the order it applies them
        ("char", to_text), ("clob", to_text), ("text", to_text),
        ("real", to_float), ("floa", to_float), ("doub", to_float),
        ("date", to_iso_text), ("time", to_iso_text),
        ("dec", to_float), ("num", to_float),  # sqlite3 cannot bind a Decimal
    )
    # A NUMERIC or DECIMAL column stores 0.1 as a float; only INTEGER affinity sums exactly.
    exact_types = ("int",)
    # Dates are text, numbers or anything else in SQLite: a date parameter may not compare
    # with them in time order.
    temporal_types = ()
    errors = {**COMMON_ERRORS, sqlite3.Error: UpstreamError, sqlite3.Warning: UpstreamError}
    error_codes = {
        "no such table": SourceConfigError,
        "no such column": SourceConfigError,
        "SQLITE_CANTOPEN": SourceUnavailable,  # missing file, unreadable directory
        "SQLITE_NOTADB": SourceUnavailable,
        "SQLITE_PERM": SourceUnavailable,
        "SQLITE_AUTH": SourceUnavailable,
        "SQLITE_IOERR": SourceUnavailable,
        "SQLITE_BUSY": SourceTimeout,  # a writer held the file past the busy timeout
        "SQLITE_LOCKED": SourceTimeout,
        "SQLITE_INTERRUPT": SourceTimeout,
    }
    # SQLite reports a missing table or column as a generic SQLITE_ERROR: tell them by message.
    _message_codes: ClassVar[tuple[str, ...]] = ("no such table", "no such column")

    @classmethod
    def error_code(cls, exc: BaseException) -> object | None:
        message = str(exc)
        prefix = next((p for p in cls._message_codes if message.startswith(p)), None)
        return prefix or getattr(exc, "sqlite_errorname", None)

    async def _create_pool(self) -> _SQLitePool:
        return _SQLitePool(Path(self.connection["path"]).expanduser().absolute(), self.pool_size)

    async def _close_pool(self, pool: _SQLitePool) -> None:
        await pool.close()

    @property
    def size(self) -> int:
        return len(self._pool.open) if self._pool is not None else 0

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        note(sql)
        pool = await self.pool()
        async with pool.acquire() as conn:
            return list(await conn.execute_fetchall(sql, tuple(params)))

    async def columns(self, schema: str | None, table: str) -> dict[str, str]:
        rows = await self.rows(
            "SELECT name, type FROM pragma_table_info(?, COALESCE(?, 'main')) ORDER BY cid",
            (table, schema))
        return {name: kind for name, kind in rows}

    async def tables(self, schema: str | None) -> dict[str, dict[str, str]]:
        # One database file per source: the schema is always 'main'.
        rows = await self.rows(
            "SELECT m.name, p.name, p.type FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p"
            " WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite!_%' ESCAPE '!'"
            " ORDER BY m.name, p.cid", ())
        return _group(rows)


def _group(rows: list[Row]) -> dict[str, dict[str, str]]:
    """(table, column, declared type) rows -> {table: {column: type}}, keeping the order; a
    column without a declared type (SQLite allows it) gets ``""``."""
    tables: dict[str, dict[str, str]] = {}
    for table, column, declared in rows:
        tables.setdefault(table, {})[column] = declared or ""
    return tables
