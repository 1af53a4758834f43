"""The audit log's contract: the abstract :class:`AuditLog` (value types are in ``types``).

Every entry says who (principal subject and roles) did what (``kind``) for which purpose, to
which customers (global ids) and which fields (paths, masked or not), with details made of ids,
names and codes only: the log is evidence of access to personal data and holds none itself.

Entries form one hash chain: each stores the hash of the one before it, and its own hash over
its content and that link (SHA-256, or HMAC-SHA256 with a key kept outside the database; see
``chain``). A head row records the last entry, so that deleting the newest entries shows too.
The API appends and reads; there is no update or delete, and the backends' triggers refuse them.

One implementation per backend (``sqlite``, ``postgres``), same contract; the contract suite in
``tests/test_audit.py`` runs against each.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from gateway.audit import chain as chains
from gateway.audit import events
from gateway.audit.errors import AuditError
from gateway.audit.types import (
    AccessPage,
    AuditEntry,
    AuditEvent,
    AuditFilter,
    AuditPage,
    CustomerAccess,
    Snapshot,
    VerifyReport,
)

#: Events written in one transaction at most, when many requests append at once.
GROUP_COMMIT = 500


class AuditLog(ABC):
    """The append-only, hash-chained audit log.

    Create with :func:`gateway.audit.open_audit_log`, then ``await open()`` (or ``async with``).
    Every method is a coroutine and safe to call concurrently, from several processes too:
    appends are serialized by the database, so the chain stays one line.
    """

    def __init__(self, chain: chains.Chain | None = None) -> None:
        self.chain = chain or chains.Chain()
        self._pending: list[tuple[AuditEvent, asyncio.Future[AuditEntry]]] = []
        self._flusher: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create or migrate the tables, and check the key (idempotent).

        AuditConfigError if the log was written with another key, or with or without one
        while this one is configured otherwise: its hashes could not be checked.
        """
        if self._is_open():
            return
        await self._open_store()
        try:
            mode, key_check = await self._init_head(self.chain.mode, self.chain.key_check)
            self.chain.check_matches(mode, key_check)
        except BaseException:
            await self._close_store()
            raise

    async def aclose(self) -> None:
        """Write what is pending, then close every connection (idempotent)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._close_store()

    async def __aenter__(self) -> AuditLog:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- appending ----------------------------------------------------------------------

    async def append(self, event: AuditEvent) -> AuditEntry:
        """Append one event; returns it as stored once it is committed.

        Events appended while a write is under way are committed together in the next one
        (group commit): one transaction for many concurrent requests, each still waiting for
        its own entry to be durable. InvalidAuditEvent at once for an event that breaks a rule.
        """
        checked = events.check(event)
        if not self._is_open():
            raise AuditError(f"{self!r} is not open: await open() first")
        future: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        self._pending.append((checked, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:GROUP_COMMIT], self._pending[GROUP_COMMIT:]
                try:
                    entries = await self._append([event for event, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), entry in zip(batch, entries, strict=True):
                    future.set_result(entry)
        finally:
            self._flusher = None

    async def append_many(self, batch: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Append several events in one transaction, in order: all of them or (on error) none."""
        checked = [events.check(event) for event in batch]
        return await self._append(checked) if checked else []

    def seal(self, batch: Sequence[AuditEvent], head: tuple[int, str]) -> list[AuditEntry]:
        """``batch`` as entries that follow ``head``: ids, time and hashes (for the backends)."""
        last_id, last_hash = head
        at = datetime.now(UTC)
        sealed = []
        for offset, event in enumerate(batch, start=1):
            entry = events.entry(event, last_id + offset, at, last_hash)
            last_hash = self.chain.seal(entry)
            sealed.append(events.with_hash(entry, last_hash))
        return sealed

    # --- reading ------------------------------------------------------------------------

    async def query(self, where: AuditFilter | None = None) -> AuditPage:
        """Entries that match ``where``, newest first, a page at a time."""
        checked = events.check_filter(where or AuditFilter())
        rows = await self._query(checked)
        entries = [events.entry_from_row(row) for row in rows[:checked.limit]]
        more = len(rows) > checked.limit and bool(entries)
        return AuditPage(entries, entries[-1].id if more else None)

    async def accesses(self, customers: str | Sequence[str], *, before: int | None = None,
                       limit: int = 50, show_subjects: bool = False,
                       own_subjects: Collection[str] = ()) -> AccessPage:
        """Who read a customer's data, when, for what purpose: the customer's own view.

        ``customers`` is the customer's id (and any retired id that redirects to it).
        ``own_subjects`` are the customer's own principal subjects, shown as ``by_you``;
        applications (``service`` subjects) are named; people's subjects stay hidden unless
        ``show_subjects`` (see docs/audit.md for why).
        """
        ids = (customers,) if isinstance(customers, str) else tuple(customers)
        page = await self.query(AuditFilter(customers=ids, kinds=("read",), before=before,
                                            limit=limit))
        return AccessPage([
            CustomerAccess(e.id, e.at, e.purpose, e.roles, tuple(f.path for f in e.fields),
                           e.subject if show_subjects or e.subject_kind == "service"
                           or e.subject in own_subjects else None,
                           e.subject in own_subjects)
            for e in page.entries], page.next_before)

    async def head(self) -> tuple[int, str]:
        """``(id, hash)`` of the last entry; ``(0, GENESIS)`` for an empty log."""
        return await self._fetch_head()

    async def verify(self, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Walk the whole chain in one snapshot, in constant memory; report the first break.

        Finds an entry edited (its hash no longer matches), deleted (a gap in the ids, or a
        log shorter than its head), inserted or reordered (a link that does not follow), and a
        search index that differs from the entries. ``anchor``, an ``(id, hash)`` noted
        earlier (``verify`` prints the head), also catches a log rewritten with fresh hashes.
        """
        async with self._snapshot() as snapshot:
            walk = chains.Walk(self.chain, snapshot.head, anchor)
            try:
                async for row in snapshot.rows:
                    if not walk.step(row):
                        break
            finally:
                await snapshot.rows.aclose()
            return walk.report()

    # --- what a backend implements ------------------------------------------------------

    @abstractmethod
    def _is_open(self) -> bool:
        """Whether the store is open."""

    @abstractmethod
    async def _open_store(self) -> None:
        """Connect, and create or migrate the tables (idempotent)."""

    @abstractmethod
    async def _close_store(self) -> None:
        """Close every connection (idempotent)."""

    @abstractmethod
    async def _init_head(self, mode: str, key_check: str) -> tuple[str, str]:
        """Create the head row for an empty log if missing; the ``(mode, key_check)`` stored."""

    @abstractmethod
    async def _fetch_head(self) -> tuple[int, str]:
        """``(last id, last hash)`` from the head row."""

    @abstractmethod
    async def _append(self, batch: list[AuditEvent]) -> list[AuditEntry]:
        """In one transaction that holds the head: :meth:`seal` the batch, insert, move the head."""

    @abstractmethod
    async def _query(self, where: AuditFilter) -> list[Sequence[Any]]:
        """Rows (as in :class:`Snapshot`, without ``indexed``) matching ``where``, newest first,
        at most ``where.limit + 1``."""

    @abstractmethod
    def _snapshot(self) -> AbstractAsyncContextManager[Snapshot]:
        """A consistent view of the head and every entry, for :meth:`verify`."""


def _consume(future: asyncio.Future[AuditEntry]) -> None:
    # An appender that was cancelled never reads its future: mark the error as seen.
    if not future.cancelled():
        future.exception()
