"""The accounts export against a raw driver read of the same rows, at 100k and 1M customers.

    .venv/bin/python bench/export_accounts.py [--sizes 100000,1000000] [--quick] [--keep]

For each size: the world of ``export_world.py`` (paris on PostgreSQL, london on MariaDB, berlin
on SQLite, the crosswalk written directly; cached between runs), then in the same run

- the raw baseline: asyncpg streams paris's customers joined with their per-customer sums
  (one statement, a server-side cursor); also the same hand-written read of london (asyncmy,
  unbuffered cursor) and berlin (sqlite3), for the three-shop figure;
- ``panorama export accounts --format ndjson`` as a child process, on the three shops and on a
  config holding paris alone (its own crosswalk, the same global ids): wall time, rows written
  (lines), rows/s, and the child's peak RSS (VmHWM, read from /proc while it runs).

Goals (bench/README.md): the paris-only export >= 40% of the asyncpg rows/s; the three-shop
export's peak RSS at the largest size <= 1.5x its peak at the smallest. Exit code 1 when a goal
is missed (or cannot be measured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncmy
import asyncpg  # type: ignore[import-untyped]
import export_world
from export_world import ExportWorld

ROOT = Path(__file__).resolve().parent.parent
PANORAMA = Path(sys.executable).parent / "panorama"
PG_GOAL, MEMORY_GOAL = 0.40, 1.5
ZERO = Decimal(0)

# One statement per shop: each customer with the sums of its money tables (GROUP BY customer).
# {amount} is the amount column, {extra} refunds or credits, {extra_at} its date column.
RAW_SQL = """SELECT c.id, c.given_name, c.family_name, c.email,
  i.n, i.paid, i.pending, i.cancelled, i.first_at, i.last_at,
  p.n, p.ok, p.failed, x.n, x.total
FROM customers c
LEFT JOIN (SELECT customer_id, COUNT(*) AS n,
    SUM(CASE WHEN status = 'paid' THEN {amount} END) AS paid,
    SUM(CASE WHEN status = 'pending' THEN {amount} END) AS pending,
    SUM(CASE WHEN status = 'cancelled' THEN {amount} END) AS cancelled,
    MIN(issued_at) AS first_at, MAX(issued_at) AS last_at
  FROM invoices GROUP BY customer_id) i ON i.customer_id = c.id
LEFT JOIN (SELECT customer_id, COUNT(*) AS n,
    SUM(CASE WHEN status = 'ok' THEN {amount} END) AS ok,
    SUM(CASE WHEN status = 'failed' THEN {amount} END) AS failed
  FROM payments GROUP BY customer_id) p ON p.customer_id = c.id
LEFT JOIN (SELECT customer_id, COUNT(*) AS n, SUM({amount}) AS total
  FROM {extra} GROUP BY customer_id) x ON x.customer_id = c.id
