"""The crosswalk in a SQLite file, through aiosqlite.

WAL mode, one writer connection (writes take a lock, then ``BEGIN IMMEDIATE``) and one reader
connection: in WAL mode a reader sees the last committed state, so lookups made while a long
index run is being written neither wait for it nor see half of it. Lists of refs, ids or hashes
are passed as one JSON parameter and joined through ``json_each``, which keeps statements
fixed whatever the list's length.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.crosswalk import rows
from gateway.crosswalk.base import (
    Crosswalk,
    IndexRun,
    IndexStats,
    Member,
    Ref,
    StewardAction,
)
from gateway.crosswalk.errors import ERRORS, InvalidIndexRun, InvalidStewardAction
from gateway.stores.sqlite import HINTS, Connection, SQLiteBacked, SQLiteDatabase

#: (version, statements): applied in order, each once, recorded in ``schema_version``.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        "CREATE TABLE members (source TEXT NOT NULL, local_key TEXT NOT NULL,"
        " global_id TEXT NOT NULL, rule TEXT, score REAL, agreed TEXT,"
        " linked_source TEXT, linked_key TEXT,"
        " PRIMARY KEY (source, local_key),"
        " CONSTRAINT member_ref_not_empty CHECK (source <> '' AND local_key <> ''),"
        " CONSTRAINT member_id_not_empty CHECK (global_id <> '')) WITHOUT ROWID",
        "CREATE INDEX members_global_id ON members (global_id)",
        "CREATE TABLE key_hashes (source TEXT NOT NULL, local_key TEXT NOT NULL,"
        " hash TEXT NOT NULL, PRIMARY KEY (source, local_key, hash),"
        " CONSTRAINT key_hash_of_member FOREIGN KEY (source, local_key)"
        " REFERENCES members (source, local_key) ON DELETE CASCADE,"
        " CONSTRAINT key_hash_is_hex CHECK (length(hash) BETWEEN 32 AND 64"
        " AND hash NOT GLOB '*[^0-9a-f]*')) WITHOUT ROWID",
        "CREATE INDEX key_hashes_hash ON key_hashes (hash)",
        "CREATE TABLE redirects (old_id TEXT PRIMARY KEY, new_id TEXT NOT NULL,"
        " CONSTRAINT redirect_ids_not_empty CHECK (old_id <> '' AND new_id <> ''),"
        " CONSTRAINT redirect_not_to_itself CHECK (old_id <> new_id)) WITHOUT ROWID",
        "CREATE TABLE watermarks (source TEXT PRIMARY KEY, value TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, CONSTRAINT watermark_not_empty CHECK (source <> ''))",
        *(f"CREATE TABLE {kind}_links (a_source TEXT NOT NULL, a_key TEXT NOT NULL,"
          " b_source TEXT NOT NULL, b_key TEXT NOT NULL,"
          " PRIMARY KEY (a_source, a_key, b_source, b_key),"
          f" CONSTRAINT {kind}_link_ordered CHECK ((a_source, a_key) < (b_source, b_key)))"
          " WITHOUT ROWID" for kind in ("must", "cannot")),
        "CREATE TABLE steward_actions (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " action TEXT NOT NULL CONSTRAINT steward_action_known"
        " CHECK (action IN ('link', 'unlink', 'merge', 'split')),"
        " actor TEXT NOT NULL CONSTRAINT steward_actor_not_empty CHECK (actor <> ''),"
        " reason TEXT NOT NULL, at TEXT NOT NULL, payload TEXT NOT NULL)",
    )),
)

#: Per writer connection: the members of the run being applied, staged so that a source
#: re-read whole can lose, in one statement, the refs the run did not see.
STAGING = ("CREATE TEMP TABLE IF NOT EXISTS run_members (source TEXT, local_key TEXT,"
           " global_id TEXT, rule TEXT, score REAL, agreed TEXT, linked_source TEXT,"
           " linked_key TEXT, PRIMARY KEY (source, local_key)) WITHOUT ROWID")

MEMBER_COLUMNS = "source, local_key, global_id, rule, score, agreed, linked_source, linked_key"
_VALUE_COLUMNS = MEMBER_COLUMNS.split(", ")[2:]
# "WHERE true": SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT.
UPSERT_MEMBERS = (
    f"INSERT INTO members ({MEMBER_COLUMNS}) SELECT {MEMBER_COLUMNS} FROM temp.run_members"
    " WHERE true ON CONFLICT (source, local_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _VALUE_COLUMNS)
    + f" WHERE ({', '.join(f'members.{c}' for c in _VALUE_COLUMNS)})"
    f" IS NOT ({', '.join(f'excluded.{c}' for c in _VALUE_COLUMNS)})")

RESOLVE = (
    "WITH RECURSIVE chain (id, hops) AS (SELECT ?, 0 UNION ALL"
    " SELECT r.new_id, chain.hops + 1 FROM chain JOIN redirects AS r ON r.old_id = chain.id"
    " WHERE chain.hops < 100)"
    " SELECT id, hops, EXISTS (SELECT 1 FROM members WHERE global_id = chain.id)"
    " FROM chain ORDER BY hops DESC LIMIT 1")

# sqlite3 reports the constraint by message: (prefix of the message, constraint name).
_REPORTS = (
    ("UNIQUE constraint failed: run_members.", "run_members_pkey"),
    ("FOREIGN KEY constraint failed", "key_hash_of_member"),
    ("NOT NULL constraint failed: members.global_id", "member_id_not_empty"),
)

#: (sqlite3 error name prefix, what to do about it): the shared hints, but for a busy file.
_HINTS = (("SQLITE_BUSY", "another process held the file too long; is a second indexer running?"),
          *HINTS[1:])


def _json(values: Iterable[Any]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def _refs_json(refs: Iterable[Ref]) -> list[str]:
    """Distinct refs, checked, as JSON arrays of at most a batch each."""
    unique = dict.fromkeys(rows.ref(r, ValueError) for r in refs)
    return [_json(batch) for batch in rows.chunks(unique)]


def _texts_json(values: Iterable[str]) -> list[str]:
    unique = dict.fromkeys(v for v in values if isinstance(v, str))
    return [_json(batch) for batch in rows.chunks(unique)]


def _member(row: Sequence[Any]) -> Member:
    return rows.member_from_row(row, json.loads(row[5]) if row[5] is not None else None)


def _staged(row: rows.MemberRow) -> tuple[Any, ...]:
    agreed = None if row[5] is None else _json(row[5])
    return (*row[:5], agreed, *row[6:])


class SQLiteCrosswalk(SQLiteBacked, Crosswalk):
    """The crosswalk in one SQLite file (created with its parent directories)."""

    def __init__(self, path: Path | str) -> None:
        self.db = SQLiteDatabase(path, MIGRATIONS, ERRORS, "schema_version", hints=_HINTS,
                                 reports=_REPORTS, setup=(STAGING,),
                                 name=f"SQLiteCrosswalk({str(Path(path))!r})")

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()

    # --- lookups ------------------------------------------------------------------------

    async def members_of_refs(self, refs: Iterable[Ref]) -> dict[Ref, str]:
        found: dict[Ref, str] = {}
        for batch in _refs_json(refs):
            for source, key, global_id in await self.db.read(
                    "SELECT m.source, m.local_key, m.global_id FROM json_each(?) AS j"
                    " CROSS JOIN members AS m ON m.source = json_extract(j.value, '$[0]')"
                    " AND m.local_key = json_extract(j.value, '$[1]')", (batch,)):
                found[(source, key)] = global_id
        return found

    async def members(self, global_ids: Iterable[str]) -> dict[str, list[Member]]:
        found: dict[str, list[Member]] = {}
        for batch in _texts_json(global_ids):
            for row in await self.db.read(
                    f"SELECT {', '.join(f'm.{c}' for c in MEMBER_COLUMNS.split(', '))}"
                    " FROM json_each(?) AS j CROSS JOIN members AS m ON m.global_id = j.value"
                    " ORDER BY m.global_id, m.source, m.local_key", (batch,)):
                found.setdefault(row[2], []).append(_member(row))
        return found

    async def global_ids(self, after: str | None, limit: int) -> list[str]:
        rows.check_limit(limit)
        found = await self.db.read("SELECT DISTINCT global_id FROM members WHERE global_id > ?"
                                   " ORDER BY global_id LIMIT ?", (after or "", limit))
        return [row[0] for row in found]

    async def resolve_id(self, global_id: str) -> tuple[str, bool] | None:
        if not isinstance(global_id, str) or not global_id:
            return None
        current, hops, live = (await self.db.read(RESOLVE, (global_id,)))[0]
        return (current, hops > 0) if live else None

    async def refs_for_hashes(self, hashes: Iterable[str]) -> dict[str, list[Ref]]:
        found: dict[str, list[Ref]] = {}
        for batch in _texts_json(hashes):
            for value, source, key in await self.db.read(
                    "SELECT k.hash, k.source, k.local_key FROM json_each(?) AS j"
                    " CROSS JOIN key_hashes AS k ON k.hash = j.value"
                    " ORDER BY k.hash, k.source, k.local_key", (batch,)):
                found.setdefault(value, []).append((source, key))
        return found

    async def hashes_of(self, refs: Iterable[Ref]) -> dict[Ref, set[str]]:
        found: dict[Ref, set[str]] = {}
        for batch in _refs_json(refs):
            for source, key, value in await self.db.read(
                    "SELECT k.source, k.local_key, k.hash FROM json_each(?) AS j"
                    " CROSS JOIN key_hashes AS k ON k.source = json_extract(j.value, '$[0]')"
                    " AND k.local_key = json_extract(j.value, '$[1]')", (batch,)):
                found.setdefault((source, key), set()).add(value)
        return found

    async def watermark(self, source: str) -> str | None:
        found = await self.db.read("SELECT value FROM watermarks WHERE source = ?", (source,))
        return found[0][0] if found else None

    async def all_members(self) -> AsyncIterator[Member]:
        async for row in self.db.stream(
                f"SELECT {MEMBER_COLUMNS} FROM members ORDER BY source, local_key"):
            yield _member(row)

    async def _pairs(self, table: str) -> list[tuple[Ref, Ref]]:
        found = await self.db.read(f"SELECT a_source, a_key, b_source, b_key FROM {table}"
                                 " ORDER BY a_source, a_key, b_source, b_key")
        return [rows.pair_from_row(row) for row in found]

    async def steward_log(self, limit: int = 100) -> list[StewardAction]:
        rows.check_limit(limit)
        found = await self.db.read("SELECT id, action, actor, reason, at, payload"
                                 " FROM steward_actions ORDER BY id DESC LIMIT ?", (limit,))
        return [rows.action_from_row(row) for row in found]

    async def stats(self) -> dict[str, int]:
        names = ("records", "customers", "redirects", "steward_actions", "key_hashes",
                 "must_links", "cannot_links")
        found = await self.db.read(
            "SELECT (SELECT count(*) FROM members),"
            " (SELECT count(DISTINCT global_id) FROM members), (SELECT count(*) FROM redirects),"
            " (SELECT count(*) FROM steward_actions), (SELECT count(*) FROM key_hashes),"
            " (SELECT count(*) FROM must_links), (SELECT count(*) FROM cannot_links)")
        return dict(zip(names, found[0], strict=True))

    # --- writes -------------------------------------------------------------------------

    @staticmethod
    async def _each(db: Connection, sql: str, values: Iterable[Sequence[Any]]) -> int:
        """Run ``sql`` for every value, a batch at a time; the number of rows changed."""
        changed = 0
        for batch in rows.chunks(values):
            cursor = await db.executemany(sql, batch)
            changed += max(cursor.rowcount, 0)
        return changed

    async def apply_index(self, run: IndexRun) -> IndexStats:
        async with self.db.write(InvalidIndexRun) as db:
            removed = {rows.ref(r) for r in run.removed}
            gone = await self._each(
                db, "DELETE FROM members WHERE source = ? AND local_key = ?", removed)
            await db.execute("DELETE FROM temp.run_members")
            await self._each(
                db, f"INSERT INTO temp.run_members ({MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (_staged(rows.member_row(m, removed)) for m in run.members))
            if run.scope_sources is not None:
                cursor = await db.execute(
                    "DELETE FROM members WHERE source IN (SELECT value FROM json_each(?))"
                    " AND NOT EXISTS (SELECT 1 FROM temp.run_members AS r"
                    " WHERE r.source = members.source AND r.local_key = members.local_key)",
                    (_json(sorted(run.scope_sources)),))
                gone += cursor.rowcount
            written = (await db.execute(UPSERT_MEMBERS)).rowcount
            await db.execute("DELETE FROM temp.run_members")
            if run.scope_sources is not None:
                await db.execute("DELETE FROM key_hashes WHERE source IN"
                                 " (SELECT value FROM json_each(?))", (_json(sorted(run.scope_sources)),))
            if isinstance(run.key_hashes, Mapping):
                await self._each(db, "DELETE FROM key_hashes WHERE source = ? AND local_key = ?",
                                 (rows.ref(r) for r in run.key_hashes))
            elif run.scope_sources is None:
                raise InvalidIndexRun("streamed key_hashes need scope_sources: only a run that"
                                      " re-read its sources whole replaces hashes without a lookup")
            hashes = await self._each(
                db, "INSERT INTO key_hashes (source, local_key, hash) VALUES (?, ?, ?)",
                rows.hash_rows(rows.hash_items(run.key_hashes)))
            redirects = await self._each(
                db, "INSERT INTO redirects (old_id, new_id) VALUES (?, ?)"
                " ON CONFLICT (old_id) DO UPDATE SET new_id = excluded.new_id",
                rows.redirect_rows(run.redirects))
            await db.execute("DELETE FROM redirects WHERE EXISTS"
                             " (SELECT 1 FROM members WHERE global_id = redirects.old_id)")
            now = datetime.now(UTC).isoformat()
            watermarks = await self._each(
                db, "INSERT INTO watermarks (source, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                ((*row, now) for row in rows.watermark_rows(run.watermarks)))
        return IndexStats(written, gone, hashes, redirects, watermarks)

    async def record_steward(
        self, action: StewardAction, *,
        must_link: Iterable[tuple[Ref, Ref]] = (), cannot_link: Iterable[tuple[Ref, Ref]] = (),
        drop_must_link: Iterable[tuple[Ref, Ref]] = (),
        drop_cannot_link: Iterable[tuple[Ref, Ref]] = (),
    ) -> StewardAction:
        name, actor, reason, at, payload = rows.action_fields(action)
        changes = rows.constraint_changes(must_link, cannot_link, drop_must_link, drop_cannot_link)
        async with self.db.write(InvalidStewardAction) as db:
            cursor = await db.execute(
                "INSERT INTO steward_actions (action, actor, reason, at, payload)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id", (name, actor, reason, at.isoformat(), payload))
            row = await cursor.fetchone()
            await cursor.close()
            for table, add, drop in changes:
                where = " WHERE a_source = ? AND a_key = ? AND b_source = ? AND b_key = ?"
                await self._each(db, f"DELETE FROM {table}" + where, drop)
                await self._each(db, f"INSERT INTO {table} VALUES (?, ?, ?, ?)"
                                 " ON CONFLICT DO NOTHING", add)
        assert row is not None
        return StewardAction(row[0], name, actor, reason, at, json.loads(payload))
