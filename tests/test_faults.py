"""Faults end to end: circuit breaker, read retries, request deadline, partial data.

The demo world's three SQLite shops and a CRM server on loopback whose requests the tests
count and whose answers they can make fail or hang (gateway.crm_server.Fault).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from connectors.errors import SourceUnavailable, UpstreamError
from gateway.crm_server import Fault
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.faults import BreakerOpen, BreakerState, CircuitBreaker, RetryPolicy, read_with_retries
from gateway.identity import encode_id
from tests.gateway_client import gateway_client, graphql
from tests.servers import demo_world_fixtures, unused_port

TOKEN = "faults-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}
BY_EMAIL = '{ customerByEmail(email: "EMAIL") { sourceRecords { source } } }'


world, crm, config = demo_world_fixtures(customers=40, token=TOKEN)


def by_email(world) -> str:
    return BY_EMAIL.replace("EMAIL", world.showcase["email"])


async def ready(client) -> None:
    """Wait for the start-up probe, so that it does not take a fault meant for a query."""
    for _ in range(200):
        if (await client.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not become ready")


def sources_of(body) -> set[str]:
    return {r["source"] for r in body["data"]["customerByEmail"]["sourceRecords"]}


def no_leak(body, *secrets: str) -> None:
    text = str(body)
    for secret in ("127.0.0.1", "Traceback", "SELECT", *secrets):
        assert secret not in text, secret


async def test_breaker_opens_after_n_failures_then_answers_without_calling(world, config, crm):
    url, app = crm
    async with gateway_client(config, environ=ENV, breaker_failures=2,
                              breaker_cooldown_seconds=600, read_retries=0) as client:
        await ready(client)
        app.state.faults.extend([Fault(500)] * 100)
        for _ in range(2):
            failing = await graphql(client, by_email(world))
            assert [e["extensions"]["source"] for e in failing["errors"]] == ["crm"]
        breaker = client.app.state.live.current.sources.get("crm").breaker
        assert breaker.state is BreakerState.OPEN
        app.state.faults.clear()
        seen = len(app.state.requests)
        body = await graphql(client, by_email(world))
        readiness = await client.get("/readyz")
    assert len(app.state.requests) == seen, "a short-circuited call reached the CRM"
    assert readiness.status_code == 200 and readiness.json()["sources"] == {
        "paris": "ready", "london": "ready", "berlin": "ready", "crm": "breaker-open"}
    assert sources_of(body) == {"paris", "london", "berlin"}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "SOURCE_UNAVAILABLE", "source": "crm"}
    assert "circuit breaker open" in error["message"] and "next trial call in" in error["message"]
    no_leak(body, url.rsplit(":", 1)[-1])


async def test_after_the_cooldown_a_successful_trial_closes_the_breaker(world, config, crm):
    _, app = crm
    async with gateway_client(config, environ=ENV, breaker_failures=1,
                              breaker_cooldown_seconds=0.3, read_retries=0) as client:
        await ready(client)
        app.state.faults.extend([Fault(500)] * 100)
        await graphql(client, by_email(world))
        breaker = client.app.state.live.current.sources.get("crm").breaker
        assert breaker.state is BreakerState.OPEN
        app.state.faults.clear()
        await asyncio.sleep(0.5)  # past the cool-down: the next call is the trial
        await graphql(client, by_email(world))
        assert breaker.state is BreakerState.CLOSED
        body = await graphql(client, by_email(world))
    assert "errors" not in body, body
    assert sources_of(body) == {"paris", "london", "berlin", "crm"}


@pytest.mark.parametrize("retries, recovered", [(1, True), (0, False)])
async def test_a_transient_failure_is_retried(world, config, crm, retries, recovered):
    """Rate limited four times: the CRM client's own retries (3) are spent, the read retry is not."""
    _, app = crm
    async with gateway_client(config, environ=ENV, read_retries=retries) as client:
        await ready(client)
        app.state.faults.extend([Fault(429, retry_after=0)] * 4)
        body = await graphql(client, by_email(world))
    assert ("errors" not in body) is recovered, body
    # Not recovered, the CRM is not asked again in this request (it is rate limiting us): the
    # answer is the shops' part.
    assert ("crm" in sources_of(body)) is recovered


