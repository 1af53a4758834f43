"""What the gateway costs over a hand-written direct path to the same sources (issue 5, item 7).

    .venv/bin/python bench/direct_path.py [--customers 100000] [--s1 300] [--s2 100] [--quick]

The demo world with paris on PostgreSQL, london on MariaDB, berlin on SQLite and the CRM served
in this process (bench_world.py; cached between runs), the identity index run once; then the
gateway in this process (gateway_harness.py) and the direct path (direct_client.py) answer the
same requests, one at a time and interleaved, so both meet the same machine noise:

- S1 one customer 360 (customerByEmail: contacts, addresses, cards, records, 20 transactions,
  10 interactions), rotating over customers known in all four sources;
- S2 a page of 100 customers with 20 transactions each, from rotating positions;
- S3 one fixed S1 request repeated (what a cache would win);
- S4 S1 with the CRM hung and with london down: time to answer against the source's timeout,
  and what a call costs once the circuit breaker is open;
- round trips per request for S1 and S2 at page sizes 10, 100 and 1000.

Goals are ratios measured in the same run, never absolute times; bench/README.md has them.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import secrets
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from bench_world import BenchWorld, ensure_indexed, prepare_world
from direct_client import DirectPath
from fault_scenarios import down_source, hung_source
from gateway_harness import GATEWAY_SETTINGS, TRAIL, CountingASGI, Gateway, running_gateway
from timing import Goal, ms, percentile, report, timed

from gateway.crm_server import create_crm_app, serve_in_background
from gateway.resolver import encode_cursor
from gateway.settings import Settings

S1_QUERY = """query($email: String!, $tx: Int, $ix: Int) { customerByEmail(email: $email) {
  id kind displayName name { given family full } birthDate { value }
  emails { address type } phones { number type valid }
  addresses { type line1 postcode city country } loyaltyCards { number program points shop }
  sourceRecords { source localId }
  transactions(first: $tx) { id kind amount { amount currency } shop date status reference }
  interactions(first: $ix) { id channel date subject summary } } }"""
S2_QUERY = """query($first: Int, $after: String) { customers(first: $first, after: $after) {
  edges { node { id name { given family full }
    transactions(first: 20) { id kind amount { amount currency } shop date status } } }
  pageInfo { endCursor hasNextPage } } }"""
WARMUP = 20


@dataclass
class Target:
    """A customer known in all four sources: its record keys (truth.json) and paris e-mail."""

    keys: dict[str, str]
    email: str


@dataclass
class Run:
    """What the scenarios share: the sources' environment, counters and the goals reached."""

    world: BenchWorld
    environ: dict[str, str]
    crm_app: Any
    crm_url: str
    crm_token: str
    trips: Counter[str]
    goals: list[Goal] = field(default_factory=list)


async def pick_targets(world: BenchWorld, count: int, seed: int) -> list[Target]:
    """Customers in all four sources, none of them a hostile case, in a seeded order."""
    hostile = {n for case in world.truth["hostile"] for n in case["parties"]}
    everywhere = [c["records"] for c in world.truth["customers"]
                  if len(c["records"]) == 4 and c["party"] not in hostile]
    random.Random(seed).shuffle(everywhere)
    chosen = everywhere[:count * 2]
    conn = await asyncpg.connect(**world.moved["paris"][1])
    try:
        emails = dict(await conn.fetch("SELECT id::text, courriel FROM clients WHERE id = ANY($1)",
                                       [int(k["paris"]) for k in chosen]))
    finally:
        await conn.close()
    return [Target(k, emails[k["paris"]]) for k in chosen
            if emails.get(k["paris"]) and "noemail" not in emails[k["paris"]]][:count]


# -- scenarios -----------------------------------------------------------------------------


