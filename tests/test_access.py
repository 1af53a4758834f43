"""The access policy on the request path, end to end over HTTP on the demo world.

Each demo role asks about the same customer and gets its own view (masks, fields refused by
name, rows); concurrent requests of different roles never see each other's view; refusals
before GraphQL (purpose, role, principal) are 403 with a code, bad tokens 401; a slice of the
bypass matrix runs over HTTP, on the very role schemas the schema-level matrix checks.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from graphql import get_introspection_query, graphql_sync

from gateway.check import run_check
from gateway.config import ConfigError, load_config
from gateway.demo.principals import demo_principals
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.views import customer_in, full_query, role_query
from gateway.demo.world import build_world
from gateway.identity import encode_id
from gateway.indexing_cli import run_index
from gateway.principal import Principal
from tests import test_policy_matrix as matrix
from tests.gateway_client import gateway_client, token_for
from tests.servers import running_crm

CRM_TOKEN = "access-tests"
ENV = {DEMO_TOKEN_ENV: CRM_TOKEN}
BY_ID = "query($id: ID!) { customer(id: $id) { %s } }"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("access"), customers=120, crm_url="http://unset")


@pytest.fixture(scope="module")
def config(world):
    """The demo config on a loopback CRM, indexed (ids are the crosswalk's global ids)."""
    with running_crm(world.crm_seed, token=CRM_TOKEN) as (url, _):
        path = world.config_path
        path.write_text(path.read_text().replace("http://unset", url))
        asyncio.run(run_index(load_config(path, ENV), full=True))
        yield path


@pytest.fixture(scope="module")
def auth(config):
    return load_config(config, ENV).auth


@pytest.fixture(scope="module")
def camille(config, auth):
    """The showcase customer's global id, as admin sees it."""
    async def find() -> str:
        async with gateway_client(config, environ=ENV) as client:
            body = await ask(client, None, '{ customerByEmail(email: "camille.martin@example.fr")'
                                           ' { id } }')
        return body["data"]["customerByEmail"]["id"]

    return asyncio.run(find())


@pytest.fixture(scope="module")
def people(camille, auth) -> dict[str, tuple[Principal, str]]:
    """The demo's principals and their tokens, by role, as `panorama demo` prints them."""
    return {p.roles[0]: (p, token_for(p, auth)) for _, p in demo_principals(camille)}


async def ask(client, token: str | None, query: str, status: int = 200, headers=None,
              **variables: Any) -> dict:
    sent = dict(headers or {})
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                  headers=sent)
    assert response.status_code == status, response.text
    return response.json()


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


# -- each role, the same customer ----------------------------------------------------------------


async def test_each_role_sees_its_own_view_of_the_same_customer(config, camille, people):
    answers = {}
    async with gateway_client(config, environ=ENV, principal=None) as client:
        access = client.app.state.live.current.access
        for role, (principal, token) in people.items():
            query, hidden, path = role_query(access.decider.view_for(principal),
                                             access.decider.catalog, camille)
            body = await ask(client, token, query)
            assert "errors" not in body, (role, body)
            answers[role] = (customer_in(body["data"], path), hidden)
    admin, _ = answers["admin"]
    assert admin["birthDate"]["value"] == "1988-04-12" and admin["matchEvidence"]
    assert {e["address"] for e in admin["emails"]} == {"camille.martin@example.fr"}
    phones = {p["number"] for p in admin["phones"]}
    assert "+33612345678" in phones

    finance, hidden = answers["finance"]
    assert {"Customer.birthDate", "Customer.interactions", "Customer.matchEvidence"} <= set(hidden)
    assert finance["emails"] == admin["emails"]  # contact details to invoice, in clear
    assert all(p["number"].startswith("+***") for p in finance["phones"])  # last digits only
    assert all(c["number"][-4:] == a["number"][-4:] and "*" in c["number"]
               for c, a in zip(finance["loyaltyCards"], admin["loyaltyCards"], strict=True))
    assert finance["transactions"] == admin["transactions"]  # exact amounts and references

    marketing, hidden = answers["marketing"]
    assert {"Address.line1", "Transaction.reference", "Customer.birthDate"} <= set(hidden)
    assert all(c["number"].startswith("h_") for c in marketing["loyaltyCards"])
    buckets = {"0", "10", "20", "50", "100", "200", "500", "1000"}
    assert {t["amount"]["amount"].lstrip("-") for t in marketing["transactions"]} <= buckets
    assert [a["city"] for a in marketing["addresses"]] == [a["city"] for a in admin["addresses"]]

    support, hidden = answers["support"]
    assert support["birthDate"]["value"] == "1988-01-01"  # the year only
    assert support["phones"] == admin["phones"] and hidden == ["Customer.matchEvidence"]

    staff, hidden = answers["shop_staff"]
    assert {"Customer.addresses", "Transaction.reference", "Customer.interactions"} <= set(hidden)
    assert {e["address"] for e in staff["emails"]} == {"c***@example.fr"}

    customer, hidden = answers["customer"]
    assert customer["birthDate"] == admin["birthDate"] and hidden == ["Customer.matchEvidence"]

    shown = [repr(a) for a, _ in answers.values()]
    assert len(set(shown)) == len(shown), "two roles got the same view"


