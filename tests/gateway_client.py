"""Run the gateway in-process for a test: the app, its lifespan, an httpx client on it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.auth import AuthConfig, JWTConfig, mint_token
from gateway.config import load_config
from gateway.principal import Principal
from gateway.settings import Settings

#: Who the client is unless a test says otherwise: an admin sees and may do everything (the
#: administration purpose exists in the built-in policy and in the demo's).
ADMIN = Principal(subject="test-admin", roles=("admin",), purpose="administration")
#: The HS256 secret of configs that have no ``auth:`` section of their own (tests only).
TEST_SECRET = "panorama-tests-only-" + "0" * 32
TEST_AUTH = AuthConfig(jwt=JWTConfig(secret=TEST_SECRET))


def token_for(principal: Principal, auth: AuthConfig = TEST_AUTH, ttl_seconds: int = 600) -> str:
    """A bearer token that makes ``principal`` (purpose and all) with the given auth config."""
    assert auth.jwt is not None and auth.jwt.secret, "minting needs an auth.secret"
    return mint_token(auth.jwt, subject=principal.subject, roles=principal.roles,
                      shop=principal.shop, region=principal.region, purpose=principal.purpose,
                      customer=principal.customer_id, ttl_seconds=ttl_seconds)


@contextlib.asynccontextmanager
async def gateway_client(config_path: str | Path, *, environ: Mapping[str, str] | None = None,
                         principal: Principal | None = ADMIN, token: str | None = None,
                         **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a freshly built gateway (lifespan included).

    A config without an ``auth:`` section gets HS256 with :data:`TEST_SECRET`. The client sends
    ``token`` if given, else a token minted for ``principal`` (the config's own secret, or the
    test one); ``principal=None`` sends no credential.
    """
    config = load_config(config_path, os.environ if environ is None else environ)
    if config.auth is None:
        config = dataclasses.replace(config, auth=TEST_AUTH)
    if token is None and principal is not None and config.auth is not None \
            and config.auth.jwt is not None and config.auth.jwt.secret:
        token = token_for(principal, config.auth)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    app = create_app(Settings.load(overrides={"config": str(config_path), **settings}), config,
                     environ=environ)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://panorama",
                                     headers=headers) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def graphql(client: httpx.AsyncClient, query: str, **variables: Any) -> dict:
    """POST a query; assert the HTTP layer answered 200 and return the JSON body."""
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()
