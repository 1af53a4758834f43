"""The crosswalk in PostgreSQL, through an asyncpg pool, in its own schema (``panorama``).

An index run is one transaction. Its members are streamed by COPY into a temporary table, then
merged with one ``INSERT ... ON CONFLICT`` (rows whose assignment did not change are not
rewritten), so a run of any size holds at most a COPY buffer in memory. Lists of refs, ids or
hashes travel as array parameters (``unnest``/``= ANY``), a batch at a time. Key columns use the
"C" collation: byte order, the same order as SQLite and Python's ``sorted``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from gateway.crosswalk import rows
from gateway.crosswalk.base import Crosswalk, IndexRun, IndexStats, Member, Ref, StewardAction
from gateway.crosswalk.errors import (
    ERRORS,
    CrosswalkConfigError,
    InvalidIndexRun,
    InvalidStewardAction,
)
from gateway.stores.location import check_schema, postgres_dsn, redact_url
from gateway.stores.postgres import Connection, PostgresBacked, PostgresDatabase

KEY = 'text COLLATE "C" NOT NULL'

#: (version, statements): applied in order, each once, recorded in ``schema_version``.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        f"CREATE TABLE members (source {KEY}, local_key {KEY}, global_id {KEY},"
        " rule text, score double precision, agreed text[],"
        ' linked_source text COLLATE "C", linked_key text COLLATE "C",'
        " CONSTRAINT members_pkey PRIMARY KEY (source, local_key),"
        " CONSTRAINT member_ref_not_empty CHECK (source <> '' AND local_key <> ''),"
        " CONSTRAINT member_id_not_empty CHECK (global_id <> ''))",
        "CREATE INDEX members_global_id ON members (global_id)",
        f"CREATE TABLE key_hashes (source {KEY}, local_key {KEY}, hash {KEY},"
        " CONSTRAINT key_hashes_pkey PRIMARY KEY (source, local_key, hash),"
        " CONSTRAINT key_hash_of_member FOREIGN KEY (source, local_key)"
        " REFERENCES members (source, local_key) ON DELETE CASCADE,"
        " CONSTRAINT key_hash_is_hex CHECK (hash ~ '^[0-9a-f]{32,64}$'))",
        "CREATE INDEX key_hashes_hash ON key_hashes (hash)",
        f"CREATE TABLE redirects (old_id {KEY} PRIMARY KEY, new_id {KEY},"
        " CONSTRAINT redirect_ids_not_empty CHECK (old_id <> '' AND new_id <> ''),"
        " CONSTRAINT redirect_not_to_itself CHECK (old_id <> new_id))",
        f"CREATE TABLE watermarks (source {KEY} PRIMARY KEY, value text NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT watermark_not_empty CHECK (source <> ''))",
        *(f"CREATE TABLE {kind}_links (a_source {KEY}, a_key {KEY}, b_source {KEY}, b_key {KEY},"
          " PRIMARY KEY (a_source, a_key, b_source, b_key),"
          f" CONSTRAINT {kind}_link_ordered CHECK ((a_source, a_key) < (b_source, b_key)))"
          for kind in ("must", "cannot")),
        "CREATE TABLE steward_actions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " action text NOT NULL CONSTRAINT steward_action_known"
        " CHECK (action IN ('link', 'unlink', 'merge', 'split')),"
        " actor text NOT NULL CONSTRAINT steward_actor_not_empty CHECK (actor <> ''),"
        " reason text NOT NULL, at timestamptz NOT NULL, payload jsonb NOT NULL)",
    )),
)

MEMBER_COLUMNS = ("source", "local_key", "global_id", "rule", "score", "agreed",
                  "linked_source", "linked_key")
_VALUES = MEMBER_COLUMNS[2:]
UPSERT_MEMBERS = (
    f"INSERT INTO members AS m ({', '.join(MEMBER_COLUMNS)})"
    f" SELECT {', '.join(MEMBER_COLUMNS)} FROM run_members"
    " ON CONFLICT (source, local_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _VALUES)
    + f" WHERE ({', '.join(f'm.{c}' for c in _VALUES)})"
    f" IS DISTINCT FROM ({', '.join(f'excluded.{c}' for c in _VALUES)})")

RESOLVE = (
    'WITH RECURSIVE chain (id, hops) AS (SELECT $1::text COLLATE "C", 0 UNION ALL'
    " SELECT r.new_id, chain.hops + 1 FROM chain JOIN redirects AS r ON r.old_id = chain.id"
    " WHERE chain.hops < 100)"
    " SELECT id, hops, EXISTS (SELECT 1 FROM members WHERE global_id = chain.id)"
    " FROM chain ORDER BY hops DESC LIMIT 1")

REF_ROWS = "unnest($1::text[], $2::text[]) AS r (source, local_key)"


def _count(status: str) -> int:
    """The row count at the end of a command status (``DELETE 3``, ``INSERT 0 5``)."""
    tail = status.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else 0


def _columns(refs: Sequence[Ref]) -> tuple[list[str], list[str]]:
    return [r[0] for r in refs], [r[1] for r in refs]


def _member(row: Sequence[Any]) -> Member:
    return rows.member_from_row(row, row[5])


class PostgresCrosswalk(PostgresBacked, Crosswalk):
    """The crosswalk in a PostgreSQL database, in ``schema`` (created if missing)."""

    def __init__(self, dsn: str, *, schema: str = "panorama", pool_size: int = 5) -> None:
        check_schema(schema, what="crosswalk", error=CrosswalkConfigError)
        self.db = PostgresDatabase(dsn, schema, MIGRATIONS, ERRORS, "schema_version",
                                   pool_size=pool_size, lock=f"panorama-crosswalk:{schema}",
                                   name=f"PostgresCrosswalk({redact_url(dsn)!r}, schema={schema!r})")

    @classmethod
    def from_url(cls, url: str) -> PostgresCrosswalk:
        """A store for ``postgresql://user@host:port/db[?schema=name]``."""
        dsn, schema = postgres_dsn(url, "panorama", what="crosswalk", error=CrosswalkConfigError)
        return cls(dsn, schema=schema)

    def __repr__(self) -> str:
        return f"PostgresCrosswalk({redact_url(self.dsn)!r}, schema={self.schema!r})"

    @property
    def pool_size(self) -> int:
        return self.db.pool_size

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()

    # --- lookups ------------------------------------------------------------------------

    async def members_of_refs(self, refs: Iterable[Ref]) -> dict[Ref, str]:
        found: dict[Ref, str] = {}
        unique = dict.fromkeys(rows.ref(r, ValueError) for r in refs)
        for batch in rows.chunks(unique):
            for source, key, global_id in await self.db.fetch(
                    f"SELECT m.source, m.local_key, m.global_id FROM {REF_ROWS}"
                    " JOIN members AS m USING (source, local_key)", *_columns(batch)):
                found[(source, key)] = global_id
        return found

    async def members(self, global_ids: Iterable[str]) -> dict[str, list[Member]]:
        found: dict[str, list[Member]] = {}
        unique = dict.fromkeys(g for g in global_ids if isinstance(g, str))
        for batch in rows.chunks(unique):
            for row in await self.db.fetch(
                    f"SELECT {', '.join(MEMBER_COLUMNS)} FROM members"
                    " WHERE global_id = ANY ($1::text[]) ORDER BY global_id, source, local_key",
                    batch):
                found.setdefault(row[2], []).append(_member(row))
        return found

    async def global_ids(self, after: str | None, limit: int) -> list[str]:
        rows.check_limit(limit)
        found = await self.db.fetch("SELECT DISTINCT global_id FROM members WHERE global_id > $1"
                                    " ORDER BY global_id LIMIT $2", after or "", limit)
        return [row[0] for row in found]

    async def resolve_id(self, global_id: str) -> tuple[str, bool] | None:
        if not isinstance(global_id, str) or not global_id:
            return None
        current, hops, live = (await self.db.fetch(RESOLVE, global_id))[0]
        return (current, hops > 0) if live else None

    async def refs_for_hashes(self, hashes: Iterable[str]) -> dict[str, list[Ref]]:
        found: dict[str, list[Ref]] = {}
        unique = dict.fromkeys(h for h in hashes if isinstance(h, str))
        for batch in rows.chunks(unique):
            for value, source, key in await self.db.fetch(
                    "SELECT hash, source, local_key FROM key_hashes WHERE hash = ANY ($1::text[])"
                    " ORDER BY hash, source, local_key", batch):
                found.setdefault(value, []).append((source, key))
        return found

    async def hashes_of(self, refs: Iterable[Ref]) -> dict[Ref, set[str]]:
        found: dict[Ref, set[str]] = {}
        unique = dict.fromkeys(rows.ref(r, ValueError) for r in refs)
        for batch in rows.chunks(unique):
            for source, key, value in await self.db.fetch(
                    f"SELECT k.source, k.local_key, k.hash FROM {REF_ROWS}"
                    " JOIN key_hashes AS k USING (source, local_key)", *_columns(batch)):
                found.setdefault((source, key), set()).add(value)
        return found

    async def watermark(self, source: str) -> str | None:
        found = await self.db.fetch("SELECT value FROM watermarks WHERE source = $1", source)
        return found[0][0] if found else None

    async def all_members(self) -> AsyncIterator[Member]:
        async with self.db.connection() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for row in conn.cursor(
                        f"SELECT {', '.join(MEMBER_COLUMNS)} FROM members"
                        " ORDER BY source, local_key", prefetch=rows.BATCH):
                    yield _member(row)

    async def _pairs(self, table: str) -> list[tuple[Ref, Ref]]:
        found = await self.db.fetch(f"SELECT a_source, a_key, b_source, b_key FROM {table}"
                                  " ORDER BY a_source, a_key, b_source, b_key")
        return [rows.pair_from_row(row) for row in found]

    async def steward_log(self, limit: int = 100) -> list[StewardAction]:
        rows.check_limit(limit)
        found = await self.db.fetch("SELECT id, action, actor, reason, at, payload::text"
                                  " FROM steward_actions ORDER BY id DESC LIMIT $1", limit)
        return [rows.action_from_row(row) for row in found]

    async def stats(self) -> dict[str, int]:
        found = await self.db.fetch(
            "SELECT (SELECT count(*) FROM members) AS records,"
            " (SELECT count(DISTINCT global_id) FROM members) AS customers,"
            " (SELECT count(*) FROM redirects) AS redirects,"
            " (SELECT count(*) FROM steward_actions) AS steward_actions,"
            " (SELECT count(*) FROM key_hashes) AS key_hashes,"
            " (SELECT count(*) FROM must_links) AS must_links,"
            " (SELECT count(*) FROM cannot_links) AS cannot_links")
        return {name: int(value) for name, value in found[0].items()}

    # --- writes -------------------------------------------------------------------------

    @staticmethod
    async def _each_batch(conn: Connection, sql: str,
                          values: Iterable[tuple[str, ...]]) -> int:
        """Run ``sql`` over batches of ``values`` as column arrays ($1, $2...); rows changed."""
        changed = 0
        for batch in rows.chunks(values):
            changed += _count(await conn.execute(sql, *map(list, zip(*batch, strict=True))))
        return changed

    async def apply_index(self, run: IndexRun) -> IndexStats:
        async with self.db.connection(transaction=True, error=InvalidIndexRun) as conn:
            removed = {rows.ref(r) for r in run.removed}
            gone = await self._each_batch(
                conn, f"DELETE FROM members AS m USING {REF_ROWS}"
                " WHERE m.source = r.source AND m.local_key = r.local_key", removed)
            await conn.execute("CREATE TEMP TABLE run_members (LIKE members,"
                               " PRIMARY KEY (source, local_key)) ON COMMIT DROP")
            await conn.copy_records_to_table(
                "run_members", columns=MEMBER_COLUMNS,
                records=(rows.member_row(m, removed) for m in run.members))
            await conn.execute("ANALYZE run_members")
            if run.scope_sources is not None:
                gone += _count(await conn.execute(
                    "DELETE FROM members AS m WHERE m.source = ANY ($1::text[]) AND NOT EXISTS"
                    " (SELECT 1 FROM run_members AS r"
                    " WHERE r.source = m.source AND r.local_key = m.local_key)",
                    sorted(run.scope_sources)))
            written = _count(await conn.execute(UPSERT_MEMBERS))
            if run.scope_sources is not None:
                await conn.execute("DELETE FROM key_hashes WHERE source = ANY ($1::text[])",
                                   sorted(run.scope_sources))
            if isinstance(run.key_hashes, Mapping):
                await self._each_batch(
                    conn, f"DELETE FROM key_hashes AS k USING {REF_ROWS}"
                    " WHERE k.source = r.source AND k.local_key = r.local_key",
                    (rows.ref(r) for r in run.key_hashes))
            elif run.scope_sources is None:
                raise InvalidIndexRun("streamed key_hashes need scope_sources: only a run that"
                                      " re-read its sources whole replaces hashes without a lookup")
            hashes = _count(await conn.copy_records_to_table(
                "key_hashes", schema_name=self.schema, columns=("source", "local_key", "hash"),
                records=rows.hash_rows(rows.hash_items(run.key_hashes))))
            redirects = await self._each_batch(
                conn, "INSERT INTO redirects (old_id, new_id)"
                " SELECT * FROM unnest($1::text[], $2::text[])"
                " ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id",
                rows.redirect_rows(run.redirects))
            await conn.execute("DELETE FROM redirects AS r WHERE EXISTS"
                               " (SELECT 1 FROM members WHERE global_id = r.old_id)")
            watermarks = await self._each_batch(
                conn, "INSERT INTO watermarks (source, value)"
                " SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (source)"
                " DO UPDATE SET value = excluded.value, updated_at = now()",
                rows.watermark_rows(run.watermarks))
        return IndexStats(written, gone, hashes, redirects, watermarks)

    async def record_steward(
        self, action: StewardAction, *,
        must_link: Iterable[tuple[Ref, Ref]] = (), cannot_link: Iterable[tuple[Ref, Ref]] = (),
        drop_must_link: Iterable[tuple[Ref, Ref]] = (),
        drop_cannot_link: Iterable[tuple[Ref, Ref]] = (),
    ) -> StewardAction:
        name, actor, reason, at, payload = rows.action_fields(action)
        changes = rows.constraint_changes(must_link, cannot_link, drop_must_link, drop_cannot_link)
        async with self.db.connection(transaction=True, error=InvalidStewardAction) as conn:
            ident = await conn.fetchval(
                "INSERT INTO steward_actions (action, actor, reason, at, payload)"
                " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
                name, actor, reason, at, payload)
            for table, add, drop in changes:
                await self._each_batch(
                    conn, f"DELETE FROM {table} AS t USING unnest($1::text[], $2::text[],"
                    " $3::text[], $4::text[]) AS p (a_source, a_key, b_source, b_key)"
                    " WHERE (t.a_source, t.a_key, t.b_source, t.b_key)"
                    " = (p.a_source, p.a_key, p.b_source, p.b_key)", drop)
                await self._each_batch(
                    conn, f"INSERT INTO {table} SELECT * FROM unnest($1::text[], $2::text[],"
                    " $3::text[], $4::text[]) ON CONFLICT DO NOTHING", add)
        return StewardAction(ident, name, actor, reason, at, json.loads(payload))
