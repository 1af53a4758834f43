"""The accounts export on the demo world (SQLite shops, a loopback CRM, an indexed crosswalk):
rows equal to GraphQL's accounts, columns as the role sees them, consent, audit, resuming,
source failures, the HTTP endpoint and clear errors for bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from pathlib import Path

import orjson
import pytest

from gateway.access import Access
from gateway.app import build_linker
from gateway.audit import AuditFilter
from gateway.cli import build_parser
from gateway.config import load_config
from gateway.consent import ConsentDecision, open_consent_store
from gateway.crm_server.gate import Fault
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world
from gateway.finance.export import AccountExport, ExportEnv, SourceFailed, export_request
from gateway.finance.export_cli import cmd_export_accounts
from gateway.finance.export_rows import NAMES
from gateway.indexing_cli import run_index
from gateway.principal import Principal
from gateway.privacy import Privacy
from gateway.schema import build_schema
from gateway.settings import Settings
from gateway.sources import SourceSet
from tests.gateway_client import gateway_client
from tests.servers import running_crm

ENV = {DEMO_TOKEN_ENV: "export-tests"}
AS_OF = "2025-12-31"
ADMIN = Principal("test-admin", ("admin",), purpose="administration")
FINANCE = Principal("test-finance", ("finance",), purpose="risk")
MARKETING = Principal("test-marketing", ("marketing",), purpose="marketing")
BUCKETS = {"0", "-0", "10", "20", "50", "100", "200", "500", "1000", "-10", "-20", "-50", "-100",
           "-200", "-500", "-1000"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ.update(ENV)  # the CLI reads the CRM token from the environment
    built = build_world(tmp_path_factory.mktemp("export"), customers=160, crm_url="http://unset")
    with running_crm(built.crm_seed, token=ENV[DEMO_TOKEN_ENV]) as (url, app):
        path = built.config_path
        path.write_text(path.read_text().replace("http://unset", url))
        assert asyncio.run(run_index(load_config(path, ENV), full=True)) == 0
        yield path, app


@pytest.fixture(scope="module")
def objector(world):
    """A customer with movements who objects to marketing (recorded in Panorama)."""
    path, _ = world
    rows = export_rows(world, "--as-of", AS_OF)
    chosen = next(r["customer_id"] for r in rows if r["transaction_count"] > 2)
    config = load_config(path, ENV)

    async def record() -> None:
        async with open_consent_store(config.consent.store, config.consent.base_dir) as store:
            await store.record(ConsentDecision(chosen, "marketing", True, "test", "support"))

    asyncio.run(record())
    return chosen


def cli(*argv: str) -> int:
    return cmd_export_accounts(build_parser().parse_args(["export", "accounts", *argv]))


def export_rows(world, *argv: str, out: Path | None = None) -> list[dict]:
    path, _ = world
    out = out or path.parent / "out.ndjson"
    assert cli("--config", str(path), "--out", str(out), "--quiet", *argv) == 0
    return read(out)


def read(out: Path) -> list[dict]:
    if out.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(out.read_text())))
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def env_of(path: Path, **settings) -> ExportEnv:
    config = load_config(path, ENV)
    access = Access.of(config, build_schema())
    privacy = Privacy(config.audit, config.consent)
    privacy.not_objectable = access.policy.not_objectable
    settings_ = Settings.load(overrides=settings)
    return ExportEnv(SourceSet.from_config(config, settings_), settings_, build_linker(config),
                     access, privacy)


async def walk(env: ExportEnv, principal: Principal, stop_after: int | None = None,
               **request) -> tuple[AccountExport, list[dict], list]:
    """An export through the API; ``stop_after`` chunks, then a stop."""
    every = request.pop("audit_every", 10_000)
    export = AccountExport(env, principal, env.access.admit(principal),
                           export_request(env, "ndjson", AS_OF, None, [], **request),
                           audit_every=every)
    chunks, rows, blocks = 0, [], []

    def stop() -> bool:
        return stop_after is not None and chunks >= stop_after

    assert env.linker.crosswalk is not None
    async with env.linker.crosswalk:
        await env.privacy.open()
        try:
            async for block in export.blocks(stop):
                chunks += 1 if block.walked else 0
                blocks.append(block)
                rows += [orjson.loads(line) for line in block.data.splitlines()]
        finally:
            await env.privacy.aclose()
            await env.sources.aclose()
    return export, rows, blocks


ACCOUNT = """account(asOf: "AS_OF") { currency asOf invoiced { amount } paid { amount }
  refunded { amount } credited { amount } balance { amount } openCredit { amount }
  overdue { amount } oldestOverdueDate daysPastDue overdueInvoices transactionCount
  failedPayments shops { shop } risk { class score reasons { code } }
  profitability { revenue { amount } discounts { amount } netRevenue { amount }
  costToServe { amount } margin { amount } tier } }""".replace("AS_OF", AS_OF)


def as_row(customer: dict) -> dict:
    """A GraphQL customer with its account, in the export's columns."""
    a = customer["account"]
    p = a["profitability"]
    money = {k: a[g]["amount"] for k, g in (
        ("invoiced", "invoiced"), ("paid", "paid"), ("refunded", "refunded"),
        ("credited", "credited"), ("balance", "balance"), ("open_credit", "openCredit"),
        ("overdue", "overdue"))}
    return {"customer_id": customer["id"], "display_name": customer["displayName"],
            "kind": customer["kind"], "shops": ";".join(s["shop"] for s in a["shops"]),
            "currency": a["currency"], "as_of": a["asOf"], **money,
            "oldest_overdue_date": a["oldestOverdueDate"], "days_past_due": a["daysPastDue"],
            "overdue_invoices": a["overdueInvoices"], "transaction_count": a["transactionCount"],
            "failed_payments": a["failedPayments"], "risk_class": a["risk"]["class"],
            "risk_score": a["risk"]["score"],
            "risk_reasons": ";".join(r["code"] for r in a["risk"]["reasons"]),
            "revenue": p["revenue"]["amount"], "discounts": p["discounts"]["amount"],
            "net_revenue": p["netRevenue"]["amount"], "cost_to_serve": p["costToServe"]["amount"],
            "margin": p["margin"]["amount"], "tier": p["tier"], "error": None}


