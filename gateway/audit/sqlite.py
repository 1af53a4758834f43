"""The audit log in a SQLite file (see ``gateway.stores.sqlite`` for connections and transactions).

An append is one ``BEGIN IMMEDIATE`` transaction that reads the head, writes the entries and
moves the head, so appends of several processes sharing the file still make one chain.
Customer ids are also written to ``audit_customers``, the index that finds a customer's
entries; ``verify`` checks it against the entries. Triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.audit import events
from gateway.audit.base import AuditLog
from gateway.audit.chain import GENESIS, Chain
from gateway.audit.errors import ERRORS
from gateway.audit.storage import newest_first, stamp
from gateway.audit.types import KINDS, AuditEntry, AuditEvent, AuditFilter, Snapshot
from gateway.stores.sqlite import SQLiteBacked, SQLiteDatabase


def _refuse(table: str, operation: str) -> str:
    return (f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}"
            f" BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END")


MIGRATIONS = (
    (1, (
        "CREATE TABLE audit_head (one INTEGER PRIMARY KEY CHECK (one = 1),"
        " last_id INTEGER NOT NULL, last_hash TEXT NOT NULL, mode TEXT NOT NULL,"
        " key_check TEXT NOT NULL)",
        "CREATE TABLE audit_entries (id INTEGER PRIMARY KEY, at TEXT NOT NULL,"
        " kind TEXT NOT NULL CONSTRAINT audit_kind_known CHECK (kind IN"
        f" ({', '.join(repr(k) for k in KINDS)})),"
        " subject TEXT NOT NULL, roles TEXT NOT NULL, purpose TEXT, customers TEXT NOT NULL,"
        " fields TEXT NOT NULL, details TEXT NOT NULL, subject_kind TEXT NOT NULL,"
        " prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE INDEX audit_entries_subject ON audit_entries (subject, id)",
        "CREATE INDEX audit_entries_kind ON audit_entries (kind, id)",
        "CREATE INDEX audit_entries_at ON audit_entries (at)",
        "CREATE TABLE audit_customers (customer TEXT NOT NULL,"
        " entry_id INTEGER NOT NULL REFERENCES audit_entries (id),"
        " PRIMARY KEY (customer, entry_id)) WITHOUT ROWID",
        "CREATE INDEX audit_customers_entry ON audit_customers (entry_id)",
        *(_refuse(table, operation) for table in ("audit_entries", "audit_customers")
          for operation in ("UPDATE", "DELETE")),
        _refuse("audit_head", "DELETE"),
        "CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head"
        " WHEN NEW.last_id <= OLD.last_id OR NEW.mode IS NOT OLD.mode"
        " OR NEW.key_check IS NOT OLD.key_check"
        " BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward'); END",
    )),
)

COLUMNS = ("id, at, kind, subject, roles, purpose, customers, fields, details, subject_kind,"
           " prev_hash, hash")

#: AuditFilter attribute -> (SQL condition, parameter): applied when the attribute is set.
FILTERS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("customers", "id IN (SELECT entry_id FROM audit_customers"
                  " WHERE customer IN (SELECT value FROM json_each({})))", events.json_text),
    ("subject", "subject = {}", str),
    ("kinds", "kind IN (SELECT value FROM json_each({}))", events.json_text),
    ("purpose", "purpose = {}", str),
    ("since", "at >= {}", stamp),
    ("until", "at < {}", stamp),
    ("before", "id < {}", int),
)


def _row(entry: AuditEntry) -> tuple[Any, ...]:
    return (entry.id, stamp(entry.at), entry.kind, entry.subject, events.json_text(entry.roles),
            entry.purpose, events.json_text(entry.customers), events.fields_json(entry),
            events.json_text(entry.details), entry.subject_kind, entry.prev_hash, entry.hash)


class SQLiteAuditLog(SQLiteBacked, AuditLog):
    """The audit log in one SQLite file (created with its parent directories)."""

    def __init__(self, path: Path | str, chain: Chain | None = None) -> None:
        super().__init__(chain)
        self.db = SQLiteDatabase(path, MIGRATIONS, ERRORS, "audit_schema_version")

    async def _init_head(self, mode: str, key_check: str) -> tuple[str, str]:
        async with self.db.write() as db:
            await db.execute("INSERT INTO audit_head VALUES (1, 0, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (GENESIS, mode, key_check))
        found = await self.db.read("SELECT mode, key_check FROM audit_head")
        return found[0][0], found[0][1]

    async def _fetch_head(self) -> tuple[int, str]:
        found = await self.db.read("SELECT last_id, last_hash FROM audit_head")
        return found[0][0], found[0][1]

    async def _append(self, batch: list[AuditEvent]) -> list[AuditEntry]:
        async with self.db.write() as db:
            async with db.execute("SELECT last_id, last_hash FROM audit_head") as cursor:
                head = await cursor.fetchone()
            assert head is not None  # created by open()
            entries = self.seal(batch, (head[0], head[1]))
            await db.executemany(f"INSERT INTO audit_entries ({COLUMNS})"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", map(_row, entries))
            await db.executemany("INSERT INTO audit_customers (customer, entry_id) VALUES (?, ?)",
                                 [(c, e.id) for e in entries for c in e.customers])
            await db.execute("UPDATE audit_head SET last_id = ?, last_hash = ?",
                             (entries[-1].id, entries[-1].hash))
        return entries

    async def _query(self, where: AuditFilter) -> list[Sequence[Any]]:
        suffix, params = newest_first(events.filter_parts(where, FILTERS), where.limit + 1, "?")
        return await self.db.read(f"SELECT {COLUMNS} FROM audit_entries {suffix}", params)

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Snapshot]:
        async with self.db.snapshot() as conn:
            async with conn.execute("SELECT last_id, last_hash FROM audit_head") as cursor:
                head = await cursor.fetchone()
            assert head is not None

            async def rows() -> AsyncGenerator[Sequence[Any], None]:
                async with conn.execute(
                        f"SELECT {COLUMNS}, (SELECT json_group_array(customer)"
                        " FROM audit_customers AS c WHERE c.entry_id = e.id)"
                        " FROM audit_entries AS e ORDER BY id") as cursor:
                    async for row in cursor:
                        yield tuple(row)

            yield Snapshot((head[0], head[1]), rows())