async def test_an_error_answer_is_not_retried(world, config, crm):
    _, app = crm
    async with gateway_client(config, environ=ENV, read_retries=3) as client:
        await ready(client)
        seen = len(app.state.requests)
        app.state.faults.extend([Fault(500)] * 3)  # the CRM client tries 1 + 2 times
        body = await graphql(client, by_email(world))
        app.state.faults.clear()
    assert [e["extensions"] for e in body["errors"]] == [{"code": "SOURCE_ERROR", "source": "crm"}]
    failed = [r for r in app.state.requests[seen:] if "search" in r["path"]]
    assert len(failed) >= 3 and not app.state.faults


async def test_the_deadline_cuts_a_hung_source_and_keeps_the_others(world, config, crm):
    _, app = crm
    first = world.truth["customers"][0]["records"]
    query = "query($id: ID!) { customer(id: $id) { sourceRecords { source } } }"
    # One round of linking: every source is asked once, together, after the record is read.
    async with gateway_client(config, environ=ENV, request_deadline_seconds=1.5,
                              identity_hops=1) as client:
        await ready(client)
        app.state.faults.append(Fault(None, delay=30))  # the CRM's next answer hangs
        started = time.monotonic()
        body = await graphql(client, query, id=encode_id("paris", first["paris"]))
        took = time.monotonic() - started
        breaker = client.app.state.live.current.sources.get("crm").breaker
    assert took < 15, "the deadline did not cut the hung call"  # generous: it is 1.5 s
    found = {r["source"] for r in body["data"]["customer"]["sourceRecords"]}
    assert found >= {"paris", "london"}
    errors = body["errors"]
    assert [e["extensions"] for e in errors] == [{"code": "SOURCE_TIMEOUT", "source": "crm"}]
    assert "deadline" in errors[0]["message"]
    no_leak(body)
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive == 0


async def test_refused_connection_is_unavailable_and_names_no_host(world, config):
    path = Path(config)
    port = unused_port()
    path.write_text(re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{port}", path.read_text()))
    async with gateway_client(path, environ=ENV, read_retries=1) as client:
        body = await graphql(client, by_email(world))
    assert sources_of(body) == {"paris", "london", "berlin"}
    assert [e["extensions"] for e in body["errors"]] == [
        {"code": "SOURCE_UNAVAILABLE", "source": "crm"}]
    no_leak(body, str(port))


# -- the parts on their own ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_lets_one_trial_through_after_the_cooldown_and_reopens_if_it_fails():
    clock = Clock()
    breaker = CircuitBreaker("crm", failures=2, cooldown=10, clock=clock)
    breaker.before_call()
    breaker.failed()
    breaker.before_call()  # one failure: still closed
    breaker.failed()
    with pytest.raises(BreakerOpen, match=r"next trial call in 10s"):
        breaker.before_call()
    clock.now += 10
    breaker.before_call()  # the trial
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(BreakerOpen, match="trial call is under way"):
        breaker.before_call()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen):
        breaker.before_call()
    clock.now += 10
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


async def test_reads_retry_transient_errors_only():
    calls: list[str] = []

    async def flaky() -> str:
        calls.append("flaky")
        if len(calls) == 1:
            raise SourceUnavailable("crm", "connection lost")
        return "rows"

    async def broken() -> str:
        calls.append("broken")
        raise UpstreamError("crm", "HTTP 500")

    policy = RetryPolicy(retries=2, backoff=0.001)
    assert await read_with_retries(flaky, policy) == "rows"
    assert calls == ["flaky", "flaky"]
    with pytest.raises(UpstreamError):
        await read_with_retries(broken, policy)
    assert calls.count("broken") == 1


async def test_a_source_that_timed_out_is_not_asked_again_in_the_same_request(world, config, crm):
    _, app = crm
    config.write_text(config.read_text().replace("  crm:\n    kind: crm\n",
                                                 "  crm:\n    kind: crm\n    timeout: 0.5\n", 1))
    query = ('{ customerByEmail(email: "EMAIL") { sourceRecords { source } '
             'interactions(first: 5) { subject } } }').replace("EMAIL", world.showcase["email"])
    async with gateway_client(config, environ=ENV, read_retries=0) as client:
        await ready(client)
        seen = len(app.state.requests)
        app.state.faults.extend([Fault(None, delay=30)] * 10)  # every CRM answer hangs
        body = await graphql(client, query)
        app.state.faults.clear()
    # One hung call, not one per identity round and engagement type: the request then
    # answers within about one source timeout.
    assert len(app.state.requests) - seen == 1
    assert sources_of(body) == {"paris", "london", "berlin"}
    assert [e["extensions"] for e in body["errors"]] == [{"code": "SOURCE_TIMEOUT", "source": "crm"}]
    assert body["data"]["customerByEmail"]["interactions"] == []
