"""Config versions in PostgreSQL, for gateway replicas sharing one configuration.

One table, ``panorama_config_versions``, holds every version (who, when, why, and the whole
document as YAML text: YAML, not JSON, because config documents have dates as keys). With this
store the table, not the files, is the truth: :meth:`PostgresStore.open` starts an empty table
at the files' document and otherwise returns the head as it is.

A commit is one transaction under an advisory lock: it checks the head, inserts the next version
and sends ``NOTIFY panorama_config, '<number>'``, which PostgreSQL delivers when the transaction
commits. Each replica keeps one connection that LISTENs on that channel (:meth:`watch`); if it
is lost, the replica reconnects (at most a second between tries) and then reports the head, so a
version committed meanwhile is not missed.

Messages name "the config store (PostgreSQL)", never the URL: it may hold a password.
``?schema=name`` on the URL keeps the table in that schema (created if missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import asyncpg.exceptions as pg  # type: ignore[import-untyped]
import yaml

from gateway.admin.document import ConfigDocument, dump
from gateway.admin.store import FILE_AUTHOR, Notify, StaleVersion, StoreError, Version
from gateway.stores.location import postgres_dsn

log = logging.getLogger("panorama.admin")

#: What messages call this store (never the URL: it may hold a password).
WHAT = "the config store (PostgreSQL)"
TABLE = "panorama_config_versions"
#: The channel a commit notifies, with the new version number as payload.
CHANNEL = "panorama_config"
COLUMNS = "version, author, at, reason, summary, document"

#: Library exceptions that mean the database cannot be reached or refused us.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, pg.PostgresConnectionError, pg.InterfaceError,
    pg.InvalidAuthorizationSpecificationError, pg.InvalidCatalogNameError,
    pg.InsufficientPrivilegeError, pg.InsufficientResourcesError, pg.OperatorInterventionError,
)
#: Seconds between reconnection attempts of the listener: doubling from the first to the last.
BACKOFF = (0.05, 1.0)
#: How often an idle listening connection is checked, and how long the check may take.
PING_EVERY, PING_TIMEOUT = 10.0, 5.0


class PostgresStore:
    """The :class:`~gateway.admin.store.ConfigStore` of replicas sharing a PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 3) -> None:
        try:
            self._password = urlsplit(url).password
        except ValueError:
            self._password = None
        try:
            self._dsn, self.schema = postgres_dsn(url, "public", what=WHAT, error=StoreError)
        except ValueError:  # a bad port or bracket: say so without echoing the URL
            raise StoreError(f"{WHAT}: config_store is not a valid postgresql:// URL;"
                             " fix its host and port") from None
        self._pool_size = pool_size
        self._lock = f"panorama:{TABLE}:{self.schema}"
        self._pool: asyncpg.Pool | None = None
        self._open_lock = asyncio.Lock()
        self._notifies: list[Notify] = []
        self._listener: asyncpg.Connection | None = None
        self._listening: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        #: Versions this process is committing or committed: not reported to ``notify``.
        self._own: set[int] = set()

    def __repr__(self) -> str:
        return f"PostgresStore(schema {self.schema})"

    # -- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        text = text.replace(self._password, "***") if self._password else text
        return text if len(text) <= 300 else text[:300] + "..."

    def _error(self, exc: BaseException) -> StoreError:
        """The store's error for a library exception, with no password in it."""
        reason = f"{type(exc).__name__}: {self._scrub(str(exc))}"
        if isinstance(exc, UNAVAILABLE):
            return StoreError(f"{WHAT} cannot be used ({reason}); check config_store (host, port,"
                              " user, password, database) and that PostgreSQL is running")
        return StoreError(f"{WHAT}: {reason}")

    @asynccontextmanager
    async def _connection(self, transaction: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (in a transaction if asked), library errors translated."""
        if self._pool is None:
            raise StoreError(f"{WHAT} is not open: await open() first")
        try:
            async with self._pool.acquire() as conn:
                if not transaction:
                    yield conn
                    return
                async with conn.transaction():
                    yield conn
        except (pg.PostgresError, *UNAVAILABLE) as exc:
            raise self._error(exc) from None

    def _settings(self) -> dict[str, str]:
        return {"search_path": self.schema, "application_name": "panorama"}

    # -- the store ------------------------------------------------------------------------

    async def open(self, initial: ConfigDocument) -> Version:
        async with self._open_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=1, max_size=self._pool_size, timeout=10,
                        server_settings=self._settings())
                except ValueError as exc:  # asyncpg's DSN parser
                    raise StoreError(f"{WHAT}: config_store is not a valid URL"
                                     f" ({self._scrub(str(exc))})") from None
                except (pg.PostgresError, *UNAVAILABLE) as exc:
                    raise self._error(exc) from None
        async with self._connection(transaction=True) as conn:
            # Replicas starting at once: one creates the table and writes version 1.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._lock)
            if self.schema != "public":
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (version integer PRIMARY KEY"
                " CHECK (version > 0), author text NOT NULL, at timestamptz NOT NULL,"
                " reason text NOT NULL, summary text NOT NULL, document text NOT NULL)")
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY version DESC"
                                      " LIMIT 1")
            if row is not None:
                # The table is the truth, not the files: the replicas share it.
                return self._version(row)
            return await self._insert(conn, 1, initial, FILE_AUTHOR, "the config files as found",
                                      None)

    async def head(self) -> Version:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY version DESC"
                                      " LIMIT 1")
        if row is None:
            raise StoreError(f"{WHAT}: no version; the gateway writes the first at start-up")
        return self._version(row)

    async def get(self, number: int) -> Version | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} WHERE version = $1", number)
        return self._version(row) if row is not None else None

    async def history(self, first: int, before: int | None = None) -> list[Version]:
        if first <= 0:
            return []
        async with self._connection() as conn:
            rows = await conn.fetch(f"SELECT {COLUMNS} FROM {TABLE} WHERE $2::integer IS NULL"
                                    " OR version < $2 ORDER BY version DESC LIMIT $1",
                                    first, before)
        return [self._version(row) for row in rows]

    async def commit(self, document: ConfigDocument, expected: int, author: str,
                     reason: str) -> Version:
        number = expected + 1
        try:
            async with self._connection(transaction=True) as conn:
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._lock)
                row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY version DESC"
                                          " LIMIT 1")
                if row is None:
                    raise StoreError(f"{WHAT}: no version; the gateway writes the first at"
                                     " start-up")
                if row["version"] != expected:
                    raise StaleVersion(expected, row["version"])
                if self._listening is not None:
                    # Before its notification can arrive: our own commit is not news to us.
                    self._own.add(number)
                version = await self._insert(conn, number, document, author, reason,
                                             self._version(row))
                # Delivered to every listener when (and only if) the transaction commits.
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(number))
        except BaseException:
            self._own.discard(number)
            raise
        return version

    async def _insert(self, conn: asyncpg.Connection, number: int, document: ConfigDocument,
                      author: str, reason: str, previous: Version | None) -> Version:
        summary = document.summary_against(previous.document if previous else None)
        text = dump({"config": dict(document.config),
                     "policy": dict(document.policy) if document.policy is not None else None})
        at = await conn.fetchval(
            f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ($1, $2,"
            " date_trunc('second', clock_timestamp()), $3, $4, $5) RETURNING at",
            number, author, reason, summary, text)
        return Version(number, author, at, reason, summary, document)

    def _version(self, row: Any) -> Version:
        try:
            data = yaml.safe_load(row["document"])
            return Version(int(row["version"]), row["author"], row["at"], row["reason"],
                           row["summary"], ConfigDocument(data["config"], data.get("policy")))
        except (yaml.YAMLError, KeyError, TypeError, AttributeError):
            raise StoreError(f"{WHAT}: version {row['version']} in {TABLE} is not a config"
                             " version written by Panorama; restore it from a backup") from None

    # -- watching for other replicas' commits ---------------------------------------------

    async def watch(self, notify: Notify) -> None:
        """Call ``notify(number)`` for each version another process commits, and with the head
        after the listening connection was lost and made again (a number it may already have).

        The first connection is made here (StoreError if it cannot be); later losses are
        retried in the background until :meth:`aclose`.
        """
        if self._pool is None:
            raise StoreError(f"{WHAT} is not open: await open() first")
        async with self._open_lock:  # one listening connection, however many watchers
            if self._listening is None:
                try:
                    conn, lost = await self._listen()
                except (pg.PostgresError, *UNAVAILABLE) as exc:
                    raise self._error(exc) from None
                self._listening = asyncio.create_task(self._keep_listening(conn, lost),
                                                      name="panorama config store listener")
            self._notifies.append(notify)

    async def _listen(self) -> tuple[asyncpg.Connection, asyncio.Event]:
        """A connection listening on the channel, and an event set when it is lost."""
        conn = await asyncpg.connect(self._dsn, timeout=10, server_settings=self._settings())
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._listener = conn
        return conn, lost

    async def _keep_listening(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        while True:
            reason = await self._until_lost(conn, lost)
            self._listener = None
            conn.terminate()
            log.warning("%s: the connection listening for config changes was lost (%s);"
                        " reconnecting", WHAT, reason)
            conn, lost, head = await self._reconnect()
            log.info("%s: listening for config changes again (head: version %s)", WHAT, head)
            if head is not None:
                self._own = {n for n in self._own if n > head}  # their notifications are gone
                self._dispatch(head)  # a version committed while we were away

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> str:
        """Wait until the connection is lost, checking it when idle; why it was."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_EVERY)
            if lost.is_set() or conn.is_closed():
                return "closed"
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT)
            except (pg.PostgresError, *UNAVAILABLE) as exc:
                return type(exc).__name__

    async def _reconnect(self) -> tuple[asyncpg.Connection, asyncio.Event, int | None]:
        delay = BACKOFF[0]
        while True:
            try:
                conn, lost = await self._listen()
            except Exception as exc:  # keep trying, whatever the reason: until aclose()
                log.debug("%s: reconnecting failed (%s)", WHAT, type(exc).__name__)
            else:
                try:
                    # Listening already: a commit from now on is notified, an earlier one is here.
                    head = await conn.fetchval(f"SELECT max(version) FROM {TABLE}", timeout=10)
                    return conn, lost, head
                except Exception as exc:
                    log.debug("%s: reading the head failed (%s)", WHAT, type(exc).__name__)
                    self._listener = None
                    conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            number = int(payload)
        except ValueError:
            log.warning("%s: ignored a %s notification that is not a version number", WHAT,
                        CHANNEL)
            return
        if number in self._own:
            self._own.discard(number)
            return
        self._dispatch(number)

    def _dispatch(self, number: int) -> None:
        for notify in self._notifies:
            task = asyncio.ensure_future(notify(number))
            self._tasks.add(task)
            task.add_done_callback(self._done(number))

    def _done(self, number: int) -> Callable[[asyncio.Future[None]], None]:
        def done(task: asyncio.Future[None]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: handling config version %s failed", WHAT, number,
                          exc_info=task.exception())

        return done

    async def aclose(self) -> None:
        """Stop listening, cancel pending notifications, close the pool (idempotent)."""
        listening, self._listening = self._listening, None
        if listening is not None:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), 5)
            except (TimeoutError, OSError, pg.PostgresError, pg.InterfaceError):
                listener.terminate()
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._notifies.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (TimeoutError, OSError, pg.PostgresError, pg.InterfaceError):
                pool.terminate()
