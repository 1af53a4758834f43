"""Real databases for the SQL connector's tests: PostgreSQL, MariaDB and a SQLite file.

Each session (re)creates, in a database ``panorama_test``, the contract dataset and a few
tables of its own: a CamelCase customer -> address -> city chain (Chinook style, for joins
and quoting), a PostgreSQL schema ``panorama_sales`` (schema-qualified names), and views
whose rows come slowly (pool and timeout tests). The DDL is written once, in PostgreSQL's
dialect, and transpiled by sqlglot.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from decimal import Decimal

import asyncmy
import asyncpg
import pytest
import sqlglot

from tests.connectors.dataset import NOTES, PAYMENTS, PEOPLE

DATABASE = "panorama_test"
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": DATABASE}
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "",
           "database": DATABASE}

TABLES = [  # (name, DDL); dropped and created in this order, dropped in reverse
    ("contract_people", "CREATE TABLE contract_people (id INTEGER PRIMARY KEY,"
     " given_name VARCHAR(100), family_name VARCHAR(100), email VARCHAR(200),"
     " phone VARCHAR(50), city VARCHAR(100), card VARCHAR(50))"),
    ("contract_notes", "CREATE TABLE contract_notes (id INTEGER PRIMARY KEY,"
     " person_id INTEGER, note TEXT, created_at TIMESTAMP)"),
    ("contract_payments", "CREATE TABLE contract_payments (id INTEGER PRIMARY KEY,"
     " person_id INTEGER, status VARCHAR(20), amount NUMERIC(10, 2), cents INTEGER,"
     " fee DOUBLE PRECISION, paid_at TIMESTAMP)"),
    ('"City"', 'CREATE TABLE "City" ("CityId" INTEGER PRIMARY KEY, "Name" VARCHAR(100))'),
    ('"Address"', 'CREATE TABLE "Address" ("AddressId" INTEGER PRIMARY KEY,'
     ' "Street" VARCHAR(100), "CityId" INTEGER)'),
    ('"Customer"', 'CREATE TABLE "Customer" ("CustomerId" INTEGER PRIMARY KEY,'
     ' "FirstName" VARCHAR(100), "AddressId" INTEGER)'),
]
CITIES = [(1, "Paris"), (2, "Lyon")]
ADDRESSES = [(10, "1 rue de Rivoli", 1), (11, "2 quai Saint-Antoine", 2), (12, "nowhere", None)]
CUSTOMERS = [(1, "Jean", 10), (2, "Marie", 11), (3, "Paul", 12), (4, "Zoé", None)]

#: Views with one row (id 1, backend: the server connection that read it) that takes time.
SLOW_VIEWS = {
    "postgres": [
        "CREATE VIEW slow_backend AS SELECT 1 AS id, pg_backend_pid() AS backend"
        " FROM pg_sleep(0.1)",
        "CREATE VIEW sleepy AS SELECT 1 AS id FROM pg_sleep(3)",
    ],
    "mysql": [
        "CREATE VIEW slow_backend AS SELECT 1 AS id, CONNECTION_ID() AS backend,"
        " SLEEP(0.1) AS slept",
        "CREATE VIEW sleepy AS SELECT 1 AS id, SLEEP(3) AS slept",
    ],
    "sqlite": [  # no sleep(): count far enough to outlast any timeout the tests use
        "CREATE VIEW sleepy AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
        " SELECT i + 1 FROM n WHERE i < 100000000) SELECT 1 AS id, COUNT(*) AS total FROM n",
    ],
}


def ddl(dialect: str) -> list[str]:
    """Statements that (re)create every table and view, in ``dialect``."""
    drops = ["DROP VIEW IF EXISTS slow_backend", "DROP VIEW IF EXISTS sleepy"]
    drops += [f"DROP TABLE IF EXISTS {name}" for name, _ in reversed(TABLES)]
    statements = [sqlglot.transpile(s, read="postgres", write=dialect)[0]
                  for s in drops + [create for _, create in TABLES]]
    return statements + SLOW_VIEWS[dialect]


PLACEHOLDERS = {"postgres": "${n}", "mysql": "%s", "sqlite": "?"}


def data() -> list[tuple[str, list[tuple]]]:
    """(table, rows) for every table, in creation order."""
    people = [tuple(p[c] for c in ("id", "given_name", "family_name", "email", "phone", "city",
                                   "card")) for p in PEOPLE]
    notes = [(n["id"], n["person_id"], n["text"], n["date"]) for n in NOTES]
    payments = [tuple(p[c] for c in ("id", "person_id", "status", "amount", "cents", "fee",
                                     "paid_at")) for p in PAYMENTS]
    return [("contract_people", people), ("contract_notes", notes),
            ("contract_payments", payments), ('"City"', CITIES),
            ('"Address"', ADDRESSES), ('"Customer"', CUSTOMERS)]


def inserts(dialect: str) -> Iterable[tuple[str, list[tuple]]]:
    """(INSERT in ``dialect`` with its driver's placeholders, rows) for every table."""
    for table, values in data():
        name = table.replace('"', "`") if dialect == "mysql" else table
        marks = ", ".join(PLACEHOLDERS[dialect].format(n=i + 1) for i in range(len(values[0])))
        yield f"INSERT INTO {name} VALUES ({marks})", values


async def _load_postgres() -> None:
    admin = await asyncpg.connect(**{**POSTGRES, "database": "postgres"})
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(**POSTGRES)
    try:
        for statement in ddl("postgres"):
            await conn.execute(statement)
        for insert, values in inserts("postgres"):
            await conn.executemany(insert, values)
        await conn.execute(
            "DROP SCHEMA IF EXISTS panorama_sales CASCADE; CREATE SCHEMA panorama_sales;"
            " CREATE TABLE panorama_sales.customer (id BIGINT PRIMARY KEY, email TEXT);"
            " INSERT INTO panorama_sales.customer VALUES (7, 'sales@example.com');")
    finally:
        await conn.close()


async def _load_mariadb() -> None:
    admin = await asyncmy.connect(**{k: v for k, v in MARIADB.items() if k != "database"},
                                  autocommit=True, charset="utf8mb4")
    try:
        async with admin.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}"
                                 " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            await cursor.execute(f"USE {DATABASE}")
            for statement in ddl("mysql"):
                await cursor.execute(statement)
            for insert, values in inserts("mysql"):
                await cursor.executemany(insert, values)
    finally:
        admin.close()


def _load_sqlite(path: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in ddl("sqlite"):
            conn.execute(statement)
        for insert, values in inserts("sqlite"):
            conn.executemany(insert, [tuple(_sqlite_value(v) for v in row) for row in values])
        conn.commit()
    finally:
        conn.close()


def _sqlite_value(value: object) -> object:
    # Stored as SQLite's own DATETIME text, without relying on sqlite3's deprecated adapters;
    # sqlite3 cannot bind a Decimal (a NUMERIC column keeps it as a float anyway).
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat(sep=" ") if hasattr(value, "isoformat") else value


@pytest.fixture(scope="session")
def postgres_source() -> dict:
    """Connection settings of the loaded PostgreSQL database."""
    asyncio.run(_load_postgres())
    return dict(POSTGRES)


@pytest.fixture(scope="session")
def mariadb_source() -> dict:
    """Connection settings of the loaded MariaDB database."""
    asyncio.run(_load_mariadb())
    return dict(MARIADB)


@pytest.fixture(scope="session")
def sqlite_source(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Connection settings of the loaded SQLite file."""
    path = tmp_path_factory.mktemp("sqlite") / "panorama.db"
    _load_sqlite(str(path))
    return {"path": str(path)}
