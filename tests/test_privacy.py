"""Consent, self-service and the audit log end to end: the demo world over loopback HTTP.

Each test serves the demo config (three SQLite shops, the CRM on loopback, the demo policy)
with its own audit log and consent store, and asks as the demo's roles would: marketing,
finance, support, shop staff, an admin, and a customer through `me`.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest

from gateway import audit_cli
from gateway.audit import AuditFilter
from gateway.config import load_config
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world
from gateway.principal import Principal
from tests.gateway_client import gateway_client, token_for
from tests.servers import running_crm
from tests.test_audit import create_database, drop_schema

TOKEN = "privacy-crm-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}
MARKETING = Principal("marc@bakery.example", ("marketing",), purpose="marketing")
FINANCE = Principal("fanny@bakery.example", ("finance",), purpose="billing")
SUPPORT = Principal("sofia@bakery.example", ("support",), purpose="support")
SHOP = Principal("paul@bakery.example", ("shop_staff",), shop="paris", purpose="sale")
ADMIN = Principal("ada@bakery.example", ("admin",), purpose="administration")
STEWARD = Principal("ada@bakery.example", ("admin",), purpose="stewardship")


def customer(customer_id: str, subject: str = "camille.martin") -> Principal:
    return Principal(subject, ("customer",), customer_id=customer_id, purpose="self_service")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), customers=120, crm_url="http://unset")


@pytest.fixture(scope="module")
def crm(world):
    with running_crm(world.crm_seed, token=TOKEN) as (url, _):
        yield url


@pytest.fixture
def config(world, crm, tmp_path) -> Path:
    """The demo config pointed at the loopback CRM, in a folder of its own (its stores too)."""
    folder = tmp_path / "demo"
    shutil.copytree(world.config_path.parent, folder)
    path = folder / "panorama.yaml"
    path.write_text(path.read_text().replace("http://unset", crm))
    return path


class Caller:
    """One gateway, asked by several principals in turn (each request with its own token)."""

    def __init__(self, client, config: Path) -> None:
        self.client = client
        self.auth = load_config(config, ENV).auth
        self.privacy = client.app.state.privacy

    def headers(self, principal: Principal | None) -> dict[str, str]:
        return {"authorization": f"Bearer {token_for(principal, self.auth)}"} if principal else {}

    async def ask(self, principal: Principal, query: str, **variables) -> dict:
        response = await self.client.post("/graphql", json={"query": query, "variables": variables},
                                          headers=self.headers(principal))
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, principal: Principal, query: str, **variables) -> dict:
        body = await self.ask(principal, query, **variables)
        assert "errors" not in body, body
        return body["data"]

    async def entries(self, **where):
        return (await self.privacy.log.query(AuditFilter(**where))).entries


async def serve(config: Path):
    return gateway_client(config, environ=ENV, principal=None)


BY_EMAIL = "query($email: String!) { customerByEmail(email: $email) { id } }"
BY_ID = "query($id: ID!) { customer(id: $id) { id } }"
PAGE = """query($after: String) { customers(first: 100, after: $after) {
            edges { node { id } } pageInfo { hasNextPage endCursor } } }"""
CONSENT = "{ purpose objected decision { objected via } sourceOptOuts { source recordId } }"
OBJECT = "mutation($p: String!) { objectTo(purpose: $p) " + CONSENT + " }"
WITHDRAW = "mutation($p: String!) { withdrawObjection(purpose: $p) " + CONSENT + " }"


async def listed(caller: Caller, principal: Principal) -> set[str]:
    """Every customer id a principal gets by paging through `customers`."""
    ids, after = set(), None
    while True:
        page = (await caller.data(principal, PAGE, after=after))["customers"]
        ids |= {e["node"]["id"] for e in page["edges"]}
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def visible(caller: Caller, principal: Principal, email: str, customer_id: str) -> dict:
    """Whether each access path finds the customer."""
    by_email = (await caller.data(principal, BY_EMAIL, email=email))["customerByEmail"]
    by_id = (await caller.data(principal, BY_ID, id=customer_id))["customer"]
    filtered = (await caller.data(principal, "query($e: String) { customers(filter: {email: $e}) "
                                             "{ edges { node { id } } } }", e=email))["customers"]
    return {"email": by_email is not None, "id": by_id is not None,
            "filter": bool(filtered["edges"]), "page": customer_id in await listed(caller, principal)}


ALL = {"email": True, "id": True, "filter": True, "page": True}
NONE = {"email": False, "id": False, "filter": False, "page": False}


async def showcase_id(caller: Caller, world) -> str:
    return (await caller.data(FINANCE, BY_EMAIL, email=world.showcase["email"]))["customerByEmail"]["id"]


def with_stores(config: Path, audit: str, consent: str) -> None:
    text = config.read_text().replace("consent:\n  sources:", f"consent:\n  store: {consent}\n  sources:")
    config.write_text(text + f"\naudit:\n  store: {audit}\n")


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request, config):
    """The demo config with its stores in SQLite (the default) or PostgreSQL."""
    if request.param == "sqlite":
        yield config
        return
    url = await create_database("panorama_test_privacy")
    schema = f"privacy_{uuid.uuid4().hex[:12]}"
    with_stores(config, f"{url}?schema={schema}", f"{url}?schema={schema}")
    try:
        yield config
    finally:
        await drop_schema(url, schema)


async def test_an_objection_through_me_hides_the_customer_from_marketing_at_once(world, stores):
    email = world.showcase["email"]
    async with await serve(stores) as client:
        caller = Caller(client, stores)
        camille = await showcase_id(caller, world)
        assert await visible(caller, MARKETING, email, camille) == ALL
        objection = (await caller.data(customer(camille), OBJECT, p="marketing"))["objectTo"]
        assert objection == {"purpose": "marketing", "objected": True,
                             "decision": {"objected": True, "via": "self-service"},
                             "sourceOptOuts": []}
        # the very next request: absent from lists, lookups and filters, like an unknown customer
        assert await visible(caller, MARKETING, email, camille) == NONE
        assert await visible(caller, FINANCE, email, camille) == ALL  # another purpose
        withdrawn = (await caller.data(customer(camille), WITHDRAW, p="marketing"))["withdrawObjection"]
        assert withdrawn["objected"] is False
        assert await visible(caller, MARKETING, email, camille) == ALL
        consents = (await caller.data(customer(camille), "{ me { consents { purpose objected "
                                                         "decision { via } } } }"))["me"]["consents"]
    assert {c["purpose"] for c in consents} >= {"marketing", "billing", "support"}
    assert "self_service" not in {c["purpose"] for c in consents}
    assert next(c for c in consents if c["purpose"] == "marketing")["decision"] == {"via": "self-service"}


async def test_only_objectable_purposes_can_be_objected_to_and_nothing_else_is_recorded(world, stores):
    from gateway.consent import ConsentDecision

    email = world.showcase["email"]
    async with await serve(stores) as client:
        caller = Caller(client, stores)
        camille = await showcase_id(caller, world)
        me = customer(camille)
        refused = {p: await caller.ask(me, OBJECT, p=p)
                   for p in ("billing", "administration", "stewardship", "self_service")}
        unwithdrawable = await caller.ask(me, WITHDRAW, p="billing")
        history = await caller.privacy.consent.history(camille)
        consent_entries = await caller.entries(kinds=("consent",))
        # an objection recorded for billing before billing was made not objectable
        await caller.privacy.consent.record(ConsentDecision(camille, "billing", True, "camille.martin",
                                                            "self-service"))
        await caller.privacy.consent.record(ConsentDecision(camille, "marketing", True,
                                                            "camille.martin", "self-service"))
        finance, admin = await visible(caller, FINANCE, email, camille), \
            await caller.data(ADMIN, BY_ID, id=camille)
        marketing = await visible(caller, MARKETING, email, camille)
        mine = (await caller.data(me, "{ me { objectablePurposes consents { purpose objectable "
                                      "objected decision { objected } } } }"))["me"]
    for purpose, body in [*refused.items(), ("billing", unwithdrawable)]:
        [error] = body["errors"]
        assert error["extensions"] == {"code": "NOT_OBJECTABLE"}, body
        assert f"'{purpose}'" in error["message"]
        assert error["message"].endswith("you may object to: analytics, marketing")
    assert history == [] and consent_entries == []  # nothing recorded
    assert finance == ALL and admin["customer"] == {"id": camille}  # the old objection is not applied
    assert marketing == NONE  # an objectable purpose's objection is
    assert mine["objectablePurposes"] == ["analytics", "marketing"]
    consents = {c["purpose"]: c for c in mine["consents"]}
    assert consents["billing"] == {"purpose": "billing", "objectable": False, "objected": False,
                                   "decision": {"objected": True}}  # shown, not applied
    assert consents["marketing"] == {"purpose": "marketing", "objectable": True, "objected": True,
                                     "decision": {"objected": True}}
    assert consents["analytics"]["objectable"] and not consents["analytics"]["objected"]


async def test_a_source_opt_out_is_not_applied_to_a_purpose_that_is_not_objectable(world, config):
    config.write_text(config.read_text().replace("purposes: [marketing]", "purposes: [marketing, billing]"))
    contact = next(c for c in world.crm_seed["contacts"]
                   if c["properties"].get("hs_email_optout") == "true" and c["properties"]["email"])
    email = contact["properties"]["email"]
    async with await serve(config) as client:
        caller = Caller(client, config)
        found = (await caller.data(FINANCE, BY_EMAIL, email=email))["customerByEmail"]
        assert found is not None
        assert await visible(caller, FINANCE, email, found["id"]) == ALL
        assert await visible(caller, MARKETING, email, found["id"]) == NONE
        consents = (await caller.data(customer(found["id"], "someone"), "{ me { consents { purpose "
                                      "objectable objected sourceOptOuts { source } } } }"))
    by_purpose = {c["purpose"]: c for c in consents["me"]["consents"]}
    assert by_purpose["billing"] == {"purpose": "billing", "objectable": False, "objected": False,
                                     "sourceOptOuts": [{"source": "crm"}]}
    assert by_purpose["marketing"]["objected"] is True


async def test_a_crm_opt_out_hides_the_customer_for_marketing(world, config):
    contact = next(c for c in world.crm_seed["contacts"]
                   if c["properties"].get("hs_email_optout") == "true" and c["properties"]["email"])
    email = contact["properties"]["email"]
    async with await serve(config) as client:
        caller = Caller(client, config)
        found = (await caller.data(FINANCE, BY_EMAIL, email=email))["customerByEmail"]
        assert found is not None
        assert await visible(caller, MARKETING, email, found["id"]) == NONE
        assert await visible(caller, SUPPORT, email, found["id"]) == ALL
        # the customer sees why, and that withdrawing in Panorama does not lift the CRM's opt-out
        withdrawn = (await caller.data(customer(found["id"], "someone"), WITHDRAW,
                                       p="marketing"))["withdrawObjection"]
    assert withdrawn["objected"] is True
    assert withdrawn["sourceOptOuts"] == [{"source": "crm", "recordId": contact["id"]}]


async def test_a_customer_sees_only_me_and_downloads_everything_held(world, config):
    async with await serve(config) as client:
        caller = Caller(client, config)
        camille = await showcase_id(caller, world)
        me = customer(camille)
        refused = await caller.ask(me, BY_ID, id=camille)
        listing = await caller.ask(me, PAGE)
        mine = await caller.data(me, "{ me { customer { id emails { address source { source "
                                     "recordId } } transactions(first: 100) { id } } } }")
        assert refused["errors"][0]["extensions"] == {"code": "FORBIDDEN", "coordinate": "Query.customer"}
        assert listing["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        staff_me = await caller.ask(SUPPORT, "{ me { customer { id } } }")
        assert staff_me["errors"][0]["extensions"] == {"code": "FORBIDDEN", "coordinate": "Query.me"}
        assert mine["me"]["customer"]["id"] == camille
        assert all(e["source"]["source"] and e["source"]["recordId"]
                   for e in mine["me"]["customer"]["emails"])

        await caller.data(SUPPORT, BY_ID, id=camille)  # a staff read, to show in the export
        export = await client.get("/me/export", headers=caller.headers(me))
        assert export.status_code == 200, export.text
        assert export.headers["content-disposition"].startswith("attachment; filename=")
        document = orjson.loads(export.content)
        assert (await client.get("/me/export", headers=caller.headers(SUPPORT))).status_code == 403
        anonymous = await client.get("/me/export")
        assert anonymous.status_code == 401
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        exports = await caller.entries(subject="camille.martin", kinds=("read",), limit=1)
    held = document["customer"]
    assert document["format"] == "panorama-export/1" and document["customerId"] == camille
    assert held["id"] == camille
    assert [{"address": e["address"], "source": e["source"]} for e in held["emails"]] \
        == mine["me"]["customer"]["emails"]
    assert {r["source"] for r in held["sourceRecords"]} >= {"paris", "crm"}
    assert len(held["transactions"]) >= len(mine["me"]["customer"]["transactions"])
    assert all(t["source"]["source"] for t in held["transactions"])
    assert "matchEvidence" not in held  # not in the customer's view
    assert any(c["purpose"] == "marketing" for c in document["consents"])
    assert any(a["roles"] == ["support"] and a["purpose"] == "support" and a["by"] is None
               for a in document["accessLog"])
    assert exports[0].details["operation"] == "export" and exports[0].customers == (camille,)


async def test_a_correction_request_is_recorded_and_routed_to_the_owning_source(world, config, capsys):
    async with await serve(config) as client:
        caller = Caller(client, config)
        camille = await showcase_id(caller, world)
        me = customer(camille)
        ambiguous = await caller.ask(me, 'mutation { requestCorrection(field: "emails", '
                                         'message: "my old address is gone") { id } }')
        asked = await caller.data(me, '''mutation { requestCorrection(field: "emails", source: "crm",
            message: "please remove my old address", value: "only camille.martin@example.fr") {
            id field source record status routedTo requested } }''')
        listed_back = await caller.data(me, "{ me { corrections { id status routedTo } } }")
        entry = (await caller.entries(kinds=("correction",)))[0]
    assert ambiguous["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "say which with `source`" in ambiguous["errors"][0]["message"]
    request = asked["requestCorrection"]
    assert request["field"] == "Customer.emails" and request["source"] == "crm"
    assert request["status"] == "routed" and request["routedTo"] == "crm-team@bakery.example"
    assert request["record"] and request["requested"] == "only camille.martin@example.fr"
    assert listed_back["me"]["corrections"] == [{"id": request["id"], "status": "routed",
                                                 "routedTo": "crm-team@bakery.example"}]
    assert entry.customers == (camille,) and entry.subject == "camille.martin"
    assert entry.details["correction"] == request["id"] and entry.details["source"] == "crm"
    assert "remove" not in orjson.dumps(entry.details).decode()  # never the customer's words
    code = await asyncio.to_thread(audit_cli.main, ["audit", "corrections", "--config", str(config)])
    assert code == 0
    assert "crm-team@bakery.example" in capsys.readouterr().out


async def test_the_access_log_shows_who_read_the_data_when_and_for_what(world, config):
    async with await serve(config) as client:
        caller = Caller(client, config)
        camille = await showcase_id(caller, world)
        await caller.data(SUPPORT, "query($id: ID!) { customer(id: $id) { emails { address } } }",
                          id=camille)
        await caller.data(customer(camille), "{ me { customer { id } } }")
        log = (await caller.data(customer(camille), "{ me { accessLog { at purpose roles by byYou "
                                                    "fields } } }"))["me"]["accessLog"]
    support = next(a for a in log if a["roles"] == ["support"])
    assert support["purpose"] == "support" and support["by"] is None  # staff by role, not name
    assert "Customer.emails" in support["fields"] and support["at"].startswith("20")
    assert any(a["byYou"] and a["by"] == "camille.martin" for a in log)
    finance = next(a for a in log if a["roles"] == ["finance"])  # showcase_id's lookup
    assert finance["purpose"] == "billing"


async def test_audit_entries_for_reads_denials_refusals_and_stewards(world, config):
    async with await serve(config) as client:
        caller = Caller(client, config)
        camille = await showcase_id(caller, world)
        await caller.data(MARKETING, "query($e: String!) { customerByEmail(email: $e) { id emails "
                                     "{ address } phones { number } } }", e=world.showcase["email"])
        read = (await caller.entries(subject=MARKETING.subject, limit=1))[0]
        denied_body = await caller.ask(SHOP, BY_ID.replace("{ id }", "{ id addresses { city } }"),
                                       id=camille)
        denied = (await caller.entries(subject=SHOP.subject, limit=1))[0]
        unauthenticated = await client.post("/graphql", json={"query": "{ sources { name } }"})
        refused = (await caller.entries(kinds=("denied",), limit=1))[0]
        no_purpose = await client.post("/graphql", json={"query": "{ sources { name } }"},
                                       headers=caller.headers(Principal("marc", ("marketing",))))
        unpurposed = (await caller.entries(kinds=("denied",), limit=1))[0]
    assert (read.kind, read.purpose, read.roles, read.customers) == (
        "read", "marketing", ("marketing",), (camille,))
    fields = {f.path: f.masked for f in read.fields}
    assert fields["Query.customerByEmail"] is False and fields["Email.address"] is False
    assert fields["Phone.number"] is True  # marketing sees the last digits only
    assert read.details == {"operation": "query", "roots": ["customerByEmail"], "outcome": "ok"}
    assert denied_body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (denied.kind, denied.customers) == ("denied", ())
    assert [f.path for f in denied.fields] == ["Customer.addresses"]
    assert denied.details["code"] == "FORBIDDEN"
    assert unauthenticated.status_code == 401
    assert (refused.kind, refused.subject) == ("denied", "unauthenticated")
    assert refused.details == {"code": "UNAUTHENTICATED", "status": 401, "path": "/graphql"}
    assert no_purpose.status_code == 403
    assert (unpurposed.subject, unpurposed.details["code"]) == ("marc", "PURPOSE_REQUIRED")


async def test_a_steward_merge_is_audited_and_carries_consent_to_the_survivor(world, config):
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    async with await serve(config) as client:
        caller = Caller(client, config)
        page = (await caller.data(ADMIN, "{ customers(first: 2) { edges { node { id } } } }"))
        first, second = [e["node"]["id"] for e in page["customers"]["edges"]]
        await caller.data(customer(second, "someone"), OBJECT, p="marketing")
        merged = await caller.data(STEWARD, 'mutation($ids: [ID!]!) { mergeCustomers(ids: $ids, '
                                            'reason: "same person") { id } }', ids=[first, second])
        survivor = merged["mergeCustomers"]["id"]
        hidden = await caller.data(MARKETING, BY_ID, id=survivor)
        entry = (await caller.entries(kinds=("steward",), limit=1))[0]
    assert hidden["customer"] is None  # the objection of the merged-in customer holds
    assert entry.subject == STEWARD.subject and entry.purpose == "stewardship"
    assert set(entry.customers) >= {first, second}
    assert entry.details["action"] == "merge" and isinstance(entry.details["steward_action"], int)
    assert "same" not in orjson.dumps(entry.details).decode()  # the reason stays in the steward log


async def test_audit_verify_passes_then_finds_a_tampered_entry(world, config, capsys):
    async with await serve(config) as client:
        caller = Caller(client, config)
        await showcase_id(caller, world)
        await caller.data(SUPPORT, "{ sources { name } }")
    verify = ["audit", "verify", "--config", str(config)]
    assert await asyncio.to_thread(audit_cli.main, verify) == 0
    assert "chain intact" in capsys.readouterr().out
    with sqlite3.connect(config.parent / "panorama-audit.db") as db:  # the file's owner can
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE audit_entries SET purpose = 'marketing' WHERE id = 1")
    assert await asyncio.to_thread(audit_cli.main, verify) == 1
    assert "entry 1 does not match its hash" in capsys.readouterr().err


async def test_an_index_run_carries_consent_to_the_ids_customers_end_up_with(tmp_path, monkeypatch):
    from gateway.cli import main
    from gateway.consent import ConsentDecision, open_consent_store
    from tests.test_index import ENV as INDEX_ENV
    from tests.test_index import Shops, cid

    for name, value in INDEX_ENV.items():
        monkeypatch.setenv(name, value)
    shops = Shops(tmp_path)
    shops.put("one", 2, "Bob Stone", "bob@x.org")
    shops.put("two", 11, "Bobby Stone", "other@x.org")
    shops.put("two", 12, "Eve Moss", "eve@x.org")
    store = open_consent_store("sqlite:///panorama-consent.db", tmp_path)
    async with store:  # Eve decided before any index run, under the id of her only record
        await store.record(ConsentDecision(cid("two", 12), "marketing", True, "eve", "self-service"))
    shops.put("one", 3, "Eve Moss", "eve@x.org")  # then a record of an earlier source joined
    index = ["index", "--config", str(shops.config_path), "--full"]
    assert await asyncio.to_thread(main, index) == 0
    async with store:
        await store.record(ConsentDecision(cid("two", 11), "marketing", True, "bob", "self-service"))
    shops.put("two", 11, "Bobby Stone", "bob@x.org")  # now one customer with one/2
    assert await asyncio.to_thread(main, index) == 0
    async with store:
        hidden = await store.objections_for([cid("one", 2), cid("one", 3)], "marketing")
        carried = await store.history(cid("one", 2))
    assert hidden == {cid("one", 2), cid("one", 3)}  # both under the ids the index gave them
    assert (carried[0].source, carried[0].actor) == ("merge", "panorama-index")


def test_the_fields_of_an_entry_are_those_the_operation_reaches_by_any_path():
    from graphql import parse

    from gateway.audit_trail import selected_fields
    from gateway.schema import build_schema

    schema = build_schema()._schema
    document = parse("""
        query Other { sources { name } }
        query Mine($id: ID!) {
          who: customer(id: $id) { __typename ...Contact ... on Customer { birthDate { value } } }
        }
        fragment Contact on Customer { emails { address } ...Deeper }
        fragment Deeper on Customer { phones { number } ...Contact }""")
    assert selected_fields(schema, document, "Mine") == [
        "Query.customer", "Customer.emails", "Email.address", "Customer.phones", "Phone.number",
        "Customer.birthDate", "SourcedDate.value"]
    assert selected_fields(schema, document, "Nope") == []


AUDIT_LOG = """query($customer: ID, $kind: String, $first: Int!, $before: Int) {
  auditLog(customer: $customer, kind: $kind, first: $first, before: $before) {
    entries { id kind subject subjectKind roles purpose customers fields { path masked } hash }
    nextBefore } }"""


async def test_admins_query_the_audit_log_over_graphql_and_no_one_else_can(world, config):
    async with await serve(config) as client:
        caller = Caller(client, config)
        camille = await showcase_id(caller, world)
        await caller.data(MARKETING, "query($id: ID!) { customer(id: $id) { phones { number } } }",
                          id=camille)
        first = (await caller.data(ADMIN, AUDIT_LOG, customer=camille, kind="read",
                                   first=1))["auditLog"]
        [entry] = first["entries"]
        assert (entry["subject"], entry["purpose"], entry["customers"]) == (
            MARKETING.subject, "marketing", [camille])
        assert {"path": "Phone.number", "masked": True} in entry["fields"]
        older = (await caller.data(ADMIN, AUDIT_LOG, customer=camille, kind="read", first=1,
                                   before=first["nextBefore"]))["auditLog"]["entries"]
        assert older and older[0]["id"] < entry["id"]  # showcase_id's own lookup, before
        bad = await caller.ask(ADMIN, AUDIT_LOG, kind="gossip", first=5)
        refused = await caller.ask(FINANCE, AUDIT_LOG, first=5)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "gossip" in bad["errors"][0]["message"]
    # Other roles' schemas have no auditLog at all: validation names the field.
    assert "auditLog" in refused["errors"][0]["message"] and refused.get("data") is None
