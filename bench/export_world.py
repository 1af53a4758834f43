"""The world of the accounts export benchmark: N customers over three shops, and their crosswalk.

- ``paris`` on PostgreSQL (``numeric(12,2)`` amounts, ``timestamp`` dates), EUR;
- ``london`` on MariaDB (``decimal(12,2)``, ``datetime``), GBP;
- ``berlin`` on SQLite (INTEGER cents, ISO text dates), EUR.

Each shop has ``customers``, ``invoices`` (paid / pending / cancelled), ``payments`` (ok /
failed) and ``refunds`` (paris, london) or ``credits`` (berlin), about four transactions per
customer record. 70% of the customers are in one shop, 20% in two, 10% in all three, with the
same e-mail in each. The crosswalks and the two configs (three shops; paris alone) are written
by ``export_config.py``.

Rows are made in chunks of customers and loaded in bulk (COPY, multi-row INSERTs, one SQLite
transaction); a marker table in each database says which (seed, size) it holds, and a
re-run that finds the markers it wrote skips the build.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg  # type: ignore[import-untyped]

from gateway.identity import encode_id

SHOPS = ("paris", "london", "berlin")  # config order: a global id comes from the first record
CURRENCY = {"paris": "EUR", "london": "GBP", "berlin": "EUR"}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
CACHE = Path.home() / ".cache" / "panorama-bench"
MARKER = "panorama_export_world"
CHUNK = 50_000  # customers generated and loaded at a time
BASE = datetime(2024, 1, 1)
FIRST = ("Anna", "Ben", "Chloé", "David", "Emma", "Felix", "Grace", "Hugo", "Inès", "Jonas",
         "Karim", "Léa", "Marta", "Noah", "Olga", "Paul", "Rosa", "Samir", "Tara", "Yusuf")
LAST = ("Martin", "Smith", "Müller", "Bernard", "Jones", "Schmidt", "Dubois", "Taylor",
        "Weber", "Moreau", "Brown", "Fischer", "Laurent", "Wilson", "Wagner", "Garcia")
TABLES = {  # shop -> its money tables; the last is refunds or credits
    "paris": ("invoices", "payments", "refunds"),
    "london": ("invoices", "payments", "refunds"),
    "berlin": ("invoices", "payments", "credits"),
}
COLUMNS = {  # table -> its columns (in the order of the generated tuples) and their kinds
    "customers": "id:key given_name:text family_name:text email:text phone:text created_at:time",
    "invoices": "id:key customer_id:ref number:text amount:money issued_at:time status:text",
    "payments": "id:key customer_id:ref invoice_id:ref amount:money paid_at:time status:text",
    "refunds": "id:key customer_id:ref invoice_id:ref amount:money refunded_at:time",
    "credits": "id:key customer_id:ref invoice_id:ref amount:money created_at:time",
}
TYPES = {
    "postgres": {"key": "bigint PRIMARY KEY", "ref": "bigint", "text": "text",
                 "money": "numeric(12,2)", "time": "timestamp"},
    "mariadb": {"key": "bigint PRIMARY KEY", "ref": "bigint", "text": "varchar(255)",
                "money": "decimal(12,2)", "time": "datetime"},
    "sqlite": {"key": "INTEGER PRIMARY KEY", "ref": "INTEGER", "text": "TEXT",
               "money": "INTEGER", "time": "TEXT"},  # money in cents, times as ISO text
}


def columns(engine: str, table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of a table's columns on an engine; SQLite's amounts are ``amount_cents``."""
    out = []
    for spec in COLUMNS[table].split():
        name, kind = spec.split(":")
        if engine == "sqlite" and kind == "money":
            name = "amount_cents"
        out.append((name, TYPES[engine][kind] + (" NOT NULL" if kind in ("ref", "money")
                                                 and name != "invoice_id" else "")))
    return out


ENGINE = {"paris": "postgres", "london": "mariadb", "berlin": "sqlite"}


@dataclass
class ExportWorld:
    directory: Path
    seed: int
    customers: int
    databases: dict[str, dict[str, Any]]  # paris / london -> connection (database included)
    records: dict[str, int] = field(default_factory=dict)  # shop -> customer records
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # shop -> table -> rows
    build_seconds: float | None = None  # None: taken from the cache

    @property
    def config(self) -> Path:
        return self.directory / "panorama.yaml"

    @property
    def config_paris(self) -> Path:
        return self.directory / "panorama-paris.yaml"

    @property
    def sqlite_path(self) -> Path:
        return self.directory / "berlin.db"


