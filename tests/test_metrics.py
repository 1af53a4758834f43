"""Observability: Prometheus metrics, request ids, JSON logs, optional spans; no personal data.

The demo world's three SQLite shops and a CRM server on loopback (as in tests/test_execution.py).
"""

from __future__ import annotations

import asyncio
import logging
import re

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.crm_server import Fault
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.faults import BreakerState
from gateway.logs import JsonFormatter
from gateway.metrics import OperationNames
from gateway.schema import build_schema
from tests.gateway_client import gateway_client
from tests.servers import demo_world_fixtures

TOKEN = "metrics-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}
NAMED = 'query Lookup { customerByEmail(email: "%s") { id name { given } emails { address } } }'
BY_VARIABLE = "query ($e: String!) { customerByEmail(email: $e) { id transactions(first: 3) { status } } }"
SOURCES = "{ sources { name ready } }"


world, crm, config = demo_world_fixtures(customers=40, token=TOKEN)


async def post(client, query: str, explain: bool = True, **variables) -> dict:
    response = await client.post("/graphql", json={
        "query": query, "variables": variables, "extensions": {"explain": explain}})
    assert response.status_code == 200, response.text
    return response.json()


async def scrape(client) -> tuple[str, dict[tuple[str, tuple], float]]:
    """The /metrics text and its samples: (name, sorted labels) -> value."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def ready(client) -> None:
    for _ in range(200):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not become ready")


async def test_request_and_source_histograms_count_what_was_asked(world, config):
    email = world.showcase["email"]
    expected: dict[tuple[str, str], int] = {}
    cache_hits = 0
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60) as client:
        await ready(client)
        bodies = [await post(client, NAMED % email) for _ in range(3)]  # 2nd, 3rd: cached
        bodies += [await post(client, BY_VARIABLE, e=email) for _ in range(2)]
        bodies.append(await post(client, SOURCES))
        for body in bodies:
            assert "errors" not in body, body
            for call in body.get("extensions", {}).get("explain", {}).get("calls", []):
                if call["cached"]:
                    cache_hits += 1
                else:
                    key = (call["source"], call["step"])
                    expected[key] = expected.get(key, 0) + 1
        text, samples = await scrape(client)
        runtime = client.app.state.live.current
    count = "panorama_request_seconds_count"
    assert value(samples, count, operation="Lookup", status="ok") == 3
    assert value(samples, count, operation="customerByEmail", status="ok") == 2
    assert value(samples, count, operation="sources", status="ok") == 1
    assert sum(v for (name, _), v in samples.items() if name == count) == 6
    # One observation per call that reached a source, exactly as the plans list them.
    seen = {(dict(labels)["source"], dict(labels)["step"]): v for (name, labels), v
            in samples.items() if name == "panorama_source_call_seconds_count"}
    assert seen == expected and expected, (seen, expected)
    assert cache_hits > 0
    hits = sum(v for (name, _), v in samples.items() if name == "panorama_cache_hits_total")
    assert hits == cache_hits
    assert sum(v for (name, _), v in samples.items() if name == "panorama_cache_misses_total") > 0
    assert not any(name == "panorama_source_errors_total" for name, _ in samples)
    for source in ("paris", "london", "berlin", "crm"):
        assert value(samples, "panorama_circuit_state", source=source) == 0
    for shop in ("paris", "london", "berlin"):  # SQL sources have a pool; the CRM has none
        assert value(samples, "panorama_pool_connections", source=shop) >= 1
        assert value(samples, "panorama_pool_max_connections", source=shop) >= 1
    assert value(samples, "panorama_pool_connections", source="crm") is None
    assert value(samples, "panorama_config_version") == runtime.version
    assert email not in text and "example" not in text


async def test_circuit_state_gauge_follows_the_breaker(world, config, crm):
    _, crm_app = crm
    async with gateway_client(config, environ=ENV, breaker_failures=2,
                              breaker_cooldown_seconds=600, read_retries=0) as client:
        await ready(client)
        _, before = await scrape(client)
        crm_app.state.faults.extend([Fault(500)] * 100)
        for _ in range(2):
            body = await post(client, NAMED % world.showcase["email"], explain=False)
            assert [e["extensions"]["source"] for e in body["errors"]] == ["crm"]
        assert client.app.state.live.current.sources.get("crm").breaker.state is BreakerState.OPEN
        _, after = await scrape(client)
        crm_app.state.faults.clear()
    assert value(before, "panorama_circuit_state", source="crm") == 0
    assert value(after, "panorama_circuit_state", source="crm") == 2
    assert value(after, "panorama_circuit_state", source="paris") == 0
    assert value(after, "panorama_request_seconds_count", operation="Lookup", status="partial") == 2
    errors = {dict(labels)["code"]: v for (name, labels), v in after.items()
              if name == "panorama_source_errors_total" and dict(labels)["source"] == "crm"}
    assert errors and sum(errors.values()) >= 2 and all(c.startswith("SOURCE_") for c in errors)


async def test_request_id_is_echoed_when_safe_and_generated_otherwise(config):
    async with gateway_client(config, environ=ENV) as client:
        echoed = await client.get("/healthz", headers={"x-request-id": "abc-123.DEF_9"})
        generated = await client.post("/graphql", json={"query": SOURCES})
        unsafe = await client.get("/healthz", headers={"x-request-id": "a b<script>"})
        too_long = await client.get("/healthz", headers={"x-request-id": "a" * 65})
    assert echoed.headers["x-request-id"] == "abc-123.DEF_9"
    for response in (generated, unsafe, too_long):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert generated.headers["x-request-id"] != unsafe.headers["x-request-id"]
    assert echoed.headers.get_list("x-request-id") == ["abc-123.DEF_9"]


async def test_json_logs_carry_the_request_id_and_no_personal_data(world, config, crm, caplog):
    email = world.showcase["email"]
    _, crm_app = crm
    caplog.set_level(logging.INFO)
    # `panorama` (run in-process by other tests) turns httpx down to warnings for good.
    caplog.set_level(logging.INFO, logger="httpx")
    async with gateway_client(config, environ=ENV, log_format="json", read_retries=0) as client:
        await ready(client)
        caplog.clear()
        first = await client.post("/graphql", json={"query": NAMED % email},
                                  headers={"x-request-id": "req-one"})
        crm_app.state.faults.append(Fault(500))  # a source failure: a warning is logged
        second = await client.post("/graphql", json={"query": BY_VARIABLE, "variables": {"e": email}})
        third = await client.get("/graphql", params={"query": NAMED % email})
        # Rejected values are echoed in graphql-core's messages, which strawberry logs.
        invalid = await client.post("/graphql", json={
            "query": f'{{ customers(first: "{email}") {{ edges {{ node {{ id }} }} }} }}'})
        metrics_text = (await client.get("/metrics")).text
    assert first.status_code == second.status_code == third.status_code == 200
    # Not the gateway's: the test client's own httpx lines (they carry the GET's query string).
    records = [r for r in caplog.records if "http://panorama/" not in r.getMessage()]
    lines = [JsonFormatter().format(record) for record in records]
    entries = [orjson.loads(line) for line in lines]
    assert entries, "the requests logged nothing"
    for entry in entries:
        assert set(entry) >= {"ts", "level", "logger", "message", "request_id"}
    access = [e for e in entries if e["logger"] == "panorama.http"]
    assert [e["request_id"] for e in access[:3]] == [
        "req-one", second.headers["x-request-id"], third.headers["x-request-id"]]
    assert len(access) == 5 and "/metrics" in access[4]["message"]
    assert any(e["logger"].startswith("strawberry") and e["request_id"] == invalid.headers[
        "x-request-id"] for e in entries), "the invalid query's error was logged"
    ids = {"req-one", second.headers["x-request-id"], third.headers["x-request-id"]}
    crm_calls = [e for e in entries if e["logger"] == "httpx"]  # the gateway's CRM connector
    assert crm_calls and all(e["request_id"] in ids for e in crm_calls)
    assert "operation=Lookup" in access[0]["message"]
    assert "/graphql" in access[2]["message"] and "query" not in access[2]["message"]
    for text in [*lines, metrics_text]:
        assert email not in text and email.split("@")[0] not in text
        assert email.split("@")[1] not in text


async def test_metrics_enabled_false_gives_404(config):
    async with gateway_client(config, environ=ENV, metrics_enabled=False) as client:
        response = await client.get("/metrics")
        ok = await client.post("/graphql", json={"query": SOURCES})
    assert response.status_code == 404
    assert ok.status_code == 200 and "x-request-id" in ok.headers


def test_operation_label_is_a_bounded_set_of_schema_names():
    names = OperationNames({"query": frozenset({"customer", "customers", "sources"})}, limit=3)
    assert names.of('query Mine { customer(id: "x") { id } }') == "Mine"
    assert names.of('{ b: customers(filter: {email: "a@b.c"}) { edges { node { id } } } '
                    'a: customer(id: "secret") { id } }') == "customer,customers"
    assert names.of('{ unknownField(email: "a@b.c") }') == "anonymous"
    assert names.of("{ __typename }") == "__typename"
    assert names.of("not graphql") == names.of(None) == names.of("") == "anonymous"
    assert names.of("query A { sources { name } } query B { sources { name } }") == "anonymous"
    assert names.of("query A { sources { name } } query B { sources { name } }", "B") == "other"
    assert names.of("query Mine { sources { name } }") == "Mine"  # seen before the cap
    assert names.seen == {"Mine", "customer,customers", "__typename"}


def test_operation_label_uses_the_served_schema():
    from gateway.metrics import root_fields_of

    fields = root_fields_of(build_schema())
    assert fields is not None and {"customer", "customerByEmail", "sources"} <= fields["query"]


async def test_spans_per_source_call_when_tracing_is_enabled(world, config):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    email = world.showcase["email"]
    async with gateway_client(config, environ=ENV, tracing_enabled=True) as client:
        await ready(client)
        body = await post(client, NAMED % email)
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.name == "graphql Lookup"]
    calls = [s for s in spans if s.name.startswith("source ")]
    assert len(calls) == len(body["extensions"]["explain"]["calls"])
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id for s in calls)
    assert {s.attributes["panorama.source"] for s in calls} == {"paris", "london", "berlin", "crm"}
    assert email not in str([dict(s.attributes) for s in spans])


async def test_refused_and_invalid_requests_are_counted_without_their_text(config):
    async with gateway_client(config, environ=ENV) as client:
        invalid = await client.post("/graphql", json={"query": '{ nope(email: "x@y.z") }'})
        async with gateway_client(config, environ=ENV, principal=None) as anonymous:
            refused = await anonymous.post("/graphql", json={"query": SOURCES})
            _, theirs = await scrape(anonymous)
        text, samples = await scrape(client)
    assert refused.status_code == 401
    # Refused before the body was read: no operation to name.
    assert value(theirs, "panorama_request_seconds_count", operation="anonymous", status="error") == 1
    status = "error" if invalid.status_code >= 400 else "ok"
    assert value(samples, "panorama_request_seconds_count", operation="anonymous",
                 status=status) == 1
    assert "x@y.z" not in text and "nope" not in text


def test_text_logs_do_not_echo_rejected_values_either():
    """graphql-core quotes a rejected value in its message; strawberry logs it."""
    import io

    from gateway.logs import configure_logging

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        configure_logging("text")
        try:
            raise ValueError('Int cannot represent non-integer value: "jo@example.org"')
        except ValueError:
            logging.getLogger("strawberry.execution").exception(
                'Expected "%s"', "jo@example.org")
        logging.getLogger("panorama.app").warning("a gateway line stays as written")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "jo@example.org" not in text and 'Expected "…"' in text
    assert "ValueError" in text and "a gateway line stays as written" in text