async def test_a_field_the_role_may_not_read_fails_validation_by_name(config, camille, people):
    async with gateway_client(config, environ=ENV, principal=None) as client:
        access = client.app.state.live.current.access
        for role, (principal, token) in people.items():
            view = access.decider.view_for(principal)
            body = await ask(client, token, full_query(view, camille))
            _, hidden, _ = role_query(view, access.decider.catalog, camille)
            if not hidden:
                assert "errors" not in body, role
                continue
            assert body.get("data") is None, role
            coordinates = {e["extensions"].get("coordinate") for e in body["errors"]}
            assert set(codes(body)) == {"FORBIDDEN"}, body
            assert set(hidden) <= coordinates, (role, hidden, coordinates)
            first = hidden[0].partition(".")[2]
            assert any(f"Cannot query field '{first}'" in e["message"] and role in e["message"]
                       for e in body["errors"]), body


# -- rows ----------------------------------------------------------------------------------------


def _known_only_in(world, sources: set[str]) -> list[str]:
    """Crosswalk ids of people whose records are in exactly these sources, and in no trap."""
    tricky = {p for case in (*world.truth["hostile"], *world.truth["traps"]) for p in case["parties"]}
    found = []
    for customer in world.truth["customers"]:
        records = customer["records"]
        if set(records) == sources and customer["party"] not in tricky:
            first = next(s for s in ("paris", "london", "berlin", "crm") if s in records)
            found.append(encode_id(first, records[first]))
    assert found, f"no customer known only in {sources}"
    return found


async def test_shop_staff_see_only_customers_known_in_their_shop(world, config, camille, people):
    staff = people["shop_staff"][1]
    records = "id sourceRecords { source } loyaltyCards { number }"
    async with gateway_client(config, environ=ENV) as client:  # admin by default
        for stranger in _known_only_in(world, {"london"}):
            seen_by_admin = (await ask(client, None, BY_ID % records, id=stranger))["data"]
            if seen_by_admin["customer"]["loyaltyCards"]:
                break
        assert seen_by_admin["customer"]["id"] == stranger
        assert [r["source"] for r in seen_by_admin["customer"]["sourceRecords"]] == ["london"]
        paris_ids = await _all_ids(client, None, {"shop": "paris"})
        as_staff = await ask(client, staff, BY_ID % records, id=stranger)
        own = await ask(client, staff, BY_ID % records, id=camille)
        by_card = await ask(client, staff, "query($n: String!) { customerByCard(number: $n) { id } }",
                            n=seen_by_admin["customer"]["loyaltyCards"][0]["number"])
        nobody = await ask(client, staff, BY_ID % records, id=encode_id("london", "no-such-key"))
        listed = await _all_ids(client, staff, None)
        london_for_staff = await _all_ids(client, staff, {"shop": "london"})
        london_for_admin = await _all_ids(client, None, {"shop": "london"})
    assert as_staff == nobody  # exactly like a customer that does not exist
    assert as_staff["data"] == {"customer": None}
    assert by_card["data"] == {"customerByCard": None}
    assert own["data"]["customer"]["id"] == camille
    # A page starts from the shop's own records; the others' records still show.
    assert listed == paris_ids and camille in listed and stranger not in listed
    assert {s["source"] for s in own["data"]["customer"]["sourceRecords"]} == {
        "paris", "london", "berlin", "crm"}
    # `filter.shop` of another shop: customers known in both.
    assert london_for_staff == [i for i in london_for_admin if i in set(paris_ids)]
    assert camille in london_for_staff