def membership(seed: int, customers: int) -> bytearray:
    """Which shops each customer is in, as a bit mask (1 paris, 2 london, 4 berlin)."""
    rng = random.Random(seed)
    masks = bytearray(customers)
    for i in range(customers):
        r = rng.random()
        masks[i] = 7 if r < 0.10 else rng.choice((3, 5, 6)) if r < 0.30 else rng.choice((1, 2, 4))
    return masks


def local_keys(masks: bytearray) -> dict[str, array]:
    """shop -> each customer's local key there (0: not there); keys count from 1 per shop."""
    out = {}
    for bit, shop in enumerate(SHOPS):
        keys, counter = array("q", bytes(8 * len(masks))), 0
        for i, mask in enumerate(masks):
            if mask >> bit & 1:
                counter += 1
                keys[i] = counter
        out[shop] = keys
    return out


def refs_of(keys: dict[str, array], person: int) -> list[tuple[str, str]]:
    """A customer's records in config order: the first makes its global id."""
    return [(shop, str(keys[shop][person])) for shop in SHOPS if keys[shop][person]]


def global_id(keys: dict[str, array], person: int) -> str:
    return encode_id(*refs_of(keys, person)[0])


def generate(shop: str, seed: int, people: list[tuple[int, int]], ids: dict[str, int]
             ) -> dict[str, list[tuple]]:
    """Neutral rows (cents, seconds since 2024-01-01) of ``people`` (customer index, local key).

    ``ids`` holds the last id of each table and is advanced."""
    rng = random.Random(f"{seed}:{shop}:{people[0][0] if people else 0}")
    rand, randint = rng.random, rng.randint
    out: dict[str, list[tuple]] = {"customers": [], "invoices": [], "payments": [], "extra": []}
    customers, invoices, payments, extra = (out[k] for k in ("customers", "invoices", "payments",
                                                             "extra"))
    for person, key in people:
        created = randint(0, 30_000_000)
        phone = f"+4477{person % 100_000_000:08d}" if rand() < 0.5 else None
        customers.append((key, FIRST[person % 20], LAST[person // 20 % 16],
                          f"customer{person}@example.com", phone, created))
        for _ in range(randint(1, 3)):
            ids["invoices"] += 1
            invoice, cents, when = ids["invoices"], randint(500, 50_000), created + randint(0, 30_000_000)
            r = rand()
            status = "paid" if r < 0.7 else "pending" if r < 0.9 else "cancelled"
            invoices.append((invoice, key, f"{shop[:2].upper()}-{invoice:08d}", cents, when, status))
            if status == "cancelled":
                continue
            if rand() < 0.15:
                ids["payments"] += 1
                payments.append((ids["payments"], key, invoice, cents, when + 600, "failed"))
            if status == "paid" or rand() < 0.3:
                ids["payments"] += 1
                paid = cents if status == "paid" else cents // 2
                payments.append((ids["payments"], key, invoice, paid, when + 3600, "ok"))
            if status == "paid" and rand() < 0.08:
                ids["extra"] += 1
                extra.append((ids["extra"], key, invoice, randint(100, cents), when + 86_400))
        if shop == "berlin" and rand() < 0.10:
            ids["extra"] += 1
            extra.append((ids["extra"], key, None, randint(100, 5_000), created + 100))
    return out


# -- per engine: rows as the engine takes them ----------------------------------------------

def _decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _when(seconds: int) -> datetime:
    return BASE + timedelta(seconds=seconds)


def converted(engine: str, table: str, rows: list[tuple]) -> list[tuple]:
    """Neutral rows -> the engine's values (Decimal and datetime, text, or cents and ISO text)."""
    date_at = 5 if table == "customers" else 4
    if engine == "postgres":
        if table == "customers":
            return [(*r[:5], _when(r[5])) for r in rows]
        return [(*r[:3], _decimal(r[3]), _when(r[4]), *r[5:]) for r in rows]
    if engine == "sqlite":
        return [(*r[:date_at], _when(r[date_at]).isoformat(sep=" "), *r[date_at + 1:]) for r in rows]
    if table == "customers":
        return [(*r[:5], _when(r[5]).isoformat(sep=" ")) for r in rows]
    return [(*r[:3], f"{r[3] // 100}.{r[3] % 100:02d}", _when(r[4]).isoformat(sep=" "), *r[5:])
            for r in rows]


# -- building ---------------------------------------------------------------------------------

def database_names(seed: int, customers: int, prefix: str = "panorama_export") -> dict[str, dict]:
    name = f"{prefix}_s{seed}_n{customers}"
    return {"paris": {**POSTGRES, "database": name}, "london": {**MARIADB, "database": name}}


async def _mariadb(options: dict[str, Any], **extra: Any) -> Any:
    opts = {("db" if k == "database" else k): v for k, v in options.items()}
    return await asyncmy.connect(autocommit=True, charset="utf8mb4", **opts, **extra)


class Loader:
    """The three shops' connections, one statement or one bulk load at a time."""

    def __init__(self, pg: Any, my: Any, lite: sqlite3.Connection) -> None:
        self.pg, self.my, self.lite = pg, my, lite

    async def execute(self, shop: str, sql: str, *params: Any) -> None:
        if shop == "paris":
            await self.pg.execute(sql.replace("?", "$1"), *params)
        elif shop == "london":
            async with self.my.cursor() as cur:
                await cur.execute(sql.replace("?", "%s"), params or None)
                if sql.startswith("ANALYZE"):
                    await cur.fetchall()
        else:
            self.lite.execute(sql, params)

    async def insert(self, shop: str, table: str, rows: list[tuple]) -> None:
        names = [name for name, _ in columns(ENGINE[shop], table)]
        insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        if shop == "paris":
            await self.pg.copy_records_to_table(table, records=rows, columns=names)
        elif shop == "london":  # asyncmy rewrites executemany into multi-row INSERTs
            async with self.my.cursor() as cur:
                for i in range(0, len(rows), 5_000):
                    await cur.executemany(insert.replace("?", "%s"), rows[i:i + 5_000])
        else:
            self.lite.executemany(insert, rows)

    async def close(self) -> None:
        await self.pg.close()
        self.my.close()
        self.lite.close()


async def create_databases(world: ExportWorld) -> Loader:
    """Empty databases with the shops' tables (the server ones dropped and created again)."""
    pg_opts = world.databases["paris"]
    admin = await asyncpg.connect(**{**pg_opts, "database": "postgres"})
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_opts["database"]}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{pg_opts["database"]}"')
    finally:
        await admin.close()
    my_name = world.databases["london"]["database"]
    my = await _mariadb({k: v for k, v in world.databases["london"].items() if k != "database"})
    async with my.cursor() as cur:
        await cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                          (my_name,))
        if await cur.fetchall():  # (IF EXISTS on nothing sends a note to stderr)
            await cur.execute(f"DROP DATABASE `{my_name}`")
        await cur.execute(f"CREATE DATABASE `{my_name}` CHARACTER SET utf8mb4")
        await cur.execute(f"USE `{my_name}`")
    world.sqlite_path.unlink(missing_ok=True)
    loader = Loader(await asyncpg.connect(**pg_opts), my, sqlite3.connect(world.sqlite_path))
    for shop in SHOPS:
        for table in ("customers", *TABLES[shop], MARKER):
            spec = [("marker", "text NOT NULL")] if table == MARKER else columns(ENGINE[shop], table)
            await loader.execute(shop, f"CREATE TABLE {table} ({', '.join(map(' '.join, spec))})")
    return loader


