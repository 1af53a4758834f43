"""Execution as the sources see it: round trips per nesting level, pushdown, explain, freshness.

The demo world's three SQLite shops and a CRM server on loopback. What each source received is
read from the plan an admin gets with ``"extensions": {"explain": true}``, and checked against
the CRM server's own request log, so the plan cannot flatter the gateway.
"""

from __future__ import annotations

from gateway.config import load_config
from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.principal import Principal
from tests.gateway_client import gateway_client, token_for
from tests.servers import demo_world_fixtures

TOKEN = "execution-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}
PAGE = """{ customers(first: %d) { edges { node { id name { given family }
  transactions(first: 3) { amount { amount } } interactions(first: 2) { subject } } } } }"""
CUSTOMER_360 = """{ customerByEmail(email: "%s") { id name { given } emails { address }
  transactions(first: 20) { amount { amount } } interactions(first: 10) { subject } } }"""


world, crm, config = demo_world_fixtures(customers=160, token=TOKEN)


async def explained(client, query: str) -> dict:
    response = await client.post("/graphql", json={"query": query, "extensions": {"explain": True}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body


def plan(body: dict) -> dict:
    return body["extensions"]["explain"]


def per_source_step(explain: dict) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for call in explain["calls"]:
        key = (call["source"], call["step"])
        counts[key] = counts.get(key, 0) + call["roundTrips"]
    return counts


async def test_round_trips_per_nesting_level_do_not_grow_with_the_page(config, crm):
    _, app = crm
    shapes = {}
    async with gateway_client(config, environ=ENV, max_page_size=200) as client:
        await explained(client, PAGE % 2)  # warm: the SQL connectors read their catalogs once
        # Pages within the first shop's customers (paris has about 90 here); a page that runs
        # past a source's last customer costs one more identity level for the next source's.
        for first in (5, 20, 60):
            seen = len(app.state.requests)
            body = await explained(client, PAGE % first)
            assert len(body["data"]["customers"]["edges"]) == first
            shapes[first] = per_source_step(plan(body))
            # The plan counts every CRM request the server received: nothing is hidden.
            crm_trips = sum(n for (source, _), n in shapes[first].items() if source == "crm")
            assert crm_trips == len(app.state.requests) - seen
    # Per source and step, a bound set by the config, never by the page size: one page query,
    # one lookup per identity round (identity_hops = 3 at most; how many a page needs depends on
    # how its customers link), one query per shop table, two CRM calls per engagement type
    # (associations, then a batch read).
    tables = {"paris": 2, "london": 3, "berlin": 3}
    for first, counts in shapes.items():
        assert counts[("paris", "page")] == 1, first
        for source in ("paris", "london", "berlin", "crm"):
            assert 1 <= counts[(source, "lookup")] <= 3, (first, counts)
        for shop, n in tables.items():
            assert counts[(shop, "transactions")] == n, (first, counts)
        assert counts[("crm", "interactions")] <= 2 * 4, (first, counts)
        assert not {step for _, step in counts} - {"page", "lookup", "members", "transactions",
                                                   "interactions"}


async def test_a_page_pushes_its_filter_and_limit_to_the_source(config):
    query = '{ customers(first: 3, filter: {city: "%s", shop: "paris"}) { edges { node { id } } } }'
    city = "Paris"
    async with gateway_client(config, environ=ENV) as client:
        body = await explained(client, query % city)
    assert body["data"]["customers"]["edges"], "the demo has customers in Paris"
    pages = [c for c in plan(body)["calls"] if c["step"] == "page"]
    assert pages and {c["source"] for c in pages} == {"paris"}, "shop filter: only paris lists"
    sql = pages[0]["statements"][-1]
    assert 'LOWER(TRIM("domicile"."ville")) = ?' in sql or 'LOWER(TRIM("facturation"."ville"))' in sql
    assert sql.rstrip().endswith("LIMIT ?") and city not in sql, "values are parameters"
    assert pages[0]["parameters"] >= 2  # the city (per column) and the limit, elided


async def test_identity_lookups_send_every_key_of_a_round_in_one_query(config, world):
    async with gateway_client(config, environ=ENV) as client:
        await explained(client, CUSTOMER_360 % "warm@example.invalid")
        body = await explained(client, CUSTOMER_360 % world.showcase["email"])
    counts = per_source_step(plan(body))
    rounds = {source: n for (source, step), n in counts.items() if step == "lookup"}
    # At most one query per identity round per source (identity_hops rounds at most).
    assert set(rounds) == {"paris", "london", "berlin", "crm"}
    assert all(1 <= n <= 3 for n in rounds.values()), rounds
    assert body["data"]["customerByEmail"]["transactions"]


async def test_the_plan_is_for_admins_only(config, world):
    support = Principal("sam", ("support",), purpose="support")
    async with gateway_client(config, environ=ENV, principal=support) as client:
        response = await client.post("/graphql", json={
            "query": CUSTOMER_360 % world.showcase["email"], "extensions": {"explain": True}})
        plain = await client.post("/graphql", json={"query": "{ sources { name } }"})
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN" and "admin" in error["message"]
    assert "explain" not in plain.json().get("extensions", {})


async def test_every_answer_says_how_fresh_each_source_is(config, world):
    async with gateway_client(config, environ=ENV) as client:
        response = await client.post("/graphql", json={
            "query": CUSTOMER_360 % world.showcase["email"]})
    extensions = response.json()["extensions"]
    assert "explain" not in extensions
    assert extensions["freshness"] == {
        name: {"cached": False, "ageSeconds": 0.0} for name in ("paris", "london", "berlin", "crm")}


# -- the source cache ------------------------------------------------------------------------

CONTACTS = '{ customerByEmail(email: "%s") { id phones { number } loyaltyCards { number } } }'


def support_token(config) -> str:
    auth = load_config(config, ENV).auth
    return token_for(Principal("sam", ("support",), purpose="support"), auth)


async def test_a_repeated_query_is_answered_from_the_cache_without_a_round_trip(config, world, crm):
    _, app = crm
    query = CUSTOMER_360 % world.showcase["email"]
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60) as client:
        cold = await explained(client, query)
        seen = len(app.state.requests)
        warm = await explained(client, query)
    assert len(app.state.requests) == seen, "a cached answer reached the CRM"
    assert warm["data"] == cold["data"]
    assert plan(cold)["roundTrips"] > 0 and plan(cold)["cacheHits"] == 0
    assert plan(warm)["roundTrips"] == 0
    assert plan(warm)["cacheHits"] == plan(warm)["sourceCalls"] > 0
    freshness = warm["extensions"]["freshness"]
    assert all(f["cached"] and 0 <= f["ageSeconds"] < 60 for f in freshness.values()), freshness


async def test_cached_rows_are_masked_for_each_principal_on_its_own(config, world):
    query = CONTACTS % world.showcase["email"]
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60) as client:
        full = await explained(client, query)  # the admin fills the cache with raw rows
        masked = (await client.post("/graphql", json={"query": query}, headers={
            "authorization": f"Bearer {support_token(config)}"})).json()
        again = await explained(client, query)
    assert all(f["cached"] for f in masked["extensions"]["freshness"].values())
    plain = [c["number"] for c in full["data"]["customerByEmail"]["loyaltyCards"]]
    shown = [c["number"] for c in masked["data"]["customerByEmail"]["loyaltyCards"]]
    assert plain and len(shown) == len(plain)
    assert all(s != p and s.endswith(p[-4:]) for s, p in zip(shown, plain, strict=True)), shown
    assert again["data"] == full["data"], "the masked answer leaked back into the cache"


