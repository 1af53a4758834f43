"""Run the gateway in-process for a test: the app, its lifespan, an httpx client on it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.settings import Settings


@contextlib.asynccontextmanager
async def gateway_client(config_path: str | Path, *, environ: Mapping[str, str] | None = None,
                         **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a freshly built gateway (lifespan included)."""
    app = create_app(Settings.load(overrides={"config": str(config_path), **settings}),
                     environ=environ)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://panorama") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict:
    """POST a query; assert the HTTP layer answered 200 and return the JSON body."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()
