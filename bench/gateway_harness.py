"""The gateway in this process for ``direct_path.py``, and the counters of its round trips.

The gateway is built exactly as ``tests/gateway_client.py`` builds it (``create_app`` under its
lifespan, an httpx client on ``httpx.ASGITransport``, an admin token minted with the config's
own secret). Round trips to the sources are counted outside the gateway's code: each SQL
source's ``driver.rows`` is wrapped (one call = one statement), and the CRM app is served
behind :class:`CountingASGI` (one call = one HTTP request).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import create_app
from gateway.auth import mint_token
from gateway.config import load_config
from gateway.settings import Settings

#: Every round trip counted since the caller last cleared it: "source: SQL" or "crm: POST /path".
TRAIL: list[str] = []
#: Settings every gateway of the run gets (``--set`` of direct_path.py); a scenario's own win.
GATEWAY_SETTINGS: dict[str, Any] = {}
#: Who asks: an admin acting for the purpose under which the demo policy shows everything.
ADMIN = {"subject": "bench-admin", "roles": ("admin",), "purpose": "administration"}


class CountingASGI:
    """Counts the requests that reach an ASGI app under ``/crm/``, and the seconds the app
    spent answering them (middleware ``cls(app, counter)``)."""

    def __init__(self, app: ASGIApp, counter: Counter[str]) -> None:
        self.app, self.counter = app, counter
        self.state = getattr(app, "state", None)  # the CRM's fault queue stays reachable
        self.in_flight, self.since = 0, 0.0  # only the CRM server's thread touches these

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/crm/"):
            await self.app(scope, receive, send)
            return
        self.counter["http"] += 1
        TRAIL.append(f"crm: {scope['method']} {scope['path']}")
        # The stand-in runs in this process (one GIL): the time it had a request in hand is
        # time the caller waited. Concurrent requests overlap: count their union, once.
        if not self.in_flight:
            self.since = time.perf_counter()
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.counter["crm_seconds"] += time.perf_counter() - self.since


def count_statements(app: Any, counter: Counter[str]) -> None:
    """Count every statement the gateway's SQL connectors send, per request and per source."""
    for source in app.state.live.current.sources:
        driver = getattr(source.connector, "driver", None)
        if driver is None:
            continue
        rows = driver.rows

        @functools.wraps(rows)
        async def counted(sql: str, params: Any, _rows: Callable = rows,
                          _name: str = source.name) -> Any:
            counter["sql"] += 1
            counter[f"sql:{_name}"] += 1
            TRAIL.append(f"{_name}: {' '.join(sql.split())}")
            return await _rows(sql, params)

        driver.rows = counted


class Gateway:
    """An in-process gateway and the client that talks to it."""

    def __init__(self, app: Any, client: httpx.AsyncClient) -> None:
        self.app, self.client = app, client

    async def query(self, query: str, **variables: Any) -> dict:
        response = await self.client.post(
            "/graphql", content=orjson.dumps({"query": query, "variables": variables}),
            headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.text[:500]}")
        return orjson.loads(response.content)

    def source(self, name: str) -> Any:
        return self.app.state.live.current.sources.get(name)


@contextlib.asynccontextmanager
async def running_gateway(config_path: Path, environ: Mapping[str, str], counter: Counter[str],
                          **settings: Any) -> AsyncIterator[Gateway]:
    """The gateway for a config, ready (every source answered its probe, unless one is down)."""
    config = load_config(config_path, environ)
    assert config.auth is not None and config.auth.jwt is not None, "the config needs auth:"
    token = mint_token(config.auth.jwt, ttl_seconds=24 * 3600, **ADMIN)  # type: ignore[arg-type]
    app = create_app(Settings.load(overrides={"config": str(config_path), **GATEWAY_SETTINGS,
                                              **settings}), config)
    count_statements(app, counter)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://panorama",
                                     headers={"authorization": f"Bearer {token}"}) as client:
            gateway = Gateway(app, client)
            for _ in range(100):  # the start-up probe: its pings must not count as a request's
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            yield gateway


def config_variant(config_path: Path, name: str, edit: Callable[[str], str]) -> Path:
    """A copy of the config next to it (relative paths keep working), edited as text."""
    text = config_path.read_text(encoding="utf-8")
    edited = edit(text)
    assert edited != text, f"{name}: the edit changed nothing"
    path = config_path.with_name(name)
    path.write_text(edited, encoding="utf-8")
    return path


def with_source_option(text: str, source: str, line: str) -> str:
    """Insert ``line`` (e.g. ``timeout: 1``) into a source's section of the config."""
    head = f"\n  {source}:\n    kind: "
    at = text.index(head) + len(f"\n  {source}:\n")
    return text[:at] + f"    {line}\n" + text[at:]
