"""End-to-end: GraphQL in-process over the demo world (three SQLite shops + the CRM on loopback).

The demo generator writes ``truth.json``: which records of which sources are one person.
These tests page through the gateway and compare what it assembled with that truth.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from gateway.crm_server import Fault
from gateway.demo.run import DEMO_TOKEN_ENV, example_queries
from gateway.demo.world import build_world, deterministic_clusters
from gateway.identity import encode_id
from tests.gateway_client import gateway_client, graphql
from tests.servers import demo_config_copy, running_crm, unused_port

TOKEN = "e2e-token"
RECORDS = "sourceRecords { source localId matchedBy }"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), customers=120, crm_url="http://unset")


@pytest.fixture(scope="module")
def crm(world):
    with running_crm(world.crm_seed, token=TOKEN) as (url, app):
        yield url, app


@pytest.fixture
def config(world, crm, tmp_path):
    """The demo config pointed at the loopback CRM (a copy, so a test may edit its own)."""
    return demo_config_copy(world.config_path, crm[0], tmp_path / "demo")


ENV = {DEMO_TOKEN_ENV: TOKEN}


def records_of(node) -> frozenset:
    return frozenset((r["source"], r["localId"]) for r in node["sourceRecords"])


async def all_customers(client, page_size=37, **filter_):
    nodes, after = [], None
    while True:
        body = await graphql(client, """
            query($first: Int, $after: String, $filter: CustomerFilter) {
              customers(first: $first, after: $after, filter: $filter) {
                edges { cursor node { id kind name { full } legalName { value }
                                      addresses { city } RECORDS } }
                pageInfo { hasNextPage endCursor }
              } }""".replace("RECORDS", RECORDS), first=page_size, after=after, filter=filter_ or None)
        assert "errors" not in body, body
        page = body["data"]["customers"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_paging_through_every_customer_gives_the_true_people_once_each(world, config):
    async with gateway_client(config, environ=ENV) as client:
        nodes = await all_customers(client)
    got = [records_of(n) for n in nodes]
    # without an index, only shared keys link: the truth as deterministic keys see it
    want = {frozenset(c) for c in deterministic_clusters(world.truth)}
    assert len(got) == len(set(got)), "a customer came back twice"
    assert set(got) == want
    assert len({n["id"] for n in nodes}) == len(nodes)
    # namesakes (same name, nothing else shared) stay two customers
    by_party = {c["party"]: frozenset(c["records"].items()) for c in world.truth["customers"]}
    for trap in world.truth["traps"]:
        one, other = (by_party[p] for p in trap["parties"])
        assert one in got and other in got and one != other, trap


async def test_ids_are_stable_from_run_to_run(config):
    async with gateway_client(config, environ=ENV) as client:
        first = [n["id"] for n in await all_customers(client, page_size=50)]
    async with gateway_client(config, environ=ENV) as client:
        second = [n["id"] for n in await all_customers(client, page_size=23)]
    assert first == second


async def test_showcase_person_found_by_email_phone_and_card_is_one_customer(world, config):
    show = world.showcase
    query = ("query($e: String!, $p: String!, $c: String!) { "
             f"a: customerByEmail(email: $e) {{ id {RECORDS} emails {{ address sources {{ source }} }} }} "
             "b: customerByPhone(phone: $p) { id } c: customerByCard(number: $c) { id } }")
    async with gateway_client(config, environ=ENV) as client:
        body = await graphql(client, query, e=show["email"].upper() + " ", p=show["phone"],
                             c=show["card"].lower().replace("-", " "))
    assert "errors" not in body, body
    data = body["data"]
    assert data["a"]["id"] == data["b"]["id"] == data["c"]["id"]
    assert {r["source"] for r in data["a"]["sourceRecords"]} == {"paris", "london", "berlin", "crm"}
    (email,) = data["a"]["emails"]  # one address, however each source wrote it
    assert email["address"] == show["email"]
    assert {s["source"] for s in email["sources"]} >= {"paris", "london", "crm"}


async def test_the_demo_example_queries_answer(world, config):
    async with gateway_client(config, environ=ENV) as client:
        results = [await graphql(client, q) for _, q in example_queries(world.showcase)]
    for body in results:
        assert "errors" not in body, body
    camille = results[0]["data"]["customerByEmail"]
    assert {r["source"] for r in camille["sourceRecords"]} == {"paris", "london", "berlin", "crm"}
    money = results[1]["data"]["customerByPhone"]
    assert {t["shop"] for t in money["transactions"]} >= {"paris", "berlin"} or money["transactions"]
    assert money["interactions"], "the CRM's interactions are missing"
    account = results[2]["data"]["customerByEmail"]["account"]
    assert {s["shop"] for s in account["shops"]} == {"paris", "london", "berlin"}
    assert [(r["from"], r["to"]) for r in account["rates"]] == [("GBP", "EUR")]
    assert account["balance"]["currency"] == "EUR" and account["risk"]["class"]
    assert results[3]["data"]["customerByEmail"]  # the fuzzy case: found, linked once indexed
    assert results[4]["data"]["customers"]["edges"]


async def test_once_indexed_the_demo_links_changed_emails_and_typos_with_evidence(world, config):
    from gateway.config import load_config
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    async with gateway_client(config, environ=ENV) as client:
        body = await graphql(client, example_queries(world.showcase)[3][1])
    customer = body["data"]["customerByEmail"]
    fuzzy = world.showcase["fuzzy"]
    assert {e["source"] for n in customer["names"] for e in [n["source"]]} >= set(fuzzy["fuzzy"])
    (evidence,) = [e for e in customer["matchEvidence"] if e["rule"] == "fuzzy"]
    assert evidence["record"] == {"source": next(iter(fuzzy["fuzzy"])),
                                  "recordId": next(iter(fuzzy["fuzzy"].values()))}
    assert "name" in evidence["agreed"] and 0.86 <= evidence["score"] <= 1.0
    assert fuzzy["email"] not in str(customer["matchEvidence"])


async def test_transactions_are_exact_newest_first_across_shops(world, config):
    query = """query($e: String!) { customerByEmail(email: $e) {
        transactions(first: 100) { id kind amount { amount currency } shop date status
                                   source { source recordId } }
        interactions(first: 100) { channel date summary source { source } } } }"""
    async with gateway_client(config, environ=ENV) as client:
        body = await graphql(client, query, e=world.showcase["email"])
    customer = body["data"]["customerByEmail"]
    txs = customer["transactions"]
    assert {t["shop"] for t in txs} == {"paris", "london", "berlin"}
    assert {t["kind"] for t in txs} >= {"INVOICE", "PAYMENT", "REFUND", "CREDIT"}
    dates = [t["date"] for t in txs]
    assert dates == sorted(dates, reverse=True)
    for t in txs:
        amount = t["amount"]["amount"]
        assert isinstance(amount, str) and len(amount.split(".")[-1]) <= 2, amount
    assert {t["amount"]["currency"] for t in txs if t["shop"] == "london"} == {"GBP"}
    assert {i["source"]["source"] for i in customer["interactions"]} == {"crm"}
    assert {i["channel"] for i in customer["interactions"]} >= {"NOTE", "CALL", "MEETING"}


async def test_an_id_of_a_linked_record_resolves_to_its_customer(world, config):
    show = world.truth["customers"][0]["records"]
    query = f"query($id: ID!) {{ customer(id: $id) {{ id redirectedFrom {RECORDS} }} }}"
    async with gateway_client(config, environ=ENV) as client:
        canonical = await graphql(client, query, id=encode_id("paris", show["paris"]))
        via_london = await graphql(client, query, id=encode_id("london", show["london"]))
    assert canonical["data"]["customer"]["id"] == encode_id("paris", show["paris"])
    assert canonical["data"]["customer"]["redirectedFrom"] is None
    redirected = via_london["data"]["customer"]
    assert redirected.pop("redirectedFrom") == encode_id("london", show["london"])
    canonical["data"]["customer"].pop("redirectedFrom")
    assert redirected == canonical["data"]["customer"]


async def test_match_evidence_explains_live_links_without_values(world, config):
    query = """query($e: String!) { customerByEmail(email: $e) {
        matchEvidence { record { source recordId } rule score agreed linkedTo { source } indexed } } }"""
    async with gateway_client(config, environ=ENV) as client:
        body = await graphql(client, query, e=world.showcase["email"])
    evidence = {e["record"]["source"]: e for e in body["data"]["customerByEmail"]["matchEvidence"]}
    assert set(evidence) == {"london", "berlin", "crm"}  # the first record (paris) links to none
    assert all(not e["indexed"] and e["score"] == 1.0 for e in evidence.values())
    assert "email" in evidence["london"]["agreed"]
    assert world.showcase["email"] not in str(evidence)


@pytest.mark.parametrize("filter_, check", [
    ({"city": "paris"}, lambda n: any((a["city"] or "").casefold() == "paris" for a in n["addresses"])),
    ({"shop": "berlin"}, lambda n: any(r["source"] == "berlin" for r in n["sourceRecords"])),
    ({"name": "MARTIN"}, lambda n: "martin" in ((n["name"] or {}).get("full") or "").casefold()),
])
async def test_filters_return_only_and_all_matching_customers(config, filter_, check):
    async with gateway_client(config, environ=ENV) as client:
        everyone = await all_customers(client, page_size=100)
        filtered = await all_customers(client, page_size=7, **filter_)
    assert filtered and all(check(n) for n in filtered)
    # every matching customer of the full listing is in the filtered one
    assert {n["id"] for n in everyone if check(n)} <= {n["id"] for n in filtered}


async def test_bad_input_gets_clear_errors_never_a_500(config):
    async with gateway_client(config, environ=ENV) as client:
        unknown = await graphql(client, '{ customers(filter: {shoeSize: 42}) { edges { cursor } } }')
        assert "shoeSize" in unknown["errors"][0]["message"]
        too_many = await graphql(client, "{ customers(first: 5000) { edges { cursor } } }")
        assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "max_page_size" in too_many["errors"][0]["message"]
        cursor = await graphql(client, '{ customers(after: "nope") { edges { cursor } } }')
        assert "after" in cursor["errors"][0]["message"]
        shop = await graphql(client, '{ customers(filter: {shop: "atlantis"}) { edges { cursor } } }')
        assert "paris" in shop["errors"][0]["message"]
        phone = await graphql(client, '{ customerByPhone(phone: "call me") { id } }')
        assert phone["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        syntax = await client.post("/graphql", json={"query": "{ customers( "})
        assert syntax.status_code in (200, 400) and "Syntax Error" in syntax.text
        not_json = await client.post("/graphql", content=b"{not json",
                                     headers={"content-type": "application/json"})
        assert not_json.status_code == 400


@pytest.mark.parametrize("evil", ["1 OR 1=1", "1'; DROP TABLE clients; --", "%", "\\'", "1) OR (1=1"])
async def test_injection_attempts_in_ids_and_filters_find_nothing(config, evil):
    query = """query($id: ID!, $name: String, $city: String, $email: String!) {
        customer(id: $id) { id }
        customers(filter: {name: $name, city: $city}) { edges { cursor } }
        customerByEmail(email: $email) { id } }"""
    async with gateway_client(config, environ=ENV) as client:
        for source in ("paris", "london", "crm"):
            body = await graphql(client, query, id=encode_id(source, evil), name=evil, city=evil,
                                 email=f"{evil}@x.fr")
            assert "errors" not in body, body
            assert body["data"] == {"customer": None, "customers": {"edges": []},
                                    "customerByEmail": None}
        everyone = await all_customers(client, page_size=100)
    assert len(everyone) > 100  # the shops' tables are all still there


async def test_an_unreachable_crm_gives_partial_data_and_a_named_error(config):
    path = Path(config)
    port = unused_port()
    text = path.read_text()
    path.write_text(re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", text))
    async with gateway_client(path, environ=ENV) as client:
        body = await graphql(client, '{ customerByEmail(email: "camille.martin@example.fr") '
                                     '{ sourceRecords { source } } }')
        ready = await client.get("/readyz")
    assert {r["source"] for r in body["data"]["customerByEmail"]["sourceRecords"]} == {
        "paris", "london", "berlin"}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "SOURCE_UNAVAILABLE", "source": "crm"}
    assert "127.0.0.1" not in error["message"] and str(port) not in error["message"]
    assert ready.status_code == 503 and ready.json()["sources"]["crm"] == "SOURCE_UNAVAILABLE"


async def test_a_crm_answering_500_gives_partial_data(config, crm):
    _, app = crm
    async with gateway_client(config, environ=ENV) as client:
        app.state.faults.extend([Fault(500)] * 20)
        try:
            body = await graphql(client, '{ customerByEmail(email: "camille.martin@example.fr") '
                                         '{ sourceRecords { source } } }')
        finally:
            app.state.faults.clear()
    assert {r["source"] for r in body["data"]["customerByEmail"]["sourceRecords"]} == {
        "paris", "london", "berlin"}
    assert [e["extensions"] for e in body["errors"]] == [{"code": "SOURCE_ERROR", "source": "crm"}]
    assert "Traceback" not in str(body)


async def test_health_readiness_and_graphiql(config):
    async with gateway_client(config, environ=ENV) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        for _ in range(100):  # sources are probed in the background from start-up
            ready = await client.get("/readyz")
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert ready.status_code == 200 and set(ready.json()["sources"]) == {
            "paris", "london", "berlin", "crm"}
        page = await client.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        sources = await graphql(client, "{ sources { name kind shop ready } }")
    assert [s["name"] for s in sources["data"]["sources"]] == ["paris", "london", "berlin", "crm"]
    assert all(s["ready"] for s in sources["data"]["sources"])


async def test_once_indexed_paging_gives_the_full_truth_hostile_cases_apart(world, config):
    from gateway.config import load_config
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    async with gateway_client(config, environ=ENV) as client:
        nodes = await all_customers(client, page_size=50)
    got = [records_of(n) for n in nodes]
    assert len(got) == len(set(got)), "a customer came back twice"
    assert set(got) == {frozenset(c["records"].items()) for c in world.truth["customers"]}


async def test_without_live_lookups_the_index_alone_finds_customers_by_primary_key(world, config):
    from gateway.config import load_config
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    query = ('{ customerByEmail(email: "EMAIL") { id sourceRecords { source localId } '
             'transactions(first: 3) { id } } }').replace("EMAIL", world.showcase["email"])
    bodies = {}
    for live in (True, False):
        async with gateway_client(config, environ=ENV, identity_live_lookups=live) as client:
            response = await client.post("/graphql", json={
                "query": query, "extensions": {"explain": True}})
            bodies[live] = response.json()
    assert bodies[False]["data"] == bodies[True]["data"] and bodies[True]["data"]["customerByEmail"]
    steps = {live: {c["step"] for c in body["extensions"]["explain"]["calls"]}
             for live, body in bodies.items()}
    assert "lookup" in steps[True]
    assert steps[False] == {"members", "transactions"}  # primary keys and parent keys only
    for call in bodies[False]["extensions"]["explain"]["calls"]:
        assert "LOWER(" not in " ".join(call["statements"]), call


async def test_many_lookups_in_one_request_each_answer_their_own_customer(world, config):
    """Lookups of one request share what the resolver has read; one still loading a customer
    must not make another answer without the index's placements (a customer then merged by
    live keys with a record the index keeps apart)."""
    from gateway.config import load_config
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    # 60 aliased lookups in one request: above the default max_aliases (15) on purpose.
    async with gateway_client(config, environ=ENV, max_aliases=60) as client:
        page = await graphql(client, "{ customers(first: 60) { edges { node { id } } } }")
        ids = [e["node"]["id"] for e in page["data"]["customers"]["edges"]]
        alone = {}
        for ident in ids:
            body = await graphql(client, f'{{ customer(id: "{ident}") {{ id sourceRecords {{ '
                                         f'source localId }} }} }}')
            alone[ident] = records_of(body["data"]["customer"])
        together = await graphql(client, "{ " + " ".join(
            f'c{i}: customer(id: "{ident}") {{ id sourceRecords {{ source localId }} }}'
            for i, ident in enumerate(ids)) + " }")
    for i, ident in enumerate(ids):
        node = together["data"][f"c{i}"]
        assert node["id"] == ident and records_of(node) == alone[ident], ident