async def test_an_admin_invalidates_one_sources_cache(config, world, crm):
    _, app = crm
    query = CUSTOMER_360 % world.showcase["email"]
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60) as client:
        await explained(client, query)
        dropped = (await client.post("/graphql", json={
            "query": 'mutation { invalidateCache(source: "crm") }'})).json()
        seen = len(app.state.requests)
        after = await explained(client, query)
        unknown = (await client.post("/graphql", json={
            "query": 'mutation { invalidateCache(source: "lyon") }'})).json()
        refused = (await client.post("/graphql", json={
            "query": "mutation { invalidateCache }"}, headers={
            "authorization": f"Bearer {support_token(config)}"})).json()
        logged = (await client.post("/graphql", json={
            "query": '{ auditLog(kind: "admin", first: 5) { entries { kind details } } }'})).json()
    assert dropped["data"] == {"invalidateCache": ["crm"]}
    (entry,) = logged["data"]["auditLog"]["entries"]
    assert entry["details"]["action"] == "invalidate_cache" and entry["details"]["sources"] == ["crm"]
    assert len(app.state.requests) > seen, "the CRM was not read again"
    freshness = after["extensions"]["freshness"]
    assert freshness["crm"] == {"cached": False, "ageSeconds": 0.0}
    assert all(freshness[shop]["cached"] for shop in ("paris", "london", "berlin"))
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "paris, london, berlin, crm" in unknown["errors"][0]["message"]
    assert refused.get("data") is None and refused["errors"], refused  # not in support's schema


async def test_a_source_with_ttl_zero_is_always_read_live(config, world, crm):
    _, app = crm
    text = config.read_text()
    config.write_text(text.replace("  crm:\n    kind: crm\n",
                                   "  crm:\n    kind: crm\n    cache_ttl_seconds: 0\n", 1))
    assert config.read_text() != text, "the demo config's crm source moved"
    query = CUSTOMER_360 % world.showcase["email"]
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60) as client:
        await explained(client, query)
        seen = len(app.state.requests)
        warm = await explained(client, query)
    assert len(app.state.requests) > seen
    freshness = warm["extensions"]["freshness"]
    assert freshness["crm"]["cached"] is False and freshness["paris"]["cached"] is True