async def compare(name: str, requests: int, gateway_call: Callable[[int], Awaitable[dict]],
                  direct_call: Callable[[int], Awaitable[bytes]], trips: Counter[str]
                  ) -> tuple[list[float], list[float]]:
    """Time both paths over ``requests`` (after a warm-up), interleaved; check the answers.

    Also the seconds the CRM stand-in spent answering each path (it shares this process)."""
    errors: Counter[str] = Counter()
    gateway_times, direct_times, crm_g, crm_d = [], [], [], []
    for i in range(WARMUP + requests):
        trips["crm_seconds"] = 0
        took_g, body = await timed(lambda i=i: gateway_call(i))
        crm_gateway, trips["crm_seconds"] = trips["crm_seconds"], 0
        took_d, _ = await timed(lambda i=i: direct_call(i))
        errors.update(e.get("extensions", {}).get("code", "?") for e in body.get("errors") or [])
        if i >= WARMUP:
            gateway_times.append(took_g)
            direct_times.append(took_d)
            crm_g.append(crm_gateway)
            crm_d.append(trips["crm_seconds"])
    g50, g99 = percentile(gateway_times, 50), percentile(gateway_times, 99)
    d50, d99 = percentile(direct_times, 50), percentile(direct_times, 99)
    print(f"{name}: {requests} requests each; gateway p50 {ms(g50)} p99 {ms(g99)}; direct p50 "
          f"{ms(d50)} p99 {ms(d99)}; ratio p50 x{g50 / d50:.2f}, p99 x{g99 / d99:.2f}"
          + (f"; gateway errors {dict(errors)}" if errors else ""), flush=True)
    net_g = [t - c for t, c in zip(gateway_times, crm_g, strict=True)]
    net_d = [t - c for t, c in zip(direct_times, crm_d, strict=True)]
    print(f"   time inside the CRM stand-in per request, p50: gateway {ms(percentile(crm_g, 50))},"
          f" direct {ms(percentile(crm_d, 50))}; without it, p50 gateway "
          f"{ms(percentile(net_g, 50))}, direct {ms(percentile(net_d, 50))} "
          f"(x{percentile(net_g, 50) / percentile(net_d, 50):.2f})", flush=True)
    return gateway_times, direct_times


async def s1_s3(run: Run, gw: Gateway, direct: DirectPath, targets: list[Target],
                requests: int, repeats: int) -> None:
    def gateway_call(i: int) -> Awaitable[dict]:
        return gw.query(S1_QUERY, email=targets[i % len(targets)].email, tx=20, ix=10)

    def direct_call(i: int) -> Awaitable[bytes]:
        return direct.customer_360(targets[i % len(targets)].keys)

    # Both paths must answer the same customer: same sources, as many transactions and
    # interactions (the direct path's are its own stitching, not the gateway's merge).
    found = (await gw.query(S1_QUERY, email=targets[0].email, tx=20, ix=10))["data"]
    found = found["customerByEmail"]
    mine = orjson.loads(await direct.customer_360(targets[0].keys))
    print(f"S1 check, customer {targets[0].keys}: gateway sources "
          f"{sorted({r['source'] for r in found['sourceRecords']})}, "
          f"{len(found['transactions'])} transactions, {len(found['interactions'])} interactions; "
          f"direct sources {sorted(r['source'] for r in mine['records'])}, "
          f"{len(mine['transactions'])} transactions, {len(mine['interactions'])} interactions")
    if {r["source"] for r in found["sourceRecords"]} != {r["source"] for r in mine["records"]}:
        raise SystemExit("the gateway and the direct path disagree on this customer's sources: "
                         "a broken tree? Run from a snapshot of a commit (bench/README.md)")
    distinct = min(len(targets), WARMUP + requests)
    print(f"S1 rotates over {distinct} customers known in all four sources"
          + ("" if distinct >= WARMUP + requests else " (fewer than requests: some repeat)"))
    g, d = await compare("S1 one customer 360", requests, gateway_call, direct_call, run.trips)
    g50, g99, d50, d99 = (percentile(g, 50), percentile(g, 99), percentile(d, 50),
                          percentile(d, 99))
    run.goals += [Goal("S1 p50 <= 1.3x direct", f"x{g50 / d50:.2f} ({ms(g50)} vs {ms(d50)})",
                       g50 <= 1.3 * d50),
                  Goal("S1 p99 <= 2x direct", f"x{g99 / d99:.2f} ({ms(g99)} vs {ms(d99)})",
                       g99 <= 2 * d99)]
    # S3: the same request again and again; any gain is the gateway's caching, turned on in a
    # gateway of its own when this tree has the setting (S1 above ran with the default, off).
    cache = {"cache_ttl_seconds": 300} if "cache_ttl_seconds" in Settings.__dataclass_fields__ \
        else {}
    print(f"S3 gateway settings: {cache or 'no cache setting in this tree: as S1'}", flush=True)
    async with running_gateway(run.world.config_path, run.environ, run.trips, **cache) as cached:
        g3, _ = await compare(
            "S3 one fixed S1 request repeated", repeats,
            lambda i: cached.query(S1_QUERY, email=targets[0].email, tx=20, ix=10),
            lambda i: direct_call(0), run.trips)
    s3 = percentile(g3, 50)
    run.goals.append(Goal("S3 >= 10x faster than S1 cold (p50)",
                          f"x{g50 / s3:.2f} ({ms(s3)} vs {ms(g50)})", g50 >= 10 * s3))