ORDER BY c.id"""


def raw_sql(shop: str) -> str:
    amount = "amount_cents" if shop == "berlin" else "amount"
    return RAW_SQL.format(amount=amount, extra=export_world.TABLES[shop][2])


@dataclass
class Raw:
    """What a hand-written read found: rows, seconds, and the sum of the balances."""

    shop: str
    rows: int = 0
    seconds: float = 0.0
    balance: Decimal = ZERO  # sum over customers of invoiced - paid - credited

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def add(self, row: Any, scale: Decimal | None = None) -> None:
        """One customer row: its balance is what it was invoiced (not cancelled) minus what it
        paid (ok payments) and was credited (berlin's credits); refunds do not change it."""
        paid, pending, ok, extra = (v or 0 for v in (row[5], row[6], row[11], row[14]))
        balance = Decimal(paid + pending - ok - (extra if self.shop == "berlin" else 0))
        if scale is not None:
            balance = balance.scaleb(-2)
        self.rows += 1
        self.balance += balance


async def raw_postgres(world: ExportWorld) -> Raw:
    """paris through asyncpg: the statement streamed by a server-side cursor."""
    raw = Raw("paris")
    conn = await asyncpg.connect(**world.databases["paris"])
    try:
        started = time.perf_counter()
        async with conn.transaction():
            async for row in conn.cursor(raw_sql("paris"), prefetch=5_000):
                raw.add(row)
        raw.seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return raw


async def raw_mariadb(world: ExportWorld) -> Raw:
    """london through asyncmy, unbuffered (rows streamed as they come)."""
    raw = Raw("london")
    options = {("db" if k == "database" else k): v for k, v in world.databases["london"].items()}
    conn = await asyncmy.connect(charset="utf8mb4", **options)
    try:
        started = time.perf_counter()
        async with conn.cursor(asyncmy.cursors.SSCursor) as cur:
            await cur.execute(raw_sql("london"))
            while rows := await cur.fetchmany(5_000):
                for row in rows:
                    raw.add(row)
        raw.seconds = time.perf_counter() - started
    finally:
        conn.close()
    return raw


def raw_sqlite(world: ExportWorld) -> Raw:
    """berlin through sqlite3 (cents)."""
    raw = Raw("berlin")
    started = time.perf_counter()
    with sqlite3.connect(f"file:{world.sqlite_path}?mode=ro", uri=True) as db:
        for row in db.execute(raw_sql("berlin")):
            raw.add(row, scale=Decimal(1))
    raw.seconds = time.perf_counter() - started
    return raw


def account_balance(row: dict[str, Any]) -> Decimal:
    """The balance of one exported account (NDJSON): ``balance`` as an amount, or as money
    ``{amount, currency}``, at the top or under ``account``."""
    value = row.get("balance", (row.get("account") or {}).get("balance"))
    if isinstance(value, dict):
        value = value["amount"]
    return Decimal(str(value))


# -- the export, a child process ------------------------------------------------------------

@dataclass
class Export:
    config: str
    rows: int
    seconds: float
    peak_kb: int  # VmHWM of the child, last read before it exited
    maxrss_kb: int  # ru_maxrss from wait4 (may include the parent's RSS at the fork)
    returncode: int
    stderr: str

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def export_available() -> bool:
    run = subprocess.run([str(PANORAMA), "export", "--help"], capture_output=True, text=True)
    return run.returncode == 0 and "accounts" in run.stdout


def vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_export(config: Path, out: Path, extra: tuple[str, ...] = ()) -> Export:
    """``panorama export accounts`` on ``config`` into ``out`` (NDJSON), measured."""
    out.unlink(missing_ok=True)
    command = [str(PANORAMA), "export", "accounts", "--config", str(config), "--format", "ndjson",
               "--out", str(out), "--quiet", *extra]
    errors = out.with_suffix(".stderr")
    with errors.open("w") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
        peak, status, usage = 0, None, None
        while status is None:
            peak = max(peak, vm_hwm(child.pid))
            pid, code, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                status, usage = code, rusage
            else:
                time.sleep(0.02)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    rows = 0
    if out.is_file():
        with out.open("rb") as lines:
            rows = sum(1 for line in lines if line.strip())
    return Export(config.name, rows, seconds, peak, usage.ru_maxrss if usage else 0,
                  child.returncode, errors.read_text()[-2000:])


# -- the run ----------------------------------------------------------------------------------

@dataclass
class SizeResult:
    size: int
    pg_raw: Raw
    raws: list[Raw]
    export_all: Export | None = None
    export_pg: Export | None = None


def measure(world: ExportWorld, out_dir: Path, has_export: bool) -> SizeResult:
    """The raw reads, the two exports, then asyncpg again (the better of its two reads counts)."""
    pg_raw = asyncio.run(raw_postgres(world))
    print(f"  raw asyncpg (paris): {pg_raw.rows:,} rows in {pg_raw.seconds:.2f} s = "
          f"{pg_raw.rate:,.0f} rows/s")
    raws = [pg_raw, asyncio.run(raw_mariadb(world)), raw_sqlite(world)]
    for raw in raws[1:]:
        print(f"  raw {raw.shop}: {raw.rows:,} rows in {raw.seconds:.2f} s = {raw.rate:,.0f} rows/s")
    result = SizeResult(world.customers, pg_raw, raws)
    if not has_export:
        return result
    for attr, config, expected in (("export_pg", world.config_paris, world.records["paris"]),
                                   ("export_all", world.config, world.customers)):
        done = run_export(config, out_dir / f"accounts-{world.customers}-{config.stem}.ndjson")
        setattr(result, attr, done)
        print(f"  export {config.name}: {done.rows:,} rows in {done.seconds:.2f} s = "
              f"{done.rate:,.0f} rows/s, peak RSS {done.peak_kb / 1024:.0f} MB "
              f"(ru_maxrss {done.maxrss_kb / 1024:.0f} MB), exit {done.returncode}")
        if done.returncode != 0 or done.rows != expected:
            print(f"  !! expected {expected:,} rows; stderr:\n{done.stderr}")
    again = asyncio.run(raw_postgres(world))
    print(f"  raw asyncpg (paris) again: {again.rows:,} rows in {again.seconds:.2f} s = "
          f"{again.rate:,.0f} rows/s")
    if again.rate > pg_raw.rate:
        result.pg_raw = result.raws[0] = again
    return result


def report(results: list[SizeResult]) -> bool:
    print("\n== accounts export")
    print(f"{'customers':>10} {'export rows/s':>14} {'raw 3 shops':>12} {'ratio':>6} "
          f"{'paris-only rows/s':>18} {'asyncpg rows/s':>15} {'ratio':>6} {'peak RSS':>9}")
    for r in results:
        raw_all = sum(x.seconds for x in r.raws)
        raw_rate = r.size / raw_all if raw_all else 0
        full, pg = r.export_all, r.export_pg
        print(f"{r.size:>10,} {full.rate if full else 0:>14,.0f} {raw_rate:>12,.0f} "
              f"{(full.rate / raw_rate if full and raw_rate else 0):>6.3f} "
              f"{pg.rate if pg else 0:>18,.0f} {r.pg_raw.rate:>15,.0f} "
              f"{(pg.rate / r.pg_raw.rate if pg and r.pg_raw.rate else 0):>6.3f} "
              f"{(f'{full.peak_kb / 1024:.0f} MB' if full else '-'):>9}")
    print("(raw 3 shops: customers / the three hand-written reads' seconds, one after the other)")
    print("\n== goals")
    ok = True
    for r in results:
        pg = r.export_pg
        if pg is None or pg.returncode != 0:
            print(f"paris-only export >= {PG_GOAL:.0%} of asyncpg at {r.size:,}: NOT MEASURED")
            ok = False
            continue
        ratio = pg.rate / r.pg_raw.rate
        passed = ratio >= PG_GOAL
        ok &= passed
        print(f"paris-only export >= {PG_GOAL:.0%} of asyncpg at {r.size:,}: {ratio:.3f} "
              f"({pg.rate:,.0f} / {r.pg_raw.rate:,.0f} rows/s) {'PASS' if passed else 'FAIL'}")
    ends = [r for r in results if r.export_all and r.export_all.returncode == 0]
    if len(results) < 2:
        print("peak memory largest/smallest size: NOT MEASURED (one size only)")
    elif len(ends) < len(results):
        print("peak memory largest/smallest size: NOT MEASURED (no export, or one failed)")
        ok = False
    else:
        small, large = ends[0], ends[-1]
        ratio = large.export_all.peak_kb / small.export_all.peak_kb
        passed = ratio <= MEMORY_GOAL
        ok &= passed
        print(f"peak memory at {large.size:,} <= {MEMORY_GOAL}x at {small.size:,}: {ratio:.2f} "
              f"({large.export_all.peak_kb / 1024:.0f} MB / {small.export_all.peak_kb / 1024:.0f} MB) "
              f"{'PASS' if passed else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="customers, comma-separated")
    parser.add_argument("--quick", action="store_true", help="20,000 customers only")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=export_world.CACHE, help="where worlds are cached")
    parser.add_argument("--keep", action="store_true", help="keep the exported files")
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    has_export = export_available()
    if not has_export:
        print("`panorama export accounts` is not there yet: only the world and the raw reads run")
    out_dir = args.root / "export-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for size in sizes:
            print(f"== {size:,} customers")
            world = export_world.prepare(args.seed, size, root=args.root)
            results.append(measure(world, out_dir, has_export))
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    if args.keep:
        print(f"exports kept in {out_dir}")
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
