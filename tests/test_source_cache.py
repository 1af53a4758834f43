"""The source cache: one contract for the local and the Redis backend, then each one's own cases.

The Redis cases talk to the real Redis on 127.0.0.1:6379 (``.ci/services`` starts it), each test
under a namespace of its own whose keys it deletes afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as time_of_day
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from connectors.query import Aggregate, AnyOf, Cond, Page, Query
from gateway.source_cache import CacheConfigError, CacheError, CacheUnavailable, SourceCache

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_URL = "redis://:s3cret-pw@127.0.0.1:1/0"  # nothing listens on port 1


def q(email: str = "a@example.fr", **kw) -> Query:
    return Query("customers", ("id", "email"), Cond("email", "ieq", email), **kw)


def page(*ids: int) -> Page:
    return Page([{"id": i, "email": f"c{i}@example.fr"} for i in ids])


@pytest.fixture
async def redis_client():
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def namespace(redis_client):
    ns = f"test-cache-{uuid.uuid4().hex}"
    yield ns
    keys = [k async for k in redis_client.scan_iter(match=f"{ns}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
async def make_cache(request, namespace):
    """Caches of the backend under test; replicas made by one test share its Redis namespace."""
    made: list[SourceCache] = []

    def make(**kw) -> SourceCache:
        if request.param == "redis":
            kw.setdefault("redis_url", REDIS_URL)
            kw.setdefault("namespace", namespace)
        made.append(SourceCache(**kw))
        return made[-1]

    yield make
    for cache in made:
        await cache.aclose()


# -- the contract, for both backends -----------------------------------------------------------------

backends = pytest.mark.parametrize("make_cache", ["local", "redis"], indirect=True)


@backends
async def test_miss_then_hit_with_the_same_rows(make_cache):
    cache = make_cache()
    assert await cache.get("paris", 60, q()) is None
    await cache.put("paris", 60, q(), page(1, 2))
    hit = await cache.get("paris", 60, q())
    assert hit is not None and hit.page.rows == page(1, 2).rows
    assert 0 <= hit.age() < 5
    assert await cache.get("paris", 60, q("b@example.fr")) is None  # other values, other entry
    assert await cache.get("paris", 60, q(limit=10)) is None
    assert await cache.get("london", 60, q()) is None  # other source, other entry
    stats = cache.stats()
    assert (stats["paris"].hits, stats["paris"].misses, stats["london"].misses) == (1, 3, 1)


@backends
async def test_lists_and_tuples_in_values_are_one_key(make_cache):
    cache = make_cache()
    listed = Query("customers", ("id",), AnyOf((Cond("id", "in", [1, 2]), Cond("city", "eq", "Lyon"))))
    tupled = Query("customers", ("id",), AnyOf((Cond("id", "in", (1, 2)), Cond("city", "eq", "Lyon"))))
    await cache.put("paris", 60, listed, page(1))
    assert (await cache.get("paris", 60, tupled)).page.rows == page(1).rows
    # Same-looking values of other types are other queries.
    for other in (Cond("id", "in", (1.0, 2)), Cond("id", "in", (True, 2)), Cond("id", "in", ("1", 2))):
        assert await cache.get("paris", 60, Query("customers", ("id",), AnyOf((other, Cond(
            "city", "eq", "Lyon"))))) is None


@backends
async def test_a_summary_is_another_entry_than_the_rows_and_than_other_summaries(make_cache):
    cache = make_cache()
    rows = Query("payments", ("amount",), Cond("customer_key", "in", (1,)))
    by_status = replace(rows, fields=(), aggregate=Aggregate(("customer_key", "status"),
                                                             ("amount",)))
    await cache.put("paris", 60, by_status, page(1))
    assert await cache.get("paris", 60, rows) is None
    assert await cache.get("paris", 60, replace(by_status, aggregate=Aggregate(
        ("customer_key",), ("amount",)))) is None
    assert (await cache.get("paris", 60, by_status)).page.rows == page(1).rows


@backends
async def test_a_caller_editing_its_rows_does_not_edit_the_cache(make_cache):
    cache = make_cache()
    rows = page(1)
    await cache.put("paris", 60, q(), rows)
    rows.rows[0]["email"] = "changed-after-put"
    (await cache.get("paris", 60, q())).page.rows[0]["email"] = "changed-after-get"
    assert (await cache.get("paris", 60, q())).page.rows == page(1).rows


@backends
async def test_entries_expire_after_their_ttl(make_cache):
    cache, replica = make_cache(), make_cache()
    await cache.put("paris", 0.2, q(), page(1))
    assert await cache.get("paris", 0.2, q()) is not None
    await asyncio.sleep(0.3)
    assert await cache.get("paris", 0.2, q()) is None
    assert await replica.get("paris", 0.2, q()) is None
    assert cache.stats()["paris"].entries == 0


@backends
async def test_ttl_zero_turns_caching_off(make_cache, redis_client, namespace):
    cache = make_cache()
    for ttl in (0, -1):
        await cache.put("paris", ttl, q(), page(1))
        assert await cache.get("paris", ttl, q()) is None
    assert await cache.get("paris", 60, q()) is None  # nothing was stored under another ttl either
    assert cache.stats()["paris"] == type(cache.stats()["paris"])(0, 1, 0)
    assert [k async for k in redis_client.scan_iter(match=f"{namespace}:page:*")] == []


@backends
async def test_invalidate_one_source_keeps_the_others(make_cache):
    cache = make_cache()
    for source in ("paris", "london"):
        await cache.put(source, 60, q(), page(1))
    await cache.invalidate("paris")
    assert await cache.get("paris", 60, q()) is None
    assert await cache.get("london", 60, q()) is not None
    await cache.invalidate()
    assert await cache.get("london", 60, q()) is None


@backends
async def test_a_page_fetched_before_an_invalidation_is_not_stored_after_it(make_cache):
    cache = make_cache()
    await cache.put("paris", 60, q(), page(1))
    await cache.invalidate("paris")
    assert await cache.get("paris", 60, q()) is None  # the resolver misses, starts a fetch...
    await cache.invalidate("paris")  # ...an admin invalidates while it runs...
    await cache.put("paris", 60, q(), page(1))  # ...and the fetch ends: these rows predate it
    assert await cache.get("paris", 60, q()) is None
    await cache.put("paris", 60, q(), page(2))  # the next fetch is stored again
    assert (await cache.get("paris", 60, q())).page.rows == page(2).rows


@backends
async def test_a_query_without_a_canonical_form_is_not_cached(make_cache):
    cache = make_cache()
    odd = Query("customers", ("id",), Cond("id", "eq", object()))
    await cache.put("paris", 60, odd, page(1))
    assert await cache.get("paris", 60, odd) is None
    assert cache.stats()["paris"].misses == 1


@pytest.mark.parametrize("make_cache", ["local"], indirect=True)
async def test_the_least_recently_used_entry_goes_first(make_cache):
    cache = make_cache(max_entries=2)
    await cache.put("paris", 60, q("a"), page(1))
    await cache.put("london", 600, q("b"), page(2))  # the bound is shared by sources and ttls
    assert await cache.get("paris", 60, q("a")) is not None  # a is now more recent than b
    await cache.put("paris", 60, q("c"), page(3))
    assert await cache.get("london", 600, q("b")) is None
    assert await cache.get("paris", 60, q("a")) is not None
    assert await cache.get("paris", 60, q("c")) is not None
    assert sum(s.entries for s in cache.stats().values()) == 2


# -- Redis ------------------------------------------------------------------------------------------

redis_only = pytest.mark.parametrize("make_cache", ["redis"], indirect=True)

RAW = {
    "text": "Hélène", "int": 42, "big": 2**70, "negative": -(2**63), "float": 0.1, "nan": math.nan,
    "true": True, "false": False, "none": None,
    "decimal": Decimal("19.90"), "exponent": Decimal("1E+3"), "minus_zero": Decimal("-0.00"),
    "date": date(2024, 2, 29),
    "naive": datetime(2024, 3, 31, 2, 30, 0, 123456),
    "utc": datetime(2024, 3, 31, 2, 30, tzinfo=UTC),
    "offset": datetime(2024, 3, 31, 2, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    "zoned": datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    "time": time_of_day(8, 15, 0, 5), "time_tz": time_of_day(8, 15, tzinfo=UTC),
    "interval": timedelta(days=-1, seconds=5, microseconds=7),
    "bytes": b"\x00\xffraw", "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "list": [1, "a", Decimal("2.5")], "tuple": (1, date(2024, 1, 1)),
}


@redis_only
async def test_raw_values_round_trip_exactly_through_redis(make_cache):
    writer, reader = make_cache(), make_cache()  # the reader has nothing local: it reads Redis
    await writer.put("paris", 60, q(), Page([RAW]))
    (row,) = (await reader.get("paris", 60, q())).page.rows
    assert row.keys() == RAW.keys()
    for name, value in RAW.items():
        got = row[name]
        assert type(got) is type(value), name
        if name == "nan":
            assert math.isnan(got)
            continue
        assert got == value, name
        if isinstance(value, datetime | time_of_day):
            assert (got.tzinfo, got.fold) == (value.tzinfo, value.fold), name
    assert str(row["decimal"]) == "19.90" and str(row["minus_zero"]) == "-0.00"


@redis_only
async def test_replicas_share_entries_and_invalidations(make_cache):
    a, b = make_cache(), make_cache()
    await a.put("paris", 60, q(), page(1))
    await a.put("london", 60, q(), page(2))
    assert (await b.get("paris", 60, q())).page.rows == page(1).rows
    assert (await a.get("paris", 60, q())) is not None  # now also in a's local layer
    await b.invalidate("paris")
    assert await a.get("paris", 60, q()) is None  # a's local copy is not served either
    assert await b.get("paris", 60, q()) is None
    assert await a.get("london", 60, q()) is not None
    await a.invalidate()
    assert await b.get("london", 60, q()) is None


@redis_only
async def test_redis_keys_follow_the_documented_layout(make_cache, redis_client, namespace):
    cache = make_cache()
    assert await cache.get("paris", 60, q()) is None
    await cache.put("paris", 60, q(), page(1))
    keys = sorted([k.decode() async for k in redis_client.scan_iter(match=f"{namespace}:*")])
    epoch, gen = map(int, await redis_client.mget(f"{namespace}:epoch", f"{namespace}:gen:paris"))
    assert keys[:2] == [f"{namespace}:epoch", f"{namespace}:gen:paris"]
    assert len(keys) == 3 and keys[2].startswith(f"{namespace}:page:paris:{epoch}.{gen}:")
    assert len(keys[2].rsplit(":", 1)[1]) == 32  # blake2b, 16 bytes
    assert 0 < await redis_client.pttl(keys[2]) <= 60_000
    await cache.invalidate("paris")
    assert int(await redis_client.get(f"{namespace}:gen:paris")) == gen + 1


@redis_only
async def test_an_evicted_generation_does_not_bring_old_entries_back(make_cache, redis_client, namespace):
    a, b = make_cache(), make_cache()
    await a.put("paris", 60, q(), page(1))
    await a.invalidate("paris")
    await a.put("paris", 60, q(), page(2))
    await redis_client.delete(f"{namespace}:gen:paris")  # as maxmemory eviction would
    assert await b.get("paris", 60, q()) is None
    await b.put("paris", 60, q(), page(3))  # re-seeds the counter from the clock, not from 0
    assert (await a.get("paris", 60, q())).page.rows == page(3).rows


@redis_only
async def test_a_foreign_value_in_redis_is_a_miss(make_cache, redis_client, namespace, caplog):
    cache = make_cache()
    await cache.put("paris", 60, q(), page(1))
    (key,) = [k async for k in redis_client.scan_iter(match=f"{namespace}:page:*")]
    for junk in (b"\x80\x04pickle", b'[1, 0.0, [{"id": ["nope", 1]}]]', b"[2, 0.0, []]"):
        await redis_client.set(key, junk)
        assert await make_cache().get("paris", 60, q()) is None
    assert "unreadable entry" in caplog.text


async def test_redis_down_never_fails_a_request_but_invalidate_says_so(caplog):
    cache = SourceCache(redis_url=DEAD_URL, namespace=f"test-{uuid.uuid4().hex}")
    with caplog.at_level(logging.WARNING, logger="panorama.cache"):
        started = time.monotonic()
        for _ in range(5):
            assert await cache.get("paris", 60, q()) is None
            await cache.put("paris", 60, q(), page(1))
        assert time.monotonic() - started < 2
        assert await cache.get("paris", 60, q()) is None  # nothing was kept locally either
        with pytest.raises(CacheUnavailable) as raised:
            await cache.invalidate("paris")
    message = str(raised.value)
    assert isinstance(raised.value, CacheError) and raised.value.code == "CACHE_UNAVAILABLE"
    assert "the shared cache (redis)" in message and "cache_redis_url" in message and "paris" in message
    for secret in ("redis://", "127.0.0.1", ":1/", "s3cret-pw"):
        assert secret not in message and secret not in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one warning, not one per request
    await cache.aclose()


@pytest.mark.parametrize("url, why", [
    ("http://user:s3cret-pw@cache.internal:6379/0", "scheme"),
    ("s3cret-pw", "scheme"),
    ("redis://:s3cret-pw@cache.internal:port/0", "port"),
    ("redis://:s3cret-pw@cache.internal:6379/zero", "database"),
    ("redis://:s3cret-pw@/0", "host"),
])
def test_a_bad_redis_url_names_the_setting_and_the_form(url, why):
    with pytest.raises(CacheConfigError) as raised:
        SourceCache(redis_url=url)
    message = str(raised.value)
    assert "cache_redis_url" in message and "redis://host:port/db" in message and why in message
    assert "s3cret-pw" not in message and "cache.internal" not in message