async def _all_ids(client, token, filter_) -> list[str]:
    ids, after = [], None
    while True:
        body = await ask(client, token, """query($after: String, $filter: CustomerFilter) {
            customers(first: 50, after: $after, filter: $filter) {
              edges { node { id sourceRecords { source } } } pageInfo { hasNextPage endCursor } } }""",
                         after=after, filter=filter_)
        assert "errors" not in body, body
        page = body["data"]["customers"]
        ids += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_a_customer_sees_themselves_and_no_one_else(world, config, camille, people):
    principal, token = people["customer"]
    other = _known_only_in(world, {"london"})[0]
    async with gateway_client(config, environ=ENV, principal=None) as client:
        view = client.app.state.live.current.access.decider.view_for(principal)
        query, _, path = role_query(view, client.app.state.live.current.access.decider.catalog, camille)
        own = await ask(client, token, query)
        stranger = await ask(client, token, BY_ID % "id emails { address }", id=other)
        listing = await ask(client, token, "{ customers { edges { node { id } } } }")
        lookup = await ask(client, token, '{ customerByEmail(email: "x@example.com") { id } }')
    assert customer_in(own["data"], path)["displayName"] == "Camille Martin"
    if view.can_read("Query.customer"):  # bound to their own id: anyone else does not exist
        assert stranger == {"data": {"customer": None}}
    else:  # only `me`: no way to name another customer at all
        assert codes(stranger) == ["FORBIDDEN"] and "'customer'" in str(stranger)
    for body, field in ((listing, "customers"), (lookup, "customerByEmail")):
        assert codes(body) == ["FORBIDDEN"] and f"'{field}'" in body["errors"][0]["message"]


