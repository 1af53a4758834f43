"""``panorama demo``: build the baker's world, start its CRM in-process, serve the gateway."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

from gateway.secrets import KEY_VARIABLE, new_key

DEMO_TOKEN_ENV = "PANORAMA_DEMO_CRM_TOKEN"
#: Where the demo keeps its CRM's token of the run (next to the config), for other commands.
CRM_TOKEN_FILE = "crm.token"
#: The demo's PANORAMA_SECRETS_KEY, kept next to its config.
SECRETS_KEY_FILE = "secrets.key"


def example_queries(showcase: dict[str, Any]) -> list[tuple[str, str]]:
    """The queries the demo prints (and the tests run), as (title, query)."""
    return [
        ("One customer known in three shops and the CRM, and why the records were linked",
         f'''{{
  customerByEmail(email: "{showcase["email"]}") {{
    id
    name {{ full source {{ source }} }}
    sourceRecords {{ source localId }}
    matchEvidence {{ record {{ source recordId }} rule score agreed linkedTo {{ source recordId }} }}
    emails {{ address sources {{ source recordId }} }}
    phones {{ number sources {{ source }} }}
    loyaltyCards {{ number program shop }}
  }}
}}'''),
        ("The same customer by phone, with money across shops and CRM interactions",
         f'''{{
  customerByPhone(phone: "{showcase["phone"]}") {{
    name {{ full }}
    transactions(first: 8) {{ kind amount {{ amount currency }} shop date status }}
    interactions(first: 5) {{ channel date subject summary }}
  }}
}}'''),
        ("The same customer's account: every shop's money in euros (London's pounds converted "
         "at the rate of the day), risk and profitability (docs/finance.md)",
         f'''{{
  customerByEmail(email: "{showcase["email"]}") {{
    account(asOf: "2025-12-31") {{
      balance {{ amount currency }} paid {{ amount }} overdue {{ amount }} daysPastDue
      shops {{ shop currencies balance {{ amount }} }}
      rates {{ from to rate effective }}
      risk {{ class score reasons {{ message }} }}
      profitability {{ netRevenue {{ amount }} margin {{ amount }} tier }}
    }}
  }}
}}'''),
        ("A customer who changed e-mail and phone between shops, linked by the index on name, "
         "birth date or address (rule: fuzzy)",
         f'''{{
  customerByEmail(email: "{showcase["fuzzy"]["email"]}") {{
    displayName
    names {{ full source {{ source }} }}
    emails {{ address sources {{ source }} }}
    matchEvidence {{ record {{ source recordId }} rule score agreed }}
  }}
}}'''),
        ("Customers who live in Paris, first page",
         '''{
  customers(filter: {city: "Paris"}, first: 5) {
    edges { node { id displayName kind sourceRecords { source } } }
    pageInfo { hasNextPage endCursor }
  }
}'''),
    ]


async def _customer_id(config: Any, settings: Any, email: str) -> str | None:
    """The showcase customer's global id, as the gateway will answer it (for its token)."""
    from gateway.app import build_linker
    from gateway.resolver import Resolver
    from gateway.sources import SourceSet
    from gateway.transforms import normalize_email

    sources, linker = SourceSet.from_config(config), build_linker(config)
    if linker.crosswalk is not None:
        await linker.crosswalk.open()
    try:
        found = await Resolver(sources, settings, linker).by_key(f"email:{normalize_email(email)}")
        return found.id if found else None
    finally:
        await sources.aclose()
        if linker.crosswalk is not None:
            await linker.crosswalk.aclose()


def mint_tokens(config: Any, customer_id: str | None) -> list[tuple[str, Any, str]]:
    """(label, principal, token) per example role, each token with its role's usual purpose."""
    from gateway.auth import mint_token
    from gateway.demo.principals import TOKEN_TTL_SECONDS, demo_principals

    return [(label, principal, mint_token(
                config.auth.jwt, subject=principal.subject, roles=principal.roles,
                shop=principal.shop, region=principal.region, purpose=principal.purpose,
                customer=principal.customer_id, ttl_seconds=TOKEN_TTL_SECONDS))
            for label, principal in demo_principals(customer_id)]


def print_tokens(config_path: Path, minted: list[tuple[str, Any, str]]) -> dict[str, str]:
    """Print a token per example role; return them by role."""
    from gateway.demo.principals import TOKEN_TTL_SECONDS

    tokens: dict[str, str] = {}
    print(f"Tokens of the example roles (valid {TOKEN_TTL_SECONDS // 3600} h), to send as "
          f"`Authorization: Bearer <token>`; each is issued for its role's usual purpose (in "
          f"brackets), which every request declares:")
    for label, principal, token in minted:
        tokens.setdefault(principal.roles[0], token)
        print(f"  {label:<26} [{principal.purpose}]  {token}")
    # Commands other than the demo read the CRM's token of this run from the file it wrote.
    env = f"{DEMO_TOKEN_ENV}=$(cat {config_path.parent / CRM_TOKEN_FILE})"
    print(f"Another purpose or role while the demo runs: {env} panorama token --config "
          f"{config_path} --role ROLE --purpose P [--shop S] [--customer ID]")
    print(f"Every account as CSV while the demo runs (docs/export.md): {env} panorama export "
          f"accounts --config {config_path} --role finance --purpose risk --format csv "
          f"--out accounts.csv --as-of 2025-12-31\n")
    return tokens


