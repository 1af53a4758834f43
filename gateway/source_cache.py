"""A cache of raw source pages, per source, in this process or shared through Redis.

What is cached: the :class:`~connectors.query.Page` a connector returned for one
:class:`~connectors.query.Query` of one source, keyed by the query's shape *and* values (entity,
fields, filter tree, ``after``, ``limit``). Rows are raw source values, before transforms,
survivorship and policies. Policies are applied after the cache, per principal, so one
principal's cached rows can never reach another principal unmasked: the cache holds only what
the source would have answered anybody.

Each source has its own TTL (``ttl``, seconds, passed on every call); ``ttl <= 0`` turns caching
off for that source (no lookup, no store, no Redis traffic). The local layer is one
:class:`cachetools.TLRUCache`: every entry expires at ``stored_at + ttl`` (wall clock, so an
entry read from Redis expires here when it does there) and at most ``max_entries`` are held in
total, the least recently used going first.

With ``redis_url`` the cache is shared by every replica::

    {ns}:epoch                               INCR by invalidate()        (all sources)
    {ns}:gen:{source}                        INCR by invalidate(source)
    {ns}:page:{source}:{epoch}.{gen}:{digest} SET ... PX ttl             (orjson, tagged values)

``digest`` is blake2b of the canonical query. Invalidation never deletes: it moves a generation,
so every replica's later lookups compute other keys and miss, and the old entries expire by
their TTL. A lookup is at most two round trips (MGET of both generations, then GET of the page).
The local layer is kept in front of Redis because it is keyed by the generation read from Redis
on every lookup, so another replica's invalidation is seen at once; a local hit saves only the
second round trip. A missing generation key (never set, or evicted by Redis) reads as a miss
and is re-seeded from the clock, never from 0, so an evicted counter cannot bring back entries
stored under an old generation.

A store is fenced by the generation its lookup saw: rows fetched before an invalidation are
written under the old generation, where nobody reads them.

Redis trouble never fails a request: lookups miss and stores are dropped (one warning, then
silence for ``retry_after`` seconds). :meth:`SourceCache.invalidate` is the exception: an admin
must know the shared cache was not invalidated, so it raises :class:`CacheUnavailable`::

    CacheError            code               meaning
    ├── CacheConfigError  CACHE_CONFIG       cache_redis_url is not a Redis URL
    └── CacheUnavailable  CACHE_UNAVAILABLE  the shared cache (redis) could not be invalidated

Values go to Redis as orjson with a small tagged encoding (:mod:`gateway.cache_codec`; never
pickle: whoever can write to Redis must not be able to run code in the gateway); an entry that
does not decode is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import redis.asyncio as aioredis
from cachetools import LRUCache, TLRUCache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from connectors.query import Page, Query
from gateway.cache_codec import Uncacheable, decode_page, encode_page, query_key
from gateway.settings import redis_url

log = logging.getLogger("panorama.cache")


class CacheError(Exception):
    """Base of every error the source cache raises."""

    code = "CACHE_ERROR"


class CacheConfigError(CacheError, ValueError):
    """The cache is configured with something it cannot use."""

    code = "CACHE_CONFIG"


class CacheUnavailable(CacheError):
    """The shared cache (redis) could not be reached for an operation that must not be dropped."""

    code = "CACHE_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Cached:
    """A cached page and when it was fetched from the source (``time.time()`` of the writer)."""

    page: Page
    stored_at: float

    def age(self, now: float | None = None) -> float:
        """Seconds since the rows were fetched from the source."""
        return (time.time() if now is None else now) - self.stored_at


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one source; ``entries`` are those held in this replica's local layer."""

    hits: int
    misses: int
    entries: int


# -- the cache ---------------------------------------------------------------------------------------

#: (epoch, source generation); None for a counter Redis does not hold.
Generation = tuple[int | None, int | None]


def _label(generation: Generation) -> str | None:
    epoch, gen = generation
    return None if epoch is None or gen is None else f"{epoch}.{gen}"


@dataclass(frozen=True, slots=True)
class _Entry:
    rows: tuple[dict[str, Any], ...]
    stored_at: float
    expires: float

    def cached(self) -> Cached:
        # Copies: a caller that edits its rows must not edit the cache.
        return Cached(Page([dict(row) for row in self.rows]), self.stored_at)