async def test_a_region_bound_role_reads_only_its_regions_sources(world, config, camille, auth,
                                                                 tmp_path):
    folder = tmp_path / "regional"
    shutil.copytree(config.parent, folder)
    policy = yaml.safe_load((folder / "policies.yaml").read_text())
    policy["roles"]["regional_support"] = {"inherits": ["support"],
                                           "rows": {"sources": {"region": "$principal.region"}}}
    policy["roles"]["regional_admin"] = {"inherits": ["admin"],
                                         "rows": {"sources": {"region": "$principal.region"}}}
    (folder / "policies.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    uk = token_for(Principal("una", ("regional_support",), region="uk", purpose="support"), auth)
    uk_admin = token_for(Principal("uma", ("regional_admin",), region="uk",
                                   purpose="administration"), auth)
    nowhere = token_for(Principal("ned", ("regional_support",), purpose="support"), auth)
    paris_only = _known_only_in(world, {"paris"})[0]
    query = "id sourceRecords { source } transactions { shop } interactions { channel }"
    async with gateway_client(folder / "panorama.yaml", environ=ENV, principal=None) as client:
        for _ in range(500):  # the readiness probe pings every source (the CRM by a fetch)
            if client.app.state.live.current.sources.ready:
                break
            await asyncio.sleep(0.01)
        asked: list[str] = []
        for source in client.app.state.live.current.sources:
            fetch = source.connector.fetch

            async def spy(q, _fetch=fetch, _name=source.name):
                asked.append(_name)
                return await _fetch(q)

            source.connector.fetch = spy
        by_id = await ask(client, uk, BY_ID % query, id=camille)
        by_email = await ask(client, uk, '{ customerByEmail(email: "camille.martin@example.fr") '
                                         '{ id sourceRecords { source } } }')
        absent = await ask(client, uk, BY_ID % "id", id=paris_only)
        page = await ask(client, uk, "{ customers(first: 100) { edges { node { sourceRecords "
                                     "{ source } } } } }")
        sources = await ask(client, uk, "{ sources { name } }")
        incomplete = await ask(client, nowhere, "{ sources { name } }", status=403)
        evidence = await ask(client, uk_admin, BY_ID % "matchEvidence { record { source } "
                                                     "linkedTo { source } }", id=camille)
    found = by_id["data"]["customer"]
    assert found["id"] == camille and by_email["data"]["customerByEmail"]["id"] == camille
    assert {r["source"] for r in found["sourceRecords"]} == {"london"}
    assert {t["shop"] for t in found["transactions"]} == {"london"}
    assert found["interactions"] == []  # they live in the CRM, another region
    assert absent == {"data": {"customer": None}}
    assert {r["source"] for e in page["data"]["customers"]["edges"]
            for r in e["node"]["sourceRecords"]} == {"london"}
    assert sources["data"]["sources"] == [{"name": "london"}]
    assert set(asked) == {"london"}, "a source of another region was asked"
    assert codes(incomplete) == ["PRINCIPAL_INCOMPLETE"] and "--region" in str(incomplete)
    # the index's evidence never names a record of another region (linked to Paris: not said)
    links = evidence["data"]["customer"]["matchEvidence"]
    assert links and {e["record"]["source"] for e in links} == {"london"}
    assert all(e["linkedTo"] is None or e["linkedTo"]["source"] == "london" for e in links)


# -- isolation under concurrency ----------------------------------------------------------------


async def test_concurrent_roles_never_see_each_others_view(world, config, camille, people):
    other = _known_only_in(world, {"paris"})[0]
    documents = [
        BY_ID % "id emails { address } phones { number } loyaltyCards { number }",
        BY_ID % "id addresses { city line1 } transactions(first: 3) { amount { amount } }",
        BY_ID % "birthDate { value } interactions(first: 2) { summary }",
    ]
    cases = [(role, token, doc, customer) for role, (_, token) in people.items()
             for doc in documents for customer in (camille, other)]
    async with gateway_client(config, environ=ENV, principal=None) as client:
        expected = [await ask(client, token, doc, id=customer) for _, token, doc, customer in cases]
        # the same document gets different answers by role, so a shared cache would show
        assert len({repr(e) for e in expected}) > len(documents) * 2 * 3
        order = list(range(len(cases)))
        rng = random.Random(4)
        for _ in range(8):
            rng.shuffle(order)
            got = await asyncio.gather(*(ask(client, cases[i][1], cases[i][2], id=cases[i][3])
                                         for i in order))
            for i, answer in zip(order, got, strict=True):
                assert answer == expected[i], f"{cases[i][0]} got another view: {answer}"


# -- refusals before GraphQL --------------------------------------------------------------------


@pytest.mark.parametrize(("principal", "header", "code", "needle"), [
    (Principal("f", ("finance",)), None, "PURPOSE_REQUIRED", "billing, risk"),
    (Principal("f", ("finance",)), "gossip", "UNKNOWN_PURPOSE", "billing, risk"),
    (Principal("f", ("finance",)), "marketing", "PURPOSE_NOT_ALLOWED", "allowed: billing, risk"),
    (Principal("f", ("finance",), purpose="billing"), "risk", "FORBIDDEN", "drop the"),
    (Principal("i", ("intern",), purpose="billing"), None, "UNKNOWN_ROLE", "roles: staff"),
    (Principal("s", ("shop_staff",), purpose="sale"), None, "PRINCIPAL_INCOMPLETE", "--shop"),
])
async def test_requests_the_policy_refuses_are_403_with_a_code(config, auth, principal, header,
                                                              code, needle):
    headers = {"panorama-purpose": header} if header else {}
    async with gateway_client(config, environ=ENV, principal=None) as client:
        body = await ask(client, token_for(principal, auth), "{ __typename }", status=403,
                         headers=headers)
    assert body == {"errors": [{"message": body["errors"][0]["message"],
                                "extensions": {"code": code}}]}
    assert needle in body["errors"][0]["message"]


async def test_a_purpose_narrows_what_the_role_reads(config, camille, auth):
    finance = token_for(Principal("f", ("finance",)), auth)  # may act for billing and risk
    query = BY_ID % "displayName emails { address }"
    async with gateway_client(config, environ=ENV, principal=None) as client:
        billing = await ask(client, finance, query, headers={"panorama-purpose": "billing"},
                            id=camille)
        risk = await ask(client, finance, query, headers={"panorama-purpose": "risk"}, id=camille)
    assert billing["data"]["customer"]["emails"]
    assert codes(risk) == ["FORBIDDEN"] and "purpose 'risk'" in risk["errors"][0]["message"]
    assert risk["errors"][0]["extensions"]["coordinate"] == "Customer.emails"


@pytest.mark.parametrize("case", ["expired", "forged", "unsigned"])
async def test_bad_tokens_are_401_before_the_policy(config, auth, case):
    claims = {"sub": "x", "roles": ["admin"], "purpose": "administration",
              "exp": int(time.time()) + 300}
    secret = auth.jwt.secret
    token = {"expired": lambda: jwt.encode({**claims, "exp": int(time.time()) - 120}, secret,
                                           algorithm="HS256"),
             "forged": lambda: jwt.encode(claims, "f" * 48, algorithm="HS256"),
             "unsigned": lambda: jwt.encode(claims, None, algorithm="none")}[case]()
    async with gateway_client(config, environ=ENV, principal=None) as client:
        body = await ask(client, token, "{ __typename }", status=401)
    assert codes(body) == ["UNAUTHENTICATED"]


# -- introspection, and the HTTP path runs on the matrix's role schemas -------------------------


async def test_a_role_without_introspection_is_refused_it(config, people):
    token = people["customer"][1]
    async with gateway_client(config, environ=ENV, principal=None) as client:
        schema = await ask(client, token, "{ __schema { types { name } } }")
        type_ = await ask(client, token, '{ __type(name: "Customer") { name } }')
        typename = await ask(client, token, "{ __typename }")
    for body in (schema, type_):
        assert body.get("data") is None and codes(body) == ["INTROSPECTION_DISABLED"]
    assert typename == {"data": {"__typename": "Query"}}


async def test_every_request_runs_on_its_views_role_schema(config, people):
    """What the bypass matrix proves of `RoleSchemas.for_view(view)` holds over HTTP: each
    request executes on `strawberry_for(view)` of its own view, whose schema introspects
    exactly like the matrix's schema for that (role, purpose)."""
    async with gateway_client(config, environ=ENV, principal=None) as client:
        access = client.app.state.live.current.access
        used: list[Any] = []
        chosen = access.schemas.strawberry_for

        def spy(view):
            used.append(view)
            return chosen(view)

        access.schemas.strawberry_for = spy
        for role, (principal, token) in people.items():
            used.clear()
            body = await ask(client, token, get_introspection_query())
            view = access.decider.view((role,), principal.purpose)
            assert used == [view], role
            schema = chosen(view)
            assert schema._schema is access.schemas.for_view(view)
            assert schema.extensions[-1]().rules == access.schemas.rules(view)
            if not view.introspection:
                assert codes(body) == ["INTROSPECTION_DISABLED"]
                continue
            theirs = graphql_sync(matrix.SCHEMAS.for_view(matrix.DECIDER.view((role,),
                                                                              principal.purpose)),
                                  get_introspection_query())
            assert body["data"] == theirs.data, role


HTTP_BATCH = 20  # graphql-core stops validating at 100 errors: keep each document's few


@pytest.mark.parametrize(("role", "purpose"), matrix.VIEWS)
async def test_a_slice_of_the_bypass_matrix_over_http(config, auth, role, purpose):
    principal = Principal("m", (role,), shop="paris", customer_id="cus_x", purpose=purpose)
    token = token_for(principal, auth)
    cases = [(f"{c} ({style})", matrix.Doc(matrix._shortest(c), style),
              matrix._needs(matrix._shortest(c)))
             for style in ("plain", "alias", "fragment", "inline", "skip_true")
             for c in matrix.CATALOG.fields]
    cases += [(a, matrix.Doc(matrix._shortest(a.partition("(")[0]), "plain", (a,)),
               matrix._needs(matrix._shortest(a.partition("(")[0]), a))
              for a in matrix.CATALOG.arguments]
    wrong: list[str] = []
    async with gateway_client(config, environ=ENV, principal=None) as client:
        for start in range(0, len(cases), HTTP_BATCH):
            batch = cases[start:start + HTTP_BATCH]
            texts, lines = matrix.compose(batch)
            document = "\n".join([*texts, "query Noop { __typename }"])
            response = await client.post("/graphql", json={"query": document,
                                                           "operationName": "Noop"},
                                         headers={"authorization": f"Bearer {token}"})
            body = response.json()
            errors = [(e["message"], [loc["line"] for loc in e.get("locations", ())])
                      for e in body.get("errors", ())]
            assert not any("Too many validation errors" in m for m, _ in errors)
            assert errors or body["data"] == {"__typename": "Query"}, body
            wrong += matrix.verdict(role, purpose, batch, texts, lines, errors)
    assert not wrong, "\n".join(wrong[:10])


# -- without a policy, and the config ---------------------------------------------------------


def _tiny(folder: Path, **top: Any) -> Path:
    db = folder / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT OR REPLACE INTO c VALUES (1, 'Ada Lovelace')")
    doc = {"sources": {"shop": {"kind": "sqlite", "shop": "Shop", "region": "eu",
                                "connection": {"path": str(db)},
                                "customer": {"table": "c", "key": "id",
                                             "fields": {"full_name": "name"}}}}, **top}
    path = folder / "panorama.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_without_a_policy_only_admin_reads(tmp_path):
    path = _tiny(tmp_path)
    query = "{ customers { edges { node { name { full } } } } }"
    support = Principal("s", ("support",), purpose="support")
    async with gateway_client(path) as client:  # an admin, for administration
        admin = await ask(client, None, query)
        schema = await ask(client, None, "{ __schema { queryType { name } } }")
        other = await ask(client, token_for(support), query, status=403)
        no_purpose = await ask(client, token_for(Principal("a", ("admin",))), query, status=403)
    assert admin["data"]["customers"]["edges"] == [{"node": {"name": {"full": "Ada Lovelace"}}}]
    assert schema["data"]["__schema"]["queryType"]["name"] == "Query"
    assert codes(other) == ["UNKNOWN_ROLE"] and "has no `policy:`" in str(other)
    assert codes(no_purpose) == ["PURPOSE_REQUIRED"] and "administration" in str(no_purpose)


async def test_open_mode_and_the_admin_token_declare_the_admin_purpose(tmp_path):
    path = _tiny(tmp_path, auth={"mode": "open"})
    async with gateway_client(path, principal=None, admin_token="adm-" + "t" * 20) as client:
        anonymous = await ask(client, None, "{ sources { name } }")
        admin_token = await ask(client, "adm-" + "t" * 20, "{ sources { name } }")
        narrowed = await ask(client, None, "{ sources { name } }", status=403,
                             headers={"panorama-purpose": "support"})
    assert anonymous == admin_token == {"data": {"sources": [{"name": "shop"}]}}
    assert codes(narrowed) == ["UNKNOWN_PURPOSE"]


def test_policy_problems_are_config_problems(tmp_path):
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump({
        "purposes": {"support": {"categories": ["nope"]}},
        "roles": {"support": {"purposes": ["support"], "rules": {"Customer.emial": "allow"}}}}))
    path = _tiny(tmp_path, policy="policies.yaml")
    path.write_text(path.read_text().replace("region: eu", "region: ''"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    where = [p.location for p in caught.value.problems]
    assert "policy policies.yaml: purposes.support.categories" in where
    assert any(w.startswith("policy policies.yaml: roles.support.rules") for w in where)
    assert "sources.shop.region" in where
    missing = _tiny(tmp_path, policy="elsewhere.yaml")
    with pytest.raises(ConfigError, match="relative to the config file"):
        load_config(missing, {})


def test_the_policy_path_is_relative_to_the_config_and_regions_are_read(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "policy.yaml").write_text(yaml.safe_dump({
        "purposes": {"support": {"categories": "*"}},
        "roles": {"support": {"purposes": ["support"], "rules": {"Query.sources": "allow",
                                                                "Source.name": "allow"}}}}))
    path = _tiny(tmp_path / "conf", policy="policy.yaml")
    config = load_config(path, {})
    assert set(config.policy.roles) == {"support"} and config.sources["shop"].region == "eu"
    said: list[str] = []
    assert run_check(str(path), connect=False, environ={}, say=said.append) == 0
    assert any(s.startswith("policy: ") and "1 roles: support" in s for s in said)
    assert any(s.startswith("policy: warning: ") and "in no category" in s for s in said)
