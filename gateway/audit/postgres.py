"""The audit log in PostgreSQL, for gateway replicas sharing one log (see ``gateway.stores.postgres``).

An append is one transaction that locks the head row (``SELECT ... FOR UPDATE``), writes the
entries and moves the head: replicas appending at once queue on that row, so the chain stays
one line. Customer ids are a ``text[]`` column with a GIN index. Triggers refuse UPDATE,
DELETE and TRUNCATE of the entries, and any change of the head but moving it forward; a
superuser can still disable them, which is what ``verify`` is for.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from gateway.audit import events
from gateway.audit.base import AuditLog
from gateway.audit.chain import GENESIS, Chain
from gateway.audit.errors import ERRORS
from gateway.audit.storage import newest_first
from gateway.audit.types import KINDS, AuditEntry, AuditEvent, AuditFilter, Snapshot
from gateway.stores.postgres import PostgresBacked, PostgresDatabase

#: The schema the tables live in when the URL names none.
DEFAULT_SCHEMA = "panorama_audit"

MIGRATIONS = (
    (1, (
        "CREATE TABLE audit_head (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
        " last_id bigint NOT NULL, last_hash text NOT NULL, mode text NOT NULL,"
        " key_check text NOT NULL)",
        "CREATE TABLE audit_entries (id bigint PRIMARY KEY, at timestamptz NOT NULL,"
        " kind text NOT NULL CONSTRAINT audit_kind_known CHECK (kind IN"
        f" ({', '.join(repr(k) for k in KINDS)})),"
        " subject text NOT NULL, roles text[] NOT NULL, purpose text, customers text[] NOT NULL,"
        " fields jsonb NOT NULL, details jsonb NOT NULL, subject_kind text NOT NULL,"
        " prev_hash text NOT NULL, hash text NOT NULL)",
        "CREATE INDEX audit_entries_customers ON audit_entries USING gin (customers)",
        "CREATE INDEX audit_entries_subject ON audit_entries (subject, id)",
        "CREATE INDEX audit_entries_kind ON audit_entries (kind, id)",
        "CREATE INDEX audit_entries_at ON audit_entries (at)",
        "CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$",
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries"
        " FOR EACH ROW EXECUTE FUNCTION audit_refuse()",
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()",
        "CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF TG_OP <> 'UPDATE' OR NEW.last_id <= OLD.last_id OR NEW.mode <> OLD.mode"
        " OR NEW.key_check <> OLD.key_check THEN"
        " RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head"
        " FOR EACH ROW EXECUTE FUNCTION audit_head_forward()",
        "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse()",
    )),
)

COLUMNS = ("id, at, kind, subject, roles, purpose, customers, fields::text, details::text,"
           " subject_kind, prev_hash, hash")

#: AuditFilter attribute -> (SQL condition, {} where the parameter goes; the parameter).
FILTERS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("customers", "customers && {}::text[]", list),
    ("subject", "subject = {}", str),
    ("kinds", "kind = ANY ({}::text[])", list),
    ("purpose", "purpose = {}", str),
    ("since", "at >= {}", lambda v: v),
    ("until", "at < {}", lambda v: v),
    ("before", "id < {}", int),
)


def _row(entry: AuditEntry) -> tuple[Any, ...]:
    return (entry.id, entry.at, entry.kind, entry.subject, list(entry.roles), entry.purpose,
            list(entry.customers), events.fields_json(entry), events.json_text(entry.details),
            entry.subject_kind, entry.prev_hash, entry.hash)


class PostgresAuditLog(PostgresBacked, AuditLog):
    """The audit log in a PostgreSQL database, in ``schema`` (created if missing)."""

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, chain: Chain | None = None,
                 pool_size: int = 5) -> None:
        super().__init__(chain)
        self.db = PostgresDatabase(dsn, schema, MIGRATIONS, ERRORS, "audit_schema_version",
                                   pool_size=pool_size)

    async def _init_head(self, mode: str, key_check: str) -> tuple[str, str]:
        async with self.db.connection() as conn:
            await conn.execute("INSERT INTO audit_head (last_id, last_hash, mode, key_check)"
                               " VALUES (0, $1, $2, $3) ON CONFLICT DO NOTHING",
                               GENESIS, mode, key_check)
            row = await conn.fetchrow("SELECT mode, key_check FROM audit_head")
        return row[0], row[1]

    async def _fetch_head(self) -> tuple[int, str]:
        row = (await self.db.fetch("SELECT last_id, last_hash FROM audit_head"))[0]
        return row[0], row[1]

    async def _append(self, batch: list[AuditEvent]) -> list[AuditEntry]:
        async with self.db.connection(transaction=True) as conn:
            head = await conn.fetchrow("SELECT last_id, last_hash FROM audit_head FOR UPDATE")
            entries = self.seal(batch, (head[0], head[1]))
            await conn.executemany(
                f"INSERT INTO audit_entries ({COLUMNS.replace('::text', '')})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12)",
                [_row(e) for e in entries])
            await conn.execute("UPDATE audit_head SET last_id = $1, last_hash = $2",
                               entries[-1].id, entries[-1].hash)
        return entries

    async def _query(self, where: AuditFilter) -> list[Sequence[Any]]:
        suffix, params = newest_first(events.filter_parts(where, FILTERS), where.limit + 1, "$")
        return await self.db.fetch(f"SELECT {COLUMNS} FROM audit_entries {suffix}", *params)

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[Snapshot]:
        async with self.db.connection(transaction=True, isolation="repeatable_read",
                                      readonly=True) as conn:
            head = await conn.fetchrow("SELECT last_id, last_hash FROM audit_head")

            async def rows() -> AsyncGenerator[Sequence[Any], None]:
                async for row in conn.cursor(f"SELECT {COLUMNS} FROM audit_entries ORDER BY id",
                                             prefetch=1000):
                    yield tuple(row)

            yield Snapshot((head[0], head[1]), rows())