async def s2(run: Run, gw: Gateway, direct: DirectPath, requests: int, first: int) -> None:
    paris_clients = run.world.rows["paris"]["clients"]
    starts = random.Random(11).sample(range(max(1, paris_clients - 2 * first)),
                                      WARMUP + requests)

    async def gateway_call(i: int) -> dict:
        after = encode_cursor("paris", str(starts[i])) if starts[i] else None
        body = await gw.query(S2_QUERY, first=first, after=after)
        assert len(body["data"]["customers"]["edges"]) == first, body.get("errors")
        return body

    g, d = await compare(f"S2 page of {first} with transactions", requests, gateway_call,
                         lambda i: direct.paris_page(starts[i], first), run.trips)
    g50, d50 = percentile(g, 50), percentile(d, 50)
    print("   (direct: the page's paris clients and their paris transactions only; the gateway "
          "also finds each one's records in the other sources and their transactions)")
    run.goals.append(Goal(f"S2 p50 <= 3x direct (page of {first})",
                          f"x{g50 / d50:.2f} ({ms(g50)} vs {ms(d50)})", g50 <= 3 * d50))


async def round_trips(run: Run, direct: DirectPath, targets: list[Target],
                      show: bool = False) -> None:
    """Statements and CRM requests per request, at page sizes 10, 100 and 1000."""
    sizes = (10, 100, 1000)
    counts: dict[str, list[float]] = {}
    async with running_gateway(run.world.config_path, run.environ, run.trips,
                               max_page_size=1000) as gw:
        for label, call in (
            ("S1 gateway", lambda t, n: gw.query(S1_QUERY, email=t.email, tx=n, ix=n)),
            ("S1 direct", lambda t, n: direct.customer_360(t.keys, n, n)),
            ("S2 gateway", lambda t, n: gw.query(S2_QUERY, first=n,
                                                 after=encode_cursor("paris", t.keys["paris"]))),
            ("S2 direct", lambda t, n: direct.paris_page(int(t.keys["paris"]), n)),
        ):
            sample = targets[:5] if label.startswith("S1") else targets[:2]
            await call(sample[0], sizes[0])  # first calls read catalogs: not a request's cost
            for n in sizes:
                total: Counter[str] = Counter()
                for target in sample:
                    run.trips.clear()
                    direct.trips.clear()
                    await call(target, n)
                    total.update(run.trips if "gateway" in label else direct.trips)
                sql, http = total["sql"] / len(sample), total["http"] / len(sample)
                counts.setdefault(label, []).append(sql + http)
                print(f"round trips {label:10} page {n:>4}: {sql + http:5.1f} per request "
                      f"({sql:.1f} SQL statements, {http:.1f} CRM requests; mean of "
                      f"{len(sample)})", flush=True)
        if show:  # what one S1 request sends, in order (the CRM's come from its thread)
            TRAIL.clear()
            await gw.query(S1_QUERY, email=targets[0].email, tx=20, ix=10)
            print(f"round trips of one S1 gateway request ({len(TRAIL)}):")
            print("\n".join(f"   {t[:300]}" for t in TRAIL), flush=True)
    for label in ("S1 gateway", "S2 gateway"):
        values = counts[label]
        # Within 10%: identity expansion can take a round more for one customer than another.
        run.goals.append(Goal(f"{label[:2]} round trips constant in page size (10/100/1000, "
                              "within 10%)", " / ".join(f"{v:.1f}" for v in values),
                              max(values) <= 1.1 * min(values)))


# -- the run -----------------------------------------------------------------------------------


