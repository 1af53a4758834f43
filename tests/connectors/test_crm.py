"""The CRM connector against the CRM server on loopback: the contract, then its own cases."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from connectors import (
    Cond,
    EntityMap,
    Query,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
    UpstreamError,
    registry,
)
from connectors.crm import HTTPX_ERRORS, HTTPX_NOT_RAISED, CRMConnector
from connectors.query import AllOf, AnyOf
from gateway.crm_server import Fault, SearchLimits
from tests.connectors.contract import ConnectorContract, keys
from tests.connectors.dataset import NOTES, PEOPLE
from tests.servers import running_crm, unused_port

TOKEN = "test-token"
CUSTOMER = EntityMap("customer", "contacts", "id", {
    "id": "hs_object_id", "given_name": "firstname", "family_name": "lastname",
    "email_0": "email", "phone_0": "phone", "address_0_city": "city", "card_0": "loyalty_card"})
NOTE = EntityMap("note", "notes", "id", {
    "id": "hs_object_id", "customer_key": "associations.contacts", "text": "hs_note_body",
    "date": "hs_timestamp"}, parent="customer_key")
ENTITIES = {"customer": CUSTOMER, "note": NOTE}


def contract_seed() -> dict:
    """The contract dataset as CRM objects; None values are left unset."""
    contacts = [{"id": str(p["id"]), "properties": {
        "firstname": p["given_name"], "lastname": p["family_name"], "email": p["email"],
        "phone": p["phone"], "city": p["city"], "loyalty_card": p["card"]}} for p in PEOPLE]
    notes = [{"id": str(n["id"]), "contacts": [str(n["person_id"])], "properties": {
        "hs_note_body": n["text"], "hs_timestamp": n["date"].isoformat()}} for n in NOTES]
    return {"contacts": contacts, "notes": notes}


SEED = contract_seed()
#: The contract dataset and a note about two people (2 and 10), for the child-entity cases.
JOINT_SEED = {**SEED, "notes": [*SEED["notes"], {
    "id": "105", "contacts": ["2", "10"],
    "properties": {"hs_note_body": "Joint order", "hs_timestamp": "2026-07-01"}}]}


def make(url: str, *, token: str = TOKEN, entities=ENTITIES, cls=CRMConnector,
         **kw) -> CRMConnector:
    return cls("crm-test", {"base_url": url, "token": token}, entities, **kw)


@pytest.fixture(scope="module")
def crm():
    with running_crm(SEED, token=TOKEN) as server:
        yield server


@pytest.fixture
def fresh_crm():
    """A server of its own, for tests that queue faults."""
    with running_crm(SEED, token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def joint_crm():
    with running_crm(JOINT_SEED, token=TOKEN) as server:
        yield server


@pytest.fixture
async def joint(joint_crm):
    """A connector on the dataset with the joint note."""
    c = make(joint_crm[0], timeout=5)
    yield c
    await c.aclose()


@pytest.fixture
async def connector(crm):
    c = make(crm[0], timeout=5)
    yield c
    await c.aclose()


@pytest.fixture
async def broken_connector(crm):
    fields = {**CUSTOMER.fields, "email_0": "courriel"}
    c = make(crm[0], entities={"customer": EntityMap("customer", "contacts", "id", fields),
                               "note": NOTE})
    yield c
    await c.aclose()


@pytest.fixture
async def unreachable_connector():
    c = make(f"http://127.0.0.1:{unused_port()}", timeout=2)
    yield c
    await c.aclose()


class TestCRM(ConnectorContract):
    """The contract suite, on the contract dataset."""


def test_registered_under_crm():
    assert registry.get("crm") is CRMConnector


def test_every_httpx_exception_is_mapped_or_never_raised_by_a_request():
    classes = {obj for obj in vars(httpx).values()
               if isinstance(obj, type) and issubclass(obj, Exception)}
    unaccounted = classes - set(HTTPX_ERRORS) - set(HTTPX_NOT_RAISED)
    assert not unaccounted, f"map these in connectors.crm.HTTPX_ERRORS: {unaccounted}"


@pytest.mark.parametrize("exc_class", sorted(HTTPX_ERRORS, key=lambda c: c.__name__))
def test_each_mapped_httpx_exception_translates_cleanly(exc_class):
    c = make("http://crm.internal.example:9999")
    message = "boom at http://crm.internal.example:9999 with test-token"
    try:
        exc = exc_class(message)
    except TypeError:  # HTTPStatusError wants the exchange
        request = httpx.Request("GET", "http://crm.internal.example:9999")
        exc = exc_class(message, request=request, response=httpx.Response(500, request=request))
    error = c._translate(exc, "search contacts")
    assert isinstance(error, HTTPX_ERRORS[exc_class][0])
    assert "crm-test" in str(error) and "search contacts" in str(error)
    assert "crm.internal" not in str(error) and TOKEN not in str(error)


def test_base_url_is_required():
    with pytest.raises(SourceConfigError, match="base_url"):
        CRMConnector("crm-test", {"token": TOKEN}, ENTITIES)


# -- errors, retries and timeouts -------------------------------------------------------------


async def test_429_is_waited_out_then_succeeds(fresh_crm):
    url, app = fresh_crm
    app.state.faults.append(Fault(429, retry_after=0.3))
    c = make(url, timeout=5)
    try:
        started = time.monotonic()
        page = await c.fetch(Query("customer", ("given_name",), limit=2))
        assert keys(page) == [1, 2] and time.monotonic() - started >= 0.3
        assert len(app.state.requests) == 2
    finally:
        await c.aclose()


async def test_429_longer_than_the_timeout_fails_at_once(fresh_crm):
    url, app = fresh_crm
    app.state.faults.append(Fault(429, retry_after=30))
    c = make(url, timeout=1)
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="rate limited.*HTTP 429, RATE_LIMITS"):
            await c.fetch(Query("customer", ("given_name",), limit=2))
        assert time.monotonic() - started < 0.5
    finally:
        await c.aclose()


async def test_real_rate_limit_is_waited_out():
    with running_crm(SEED, token=TOKEN, rate_limit=2) as (url, app):
        c = make(url, timeout=5)
        try:
            for _ in range(3):
                assert len((await c.fetch(Query("customer", ("given_name",), limit=1))).rows) == 1
        finally:
            await c.aclose()
        statuses = len(app.state.requests)
        assert statuses == 4  # three fetches and one 429 answered with Retry-After: 1


async def test_5xx_is_retried_then_succeeds(fresh_crm):
    url, app = fresh_crm
    app.state.faults.extend([Fault(503), Fault(500)])
    c = make(url, timeout=5)
    try:
        assert keys(await c.fetch(Query("customer", ("given_name",), limit=1))) == [1]
        assert len(app.state.requests) == 3
    finally:
        await c.aclose()


async def test_5xx_after_retries_is_upstream_error_with_a_clean_message(fresh_crm):
    url, app = fresh_crm
    app.state.faults.extend([Fault(500)] * 3)
    c = make(url, timeout=5)
    try:
        with pytest.raises(UpstreamError) as err:
            await c.fetch(Query("customer", ("given_name",), limit=1))
        message = str(err.value)
        assert "crm-test" in message and "HTTP 500" in message and "INTERNAL_ERROR" in message
        assert "127.0.0.1" not in message and TOKEN not in message
        assert "injected" not in message  # the body is never echoed
        assert len(app.state.requests) == 3
    finally:
        await c.aclose()


async def test_wrong_token_is_unavailable_and_says_authentication(crm):
    c = make(crm[0], token="wrong-token")
    try:
        with pytest.raises(SourceUnavailable) as err:
            await c.fetch(Query("customer", ("given_name",), limit=1))
        assert "authentication" in str(err.value) and "INVALID_AUTHENTICATION" in str(err.value)
        assert "wrong-token" not in str(err.value)
    finally:
        await c.aclose()


async def test_slow_answer_is_a_timeout(fresh_crm):
    url, app = fresh_crm
    app.state.faults.append(Fault(None, delay=0.8))
    c = make(url, timeout=0.3)
    try:
        with pytest.raises(SourceTimeout) as err:
            await c.fetch(Query("customer", ("given_name",), limit=1))
        assert "127.0.0.1" not in str(err.value)
    finally:
        await c.aclose()


async def test_invalid_json_is_upstream_error(fresh_crm):
    url, app = fresh_crm
    app.state.faults.append(Fault(200, body=b"<html>maintenance</html>"))
    c = make(url)
    try:
        with pytest.raises(UpstreamError, match="without a JSON object") as err:
            await c.fetch(Query("customer", ("given_name",), limit=1))
        assert "maintenance" not in str(err.value)
    finally:
        await c.aclose()


async def test_unknown_object_type_is_a_clean_upstream_error(crm):
    entities = {"customer": EntityMap("customer", "contactz", "id", CUSTOMER.fields)}
    c = make(crm[0], entities=entities)
    try:
        with pytest.raises(UpstreamError, match=r"search contactz: .*HTTP 400, VALIDATION_ERROR"):
            await c.fetch(Query("customer", ("given_name",)))
        problems = await c.verify()
        assert len(problems) == 1 and "object type 'contactz' not found" in problems[0]
    finally:
        await c.aclose()


async def test_card_normalizer_without_the_calculated_property_is_refused_cleanly():
    with running_crm(SEED, token=TOKEN, card_properties=()) as (url, _):
        c = make(url)
        try:
            with pytest.raises(UpstreamError, match="refused the request"):
                await c.fetch(Query("customer", ("card_0",),
                                    where=Cond("card_0", "in", ("AB1234",), "card")))
        finally:
            await c.aclose()


# -- how queries become requests ----------------------------------------------------------


def searches(app) -> list[dict]:
    return [r["body"] for r in app.state.requests if r["path"].endswith("/search")]


async def test_in_on_the_key_with_250_values_is_three_batch_reads(fresh_crm):
    url, app = fresh_crm
    c = make(url)
    try:
        ids = tuple(range(1, 251))
        page = await c.fetch(Query("customer", ("given_name",), where=Cond("id", "in", ids)))
        assert sorted(keys(page)) == list(range(1, 13))
        reads = [r["body"] for r in app.state.requests if r["path"].endswith("/batch/read")]
        assert [len(b["inputs"]) for b in reads] == [100, 100, 50]
    finally:
        await c.aclose()


async def test_in_with_250_values_is_chunked_into_in_filters_of_100(fresh_crm):
    url, app = fresh_crm
    c = make(url)
    try:
        emails = tuple(f"nobody{i}@example.com" for i in range(248)) + (
            "jean.dupont@example.com", "tom.girard@example.com")
        page = await c.fetch(Query("customer", ("email_0",),
                                   where=Cond("email_0", "in", emails, "email")))
        assert sorted(keys(page)) == [1, 12]
        [body] = searches(app)  # three OR-ed groups fit one search
        sizes = [len(g["filters"][0]["values"]) for g in body["filterGroups"]]
        assert sizes == [100, 100, 50]
    finally:
        await c.aclose()


async def test_groups_beyond_hubspot_limits_are_split_into_several_searches(fresh_crm):
    url, app = fresh_crm
    c = make(url)
    try:
        where = AnyOf(tuple(Cond("given_name", "eq", p["given_name"]) for p in PEOPLE[:7]))
        page = await c.fetch(Query("customer", ("given_name",), where=where, limit=3))
        assert keys(page) == [1, 2, 3]
        assert [len(b["filterGroups"]) for b in searches(app)] == [5, 2]
    finally:
        await c.aclose()


async def test_too_many_and_conditions_are_unsupported_naming_the_limit(connector):
    where = AllOf(tuple(Cond("given_name", "gte", "A") for _ in range(7)))
    with pytest.raises(Unsupported, match="7 conditions AND-ed.*HubSpot allows 6"):
        await connector.fetch(Query("customer", ("given_name",), where=where))
    six = AllOf(tuple(Cond("given_name", "gte", "A") for _ in range(6)))
    assert len((await connector.fetch(Query("customer", ("id",), where=six))).rows) == 12
    with pytest.raises(Unsupported, match="crm-test"):  # the keyset filter makes it seven
        await connector.fetch(Query("customer", ("id",), where=six, after=3))


async def test_a_filter_too_wide_to_expand_is_unsupported(connector):
    pairs = AllOf(tuple(AnyOf((Cond("given_name", "eq", "a"), Cond("family_name", "eq", "b")))
                        for _ in range(8)))
    with pytest.raises(Unsupported, match="more than 100"):
        await connector.fetch(Query("customer", ("id",), where=pairs))


async def test_pagination_follows_paging_next_after():
    with running_crm(SEED, token=TOKEN, page_limit=5) as (url, app):
        c = make(url)
        try:
            everyone = await c.fetch(Query("customer", ("given_name",)))
            assert sorted(keys(everyone)) == list(range(1, 13))
            assert [b.get("after") for b in searches(app)] == [None, "5", "10"]
            app.state.requests.clear()
            page = await c.fetch(Query("customer", ("given_name",), limit=7, after=2))
            assert keys(page) == list(range(3, 10))
            assert len(searches(app)) == 2
        finally:
            await c.aclose()


class SmallWindowCRM(CRMConnector):
    search_window = 4


async def test_past_the_search_window_paging_goes_on_by_key():
    limits = SearchLimits(window=4)
    with running_crm(SEED, token=TOKEN, page_limit=2, limits=limits) as (url, app):
        c = make(url, cls=SmallWindowCRM)
        try:
            page = await c.fetch(Query("customer", ("given_name",)))
            assert keys(page) == list(range(1, 13))
            keysets = [g["filters"][-1]["value"] for b in searches(app) for g in b["filterGroups"]]
            assert keysets == ["2", "4", "6", "8", "10"]
        finally:
            await c.aclose()


async def test_eq_is_exact_although_hubspot_ignores_case(connector):
    assert (await connector.fetch(Query("customer", ("given_name",),
                                        where=Cond("given_name", "eq", "marie")))).rows == []
    page = await connector.fetch(Query("customer", ("given_name",),
                                       where=Cond("given_name", "ieq", "marie")))
    assert keys(page) == [2]


async def test_contains_a_star_is_literal(connector):
    page = await connector.fetch(Query("customer", ("given_name",),
                                       where=Cond("given_name", "contains", "*")))
    assert page.rows == []


async def test_date_ranges_on_children(joint):
    where = AllOf((Cond("customer_key", "in", ("1", "2", "10")),
                   Cond("date", "gte", NOTES[1]["date"])))
    page = await joint.fetch(Query("note", ("text", "date"), where=where))
    got = sorted((r["id"], r["customer_key"]) for r in page.rows)
    assert got == [("102", "1"), ("103", "2"), ("104", "10"), ("105", "10"), ("105", "2")]


async def test_children_without_a_parent_filter_carry_their_parents(joint):
    page = await joint.fetch(Query("note", ("text",), where=Cond("text", "contains", "order")))
    assert sorted((r["id"], r["customer_key"]) for r in page.rows) == [
        ("103", "2"), ("105", "10"), ("105", "2")]


async def test_children_keyset_keeps_every_parent_row_of_a_child(joint):
    page = await joint.fetch(Query("note", ("text",), limit=2, after="103",
                                       where=Cond("customer_key", "in", ("1", "2", "10"))))
    assert [(r["id"], r["customer_key"]) for r in page.rows] == [
        ("104", "10"), ("105", "2"), ("105", "10")]


async def test_parent_filtered_under_an_or_is_unsupported(connector):
    where = AnyOf((Cond("customer_key", "eq", "1"), Cond("text", "contains", "cake")))
    with pytest.raises(Unsupported, match="customer_key"):
        await connector.fetch(Query("note", ("text",), where=where))


async def test_phone_tail_on_a_property_hubspot_does_not_index_is_unsupported(crm):
    fields = {**CUSTOMER.fields, "phone_0": "hs_whatsapp_phone_number"}
    c = make(crm[0], entities={"customer": EntityMap("customer", "contacts", "id", fields)})
    try:
        with pytest.raises(Unsupported, match="phone and mobilephone"):
            await c.fetch(Query("customer", ("phone_0",),
                                where=Cond("phone_0", "in", ("612345678",), "phone_tail")))
    finally:
        await c.aclose()


async def test_verify_checks_associations(crm):
    fields = {**NOTE.fields, "customer_key": "associations.contactz"}
    c = make(crm[0], entities={"note": EntityMap("note", "notes", "id", fields,
                                                 parent="customer_key")})
    try:
        [problem] = await c.verify()
        assert "associations.contactz" in problem and "contacts" in problem
    finally:
        await c.aclose()


async def test_verify_suggests_the_closest_property(broken_connector):
    [problem] = await broken_connector.verify()
    assert problem.startswith("entity 'customer' field 'email_0': property 'courriel' not found "
                              "on object 'contacts'")


async def test_introspect_lists_the_engagement_objects(connector):
    tables = await connector.introspect()
    assert {"contacts", "notes", "calls", "emails", "meetings"} <= set(tables)
    assert {"firstname", "loyalty_card", "hs_searchable_calculated_phone_number"} <= set(
        tables["contacts"])
    assert "hs_note_body" in tables["notes"]
    # each property with the CRM's type for it, properties by name
    contacts = tables["contacts"]
    assert list(contacts) == sorted(contacts)
    assert contacts["hs_object_id"] == "number"
    assert contacts["createdate"] == "datetime"
    assert contacts["firstname"] == "string"
    assert contacts["hs_email_optout"] == "enumeration"
    assert contacts["hs_searchable_calculated_phone_number"] == "string"
    assert tables["notes"]["hs_timestamp"] == "datetime"
    assert tables["calls"]["hs_call_duration"] == "number"


async def test_introspect_keeps_a_property_the_crm_gives_no_type(fresh_crm):
    url, app = fresh_crm
    c = make(url)
    # the first request, for the contacts' properties, gets this answer
    app.state.faults.append(Fault(200, body=json.dumps({"results": [
        {"name": "email", "type": "string"}, {"name": "vip"},
        {"name": "is_member", "type": "bool"}]}).encode()))
    try:
        tables = await c.introspect()
        assert tables["contacts"] == {"email": "string", "is_member": "bool", "vip": ""}
        assert tables["notes"]["hs_timestamp"] == "datetime"
    finally:
        await c.aclose()


async def test_phone_tail_on_phone_and_mobilephone_is_one_filter_group(fresh_crm):
    url, app = fresh_crm
    fields = {**CUSTOMER.fields, "phone_1": "mobilephone"}
    c = make(url, entities={"customer": EntityMap("customer", "contacts", "id", fields)})
    try:
        where = AnyOf((Cond("phone_0", "in", ("655443322",), "phone_tail"),
                       Cond("phone_1", "in", ("655443322",), "phone_tail")))
        page = await c.fetch(Query("customer", ("phone_0",), where=where))
        assert sorted(keys(page)) == [10, 11, 12]
        [body] = searches(app)
        assert len(body["filterGroups"]) == 1
    finally:
        await c.aclose()