async def load(world: ExportWorld, masks: bytearray, log=print) -> None:
    """Generate every shop's rows chunk by chunk and bulk-load them; the markers last."""
    loader = await create_databases(world)
    keys = local_keys(masks)
    rows = {shop: dict.fromkeys(("customers", *TABLES[shop]), 0) for shop in SHOPS}
    ids = {shop: {"invoices": 0, "payments": 0, "extra": 0} for shop in SHOPS}
    try:
        for start in range(0, world.customers, CHUNK):
            span = range(start, min(start + CHUNK, world.customers))
            for shop in SHOPS:
                made = generate(shop, world.seed, [(i, keys[shop][i]) for i in span
                                                   if keys[shop][i]], ids[shop])
                made[TABLES[shop][2]] = made.pop("extra")
                for table, neutral in made.items():
                    rows[shop][table] += len(neutral)
                    await loader.insert(shop, table, converted(ENGINE[shop], table, neutral))
            log(f"  {span.stop:,}/{world.customers:,} customers generated")
        world.rows = rows
        world.records = {shop: rows[shop]["customers"] for shop in SHOPS}
        for shop in SHOPS:  # indexes after the rows: one sort each instead of row-by-row upkeep
            for table in TABLES[shop]:
                await loader.execute(shop, f"CREATE INDEX {table}_customer ON {table} (customer_id)")
            await loader.execute(shop, "ANALYZE" + (" TABLE customers, " + ", ".join(TABLES[shop])
                                                    if shop == "london" else ""))
            await loader.execute(shop, f"INSERT INTO {MARKER} VALUES (?)", marker_text(world))
        loader.lite.commit()
    finally:
        await loader.close()