async def role_views(app: Any, customer_id: str,
                     minted: list[tuple[str, Any, str]]) -> list[str]:
    """The showcase customer as each role sees it, asked over HTTP with each role's token."""
    import httpx

    from gateway.demo.views import customer_in, role_query, summary

    access = app.state.live.current.access
    lines = [f'The same customer as each role sees it: {{ customer(id: "{customer_id}") {{ ... }} '
             f'}} (a customer: {{ me {{ customer {{ ... }} }} }}), asking for what the role may '
             f'select (the rest would be refused by name):']
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            for label, principal, token in minted:
                query, hidden, path = role_query(access.decider.view_for(principal),
                                                 access.decider.catalog, customer_id)
                response = await client.post("/graphql", json={"query": query},
                                             headers={"authorization": f"Bearer {token}"})
                body = response.json()
                lines.append(f"{label} [{principal.purpose}]")
                if body.get("errors"):
                    lines += [f"  error: {e['message']}" for e in body["errors"]]
                lines += summary(customer_in(body.get("data"), path), hidden)
    return lines


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def run_demo(*, directory: Path, host: str, port: int, crm_port: int, seed: int,
             customers: int) -> int:
    import asyncio

    import uvicorn

    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.crm_server import create_crm_app, serve_in_background
    from gateway.demo.world import build_world
    from gateway.indexing_cli import run_index
    from gateway.settings import Settings

    for name, number in (("--port", port), ("--crm-port", crm_port)):
        if not _port_free(host if name == "--port" else "127.0.0.1", number):
            print(f"panorama demo: port {number} is already in use; pass another with {name}",
                  file=sys.stderr)
            return 1
    world = build_world(directory, seed=seed, customers=customers,
                        crm_url=f"http://127.0.0.1:{crm_port}")
    # The token secret is new every run: tokens of an earlier run (or forged from the seed) fail.
    secret_path = directory / "auth.secret"
    secret_path.chmod(0o600)
    secret_path.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    token = secrets.token_urlsafe(24)  # the in-process CRM's bearer token, new every run
    token_path = directory / CRM_TOKEN_FILE
    token_path.touch(mode=0o600)
    token_path.chmod(0o600)
    token_path.write_text(token + "\n", encoding="utf-8")
    # The admin API encrypts the passwords admins type in with this key (docs/admin.md); the
    # demo keeps one next to its config so that they still decrypt on the next run.
    key_path = directory / SECRETS_KEY_FILE
    if not key_path.is_file():
        key_path.touch(mode=0o600)
        key_path.write_text(new_key() + "\n", encoding="utf-8")
    os.environ.setdefault(KEY_VARIABLE, key_path.read_text(encoding="utf-8").strip())
    crm = serve_in_background(create_crm_app(world.crm_seed, token=token), "127.0.0.1", crm_port)
    try:
        config = load_config(world.config_path, {**os.environ, DEMO_TOKEN_ENV: token})
        print("Indexing identities (panorama index --full):")
        if asyncio.run(run_index(config, full=True)) != 0:
            return 1
        settings = Settings.load(overrides={"config": str(world.config_path), "host": host,
                                            "port": port},
                                 environ=os.environ, file_section=dict(config.gateway))
        app = create_app(settings, config)
        customer_id = asyncio.run(_customer_id(config, settings, world.showcase["email"]))
        url = f"http://{host}:{port}/graphql"
        print(f"\nPanorama demo: {len(config.sources)} sources "
              f"({', '.join(config.sources)}) from {world.config_path}")
        print(f"CRM (HubSpot-style API) in-process on {crm.url}")
        print(f"GraphiQL: {url}")
        print(f"Admin console: http://{host}:{port}/admin (sign in with the admin token below; "
              f"add a shop, edit mappings and policies, roll back: docs/admin.md)\n")
        for title, query in example_queries(world.showcase):
            print(f"# {title}\n{query}\n")
        minted = mint_tokens(config, customer_id)
        if customer_id is not None:
            # A gateway of its own (its own sources and lifespan) for this one look.
            print("\n".join(asyncio.run(role_views(create_app(settings, config), customer_id,
                                                    minted))) + "\n")
        tokens = print_tokens(world.config_path, minted)
        print(f"From a shell:  curl -s {url} -H 'content-type: application/json' "
              f"-H 'authorization: Bearer {tokens['admin']}' "
              f"-d '{{\"query\": \"{{ sources {{ name shop ready }} }}\"}}'", flush=True)
        print("The plan of a query, for an admin (sources, SQL, round trips, timings): add "
              "\"extensions\": {\"explain\": true} to the body; every answer says in "
              "extensions.freshness how fresh each source's data is (docs/performance.md).\n",
              flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        crm.stop()
    return 0