async def test_the_newest_transactions_are_ranked_in_sources_that_can_and_cut_right(config):
    newest = ('{ customers(first: 30, filter: {shop: "london"}) { edges { node { id '
              'transactions(first: %d) { id date } } } } }')
    async with gateway_client(config, environ=ENV) as client:
        two = await explained(client, newest % 2)
        every = await explained(client, newest % 100)
    # london keeps epoch seconds (INTEGER): ranked in the source; paris and berlin keep dates as
    # text, which may not sort in time order: every row comes and the gateway cuts.
    statements = {c["source"]: c["statements"][-1] for c in plan(two)["calls"]
                  if c["step"] == "transactions"}
    assert "ROW_NUMBER() OVER" in statements["london"]
    assert "ROW_NUMBER" not in statements["paris"] and "ROW_NUMBER" not in statements["berlin"]
    cut = [[t["id"] for t in e["node"]["transactions"]] for e in every["data"]["customers"]["edges"]]
    got = [[t["id"] for t in e["node"]["transactions"]] for e in two["data"]["customers"]["edges"]]
    assert got == [ids[:2] for ids in cut]
    assert sum(len(ids) > 2 for ids in cut) > 5, "the test needs customers with more than two"


async def test_replicas_share_the_cache_through_redis_and_its_invalidation(config, world, crm):
    _, app = crm
    query = CUSTOMER_360 % world.showcase["email"]
    shared = {"cache_ttl_seconds": 60, "cache_redis_url": "redis://127.0.0.1:6379/0"}
    async with gateway_client(config, environ=ENV, **shared) as one, \
            gateway_client(config, environ=ENV, **shared) as two:
        # Start clean: entries of an earlier run within the TTL would otherwise answer.
        cleared = await one.post("/graphql", json={"query": "mutation { invalidateCache }"})
        assert cleared.json()["data"]["invalidateCache"] == ["paris", "london", "berlin", "crm"]
        cold = await explained(one, query)
        seen = len(app.state.requests)
        other = await explained(two, query)  # another replica: served from Redis
        assert len(app.state.requests) == seen
        await two.post("/graphql", json={"query": 'mutation { invalidateCache(source: "crm") }'})
        after = await explained(one, query)  # the first replica's local layer obeys it too
    assert plan(cold)["roundTrips"] > 0 and plan(other)["roundTrips"] == 0
    assert other["data"] == cold["data"]
    freshness = after["extensions"]["freshness"]
    assert freshness["crm"]["cached"] is False and freshness["paris"]["cached"] is True
    assert len(app.state.requests) > seen


async def test_an_unreachable_shared_cache_reads_live_and_refuses_to_pretend_it_invalidated(
        config, world):
    url = "redis://:hunter2@127.0.0.1:1/0"  # nobody listens on port 1
    async with gateway_client(config, environ=ENV, cache_ttl_seconds=60,
                              cache_redis_url=url) as client:
        body = await explained(client, CUSTOMER_360 % world.showcase["email"])
        refused = (await client.post("/graphql", json={
            "query": 'mutation { invalidateCache(source: "crm") }'})).json()
    assert body["data"]["customerByEmail"] is not None and plan(body)["roundTrips"] > 0
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "CACHE_UNAVAILABLE"
    assert "hunter2" not in str(refused) and "127.0.0.1:1" not in str(refused)


async def test_sources_are_asked_only_for_the_columns_the_selection_needs(config):
    slim = '{ customers(first: 5, filter: {shop: "paris"}) { edges { node { id name { full } } } } }'
    full = ('{ customers(first: 5, filter: {shop: "paris"}) { edges { node { id name { full } '
            'addresses { city } birthDate { value } loyaltyCards { number points } } } } }')
    async with gateway_client(config, environ=ENV) as client:
        thin, wide = await explained(client, slim), await explained(client, full)

    def page_sql(body: dict) -> str:
        return next(c for c in plan(body)["calls"] if c["step"] == "page")["statements"][-1]

    # Names are read; the addresses (and the two joined address tables), birth date and card
    # points are not, since nothing shows them. The key columns identity needs always are.
    assert '"prenom"' in page_sql(thin) and '"courriel"' in page_sql(thin)
    assert "adresses" not in page_sql(thin) and "date_naissance" not in page_sql(thin)
    assert '"points"' not in page_sql(thin) and '"carte_fidelite"' in page_sql(thin)
    assert "LEFT JOIN" in page_sql(wide) and "date_naissance" in page_sql(wide)
    names = [e["node"]["name"] for e in thin["data"]["customers"]["edges"]]
    assert names == [e["node"]["name"] for e in wide["data"]["customers"]["edges"]]
    assert any(e["node"]["addresses"] for e in wide["data"]["customers"]["edges"])


async def test_a_filter_on_city_reads_the_address_columns_it_rechecks(config):
    query = '{ customers(first: 3, filter: {city: "Paris"}) { edges { node { id } } } }'
    async with gateway_client(config, environ=ENV) as client:
        body = await explained(client, query)
    assert body["data"]["customers"]["edges"]
    pages = [c for c in plan(body)["calls"] if c["step"] == "page"]
    assert all("ville" in c["statements"][-1] for c in pages if c["source"] == "paris")