async def graphql_rows(path: Path, ids: list[str]) -> list[dict]:
    # One customer a request: lookups of several customers in one request may link records
    # the index keeps apart (a race in the resolver's shared state, reported), which would
    # make this comparison flaky for reasons that are not the export's.
    query = "query($id: ID!) { customer(id: $id) { id displayName kind " + ACCOUNT + " } }"
    out = []
    async with gateway_client(path, environ=ENV) as client:
        for cid in ids:
            body = (await client.post("/graphql", json={"query": query,
                                                        "variables": {"id": cid}})).json()
            assert not body.get("errors"), body
            out.append(as_row(body["data"]["customer"]))
    return out


# --- rows ------------------------------------------------------------------------------------

def test_ndjson_and_csv_rows_equal_the_graphql_accounts(world):
    path, _ = world
    rows = export_rows(world, "--as-of", AS_OF)
    assert list(rows[0]) == list(NAMES)  # the admin sees every column
    ids = [r["customer_id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) > 150
    assert any(r["shops"].count(";") >= 1 for r in rows)  # customers of several shops
    assert rows == asyncio.run(graphql_rows(path, ids))
    as_csv = export_rows(world, "--as-of", AS_OF, out=path.parent / "out.csv")
    plain = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    assert as_csv == plain


def test_the_header_follows_the_role(world):
    finance = export_rows(world, "--as-of", AS_OF, "--role", "finance", "--purpose", "risk")
    assert list(finance[0]) == list(NAMES)
    marketing = export_rows(world, "--as-of", AS_OF, "--role", "marketing")
    header = list(marketing[0])
    assert "balance" in header and not any(h.startswith("risk") for h in header)
    assert {r["balance"] for r in marketing} <= BUCKETS  # amounts in the role's buckets
    assert any(r["paid"] != "0" for r in marketing)


def test_an_objector_is_left_out_for_an_objectable_purpose_only(world, objector):
    marketing = export_rows(world, "--as-of", AS_OF, "--role", "marketing")
    assert objector not in {r["customer_id"] for r in marketing}
    billing = export_rows(world, "--as-of", AS_OF, "--role", "finance", "--purpose", "billing")
    assert objector in {r["customer_id"] for r in billing}


def test_filters_keep_the_accounts_that_match(world):
    rows = export_rows(world, "--as-of", AS_OF)
    gold = export_rows(world, "--as-of", AS_OF, "--filter", "tier=GOLD", "--filter",
                       "min_balance=0.01")
    assert gold == [r for r in rows if r["tier"] == "GOLD" and float(r["balance"]) >= 0.01]
    london = export_rows(world, "--as-of", AS_OF, "--filter", "shop=london")
    assert london and london == [r for r in rows if "london" in r["shops"].split(";")]


# --- resuming, audit, failures ---------------------------------------------------------------

def test_an_interrupted_export_resumes_with_every_customer_once(world):
    path, _ = world
    full = export_rows(world, "--as-of", AS_OF)
    env = env_of(path)
    first, rows, _ = asyncio.run(walk(env, ADMIN, stop_after=3, chunk_size=20))
    assert not first.complete and len(rows) == 60 and first.cursor == rows[-1]["customer_id"]
    rest, more, _ = asyncio.run(walk(env_of(path), ADMIN, chunk_size=20, cursor=first.cursor))
    assert rest.complete and rows + more == full
    # The CLI: a file cut inside a row is resumed after its last complete row.
    out = path.parent / "cut.csv"
    export_rows(world, "--as-of", AS_OF, out=out)
    whole = out.read_bytes()
    lines = whole.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:41]) + lines[41][:15])
    assert cli("--config", str(path), "--out", str(out), "--quiet", "--resume") == 0
    assert out.read_bytes() == whole


