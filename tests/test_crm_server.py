"""The CRM server on loopback: HubSpot's shapes, operators, limits, auth and faults."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from gateway.crm_server import (
    DEMO_SEED,
    Fault,
    create_crm_app,
    load_seed,
    serve_in_background,
)
from tests.servers import running_crm

TOKEN = "server-token"
SEED = {
    "contacts": [
        {"id": "1", "properties": {"firstname": "Jean", "lastname": "Dupont",
                                   "email": "Jean.Dupont@Example.com ", "phone": "06 12 34 56 78",
                                   "city": "Paris", "loyalty_card": "ab-12 34", "visits": "3"}},
        {"id": "2", "properties": {"firstname": "Marie", "lastname": "Durand",
                                   "email": "marie@example.com", "phone": None,
                                   "mobilephone": "+33 6 98 76 54 32", "city": "PARIS"}},
        {"id": "9", "properties": {"firstname": "Paul", "lastname": "DURAND-Smith",
                                   "email": None, "city": "Lyon"},
         "createdAt": "2026-02-01T00:00:00Z"},
        {"id": "10", "properties": {"firstname": "Zoé", "lastname": "Leroy", "city": "lyon",
                                    "visits": "12"}},
    ],
    "notes": [
        {"id": "101", "properties": {"hs_timestamp": "2026-03-01T09:30:00Z",
                                     "hs_note_body": "Gluten-free bread"}, "contacts": ["1"]},
        {"id": "102", "properties": {"hs_timestamp": "2026-04-02T17:05:00Z",
                                     "hs_note_body": "Late delivery"}, "contacts": ["1", "2"]},
    ],
    "calls": [
        {"id": "201", "properties": {"hs_timestamp": "2026-04-03T10:00:00Z",
                                     "hs_call_title": "Follow-up"}, "contacts": ["2"]},
    ],
}


@pytest.fixture(scope="module")
def server():
    with running_crm(SEED, token=TOKEN, page_limit=3) as (url, app):
        yield url, app


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server[0], headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def search(client, object_type="contacts", **body):
    response = client.post(f"/crm/v3/objects/{object_type}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def ids(answer) -> list[str]:
    return [r["id"] for r in answer["results"]]


def where(*filters, **body):
    return {"filterGroups": [{"filters": list(filters)}], **body}


def f(prop, operator, value=None, **extra):
    return {"propertyName": prop, "operator": operator,
            **({} if value is None else {"value": value}), **extra}


# -- auth and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_auth_is_required_with_hubspot_error_body(server, headers):
    response = httpx.get(f"{server[0]}/crm/v3/properties/contacts", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    assert len(body["correlationId"]) == 36


def test_healthz_needs_no_token(server):
    assert httpx.get(f"{server[0]}/healthz").json() == {"status": "ok"}


def test_bad_json_is_a_400_saying_so(client):
    response = client.post("/crm/v3/objects/contacts/search", content=b'{"limit": ')
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "Invalid input JSON" in response.json()["message"]
    response = client.post("/crm/v3/objects/contacts/search", json=[1, 2])
    assert response.status_code == 400 and "JSON object" in response.json()["message"]


@pytest.mark.parametrize("method,path", [
    ("POST", "/crm/v3/objects/invoicez/search"), ("GET", "/crm/v3/properties/invoicez"),
    ("POST", "/crm/v4/associations/contacts/invoicez/batch/read")])
def test_unknown_object_type_is_a_400(client, method, path):
    response = client.request(method, path, json={"inputs": []})
    assert response.status_code == 400
    assert response.json()["message"] == "Unable to infer object type from: invoicez"


def test_unknown_route_is_a_hubspot_404(client):
    response = client.get("/crm/v9/nothing")
    assert response.status_code == 404 and response.json()["category"] == "OBJECT_NOT_FOUND"


# -- search ---------------------------------------------------------------------------------

OPERATOR_CASES = [
    (f("email", "EQ", "jean.dupont@example.com"), ["1"]),  # case and spaces ignored
    (f("city", "EQ", "paris"), ["1", "2"]),
    (f("city", "NEQ", "paris"), ["9", "10"]),
    (f("hs_object_id", "GT", "9"), ["10"]),  # numeric: "10" > "9"
    (f("hs_object_id", "LTE", "2"), ["1", "2"]),
    (f("visits", "GTE", "3"), ["1", "10"]),
    (f("hs_object_id", "BETWEEN", "2", highValue="9"), ["2", "9"]),
    (f("city", "IN", values=["LYON", "nowhere"]), ["9", "10"]),
    (f("city", "NOT_IN", values=["lyon"]), ["1", "2"]),
    (f("email", "HAS_PROPERTY"), ["1", "2"]),
    (f("email", "NOT_HAS_PROPERTY"), ["9", "10"]),
    (f("lastname", "CONTAINS_TOKEN", "*durand*"), ["2", "9"]),
    (f("lastname", "CONTAINS_TOKEN", "smith"), ["9"]),  # a whole word without wildcards
    (f("lastname", "CONTAINS_TOKEN", "smi"), []),
    (f("email", "CONTAINS_TOKEN", "*@example.com"), ["1", "2"]),
    (f("lastname", "NOT_CONTAINS_TOKEN", "*durand*"), ["1", "10"]),
    (f("hs_searchable_calculated_phone_number", "IN", values=["612345678", "698765432"]),
     ["1", "2"]),  # phone and mobilephone, last nine digits
    (f("loyalty_card_normalized", "EQ", "AB1234"), ["1"]),
    (f("createdate", "GTE", "2026-01-15T00:00:00Z"), ["9"]),
    (f("createdate", "LT", str(1767225600000 + 1)), ["1", "2", "10"]),  # epoch milliseconds
]


@pytest.mark.parametrize("flt,expected", OPERATOR_CASES,
                         ids=[f"{c[0]['operator']}-{c[0]['propertyName']}" for c in OPERATOR_CASES])
def test_operators(client, flt, expected):
    assert ids(search(client, **where(flt, limit=10))) == expected


def test_groups_are_ored_and_filters_anded(client):
    body = {"filterGroups": [
        {"filters": [f("city", "EQ", "paris"), f("firstname", "EQ", "marie")]},
        {"filters": [f("hs_object_id", "EQ", "10")]}], "limit": 10}
    assert ids(search(client, **body)) == ["2", "10"]


def test_datetimes_compare_as_instants_on_engagements(client):
    answer = search(client, "notes", **where(f("hs_timestamp", "GT", "2026-03-15"), limit=10))
    assert ids(answer) == ["102"]


def test_results_carry_requested_and_default_properties_only(client):
    [result] = search(client, **where(f("hs_object_id", "EQ", "9"),
                                      properties=["city", "email", "no_such_property"]))["results"]
    assert result["properties"] == {"city": "Lyon", "email": None, "hs_object_id": "9",
                                    "createdate": "2026-02-01T00:00:00Z",
                                    "lastmodifieddate": "2026-02-01T00:00:00Z"}
    assert result["archived"] is False and result["createdAt"] == "2026-02-01T00:00:00Z"
    [default] = search(client, **where(f("hs_object_id", "EQ", "9")))["results"]
    assert {"firstname", "lastname", "email"} <= set(default["properties"])


@pytest.mark.parametrize("sorts,expected", [
    ([{"propertyName": "hs_object_id", "direction": "DESCENDING"}], ["10", "9", "2", "1"]),
    (["firstname"], ["1", "2", "9", "10"]),
    (["-visits"], ["10", "1", "2", "9"]),  # a number; unset values come last
    ([{"propertyName": "visits", "direction": "ASCENDING"}], ["1", "10", "2", "9"]),
])
def test_sorts(client, sorts, expected):
    assert ids(search(client, sorts=sorts, limit=10)) == expected[:3]  # page_limit is 3


def test_a_search_without_filters_pages_in_id_order_like_a_scan(client):
    everything = search(client, limit=2)
    scan = search(client, **where(f("hs_object_id", "HAS_PROPERTY"), limit=2))
    assert everything == scan and everything["total"] == 4


def test_paging_next_after_until_the_last_page(client):
    first = search(client, limit=100)
    assert first["total"] == 4 and ids(first) == ["1", "2", "9"]
    assert first["paging"] == {"next": {"after": "3"}}
    last = search(client, limit=100, after=first["paging"]["next"]["after"])
    assert ids(last) == ["10"] and "paging" not in last


@pytest.mark.parametrize("bounds", [
    [f("hs_object_id", "GT", "1")], [f("hs_object_id", "GTE", "2")],
    [f("hs_object_id", "LT", "10")], [f("hs_object_id", "LTE", "9")],
    [f("hs_object_id", "EQ", "9")], [f("hs_object_id", "GT", "0"), f("hs_object_id", "LT", "10")],
    [f("hs_object_id", "GT", "10")], [f("hs_object_id", "GT", "9"), f("hs_object_id", "LT", "3")],
], ids=lambda b: " ".join(x["operator"] + x["value"] for x in b))
def test_id_ranges_answer_like_a_scan(client, bounds):
    """An id-only search takes the bisecting path; a HAS_PROPERTY filter forces the scan."""
    for sorts in ([], [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]):
        fast = search(client, **where(*bounds, sorts=sorts, limit=2))
        scan = search(client, **where(*bounds, f("hs_object_id", "HAS_PROPERTY"), sorts=sorts, limit=2))
        assert fast == scan
        if "paging" in fast:
            after = fast["paging"]["next"]["after"]
            assert search(client, **where(*bounds, sorts=sorts, limit=2, after=after)) == search(
                client, **where(*bounds, f("hs_object_id", "HAS_PROPERTY"), sorts=sorts, limit=2,
                                after=after))


def _too_many(n_groups, per_group):
    return {"filterGroups": [{"filters": [f("city", "EQ", "x")] * per_group}] * n_groups}


@pytest.mark.parametrize("body,message", [
    (_too_many(6, 1), "Too many filterGroups: 6; the maximum is 5"),
    (_too_many(1, 7), "Too many filters in a filterGroup: 7; the maximum is 6"),
    (_too_many(4, 5), "Too many filters: 20; the maximum across all filterGroups is 18"),
    ({"limit": 201}, "limit must be at most 200"),
    (where(f("city", "IN", values=[str(i) for i in range(101)])), "at most 100 values"),
    (where(f("city", "IN", values=[])), "non-empty 'values'"),
    (where(f("courriel", "EQ", "x")), "Property 'courriel' does not exist"),
    (where(f("city", "LIKE", "x")), "Unknown operator 'LIKE'"),
    (where(f("city", "EQ")), "needs a 'value'"),
    (where(f("hs_object_id", "EQ", "abc")), "'abc' is not a valid number"),
    ({"after": "10000"}, "at most 10000 results"),
    ({"sorts": ["shoe_size"]}, "Property 'shoe_size' does not exist"),
    ({"limit": "many"}, "'limit' must be an integer"),
])
def test_hubspot_limits_and_malformed_searches_are_400(client, body, message):
    response = client.post("/crm/v3/objects/contacts/search", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert message in response.json()["message"]


def test_eighteen_filters_are_accepted(client):
    assert search(client, **_too_many(3, 6))["total"] == 0


# -- reads, associations, properties --------------------------------------------------------


def test_batch_read_leaves_missing_ids_out_with_a_207(client):
    response = client.post("/crm/v3/objects/contacts/batch/read", json={
        "inputs": [{"id": "10"}, {"id": "404"}, {"id": "1"}], "properties": ["firstname"]})
    assert response.status_code == 207
    body = response.json()
    assert body["status"] == "COMPLETE" and ids(body) == ["10", "1"]
    assert body["results"][0]["properties"]["firstname"] == "Zoé"
    assert body["numErrors"] == 1 and body["errors"][0]["context"] == {"ids": ["404"]}
    ok = client.post("/crm/v3/objects/contacts/batch/read", json={"inputs": [{"id": 1}]})
    assert ok.status_code == 200 and "errors" not in ok.json()


def test_batch_read_takes_at_most_100_inputs(client):
    response = client.post("/crm/v3/objects/contacts/batch/read",
                           json={"inputs": [{"id": str(i)} for i in range(101)]})
    assert response.status_code == 400 and "at most 100" in response.json()["message"]


def test_associations_both_ways(client):
    response = client.post("/crm/v4/associations/contacts/notes/batch/read",
                           json={"inputs": [{"id": "1"}, {"id": "2"}, {"id": "9"}]})
    assert response.status_code == 207  # contact 9 has no notes
    body = response.json()
    got = {r["from"]["id"]: [t["toObjectId"] for t in r["to"]] for r in body["results"]}
    assert got == {"1": [101, 102], "2": [102]}
    assert body["results"][0]["to"][0]["associationTypes"] == [
        {"category": "HUBSPOT_DEFINED", "typeId": 201, "label": None}]
    assert body["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    back = client.post("/crm/v4/associations/note/contact/batch/read",
                       json={"inputs": [{"id": "102"}]}).json()
    assert [t["toObjectId"] for t in back["results"][0]["to"]] == [1, 2]
    assert back["results"][0]["to"][0]["associationTypes"][0]["typeId"] == 202


def test_list_and_get(client):
    page = client.get("/crm/v3/objects/contacts", params={"limit": 2, "properties": "city"}).json()
    assert ids(page) == ["1", "2"] and page["paging"]["next"]["after"] == "2"
    assert page["results"][0]["properties"]["city"] == "Paris"
    rest = client.get("/crm/v3/objects/contacts", params={"limit": 2, "after": "2"}).json()
    assert ids(rest) == ["9", "10"] and "paging" not in rest
    one = client.get("/crm/v3/objects/calls/201", params={"properties": "hs_call_title"}).json()
    assert one["properties"]["hs_call_title"] == "Follow-up"
    missing = client.get("/crm/v3/objects/contacts/404")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"


def test_properties_list_standard_seeded_and_calculated_ones(client):
    results = client.get("/crm/v3/properties/contacts").json()["results"]
    by_name = {p["name"]: p for p in results}
    assert {"firstname", "email", "hs_object_id", "visits", "loyalty_card"} <= set(by_name)
    assert by_name["hs_searchable_calculated_phone_number"]["calculated"] is True
    assert by_name["loyalty_card_normalized"]["calculated"] is True
    assert by_name["createdate"]["type"] == "datetime"
    assert set(by_name["firstname"]) >= {"name", "label", "type", "fieldType"}
    notes = {p["name"] for p in client.get("/crm/v3/properties/notes").json()["results"]}
    assert {"hs_note_body", "hs_timestamp"} <= notes and "loyalty_card_normalized" not in notes


# -- faults, rate limit, serving ------------------------------------------------------------


def test_faults_answer_the_next_requests_in_order():
    with running_crm(SEED, token=None) as (url, app):
        app.state.faults.extend([Fault(500), Fault(429, retry_after=2), Fault(None, delay=0.2)])
        first = httpx.get(f"{url}/crm/v3/properties/contacts")
        assert first.status_code == 500 and first.json()["category"] == "INTERNAL_ERROR"
        second = httpx.get(f"{url}/crm/v3/properties/contacts")
        assert second.status_code == 429 and second.headers["Retry-After"] == "2"
        assert second.json()["category"] == "RATE_LIMITS"
        started = time.monotonic()
        assert httpx.get(f"{url}/crm/v3/properties/contacts").status_code == 200
        assert time.monotonic() - started >= 0.2
        assert httpx.get(f"{url}/crm/v3/properties/contacts").status_code == 200
        assert [r["path"] for r in app.state.requests] == ["/crm/v3/properties/contacts"] * 4


def test_rate_limit_answers_429_with_retry_after():
    with running_crm(SEED, token=None, rate_limit=2) as (url, _):
        statuses = [httpx.get(f"{url}/crm/v3/properties/contacts") for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert statuses[2].headers["Retry-After"] == "1"
        assert statuses[2].json()["category"] == "RATE_LIMITS"
        assert httpx.get(f"{url}/healthz").status_code == 200  # not counted, not limited


def test_stop_releases_the_port():
    handle = serve_in_background(create_crm_app(DEMO_SEED, token=None))
    assert httpx.get(f"{handle.url}/crm/v3/objects/contacts").json()["results"]
    handle.stop()
    assert not handle.thread.is_alive()
    port = int(handle.url.rsplit(":", 1)[1])
    with socket.socket() as sock, pytest.raises(OSError):
        sock.connect(("127.0.0.1", port))


@pytest.mark.parametrize("seed,message", [
    ({"contacts": [{"id": "abc", "properties": {}}]}, "must be a number"),
    ({"contacts": [{"id": "1"}, {"id": 1}]}, "seeded twice"),
    ({"notes": [{"id": "1", "contacts": ["7"]}]}, "associated contacts id 7 is not seeded"),
    ({"contacts": [{"id": "1", "properties": ["x"]}]}, "'properties' must be an object"),
])
def test_bad_seeds_are_refused_with_the_place(seed, message):
    with pytest.raises(ValueError, match=message):
        create_crm_app(seed, token=None)


def test_load_seed_reads_json_and_the_demo_seed_is_valid(tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(SEED))
    assert load_seed(path) == SEED
    (tmp_path / "bad.json").write_text('{"contacts": {}}')
    with pytest.raises(ValueError, match="lists of objects"):
        load_seed(tmp_path / "bad.json")
    app = create_crm_app(DEMO_SEED, token=None)
    assert len(app.state.store.objects["contacts"]) == 5
    assert app.state.store.links[("contacts", "calls")]
