"""Limits and hardening of /graphql (docs/security.md): each limit at its boundary, nothing sent
to a source for a refused query, 413, 415, batches, GET mutations, field suggestions by role
and the correlation id of an internal error; the demo's example queries pass the defaults."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.demo.run import DEMO_TOKEN_ENV, example_queries
from gateway.hardening import Estimate, Limits
from gateway.principal import Principal
from gateway.resolver import Resolver
from gateway.settings import Settings
from tests.gateway_client import gateway_client
from tests.servers import demo_world_fixtures

TOKEN = "hardening-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}
DEEP5 = "{ customers(first: 1) { edges { node { emails { address } } } } }"  # 5 fields deep
DEEP6 = "{ customers(first: 1) { edges { node { emails { sources { source } } } } } }"
PAGE = "{ customers(first: %d) { edges { node { id } } } }"  # cost 1 + n * 3


world, crm, config = demo_world_fixtures(customers=40, token=TOKEN)


@pytest.fixture
def source_calls(monkeypatch):
    """Every call the resolver makes that reads a source (SQL shops and the CRM alike)."""
    calls: list[str] = []
    for name in ("by_id", "by_key", "page", "children"):
        original = getattr(Resolver, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Resolver, name, spy)
    return calls


async def post(client, query: str, **json):
    response = await client.post("/graphql", json={"query": query, **json})
    assert response.status_code == 200, response.text
    return response.json()


async def ready(client) -> None:
    """Every source probed once (the readiness probe calls the CRM, not the query)."""
    for _ in range(200):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway never got ready")


def codes(body: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


def test_the_defaults_are_graphql_armor_s():
    settings = Settings()
    assert (settings.max_query_depth, settings.max_aliases, settings.max_tokens,
            settings.max_directives, settings.max_query_cost, settings.max_body_bytes) == (
        10, 15, 2000, 50, 20_000, 1_048_576)


def braced(*selections: str) -> str:
    return "{ " + " ".join(selections) + " }"


ALIASED = [f"a{i}: sources {{ name }}" for i in range(16)]
DIRECTED = ["__typename @include(if: true)"] * 51


@pytest.mark.parametrize(("setting", "value", "passing", "failing", "code"), [
    ("max_query_depth", 5, DEEP5, DEEP6, "QUERY_TOO_DEEP"),
    ("max_aliases", 15, braced(*ALIASED[:15]), braced(*ALIASED), "TOO_MANY_ALIASES"),
    ("max_directives", 50, braced(*DIRECTED[:50]), braced(*DIRECTED), "TOO_MANY_DIRECTIVES"),
    # 6 tokens, then comments (which count: a padded document is no cheaper to read).
    ("max_tokens", 2000, "{ sources { name } }" + "\n#" * 1994,
     "{ sources { name } }" + "\n#" * 1995, "TOO_MANY_TOKENS"),
    ("max_query_cost", 7, PAGE % 2, PAGE % 3, "QUERY_TOO_COSTLY"),
])
async def test_each_limit_at_its_boundary_and_one_over(config, crm, source_calls, setting, value,
                                                       passing, failing, code):
    _, app = crm
    async with gateway_client(config, environ=ENV, **{setting: value}) as client:
        await ready(client)
        ok = await post(client, passing)
        assert "errors" not in ok, ok["errors"]
        before, crm_before = len(source_calls), len(app.state.requests)
        refused = await post(client, failing)
        assert refused["data"] is None
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == code
        assert setting in error["message"] and str(value) in error["message"]
        assert error["extensions"]["setting"] == setting and error["extensions"]["limit"] == value
        if code != "TOO_MANY_TOKENS":  # the parser stops counting there: "more than" it
            assert error["extensions"]["found"] > value
        # Refused before execution: no resolver read a source, the CRM got no request.
        assert len(source_calls) == before and len(app.state.requests) == crm_before


async def test_a_costly_query_is_refused_under_the_defaults_without_a_source_call(
        config, crm, source_calls):
    _, app = crm
    query = ("{ customers(first: 100) { edges { node { transactions(first: 100) "
             "{ amount { amount } } interactions(first: 100) { subject } } } } }")
    async with gateway_client(config, environ=ENV, max_page_size=100) as client:
        await ready(client)
        crm_before = len(app.state.requests)
        body = await post(client, query)
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    assert "estimated cost of 30401" in body["errors"][0]["message"]
    assert source_calls == [] and len(app.state.requests) == crm_before


async def test_the_cost_counts_a_variable_s_value(config, source_calls):
    query = "query($n: Int) { customers(first: $n) { edges { node { id } } } }"
    async with gateway_client(config, environ=ENV, max_query_cost=7) as client:
        ok = await post(client, query, variables={"n": 2})
        refused = await post(client, query, variables={"n": 3})
    assert "errors" not in ok and len(ok["data"]["customers"]["edges"]) == 2
    assert codes(refused) == ["QUERY_TOO_COSTLY"] and refused["errors"][0]["extensions"]["found"] == 10


async def test_every_demo_example_query_passes_the_defaults(config, world):
    async with gateway_client(config, environ=ENV) as client:
        for title, query in example_queries(world.showcase):
            body = await post(client, query)
            assert "errors" not in body, (title, body["errors"])


def test_the_cost_estimate_reads_variables_and_counts_fragments_once():
    from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

    from gateway.schema import build_schema

    schema = build_schema()._schema
    limits = Limits.of(Settings())

    def estimate(query: str, **variables):
        document = parse(query)
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        operation = document.definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        return Estimate(schema, operation, fragments, limits, variables).operation(operation)

    assert estimate(PAGE % 2).cost == 7
    variable = "query($n: Int) { customers(first: $n) { edges { node { id } } } }"
    assert estimate(variable, n=4).cost == 1 + 4 * 3  # the request's value
    assert estimate(variable).cost == 1 + 20 * 3  # none: default_page_size, as the resolver
    assert estimate(variable.replace("Int)", "Int = 5)")).cost == 1 + 5 * 3
    assert estimate(PAGE % 5000).cost == 1 + 100 * 3  # over max_page_size: refused anyway
    # Fragments that each spread the next one twice: figures grow, the walk does not.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    figures = estimate("{ ...F0 } " + chain + " fragment F40 on Query { sources { name } }")
    assert figures.cost == 21 * 2 ** 40


async def test_a_body_over_max_body_bytes_gets_413(config, source_calls):
    async with gateway_client(config, environ=ENV, max_body_bytes=200) as client:
        at_limit = b'{"query": "{ sources { name } }"}'.ljust(200)
        ok = await client.post("/graphql", content=at_limit,
                               headers={"content-type": "application/json"})
        over = await client.post("/graphql", content=at_limit + b" ",
                                 headers={"content-type": "application/json"})
    assert ok.status_code == 200 and "errors" not in ok.json()
    assert over.status_code == 413
    (error,) = over.json()["errors"]
    assert error["extensions"]["code"] == "BODY_TOO_LARGE" and "max_body_bytes" in error["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])
async def test_only_json_and_graphql_bodies_are_accepted(config, content_type):
    async with gateway_client(config, environ=ENV) as client:
        response = await client.post("/graphql", content=b'{"query": "{ sources { name } }"}',
                                     headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json; charset=utf-8", b'{"query": "{ sources { name } }"}'),
    ("application/graphql-response+json", b'{"query": "{ sources { name } }"}'),
    ("application/graphql", b"{ sources { name } }"),
])
async def test_the_accepted_content_types_run(config, content_type, body):
    async with gateway_client(config, environ=ENV) as client:
        response = await client.post("/graphql", content=body,
                                     headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["sources"]


async def test_a_batch_gets_400_naming_that_batching_is_off(config, source_calls):
    async with gateway_client(config, environ=ENV) as client:
        response = await client.post("/graphql", json=[{"query": "{ sources { name } }"}] * 2)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BATCHING_DISABLED"
    assert "max_batch_operations" in error["message"]


async def test_get_never_runs_a_mutation(config, monkeypatch):
    from gateway.schema_cache import CacheMutation  # noqa: F401 (the mutation exists)

    async with gateway_client(config, environ=ENV) as client:
        response = await client.get("/graphql", params={
            "query": 'mutation { objectTo(purpose: "marketing") { purpose } }'})
        query = await client.get("/graphql", params={"query": "{ sources { name } }"})
    assert response.status_code == 400 and "mutation" in response.text.lower()
    assert query.status_code == 200 and query.json()["data"]["sources"]


async def test_no_field_suggestions_for_a_role_that_may_not_introspect(config):
    customer = Principal("c", ("customer",), customer_id="cus_x", purpose="self_service")
    async with gateway_client(config, environ=ENV, principal=customer) as client:
        body = await post(client, "{ me { consent } }")
    message = body["errors"][0]["message"]
    assert "Cannot query field 'consent'" in message and "Did you mean" not in message
    assert "consents" not in message


async def test_field_suggestions_stay_for_admin(config):
    async with gateway_client(config, environ=ENV) as client:
        body = await post(client, "{ sources { nmae } }")
    assert "Did you mean 'name'?" in body["errors"][0]["message"]


async def test_an_internal_error_carries_the_correlation_id_it_is_logged_with(
        config, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("secret host db.internal:5432")

    monkeypatch.setattr("gateway.schema.to_e164", boom)
    with caplog.at_level(logging.ERROR, logger="panorama.hardening"):
        async with gateway_client(config, environ=ENV) as client:
            body = await post(client, '{ customerByPhone(phone: "0612345678") { id } }')
    (error,) = body["errors"]
    assert "db.internal" not in error["message"] and "Internal error" in error["message"]
    correlation = error["extensions"]["correlationId"]
    assert error["extensions"]["code"] == "INTERNAL_ERROR"
    (record,) = [r for r in caplog.records if correlation in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "db.internal" in str(record.exc_info[1])