def _check_redis_url(url: str) -> None:
    try:
        redis_url(url)
    except ValueError as exc:  # the message never echoes the URL: it may hold a password
        raise CacheConfigError(f"cache_redis_url: {exc}") from None


class SourceCache:
    """Raw pages per (source, query), local or shared through Redis; see the module docstring."""

    #: Seconds a Redis command may take before the cache gives up on it (a miss, not an error).
    timeout: float = 0.5
    #: Seconds the cache leaves Redis alone after a failure, so a dead Redis costs no latency.
    retry_after: float = 5.0

    def __init__(self, max_entries: int = 10_000, redis_url: str | None = None,
                 namespace: str = "panorama") -> None:
        if max_entries < 1:
            raise CacheConfigError("cache_max_entries: expected a whole number of at least 1")
        self.namespace = quote(namespace, safe="")
        self._local: TLRUCache[tuple[str, str, bytes], _Entry] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, entry, _now: entry.expires, timer=time.time)
        # The (epoch, gen) each (source, query) lookup last saw, to fence the store that follows.
        self._seen: LRUCache[tuple[str, bytes], Generation] = LRUCache(maxsize=max_entries)
        self._epoch = 0
        self._gens: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()
        self._misses: Counter[str] = Counter()
        self._redis: aioredis.Redis | None = None
        self._redis_down_until = 0.0
        if redis_url is not None:
            _check_redis_url(redis_url)
            try:
                self._redis = aioredis.Redis.from_url(
                    redis_url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                    retry=Retry(NoBackoff(), 0))  # a cache retries by missing, not by waiting
            except ValueError:
                raise CacheConfigError("cache_redis_url: expected redis://host:port/db; "
                                       "the URL's options are not understood") from None

    # -- public API ----------------------------------------------------------------------------------

    async def get(self, source: str, ttl: float, query: Query) -> Cached | None:
        """The cached page of this query, or None (a miss, uncacheable query, or Redis trouble)."""
        if ttl <= 0:
            return None
        canonical = query_key(query)
        found = None
        if canonical is not None:
            found = await self._lookup(source, ttl, canonical)
        (self._misses if found is None else self._hits)[source] += 1
        return found

    async def put(self, source: str, ttl: float, query: Query, page: Page) -> None:
        """Remember a page the source just answered for this query."""
        canonical = query_key(query)
        if ttl <= 0 or canonical is None:
            return
        now = time.time()
        entry = _Entry(tuple(dict(row) for row in page.rows), now, now + ttl)
        if self._redis is None:
            current = self._local_generation(source)
            if self._seen.get((source, canonical), current) != current:
                return  # fetched before an invalidation: its rows may be what was invalidated
            self._local[(source, f"{self._epoch}.{self._gens[source]}", canonical)] = entry
            return
        if self._redis_resting():
            return
        try:
            value = encode_page(page, now)
        except (Uncacheable, orjson.JSONEncodeError) as exc:
            log.debug("source %s: page not cached (no encoding for %s)", source, exc)
            return
        try:
            generation = await self._generation_for_put(source, canonical)
            if generation is None:
                return  # fetched before an invalidation: its rows may be what was invalidated
            await self._redis.set(self._page_key(source, generation, canonical), value,
                                  px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return
        self._local[(source, generation, canonical)] = entry

    async def invalidate(self, source: str | None = None) -> None:
        """Drop one source's entries (None: every source's), here and on every replica."""
        for key in [k for k in self._local.keys() if source is None or k[0] == source]:
            self._local.pop(key, None)
        if source is None:
            self._epoch += 1
        else:
            self._gens[source] += 1
        if self._redis is None:
            return
        counter = self._epoch_key() if source is None else self._gen_key(source)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(counter, self._seed(), nx=True)
                pipe.incr(counter)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            what = "every source" if source is None else f"source '{source}'"
            raise CacheUnavailable(
                f"could not invalidate {what}: the shared cache (redis) is unreachable "
                f"({type(exc).__name__}); other replicas may serve cached rows until their TTL "
                "runs out. Check that the Redis named by cache_redis_url is up, then invalidate "
                "again.") from exc
        self._redis_down_until = 0.0

    async def aclose(self) -> None:
        """Close the Redis connections and drop the local entries."""
        self._local.clear()
        if self._redis is not None:
            await self._redis.aclose()

    def stats(self) -> dict[str, CacheStats]:
        """Hits, misses and locally held entries, per source."""
        self._local.expire()
        entries = Counter(key[0] for key in self._local.keys())
        sources = sorted(set(self._hits) | set(self._misses) | set(entries))
        return {s: CacheStats(self._hits[s], self._misses[s], entries[s]) for s in sources}

    # -- lookups -------------------------------------------------------------------------------------

    async def _lookup(self, source: str, ttl: float, canonical: bytes) -> Cached | None:
        if self._redis is None:
            seen = self._local_generation(source)
        elif self._redis_resting():
            return None
        else:
            try:
                seen = await self._read_generation(source)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                return None
        self._seen[(source, canonical)] = seen
        generation = _label(seen)
        if generation is None:
            return None
        entry = self._local.get((source, generation, canonical))
        if entry is not None:
            return entry.cached()
        if self._redis is None:
            return None
        try:
            data = await self._redis.get(self._page_key(source, generation, canonical))
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            return None
        if data is None:
            return None
        try:
            stored_at, rows = decode_page(data)
        except Exception:  # anything a foreign or corrupt value raises is a miss, never an error
            log.warning("source %s: unreadable entry in the shared cache (redis) ignored", source)
            return None
        entry = _Entry(tuple(rows), stored_at, stored_at + ttl)
        if entry.expires > time.time():
            self._local[(source, generation, canonical)] = entry
        return entry.cached()

    def _local_generation(self, source: str) -> Generation:
        return (self._epoch, self._gens[source])

    async def _read_generation(self, source: str) -> Generation:
        assert self._redis is not None
        epoch, gen = await self._redis.mget(self._epoch_key(), self._gen_key(source))
        self._redis_down_until = 0.0
        return (None if epoch is None else int(epoch), None if gen is None else int(gen))

    async def _generation_for_put(self, source: str, canonical: bytes) -> str | None:
        """The generation to store under: the one the lookup saw, or None if it has moved since."""
        assert self._redis is not None
        seen = self._seen.get((source, canonical))
        if seen is not None and None not in seen:
            return _label(seen)
        # The lookup found a counter missing (first use, or evicted by Redis): seed it.
        async with self._redis.pipeline(transaction=True) as pipe:
            seed = self._seed()
            pipe.set(self._epoch_key(), seed, nx=True)
            pipe.set(self._gen_key(source), seed, nx=True)
            pipe.mget(self._epoch_key(), self._gen_key(source))
            made_epoch, made_gen, (epoch, gen) = await pipe.execute()
        current = (int(epoch), int(gen))
        if seen is not None:
            for before, now, made in zip(seen, current, (made_epoch, made_gen), strict=True):
                # A counter somebody else created or moved since the lookup may be an
                # invalidation this page predates.
                if (before is None and not made) or (before is not None and before != now):
                    return None
        return _label(current)

    # -- Redis plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _seed() -> int:
        # A fresh counter starts from the clock, so it never repeats an evicted one's values.
        return time.time_ns() // 1000

    def _epoch_key(self) -> str:
        return f"{self.namespace}:epoch"

    def _gen_key(self, source: str) -> str:
        return f"{self.namespace}:gen:{quote(source, safe='')}"

    def _page_key(self, source: str, generation: str, canonical: bytes) -> str:
        digest = hashlib.blake2b(canonical, digest_size=16).hexdigest()
        return f"{self.namespace}:page:{quote(source, safe='')}:{generation}:{digest}"

    def _redis_resting(self) -> bool:
        return time.monotonic() < self._redis_down_until

    def _redis_failed(self, exc: BaseException) -> None:
        # Never the URL or the message: either may carry the host or a password.
        if not self._redis_resting():
            log.warning("the shared cache (redis) failed (%s); serving without it for %.0f s",
                        type(exc).__name__, self.retry_after)
        self._redis_down_until = time.monotonic() + self.retry_after