async def scenarios(run: Run, args: argparse.Namespace) -> None:
    targets = await pick_targets(run.world, WARMUP + max(args.s1, 60), args.seed)
    if len(targets) < 20:
        raise SystemExit(f"only {len(targets)} customers are known in all four sources; "
                         "build a larger world (--customers)")
    direct = DirectPath(run.world.moved["paris"][1], run.world.moved["london"][1],
                        run.world.directory / "berlin.db", run.crm_url,
                        run.crm_token)
    await direct.open()
    print("direct path: knows each customer's record keys from truth.json (as an app with its "
          "own keys would); no lookups, identity, policy or audit", flush=True)
    try:
        async with running_gateway(run.world.config_path, run.environ, run.trips) as gw:
            floor = [(await timed(lambda: gw.client.get("/healthz")))[0] for _ in range(200)]
            print(f"client floor: GET /healthz through httpx + ASGITransport p50 "
                  f"{ms(percentile(floor, 50))} (included in every gateway time)", flush=True)
            await s1_s3(run, gw, direct, targets, args.s1, args.s3)
            healthy = percentile([(await timed(lambda i=i: gw.query(
                S1_QUERY, email=targets[i % len(targets)].email, tx=20, ix=10)))[0] for i in range(30)], 50)
            await s2(run, gw, direct, args.s2, 100)
            if args.profile:
                await profile(gw, targets, args.profile)
        await round_trips(run, direct, targets, args.trail)
        def ask(gw: Gateway, i: int) -> Awaitable[dict]:
            return gw.query(S1_QUERY, email=targets[i % len(targets)].email, tx=20, ix=10)

        run.goals += await hung_source(run.world.config_path, run.environ, run.trips,
                                       run.crm_app, ask)
        run.goals += await down_source(run.world.config_path, run.environ, run.trips, ask,
                                       healthy)
    finally:
        await direct.aclose()


async def profile(gw: Gateway, targets: list[Target], requests: int, top: int = 25) -> None:
    """cProfile of ``requests`` S1 gateway requests: this thread only, so not the CRM's (time
    spent waiting for it shows as ``select.epoll.poll``)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(requests):
        await gw.query(S1_QUERY, email=targets[i % len(targets)].email, tx=20, ix=10)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        table = out.getvalue()
        print(f"\n== cProfile of {requests} S1 gateway requests, top {top} by {order} time")
        print(table[table.index("   ncalls"):].rstrip() + "\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000,
                        help="shop customers of the demo world (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--s1", type=int, default=300, help="S1 requests per path (default 300)")
    parser.add_argument("--s2", type=int, default=100, help="S2 requests per path (default 100)")
    parser.add_argument("--s3", type=int, default=300, help="S3 repeats (default 300)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile N S1 gateway requests (cProfile, top cumulative)")
    parser.add_argument("--trail", action="store_true",
                        help="also print every round trip of one S1 gateway request")
    parser.add_argument("--workdir", type=Path,
                        default=Path.home() / ".cache" / "panorama-bench" / "direct-path",
                        help="where built worlds are cached (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2,000 customers, 30 requests per scenario")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="a gateway setting for every gateway of the run, e.g. "
                             "identity_live_lookups=false (repeatable)")
    args = parser.parse_args(argv)
    for pair in args.set:
        name, sep, value = pair.partition("=")
        if not sep or name not in Settings.__dataclass_fields__:
            parser.error(f"--set {pair!r}: expected SETTING=VALUE with a gateway setting "
                         f"(docs/settings.md)")
        GATEWAY_SETTINGS[name] = value
    if GATEWAY_SETTINGS:
        print(f"gateway settings for this run: {GATEWAY_SETTINGS}", flush=True)
    if args.quick:
        args.customers, args.s1, args.s2, args.s3 = 2000, 30, 10, 30
    world = prepare_world(args.workdir, seed=args.seed, customers=args.customers)
    token = secrets.token_urlsafe(16)
    trips: Counter[str] = Counter()
    crm_app = create_crm_app(world.crm_seed, token=token)
    with serve_in_background(CountingASGI(crm_app, trips)) as crm:
        environ = world.environ(crm.url, token)
        ensure_indexed(world, environ)
        run = Run(world, environ, crm_app, crm.url, token, trips)
        asyncio.run(scenarios(run, args))
    return 0 if report(run.goals) else 1


if __name__ == "__main__":
    sys.exit(main())
