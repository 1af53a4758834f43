"""S4 of ``direct_path.py``: the gateway with one source hung and with one source down.

Hung: the CRM answers every request a minute late (``gateway.crm_server.Fault(None, delay=60)``
queued on its app), its ``timeout:`` is 1 s. Down: london's port is one nothing listens on
(connection refused), its ``timeout:`` is 1 s. Goals: the answer comes within the sick
source's timeout + 10%, with the healthy sources' data and one error for the sick one; once
the breaker is open, a short-circuited call costs under 5 ms.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from gateway_harness import Gateway, config_variant, running_gateway, with_source_option
from timing import Goal, ms, percentile, timed

import gateway.resolver
from gateway.crm_server import Fault

HUNG_TIMEOUT = 1.0  # the CRM's `timeout:` while it hangs
DOWN_TIMEOUT = 1.0  # london's `timeout:` while its port refuses connections
SHOPS = {"paris", "london", "berlin"}
#: Asks the gateway for the i-th S1 customer; the answer's one root field is the customer.
Ask = Callable[[Gateway, int], Awaitable[dict]]


def sources_and_errors(body: dict) -> tuple[set[str], list[tuple[str, str]]]:
    found = next(iter((body.get("data") or {}).values()), None)
    sources = {r["source"] for r in found["sourceRecords"]} if found else set()
    return sources, [(e["extensions"].get("code"), e["extensions"].get("source"))
                     for e in body.get("errors") or []]


async def hung_source(config_path: Path, environ: Mapping[str, str], trips: Counter[str],
                      crm_app: Any, ask: Ask) -> list[Goal]:
    """The CRM hung: three S1 requests on a fresh gateway (its breaker closed at first)."""
    path = config_variant(config_path, "bench-s4-hung.yaml",
                          lambda t: with_source_option(t, "crm", f"timeout: {HUNG_TIMEOUT:g}"))
    goals = []
    # The hung answers wake up a minute later to clients that left: the CRM server logs each
    # one's ClientDisconnect. Expected here, so silenced.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    async with running_gateway(path, environ, trips) as gw:
        crm_app.state.faults.extend([Fault(None, delay=60)] * 10_000)
        try:
            for i in range(3):
                took, body = await timed(lambda i=i: ask(gw, i))
                sources, errors = sources_and_errors(body)
                print(f"S4 CRM hung (timeout {HUNG_TIMEOUT:g} s), request {i + 1}: answered in "
                      f"{ms(took)}; sources {sorted(sources)}; errors {errors}; CRM breaker "
                      f"{gw.source('crm').breaker.state.value}", flush=True)
                if i == 0:
                    goals.append(Goal(
                        f"S4 hung CRM: answered within its timeout + 10% "
                        f"({HUNG_TIMEOUT * 1.1:g} s), shops' data, one SOURCE_TIMEOUT",
                        f"{took:.3f} s, shops present: {SHOPS <= sources}, errors {errors}",
                        took <= HUNG_TIMEOUT * 1.1 and SHOPS <= sources
                        and errors == [("SOURCE_TIMEOUT", "crm")]))
        finally:
            crm_app.state.faults.clear()
    return goals


async def down_source(config_path: Path, environ: Mapping[str, str], trips: Counter[str],
                      ask: Ask, healthy_p50: float, requests: int = 20) -> list[Goal]:
    """london refusing connections: until its breaker opens, then with the breaker open."""
    with socket.socket() as sock:  # a port nothing listens on: bind, note, release
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = config_variant(config_path, "bench-s4-down.yaml", lambda t: with_source_option(
        re.sub(r"port: 3306\b", f"port: {port}", t), "london", f"timeout: {DOWN_TIMEOUT:g}"))
    # The readiness probe warns about london every ready_retry_seconds: expected here.
    logging.getLogger("panorama.sources").setLevel(logging.ERROR)
    async with running_gateway(path, environ, trips) as gw:
        breaker = gw.source("london").breaker
        opened_after, answers = None, []
        for i in range(requests):
            took, body = await timed(lambda i=i: ask(gw, i))
            answers.append(took)
            if opened_after is None and breaker.state.value == "open":
                opened_after = i + 1
        _, errors = sources_and_errors(body)
        print(f"S4 london down (timeout {DOWN_TIMEOUT:g} s): first answer in {ms(answers[0])}, "
              f"slowest of {requests} {ms(max(answers))}; breaker open after {opened_after} "
              f"requests; errors of the last {errors}", flush=True)
        goals = [Goal(f"S4 london down: answered within its timeout + 10% "
                      f"({DOWN_TIMEOUT * 1.1:g} s), one SOURCE_UNAVAILABLE",
                      f"slowest {max(answers):.3f} s, errors {errors}",
                      max(answers) <= DOWN_TIMEOUT * 1.1
                      and errors == [("SOURCE_UNAVAILABLE", "london")])]
        short, answered = await with_breaker_open(gw, ask)
    p99 = percentile(short, 99) if short else float("nan")
    print(f"S4 london's breaker open: S1 answered p50 {ms(percentile(answered, 50))} (healthy "
          f"S1 p50 {ms(healthy_p50)}); {len(short)} short-circuited calls, p50 "
          f"{ms(percentile(short, 50)) if short else '-'}, p99 {ms(p99)}", flush=True)
    goals.append(Goal("S4 short-circuited call (breaker open) < 5 ms (p99)", ms(p99),
                      p99 < 0.005 if short else None))
    return goals


async def with_breaker_open(gw: Gateway, ask: Ask, requests: int = 50
                            ) -> tuple[list[float], list[float]]:
    """Seconds of each short-circuited london call (the resolver's ``call_source``, timed from
    outside) and of each whole answer, over ``requests`` S1 requests."""
    real = gateway.resolver.call_source
    short: list[float] = []

    async def timed_call(source: str, breaker: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await real(source, breaker, *args)
        finally:
            if source == "london" and breaker.state.value == "open":
                short.append(time.perf_counter() - started)

    gateway.resolver.call_source = timed_call  # type: ignore[assignment]
    try:
        answered = [(await timed(lambda i=i: ask(gw, i)))[0] for i in range(requests)]
    finally:
        gateway.resolver.call_source = real  # type: ignore[assignment]
    return short, answered
