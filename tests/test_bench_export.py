"""bench/export_accounts.py on a tiny world: the world, its crosswalk, the raw reads, the export.

The benchmark's figures are never judged here. This builds 300 customers into databases of
their own (dropped at the end), checks that the directly written crosswalk is one the gateway
accepts (``panorama check --connect``, a ``customer(id:)`` lookup across the three shops), that
the raw reads see every record, and, once ``panorama export accounts`` exists, that the export
writes one row per customer and that its balances agree with the asyncpg baseline's.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from gateway.crosswalk import open_crosswalk
from tests.gateway_client import gateway_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
export_world: ModuleType = importlib.import_module("export_world")
export_accounts: ModuleType = importlib.import_module("export_accounts")

CUSTOMERS, SEED = 300, 11


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    root = tmp_path_factory.mktemp("export-world")
    prefix = f"panorama_export_test_{secrets.token_hex(4)}"
    built = export_world.prepare(SEED, CUSTOMERS, root=root, prefix=prefix, log=lambda *_: None)
    try:
        yield built
    finally:
        asyncio.run(export_world.drop(built))


def test_the_world_is_three_shops_with_shared_customers(world) -> None:
    records = world.records
    assert set(records) == {"paris", "london", "berlin"}
    assert CUSTOMERS < sum(records.values()) < 3 * CUSTOMERS  # some customers are in several
    for shop, tables in world.rows.items():
        assert tables["customers"] == records[shop]
        assert tables["invoices"] >= records[shop] and tables["payments"] > 0


def test_a_second_prepare_takes_the_world_from_the_cache(world) -> None:
    again = export_world.prepare(SEED, CUSTOMERS, root=world.directory.parent,
                                 prefix=world.databases["paris"]["database"].rsplit("_s", 1)[0],
                                 log=lambda *_: None)
    assert again.build_seconds is None and again.rows == world.rows


def test_the_configs_pass_panorama_check(world) -> None:
    for config in (world.config, world.config_paris):
        run = subprocess.run([str(export_accounts.PANORAMA), "check", "--config", str(config),
                              "--connect"], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "identity.store: ok" in run.stdout


async def test_the_crosswalk_holds_one_customer_per_person(world) -> None:
    async with open_crosswalk("sqlite:///crosswalk.db", world.directory) as crosswalk:
        stats = await crosswalk.stats()
    assert stats["customers"] == CUSTOMERS
    assert stats["records"] == sum(world.records.values())
    async with open_crosswalk("sqlite:///crosswalk-paris.db", world.directory) as crosswalk:
        stats = await crosswalk.stats()
    assert stats["customers"] == stats["records"] == world.records["paris"]


async def test_the_gateway_finds_a_customer_of_three_shops_by_id(world) -> None:
    masks = export_world.membership(SEED, CUSTOMERS)
    keys = export_world.local_keys(masks)
    person = masks.index(7)
    query = """query($id: ID!) { customer(id: $id) { id sourceRecords { source localId }
      transactions(first: 100) { kind shop } } }"""
    async with gateway_client(world.config) as client:
        response = await client.post("/graphql", json={
            "query": query, "variables": {"id": export_world.global_id(keys, person)}})
    body = response.json()
    assert not body.get("errors"), body
    customer = body["data"]["customer"]
    assert customer["id"] == export_world.global_id(keys, person)
    assert sorted((r["source"], r["localId"]) for r in customer["sourceRecords"]) == \
        sorted(export_world.refs_of(keys, person))
    assert {t["shop"] for t in customer["transactions"]} == {"paris", "london", "berlin"}


async def test_the_raw_reads_see_every_record(world) -> None:
    pg = await export_accounts.raw_postgres(world)
    my = await export_accounts.raw_mariadb(world)
    lite = export_accounts.raw_sqlite(world)
    assert (pg.rows, my.rows, lite.rows) == tuple(world.records[s] for s in ("paris", "london",
                                                                             "berlin"))
    assert pg.balance > 0 and my.balance > 0 and lite.balance > 0


@pytest.fixture(scope="module")
def exported(world, tmp_path_factory: pytest.TempPathFactory):
    if not export_accounts.export_available():
        pytest.skip("`panorama export accounts` does not exist yet")
    out = tmp_path_factory.mktemp("export-out")
    return {name: (export_accounts.run_export(config, out / f"{name}.ndjson"), out / f"{name}.ndjson")
            for name, config in (("all", world.config), ("paris", world.config_paris))}


def test_the_export_writes_one_row_per_customer(world, exported) -> None:
    for name, expected in (("all", CUSTOMERS), ("paris", world.records["paris"])):
        done, _ = exported[name]
        assert done.returncode == 0, done.stderr
        assert done.rows == expected and done.peak_kb > 0


def test_the_paris_export_balances_agree_with_the_asyncpg_baseline(world, exported) -> None:
    done, out = exported["paris"]
    assert done.returncode == 0, done.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines() if line.strip()]
    total = sum((export_accounts.account_balance(row) for row in rows), Decimal(0))
    raw = asyncio.run(export_accounts.raw_postgres(world))
    assert total == raw.balance
