"""The demo world on three engines, for ``direct_path.py``: paris on PostgreSQL, london on
MariaDB, berlin on SQLite, the CRM served in-process, and the identity index run once.

:func:`prepare_world` builds it with ``gateway.demo.world.build_world``, copies paris and london
into databases of their own (tables translated from the SQLite DDL by sqlglot, rows copied in
bulk, the SQLite files' indexes recreated), and rewrites the copied ``panorama.yaml``. The result
is cached on disk keyed by (seed, customers): a re-run whose databases still carry the marker
written at the end of the build skips all of it. :func:`ensure_indexed` then runs
``panorama index`` once (it needs the CRM, which the caller serves).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg  # type: ignore[import-untyped]
import sqlglot
from identity_quality import bench_environ, run_index  # type: ignore[import-not-found]
from sqlglot import exp

from gateway.crm_server.background import load_seed
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world

#: Where each moved shop goes: the engine's connection (as the config's ``connection:`` takes
#: it, trust / empty-password local servers), without the database, named per world.
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def connections(seed: int, customers: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """shop -> (config kind, connection) of a world: one database per (seed, size), so that
    worlds of several sizes stay cached side by side."""
    suffix = f"s{seed}_n{customers}"
    return {"paris": ("postgres", {**POSTGRES, "database": f"panorama_bench_paris_{suffix}"}),
            "london": ("mariadb", {**MARIADB, "database": f"panorama_bench_london_{suffix}"})}


#: The config reads the CRM's URL from here (the port changes every run).
CRM_URL_ENV = "PANORAMA_BENCH_CRM_URL"
MARKER_TABLE = "panorama_bench_world"
BATCH = 10_000  # rows per MariaDB multi-row INSERT


@dataclass
class BenchWorld:
    """A built world on disk and in the two servers."""

    directory: Path
    config_path: Path
    crm_seed: dict
    truth: dict
    build_seconds: float | None  # None: taken from the cache
    rows: dict[str, dict[str, int]]  # shop -> table -> rows copied
    moved: dict[str, tuple[str, dict[str, Any]]]  # shop -> (kind, connection), see connections()

    def environ(self, crm_url: str, crm_token: str) -> dict[str, str]:
        """What the config's ``${env:...}`` references need."""
        return {DEMO_TOKEN_ENV: crm_token, CRM_URL_ENV: crm_url}


# -- translating the SQLite schema -------------------------------------------------------


def translate_ddl(sql: str, dialect: str) -> str:
    """One SQLite CREATE statement in ``dialect`` (sqlglot's "postgres" or "mysql")."""
    tree = sqlglot.parse_one(sql, read="sqlite")
    # Foreign keys go: paris's clients names adresses before it exists (SQLite allows that),
    # and a read benchmark needs no enforcement; the referencing columns keep their indexes.
    for constraint in list(tree.find_all(exp.ColumnConstraint)):
        if isinstance(constraint.kind, exp.Reference):
            constraint.pop()
    if dialect == "mysql":
        # MariaDB cannot key a TEXT column without a prefix length; the demo's texts are short.
        for kind in list(tree.find_all(exp.DataType)):
            if kind.this == exp.DataType.Type.TEXT:
                kind.replace(exp.DataType.build("VARCHAR(255)"))
    return tree.sql(dialect=dialect)