def marker_text(world: ExportWorld) -> str:
    return json.dumps({"seed": world.seed, "customers": world.customers, "rows": world.rows},
                      sort_keys=True)


async def read_markers(world: ExportWorld) -> list[str | None]:
    found: list[str | None] = [None, None, None]
    try:
        pg = await asyncpg.connect(**world.databases["paris"])
        try:
            found[0] = await pg.fetchval(f"SELECT marker FROM {MARKER}")
        finally:
            await pg.close()
    except (OSError, asyncpg.PostgresError):
        pass
    try:
        my = await _mariadb(world.databases["london"])
        try:
            async with my.cursor() as cur:
                await cur.execute(f"SELECT marker FROM {MARKER}")
                row = await cur.fetchone()
                found[1] = row[0] if row else None
        finally:
            my.close()
    except (OSError, asyncmy.errors.MySQLError):
        pass
    if world.sqlite_path.is_file():
        with sqlite3.connect(world.sqlite_path) as lite:
            try:
                found[2] = lite.execute(f"SELECT marker FROM {MARKER}").fetchone()[0]
            except sqlite3.Error:
                pass
    return found


def prepare(seed: int, customers: int, *, root: Path = CACHE, prefix: str = "panorama_export",
            log=print) -> ExportWorld:
    """The world for (seed, customers), built unless the databases still hold its markers."""
    from export_config import write_configs, write_crosswalks  # (it imports this module)

    directory = root / f"export-s{seed}-n{customers}"
    world = ExportWorld(directory, seed, customers, database_names(seed, customers, prefix))
    state = directory / "state.json"
    if state.is_file():
        saved = json.loads(state.read_text())
        if asyncio.run(read_markers(world)) == [saved["marker"]] * 3:
            world.rows, world.records = saved["rows"], saved["records"]
            write_configs(world)
            log(f"world: cached in {directory} ({customers:,} customers, seed {seed})")
            return world
        log("world: the databases no longer hold the cached world: rebuilding")
    directory.mkdir(parents=True, exist_ok=True)
    state.unlink(missing_ok=True)
    log(f"world: building {customers:,} customers (seed {seed}) in {directory} ...")
    started = time.perf_counter()
    masks = membership(seed, customers)
    asyncio.run(load(world, masks, log))
    loaded = time.perf_counter() - started
    asyncio.run(write_crosswalks(world, masks))
    write_configs(world)
    world.build_seconds = time.perf_counter() - started
    state.write_text(json.dumps({"marker": marker_text(world), "rows": world.rows,
                                 "records": world.records}, indent=1))
    log(f"world: built in {world.build_seconds:.1f} s (rows {loaded:.1f} s, crosswalks "
        f"{world.build_seconds - loaded:.1f} s); records {world.records}")
    return world


async def drop(world: ExportWorld) -> None:
    """Drop the world's two server databases and its directory (tests)."""
    pg_opts = world.databases["paris"]
    admin = await asyncpg.connect(**{**pg_opts, "database": "postgres"})
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{pg_opts["database"]}" WITH (FORCE)')
    finally:
        await admin.close()
    my = await _mariadb({k: v for k, v in world.databases["london"].items() if k != "database"})
    try:
        async with my.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{world.databases['london']['database']}`")
    finally:
        my.close()
    shutil.rmtree(world.directory, ignore_errors=True)