def test_one_audit_entry_per_block_of_customers(world):
    path, _ = world
    env = env_of(path)
    export, rows, blocks = asyncio.run(walk(env, FINANCE, chunk_size=20, audit_every=50))
    sizes = [b.rows for b in blocks if b.data]
    assert sizes == [40] * (len(rows) // 40) + ([len(rows) % 40] if len(rows) % 40 else [])

    async def entries() -> list:
        async with env.privacy.log as log:
            page = await log.query(AuditFilter(subject="test-finance", kinds=["read"],
                                               limit=100))
        return [e for e in page.entries if e.details.get("operation") == "export"]

    found = sorted(asyncio.run(entries()), key=lambda e: e.id)[-len(sizes):]
    assert [list(e.customers) for e in found] == [
        [r["customer_id"] for r in rows[i:i + 40]] for i in range(0, len(rows), 40)]
    assert {f.path for f in found[0].fields} >= {"Customer.account", "Account.balance",
                                                 "Risk.class", "Money.amount"}
    assert found[0].details["as_of"] == AS_OF and found[0].purpose == "risk"


def test_a_source_failing_midway_stops_with_complete_rows_and_a_cursor(world):
    path, app = world
    full = export_rows(world, "--as-of", AS_OF)

    async def failing() -> tuple[AccountExport, list[dict]]:
        env = env_of(path, read_retries=0)
        export = AccountExport(env, ADMIN, env.access.admit(ADMIN),
                               export_request(env, "ndjson", AS_OF, None, [], chunk_size=20))
        rows: list[dict] = []
        assert env.linker.crosswalk is not None
        async with env.linker.crosswalk:
            await env.privacy.open()
            try:
                with pytest.raises(SourceFailed, match="'crm'"):
                    async for block in export.blocks():
                        rows += [orjson.loads(line) for line in block.data.splitlines()]
                        if export.walked >= 40:
                            app.state.faults.extend([Fault(500)] * 200)
            finally:
                app.state.faults.clear()
                await env.privacy.aclose()
                await env.sources.aclose()
        return export, rows

    export, rows = asyncio.run(failing())
    assert rows == full[:len(rows)] and export.cursor is not None
    _, rest, _ = asyncio.run(walk(env_of(path), ADMIN, chunk_size=20, cursor=export.cursor))
    assert rows + rest == full


def test_the_cli_names_the_failed_source_and_the_resume_command(world, capsys):
    path, app = world
    app.state.faults.extend([Fault(500)] * 200)
    try:
        code = cli("--config", str(path), "--out", str(path.parent / "f.csv"), "--quiet",
                   "--as-of", AS_OF, "--role", "finance")
    finally:
        app.state.faults.clear()
    err = capsys.readouterr().err
    assert code == 1 and "'crm'" in err
    assert f"--as-of {AS_OF} --role finance --resume" in err


# --- the HTTP endpoint -----------------------------------------------------------------------

async def test_the_endpoint_streams_rows_to_an_authorized_caller(world):
    path, _ = world
    async with gateway_client(path, environ=ENV, principal=FINANCE) as client:
        response = await client.get("/export/accounts", params={"asOf": AS_OF})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        rows = [orjson.loads(line) for line in response.content.splitlines()]
        assert list(rows[0]) == list(NAMES) and rows[0]["as_of"] == AS_OF
        cursor = rows[99]["customer_id"]
        rest = await client.get("/export/accounts", params={"asOf": AS_OF, "cursor": cursor})
        assert [orjson.loads(line) for line in rest.content.splitlines()] == rows[100:]
        as_csv = await client.get("/export/accounts", params={
            "asOf": AS_OF, "format": "csv", "filter": ["risk=GOOD"]})
        assert as_csv.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [r["customer_id"] for r in table] == [
            r["customer_id"] for r in rows if r["risk_class"] == "GOOD"]


async def test_the_endpoint_refuses_other_callers(world):
    path, _ = world
    async with gateway_client(path, environ=ENV, principal=None) as client:
        assert (await client.get("/export/accounts")).status_code == 401
    own = Principal("c", ("customer",), purpose="self_service", customer_id="cus_x")
    async with gateway_client(path, environ=ENV, principal=own) as client:
        response = await client.get("/export/accounts")
        assert response.status_code == 403
        assert "Query.customers" in response.json()["errors"][0]["message"]
    async with gateway_client(path, environ=ENV, principal=MARKETING) as client:
        response = await client.get("/export/accounts", params={"filter": "min_balance=10"})
        assert response.status_code == 403 and "min_balance" in response.text
        response = await client.get("/export/accounts", params={"format": "xml"})
        assert response.status_code == 400 and "csv or ndjson" in response.text


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (("--format", "xml"), "use csv or ndjson"),
    (("--as-of", "31/12/2025"), "YYYY-MM-DD"),
    (("--chunk-size", "0"), "from 1 to 10000"),
    (("--currency", "EURO"), "ISO 4217"),
    (("--filter", "colour=red"), "shop, tier, risk, min_balance, overdue"),
    (("--filter", "risk=BAD"), "GOOD, WATCH, DEFAULTER"),
    (("--filter", "tier=PLATINUM"), "GOLD, SILVER, BRONZE"),
    (("--role", "marketing", "--filter", "risk=GOOD"), "may not filter"),
    (("--role", "nobody"), "nobody"),
    (("--resume",), "does not exist"),
])
def test_bad_input_gets_a_clear_error(world, capsys, argv, message):
    path, _ = world
    code = cli("--config", str(path), "--out", str(path.parent / "never.ndjson"), *argv)
    assert code != 0
    assert message in capsys.readouterr().err


def test_without_an_identity_index_the_error_names_the_fix(world, capsys, tmp_path):
    path, _ = world
    text = path.read_text()
    start = text.index("\nidentity:")
    end = text.index("\n\n", start + 1)
    bare = path.parent / "no-identity.yaml"
    bare.write_text(text[:start] + text[end:])
    assert cli("--config", str(bare), "--out", str(tmp_path / "x.ndjson")) == 1
    err = capsys.readouterr().err
    assert "identity:" in err and "panorama index" in err