def sqlite_schema(path: Path) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """(table, CREATE TABLE, columns) of every table, and every declared CREATE INDEX."""
    with sqlite3.connect(path) as db:
        tables = [(name, sql, [c[1] for c in db.execute(f'PRAGMA table_info("{name}")')])
                  for name, sql in db.execute(
                      "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                      "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        # Indexes of PRIMARY KEY and UNIQUE constraints have no SQL: the tables' DDL makes them.
        indexes = [sql for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")]
    return tables, indexes


def sqlite_rows(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(f'SELECT * FROM "{table}"').fetchall()


# -- copying into PostgreSQL and MariaDB ----------------------------------------------------


async def copy_to_postgres(source: Path, connection: Mapping[str, Any]) -> dict[str, int]:
    """Recreate ``connection['database']`` from a SQLite file; rows copied per table."""
    options = {k: v for k, v in connection.items() if k != "database"}
    admin = await asyncpg.connect(database="postgres", **options)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{connection["database"]}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{connection["database"]}"')
    finally:
        await admin.close()
    tables, indexes = sqlite_schema(source)
    conn = await asyncpg.connect(**connection)
    counts = {}
    try:
        for name, ddl, columns in tables:
            await conn.execute(translate_ddl(ddl, "postgres"))
            rows = sqlite_rows(source, name)
            await conn.copy_records_to_table(name.lower(), records=rows,
                                             columns=[c.lower() for c in columns])
            counts[name] = len(rows)
        for ddl in indexes:  # after the rows: one sort per index instead of row-by-row upkeep
            await conn.execute(translate_ddl(ddl, "postgres"))
        await conn.execute("ANALYZE")
        await conn.execute(f"CREATE TABLE {MARKER_TABLE} (marker TEXT NOT NULL)")
    finally:
        await conn.close()
    return counts


async def copy_to_mariadb(source: Path, connection: Mapping[str, Any]) -> dict[str, int]:
    """Recreate ``connection['database']`` from a SQLite file; rows copied per table."""
    database = connection["database"]
    options = {k: v for k, v in connection.items() if k != "database"}
    conn = await asyncmy.connect(autocommit=True, charset="utf8mb4", **options)
    counts = {}
    try:
        async with conn.cursor() as cur:
            # Only if it exists: MariaDB's note on dropping nothing reaches stderr otherwise.
            await cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                              (database,))
            if await cur.fetchall():
                await cur.execute(f"DROP DATABASE `{database}`")
            await cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            await cur.execute(f"USE `{database}`")
            tables, indexes = sqlite_schema(source)
            for name, ddl, columns in tables:
                await cur.execute(translate_ddl(ddl, "mysql"))
                rows = sqlite_rows(source, name)
                # asyncmy rewrites executemany of an INSERT ... VALUES into multi-row INSERTs.
                insert = (f"INSERT INTO `{name}` ({', '.join(f'`{c}`' for c in columns)}) "
                          f"VALUES ({', '.join(['%s'] * len(columns))})")
                for i in range(0, len(rows), BATCH):
                    await cur.executemany(insert, rows[i:i + BATCH])
                counts[name] = len(rows)
            for ddl in indexes:
                await cur.execute(translate_ddl(ddl, "mysql"))
            await cur.execute("ANALYZE TABLE " + ", ".join(f"`{t}`" for t, _, _ in tables))
            await cur.fetchall()
            await cur.execute(f"CREATE TABLE {MARKER_TABLE} (marker VARCHAR(255) NOT NULL)")
    finally:
        conn.close()
    return counts


# -- the cache marker ---------------------------------------------------------------------


def marker_text(seed: int, customers: int, rows: Mapping[str, int]) -> str:
    return json.dumps({"seed": seed, "customers": customers, "rows": dict(sorted(rows.items()))},
                      sort_keys=True)


async def write_markers(moved: Mapping[str, tuple[str, dict]], markers: Mapping[str, str]) -> None:
    """The last step of a build: each server's database says which world it holds."""
    pg = await asyncpg.connect(**moved["paris"][1])
    try:
        await pg.execute(f"INSERT INTO {MARKER_TABLE} VALUES ($1)", markers["paris"])
    finally:
        await pg.close()
    my = await asyncmy.connect(autocommit=True, charset="utf8mb4", **mariadb_options(moved))
    try:
        async with my.cursor() as cur:
            await cur.execute(f"INSERT INTO {MARKER_TABLE} VALUES (%s)", (markers["london"],))
    finally:
        my.close()


def mariadb_options(moved: Mapping[str, tuple[str, dict]]) -> dict[str, Any]:
    return {("db" if k == "database" else k): v for k, v in moved["london"][1].items()}


async def read_markers(moved: Mapping[str, tuple[str, dict]]) -> dict[str, str | None]:
    """Each server's marker, None where the database, the table or the row is missing."""
    found: dict[str, str | None] = {"paris": None, "london": None}
    try:
        pg = await asyncpg.connect(**moved["paris"][1])
        try:
            found["paris"] = await pg.fetchval(f"SELECT marker FROM {MARKER_TABLE}")
        finally:
            await pg.close()
    except (OSError, asyncpg.PostgresError):
        pass
    try:
        my = await asyncmy.connect(charset="utf8mb4", **mariadb_options(moved))
        try:
            async with my.cursor() as cur:
                await cur.execute(f"SELECT marker FROM {MARKER_TABLE}")
                row = await cur.fetchone()
                found["london"] = row[0] if row else None
        finally:
            my.close()
    except (OSError, asyncmy.errors.MySQLError):
        pass
    return found


# -- the config ------------------------------------------------------------------------------


def rewrite_config(path: Path, moved: Mapping[str, tuple[str, dict]]) -> None:
    """paris -> ``kind: postgres``, london -> ``kind: mariadb``, with their connections."""
    text = path.read_text(encoding="utf-8")
    for shop, (kind, connection) in moved.items():
        start = text.index(f"\n  {shop}:\n")
        end = text.index("\n    defaults:", start)
        block = text[start:end]
        old_kind, old_connection = "kind: sqlite", f"connection:\n      path: {shop}.db"
        assert block.count(old_kind) == 1 and block.count(old_connection) == 1, \
            f"the demo template's {shop} source changed shape; update rewrite_config"
        keys = "".join(f"\n      {k}: {json.dumps(v)}" for k, v in connection.items())
        block = block.replace(old_kind, f"kind: {kind}").replace(
            old_connection, f"connection:{keys}")
        text = text[:start] + block + text[end:]
    path.write_text(text, encoding="utf-8")


# -- the whole preparation -----------------------------------------------------------------


def prepare_world(root: Path, *, seed: int, customers: int, log=print) -> BenchWorld:
    """The world for (seed, customers) under ``root``, built unless the cache still holds it."""
    directory = root / f"seed{seed}-n{customers}"
    state_path = directory / "bench-world.json"
    moved = connections(seed, customers)
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if asyncio.run(read_markers(moved)) == state["markers"]:
            log(f"world: cached in {directory} (seed {seed}, {customers:,} customers)")
            return BenchWorld(directory, directory / "panorama.yaml",
                              load_seed(directory / "crm-seed.json"),
                              json.loads((directory / "truth.json").read_text()), None,
                              state["rows"], moved)
        log("world: cached files found, but the databases no longer match them: rebuilding")
    shutil.rmtree(directory, ignore_errors=True)
    log(f"world: building {customers:,} customers (seed {seed}) in {directory} ...")
    started = time.perf_counter()
    world = build_world(directory, seed=seed, customers=customers,
                        crm_url=f"${{env:{CRM_URL_ENV}}}")
    generated = time.perf_counter() - started
    rows = {"paris": asyncio.run(copy_to_postgres(directory / "paris.db", moved["paris"][1])),
            "london": asyncio.run(copy_to_mariadb(directory / "london.db", moved["london"][1]))}
    rewrite_config(world.config_path, moved)
    markers = {shop: marker_text(seed, customers, counts) for shop, counts in rows.items()}
    asyncio.run(write_markers(moved, markers))
    # The state file is written last: a build cut short leaves no cache behind.
    state_path.write_text(json.dumps({"markers": markers, "rows": rows}, indent=1))
    built = time.perf_counter() - started
    log(f"world: built in {built:.1f} s (generating {generated:.1f} s, copying paris to "
        f"PostgreSQL and london to MariaDB {built - generated:.1f} s; "
        f"{sum(rows['paris'].values()):,} + {sum(rows['london'].values()):,} rows)")
    return BenchWorld(directory, world.config_path, world.crm_seed, world.truth, built, rows,
                      moved)


def ensure_indexed(world: BenchWorld, environ: Mapping[str, str], log=print) -> None:
    """Run ``panorama index`` once per built world (the crosswalk lives next to the config)."""
    done = world.directory / "indexed.json"
    if done.is_file() and (world.directory / "crosswalk.db").is_file():
        log(f"identity index: cached ({json.loads(done.read_text())['records']:,} records)")
        return
    log("identity index: running panorama index once (a child process) ...")
    stats = run_index(world.config_path, bench_environ(world.directory, **environ), isolate=True)
    done.write_text(json.dumps({"records": stats.records, "customers": stats.customers,
                                "seconds": stats.index_seconds}))
    log(f"identity index: {stats.records:,} records into {stats.customers:,} customers in "
        f"{stats.index_seconds:.1f} s")
