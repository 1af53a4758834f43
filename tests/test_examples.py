"""examples/samples.yaml on the real sample databases, through the gateway.

Loads Sakila into MariaDB and Pagila into PostgreSQL with examples/load_samples.py (creating
the databases on a clean machine), reads Chinook from its SQLite file, runs the gateway
in-process and checks the unified customers against the databases themselves.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sqlite3
import subprocess
import tempfile
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "samples.yaml"
#: The gateway keeps config versions next to its config; not in the repository during tests.
HISTORY = f"file:{tempfile.mkdtemp(prefix='panorama-samples-history-')}"
LOADER = REPO / "examples" / "load_samples.py"

SHOPS = {
    "sakila": "Sakila DVD (MariaDB)",
    "pagila": "Pagila DVD (PostgreSQL)",
    "chinook": "Chinook Music (SQLite)",
}
DECIMAL_TEXT_2 = re.compile(r"^-?\d+\.\d{2}$")  # DECIMAL(5,2) / numeric(5,2) keep 2 places
DECIMAL_TEXT = re.compile(r"^-?\d+(\.\d+)?$")

PAGE_QUERY = """
query Page($after: String) {
  customers(first: 100, after: $after) {
    edges { cursor node {
      id kind name { given family full }
      emails { address source { source recordId } }
      sourceRecords { source localId }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

BY_EMAIL_QUERY = """
query ByEmail($email: String!) {
  customerByEmail(email: $email) {
    id
    name { given family }
    sourceRecords { source localId }
    transactions(first: 100) {
      kind amount { amount currency } shop date status source { source recordId }
    }
  }
}
"""


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("panorama_examples_load_samples", LOADER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def samples() -> Path:
    """Load the sample databases (idempotent); the data folder."""
    loader = _load_module()
    data_dir = loader.default_data_dir()
    try:
        loader.load_sakila_mariadb(data_dir)
        loader.load_pagila_postgres(data_dir)
        loader.chinook_sqlite_path(data_dir)
    except loader.SampleLoadError as exc:
        pytest.fail(f"cannot load the sample databases: {exc}", pytrace=False)
    return data_dir


def _sakila_rows(sql: str) -> list[list[str]]:
    """Rows of a query on MariaDB database sakila, read with the mariadb client."""
    out = subprocess.run(
        ["mariadb", "-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "sakila", "-e", sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


async def _graphql(client: Any, query: str, variables: dict[str, Any] | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


async def _all_customers() -> list[dict]:
    from tests.gateway_client import gateway_client

    nodes: list[dict] = []
    cursors: set[str] = set()
    after = None
    async with gateway_client(CONFIG, config_store=HISTORY) as client:
        for _ in range(100):  # 658 customers: 7 pages; a bound against a paging loop
            data = await _graphql(client, PAGE_QUERY, {"after": after})
            page = data["customers"]
            nodes.extend(edge["node"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                return nodes
            after = page["pageInfo"]["endCursor"]
            assert after and after not in cursors, f"paging does not advance (cursor {after!r})"
            cursors.add(after)
    raise AssertionError("customers paging never ended")


@pytest.fixture(scope="session")
def customers(samples: Path) -> list[dict]:
    """Every unified customer, read once page by page (its own event loop, closed after)."""
    return asyncio.run(_all_customers())


def _records(node: dict) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for record in node["sourceRecords"]:
        by_source[record["source"]].append(str(record["localId"]))
    return by_source


def test_no_customer_is_returned_twice(customers: list[dict]) -> None:
    ids = Counter(node["id"] for node in customers)
    assert [i for i, n in ids.items() if n > 1] == []
    assert len(customers) == 599 + 59, Counter("+".join(sorted(_records(node))) for node in customers)


def test_every_sakila_customer_once_linked_to_its_pagila_record(customers: list[dict]) -> None:
    expected = {
        row[0]: row[1:]
        for row in _sakila_rows("SELECT customer_id, first_name, last_name, email FROM customer")
    }
    assert len(expected) == 599

    seen: Counter[str] = Counter()
    problems = []
    for node in customers:
        records = _records(node)
        if "sakila" not in records and "pagila" not in records:
            continue
        if len(records.get("sakila", [])) != 1 or records.get("pagila") != records.get("sakila"):
            problems.append(f"{node['id']}: {dict(records)}")
            continue
        (local_id,) = records["sakila"]
        seen[local_id] += 1
        first, last, email = expected[local_id]
        assert node["kind"] == "PERSON"
        assert (node["name"]["given"], node["name"]["family"]) == (first.title(), last.title())
        assert email.lower() in {e["address"] for e in node["emails"]}
    assert problems == [], f"{len(problems)} not one sakila + one pagila record: {problems[:10]}"
    assert set(seen) == set(expected), f"missing: {sorted(set(expected) - set(seen), key=int)[:20]}"
    assert [i for i, n in seen.items() if n > 1] == []


def test_chinook_customers_stay_their_own(samples: Path, customers: list[dict]) -> None:
    loader = _load_module()
    with sqlite3.connect(f"file:{loader.chinook_sqlite_path(samples)}?mode=ro", uri=True) as db:
        expected = {
            str(row[0]): row[1:]
            for row in db.execute("SELECT CustomerId, FirstName, LastName, Email FROM Customer")
        }
    assert len(expected) == 59

    chinook = [node for node in customers if "chinook" in _records(node)]
    merged = [node["sourceRecords"] for node in chinook if set(_records(node)) != {"chinook"}]
    assert merged == [], "Chinook customers falsely merged with another shop"
    local_ids = Counter(i for node in chinook for i in _records(node)["chinook"])
    assert set(local_ids) == set(expected)
    assert all(n == 1 for n in local_ids.values()), "a Chinook customer merged with another one"
    for node in chinook:
        (local_id,) = _records(node)["chinook"]
        first, last, email = expected[local_id]
        assert (node["name"]["given"], node["name"]["family"]) == (first, last)
        assert email.lower() in {e["address"] for e in node["emails"]}


def _pagila_rows(sql: str) -> list[list[str]]:
    """Rows of a query on PostgreSQL database pagila, read with the psql client."""
    out = subprocess.run(
        [
            "psql",
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            "pagila",
            "-At",
            "-F",
            "\t",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


async def test_sources_are_the_three_shops_in_their_engines(samples: Path) -> None:
    from tests.gateway_client import gateway_client

    async with gateway_client(CONFIG, config_store=HISTORY) as client:
        data = await _graphql(client, "{ sources { name kind shop } }")
    assert {s["name"]: (s["kind"], s["shop"]) for s in data["sources"]} == {
        "sakila": ("mariadb", SHOPS["sakila"]),
        "pagila": ("postgres", SHOPS["pagila"]),
        "chinook": ("sqlite", SHOPS["chinook"]),
    }


def _payments(rows: list[list[str]]) -> list[tuple[str, Decimal]]:
    return sorted((row[0], Decimal(row[1])) for row in rows)


async def test_customer_by_email_has_payments_of_both_shops(samples: Path) -> None:
    from tests.gateway_client import gateway_client

    async with gateway_client(CONFIG, config_store=HISTORY) as client:
        data = await _graphql(client, BY_EMAIL_QUERY, {"email": "mary.smith@sakilacustomer.org"})
    customer = data["customerByEmail"]
    assert customer is not None
    assert (customer["name"]["given"], customer["name"]["family"]) == ("Mary", "Smith")
    assert sorted((r["source"], str(r["localId"])) for r in customer["sourceRecords"]) == [
        ("pagila", "1"),
        ("sakila", "1"),
    ]

    by_source: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for tx in customer["transactions"]:
        source = tx["source"]["source"]
        assert tx["shop"] == source  # a transaction's shop is the source name; labels: sources
        assert (tx["kind"], tx["status"], tx["amount"]["currency"]) == (
            "PAYMENT",
            "COMPLETED",
            "USD",
        )
        assert tx["date"]
        text = tx["amount"]["amount"]
        assert isinstance(text, str) and DECIMAL_TEXT_2.match(text), f"not a decimal(5,2): {text!r}"
        by_source[source].append((str(tx["source"]["recordId"]), Decimal(text)))

    # Both shops, every payment, with the databases' ids and exact amounts: each shop holds
    # 32 payments of MARY SMITH, 118.68 in all (under different payment ids).
    sql = "SELECT payment_id, amount FROM payment WHERE customer_id = 1"
    assert sorted(by_source) == ["pagila", "sakila"]
    for source, rows in (("sakila", _sakila_rows(sql)), ("pagila", _pagila_rows(sql))):
        expected = _payments(rows)
        assert len(expected) == 32
        assert sorted(by_source[source]) == expected, source
        assert sum(amount for _, amount in by_source[source]) == Decimal("118.68")


async def test_chinook_invoice_totals_are_exact_decimals(samples: Path) -> None:
    """Chinook's Total is a SQLite REAL: 3.98 must come back as "3.98", not 3.97999..."""
    from tests.gateway_client import gateway_client

    loader = _load_module()
    with sqlite3.connect(f"file:{loader.chinook_sqlite_path(samples)}?mode=ro", uri=True) as db:
        expected = sorted(
            (str(i), Decimal(repr(total)))
            for i, total in db.execute("SELECT InvoiceId, Total FROM Invoice WHERE CustomerId = 1")
        )
    async with gateway_client(CONFIG, config_store=HISTORY) as client:
        data = await _graphql(client, BY_EMAIL_QUERY, {"email": "luisg@embraer.com.br"})
    customer = data["customerByEmail"]
    assert [r["source"] for r in customer["sourceRecords"]] == ["chinook"]
    got = []
    for tx in customer["transactions"]:
        assert (tx["kind"], tx["shop"], tx["amount"]["currency"]) == (
            "INVOICE",
            "chinook",
            "USD",
        )
        assert DECIMAL_TEXT.match(tx["amount"]["amount"]), tx["amount"]
        got.append((str(tx["source"]["recordId"]), Decimal(tx["amount"]["amount"])))
    assert sorted(got) == expected


def test_panorama_serve_answers_over_sakila_pagila_and_chinook(samples: Path) -> None:
    """The issue's promise, as a user runs it: `panorama serve --config examples/samples.yaml`."""
    import socket
    import subprocess
    import sys

    import httpx

    from tests.servers import wait_for

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    panorama = str(Path(sys.executable).parent / "panorama")
    process = subprocess.Popen([panorama, "serve", "--config", str(CONFIG), "--port", str(port)],
                               env={**os.environ, "PANORAMA_CONFIG_STORE": HISTORY},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/readyz", process)
        query = """{ sakila: customerByEmail(email: "mary.smith@sakilacustomer.org")
                       { sourceRecords { source } }
                     chinook: customers(filter: {shop: "chinook"}, first: 2)
                       { edges { node { displayName sourceRecords { source } } } } }"""
        body = httpx.post(f"{url}/graphql", json={"query": query}, timeout=10).json()
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert "errors" not in body, body
    assert sorted(r["source"] for r in body["data"]["sakila"]["sourceRecords"]) == ["pagila", "sakila"]
    edges = body["data"]["chinook"]["edges"]
    assert len(edges) == 2 and all(e["node"]["sourceRecords"] == [{"source": "chinook"}] for e in edges)
