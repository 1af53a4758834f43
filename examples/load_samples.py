"""Load the real sample databases into the local servers, for examples/samples.yaml.

    python examples/load_samples.py [--data DIR]

- Sakila into MariaDB database ``sakila`` (``mariadb -uroot -h127.0.0.1 < file``),
- Pagila into PostgreSQL database ``pagila`` (``psql -v ON_ERROR_STOP=1 ... -f file``),
- Chinook is read straight from ``chinook/sqlite.db`` (read-only: nothing to load).

The data directory defaults to ``$PANORAMA_SAMPLE_DATA``, else ``<repo>/../shared/data``.
Idempotent: a database that already holds the expected rows is left alone; one that is
missing or partial (an interrupted load) is dropped and loaded again.

The functions ``load_sakila_mariadb``, ``load_pagila_postgres`` and ``chinook_sqlite_path``
are importable (the tests load this file by path). They raise :class:`SampleLoadError`
with a message that names what is missing and how to fix it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV_VAR = "PANORAMA_SAMPLE_DATA"

MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306
MARIADB_USER = "root"
SAKILA_DB = "sakila"

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
PAGILA_DB = "pagila"

#: Rows a complete load holds. ``rental`` and ``store`` are loaded after ``payment`` by the
#: MariaDB data file (it commits table by table), so they also catch an interrupted load.
EXPECTED_ROWS: dict[str, int] = {"customer": 599, "payment": 16049, "rental": 16044, "store": 2}

SAKILA_FILES = ("sakila/mysql-schema.sql", "sakila/mysql-data.sql")
PAGILA_FILES = ("sakila/postgres-pagila-schema.sql", "sakila/postgres-pagila-data.sql")
CHINOOK_FILE = "chinook/sqlite.db"

#: Roles the Pagila dump names (``OWNER TO postgres``); created first if the server lacks them.
PAGILA_ROLES = ("postgres",)


class SampleLoadError(RuntimeError):
    """A sample database could not be loaded; the message says what and how to fix it."""


def default_data_dir() -> Path:
    """``$PANORAMA_SAMPLE_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser().resolve() if env else (REPO.parent / "shared" / "data").resolve()


def _files(data_dir: Path | str, names: Sequence[str]) -> list[Path]:
    data_dir = Path(data_dir)
    paths = [data_dir / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SampleLoadError(
            f"sample data file(s) missing: {', '.join(missing)}. Pass the folder that holds "
            f"sakila/ and chinook/ with --data DIR or ${ENV_VAR} (default: <repo>/../shared/data)."
        )
    return paths


def _client(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SampleLoadError(
            f"the '{name}' client is not installed or not on PATH; install it "
            f"(apt-get install {package}) and run again."
        )
    return path


def _run(cmd: list[str], *, stdin: Path | None = None, what: str, fix: str) -> str:
    """Run a client command; its stdout, or SampleLoadError with its stderr and the fix."""
    try:
        if stdin is not None:
            with open(stdin, "rb") as fh:
                proc = subprocess.run(cmd, stdin=fh, capture_output=True, timeout=900)
        else:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
    except subprocess.TimeoutExpired as exc:
        raise SampleLoadError(f"{what}: timed out after {exc.timeout:.0f}s. {fix}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or "(no error output)"
        raise SampleLoadError(f"{what} failed (exit {proc.returncode}): {err}\n{fix}")
    return proc.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------- MariaDB / Sakila


def _mariadb_cmd(*extra: str) -> list[str]:
    return [
        _client("mariadb", "mariadb-client"),
        f"-u{MARIADB_USER}",
        f"-h{MARIADB_HOST}",
        f"-P{MARIADB_PORT}",
        *extra,
    ]


def _mariadb_fix() -> str:
    return (
        f"Is MariaDB running at {MARIADB_HOST}:{MARIADB_PORT} with user {MARIADB_USER} and no "
        "password? Start it (e.g. `service mariadb start`) and run again."
    )


def _sakila_counts() -> dict[str, int] | None:
    """Row counts of the checked tables (-1: table absent), or None if there is no database."""
    listed = _run(
        _mariadb_cmd(
            "-N",
            "-B",
            "-e",
            f"SELECT '-' FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{SAKILA_DB}' "
            "UNION ALL SELECT TABLE_NAME FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = '{SAKILA_DB}'",
        ),
        what=f"connecting to MariaDB at {MARIADB_HOST}:{MARIADB_PORT}",
        fix=_mariadb_fix(),
    ).split()
    if "-" not in listed:
        return None
    present = [t for t in EXPECTED_ROWS if t in listed]
    counts = {t: -1 for t in EXPECTED_ROWS}
    if present:
        sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {SAKILA_DB}.{t})" for t in present)
        out = _run(
            _mariadb_cmd("-N", "-B", "-e", sql), what="counting Sakila rows", fix=_mariadb_fix()
        )
        counts.update(zip(present, (int(v) for v in out.split()), strict=True))
    return counts


def load_sakila_mariadb(data_dir: Path | str | None = None, *, verbose: bool = True) -> str:
    """Make MariaDB database ``sakila`` hold the full Sakila sample; returns what was done."""
    say = print if verbose else (lambda *_a, **_k: None)
    schema, data = _files(data_dir or default_data_dir(), SAKILA_FILES)
    counts = _sakila_counts()
    if counts == EXPECTED_ROWS:
        say(f"sakila (MariaDB): already loaded ({_fmt(counts)}), skipped")
        return "skipped"
    if counts is not None:
        say(f"sakila (MariaDB): partial ({_fmt(counts)}), dropping and reloading")
    start = time.monotonic()
    _run(
        _mariadb_cmd("-e", f"DROP DATABASE IF EXISTS {SAKILA_DB}"),
        what="dropping MariaDB database sakila",
        fix=_mariadb_fix(),
    )
    # The schema file itself does DROP SCHEMA / CREATE SCHEMA sakila / USE sakila.
    for path in (schema, data):
        say(f"sakila (MariaDB): loading {path.name}")
        _run(_mariadb_cmd(), stdin=path, what=f"mariadb < {path}", fix=_mariadb_fix())
    counts = _sakila_counts()
    if counts != EXPECTED_ROWS:
        raise SampleLoadError(
            f"Sakila loaded but holds {_fmt(counts)} instead of {_fmt(EXPECTED_ROWS)}: "
            f"are {schema} and {data} the original files?"
        )
    say(f"sakila (MariaDB): loaded ({_fmt(counts)}) in {time.monotonic() - start:.1f}s")
    return "loaded"


# --------------------------------------------------------------------------- PostgreSQL / Pagila


def _psql_cmd(database: str, *extra: str) -> list[str]:
    return [
        _client("psql", "postgresql-client"),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-d",
        database,
        *extra,
    ]


def _pg_fix() -> str:
    return (
        f"Is PostgreSQL running at {PG_HOST}:{PG_PORT}, accepting user {PG_USER} without a "
        "password (trust)? Start it (e.g. `service postgresql start`) and run again."
    )


def _psql_value(database: str, sql: str, what: str) -> str:
    return _run(_psql_cmd(database, "-At", "-c", sql), what=what, fix=_pg_fix()).strip()


def _pagila_counts() -> dict[str, int] | None:
    """Row counts of the checked tables (-1: table absent), or None if there is no database."""
    exists = _psql_value(
        "postgres",
        f"SELECT count(*) FROM pg_database WHERE datname = '{PAGILA_DB}'",
        what=f"connecting to PostgreSQL at {PG_HOST}:{PG_PORT}",
    )
    if exists != "1":
        return None
    names = ", ".join(repr(t) for t in EXPECTED_ROWS)
    listed = _psql_value(
        PAGILA_DB,
        f"SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = 'public' AND c.relname IN ({names})",
        what="listing Pagila tables",
    ).split()
    present = [t for t in EXPECTED_ROWS if t in listed]
    counts = {t: -1 for t in EXPECTED_ROWS}
    if present:
        sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM public.{t})" for t in present)
        out = _psql_value(PAGILA_DB, sql, what="counting Pagila rows")
        counts.update(zip(present, (int(v) for v in out.split("|")), strict=True))
    return counts


def load_pagila_postgres(data_dir: Path | str | None = None, *, verbose: bool = True) -> str:
    """Make PostgreSQL database ``pagila`` hold the full Pagila sample; returns what was done."""
    say = print if verbose else (lambda *_a, **_k: None)
    schema, data = _files(data_dir or default_data_dir(), PAGILA_FILES)
    counts = _pagila_counts()
    if counts == EXPECTED_ROWS:
        say(f"pagila (PostgreSQL): already loaded ({_fmt(counts)}), skipped")
        return "skipped"
    start = time.monotonic()
    if counts is not None:
        say(f"pagila (PostgreSQL): partial ({_fmt(counts)}), dropping and reloading")
        # FORCE: a gateway left running on the partial database must not block the reload.
        _run(
            _psql_cmd("postgres", "-c", f"DROP DATABASE IF EXISTS {PAGILA_DB} WITH (FORCE)"),
            what="dropping PostgreSQL database pagila",
            fix=_pg_fix(),
        )
    # The dump assigns everything to role postgres: make sure each role it names exists.
    for role in PAGILA_ROLES:
        if (
            _psql_value(
                "postgres",
                f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'",
                what="listing PostgreSQL roles",
            )
            != "1"
        ):
            say(f"pagila (PostgreSQL): creating role {role} (the dump's object owner)")
            _run(
                _psql_cmd("postgres", "-c", f'CREATE ROLE "{role}"'),
                what=f"creating role {role}",
                fix=_pg_fix(),
            )
    _run(
        _psql_cmd("postgres", "-c", f"CREATE DATABASE {PAGILA_DB}"),
        what="creating PostgreSQL database pagila",
        fix=_pg_fix(),
    )
    # Each file in one transaction (-1): an error leaves nothing half-done inside it, and
    # ON_ERROR_STOP turns any error into a failure instead of a warning.
    for path in (schema, data):
        say(f"pagila (PostgreSQL): loading {path.name}")
        _run(_psql_cmd(PAGILA_DB, "-1", "-f", str(path)), what=f"psql -f {path}", fix=_pg_fix())
    counts = _pagila_counts()
    if counts != EXPECTED_ROWS:
        raise SampleLoadError(
            f"Pagila loaded but holds {_fmt(counts)} instead of {_fmt(EXPECTED_ROWS)}: "
            f"are {schema} and {data} the original files?"
        )
    say(f"pagila (PostgreSQL): loaded ({_fmt(counts)}) in {time.monotonic() - start:.1f}s")
    return "loaded"


# --------------------------------------------------------------------------- SQLite / Chinook


def chinook_sqlite_path(data_dir: Path | str | None = None) -> Path:
    """The Chinook SQLite file (read in place: the gateway only reads it)."""
    (path,) = _files(data_dir or default_data_dir(), (CHINOOK_FILE,))
    return path


def _fmt(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "no database"
    return ", ".join(f"no {t} table" if n < 0 else f"{n} {t}" for t, n in counts.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"folder holding sakila/ and chinook/ (default: ${ENV_VAR} or <repo>/../shared/data)",
    )
    args = parser.parse_args(argv)
    data_dir = args.data.expanduser().resolve() if args.data else default_data_dir()
    print(f"sample data: {data_dir}")
    try:
        load_sakila_mariadb(data_dir)
        load_pagila_postgres(data_dir)
        print(f"chinook (SQLite): read in place from {chinook_sqlite_path(data_dir)}")
    except SampleLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
