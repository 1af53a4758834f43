"""Find customers across sources for one request: lookups, identity expansion, pages.

One :class:`Resolver` lives for one GraphQL request. Sources are always asked together
(``asyncio.gather``), once per round, with every key of the round in one filter. A
source that fails is recorded in ``failures`` and the others still answer: partial data.

The request's row scope (gateway.policy.RowScope) is pushed down: a source it may not read is
never asked, a page starts only from the sources a listed customer must be known in, and every
customer is re-checked with ``admits`` before it is returned; one outside the scope is answered
exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorError
from connectors.query import Cond, Expr, Latest, Page, Query
from connectors.round_trips import recording
from gateway.consent_gate import ConsentGate
from gateway.faults import RetryPolicy, call_source
from gateway.identity import (
    Cluster,
    Ref,
    cluster,
    decode_id,
    decode_ref,
    encode_ref,
    sort_key,
)
from gateway.linking import Linker
from gateway.mapping import ChildMapping
from gateway.planner import NOTHING, CustomerFilter, key_lookup, matches, plan_filter
from gateway.policy.rows import RowScope, SourceFacts
from gateway.records import CustomerRecord
from gateway.request_trace import RequestTrace
from gateway.selection import customer_columns
from gateway.settings import Settings
from gateway.sources import Source, SourceSet

if TYPE_CHECKING:
    from gateway.source_cache import SourceCache

log = logging.getLogger("panorama.resolver")
#: Failures after which a request stops asking the source: it is slow or unreachable right now.
DOWN_CODES = frozenset({"SOURCE_TIMEOUT", "SOURCE_UNAVAILABLE"})
CURSOR_PREFIX = "cur_"


@dataclass(frozen=True)
class SourceFailure:
    """A source that could not answer part of a request."""

    source: str
    code: str
    message: str


@dataclass(frozen=True)
class PageResult:
    clusters: list[Cluster]
    cursors: list[str]
    has_next: bool


def encode_cursor(source: str, key: str) -> str:
    """The position of a customer in ``customers``: its representative record."""
    return encode_ref(CURSOR_PREFIX, source, key)


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    return decode_ref(CURSOR_PREFIX, cursor)


class Resolver:
    """Customer lookups for one request."""

    def __init__(self, sources: SourceSet, settings: Settings, linker: Linker | None = None,
                 scope: RowScope | None = None, facts: SourceFacts | None = None) -> None:
        """``scope`` and ``facts`` (gateway.policy.source_facts): the rows the request may read;
        without a scope, every row (steward tools, the indexer's helpers, tests)."""
        self.sources = sources
        self.settings = settings
        self.linker = linker or Linker()
        self.scope = scope if scope is not None else RowScope()
        self.facts: SourceFacts = facts or {}
        # A restricted scope without facts reads nothing: deny by default.
        self.readable = (frozenset(sources.names) if self.scope.unrestricted
                         else self.scope.readable_sources(self.facts))
        self.failures: list[SourceFailure] = []
        self.trace = RequestTrace()  # every source call: explain, freshness, round trips
        self.cache: SourceCache | None = None  # raw source results shared by requests
        self.retry = RetryPolicy(settings.read_retries, settings.retry_backoff_seconds)
        # loop.time() by which every source call of the request ends: start_deadline (app.py
        # at the request's arrival), else the first source call.
        self.deadline: float | None = None
        # Drops customers who object to the request's purpose (gateway.consent_gate); None: none.
        self.consent: ConsentGate | None = None
        self._known: dict[Ref, CustomerRecord] = {}
        # Lookups of one request run concurrently (aliases, DataLoaders) and share what is read:
        # each match key is searched, each record placed, each customer loaded once, and a
        # lookup that needs one in flight awaits it; a record whose placement is not known yet
        # is left out of clustering, so live keys never join what the index keeps apart.
        self._searches: dict[str, asyncio.Future[Any]] = {}  # match key -> its lookups
        self._placing: dict[Ref, asyncio.Future[None]] = {}  # record -> its placement query
        self._placed: dict[Ref, str] = {}  # ref -> global id, for records the index holds
        self._evidence: dict[Ref, Any] = {}  # ref -> the index's evidence for it
        # Customer id -> the load of its indexed records; a lookup that needs a customer another
        # lookup of the request is loading waits for that load (rather than building the
        # customer without the index's placements, which live keys could merge wrongly).
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._keys: dict[Ref, frozenset[str]] = {}  # match keys, computed once per record
        # Search the sources for records sharing keys; off (a setting) only when an index
        # finds customers: sources are then read by primary key alone.
        self.live_lookups = settings.identity_live_lookups or not self.linker.indexed
        # Optional customer columns to read (gateway.selection), set from the operation's
        # selection before the first lookup; None: every mapped column.
        self.groups: frozenset[str] | None = None
        # False: leave e-mails, phones and cards unread (with ``groups`` set); only for callers
        # that take customers from the index alone (indexed_customers) and show none of them.
        self.match_keys = True
        self._columns: dict[str, tuple[str, ...]] = {}  # per source, for self.groups
        self._down: set[str] = set()  # sources that timed out or were unreachable: not asked again

    # -- the row scope -----------------------------------------------------------------

    def _read(self) -> list[Source]:
        """The sources this request may ask, in identity order."""
        return [s for s in self.sources if s.name in self.readable]

    def _source(self, name: str) -> Source | None:
        return self.sources.get(name) if name in self.readable else None

    def admitted(self, found: Cluster | None) -> Cluster | None:
        """``found`` if the scope admits it, else None: out of scope is the same as absent."""
        if found is None or self.scope.unrestricted:
            return found
        present = {r.source for r in found.records}
        ids = [found.id] if found.redirected_from is None else [found.id, found.redirected_from]
        # An id the principal is bound to that now redirects (records merged) is still theirs.
        if any(self.scope.admits(i, present, self.facts) for i in ids):
            return found
        return None

    async def _consented(self, found: Cluster | None) -> Cluster | None:
        """``found`` unless the customer objects to the request's purpose: then absent."""
        return found if self.consent is None else await self.consent.admit(found)

    async def _objecting(self, clusters: Iterable[Cluster]) -> set[str]:
        """Ids of customers who object to the request's purpose (one consent query)."""
        return set() if self.consent is None else await self.consent.hidden(
            {c.id: c for c in clusters}.values())

    # -- calling sources ---------------------------------------------------------------

    def start_deadline(self) -> None:
        """Start the request's clock: its source calls end within request_deadline_seconds."""
        self.deadline = asyncio.get_running_loop().time() + self.settings.request_deadline_seconds

    async def _fetch(self, source: Source, query: Query, step: str) -> Page | None:
        """One read of ``query``: from the cache when it holds it, else from the source under
        its breaker, retries and the request's deadline. On failure, None and an entry in
        ``failures``. Every call is traced (round trips, timing, cache) for explain."""
        if self.deadline is None:
            self.start_deadline()
        call = self.trace.start(source.name, step, query)
        ttl = source.cache_ttl
        if self.cache is not None and ttl > 0:
            cached = await self.cache.get(source.name, ttl, query)
            if cached is not None:
                call.cached_age = cached.age()
                self.trace.end(call, len(cached.page.rows), [])
                return cached.page
        if source.name in self._down:  # it timed out or was unreachable earlier in this request
            self.trace.end(call, None, [], "SKIPPED")
            return None
        error: str | None = None
        page: Page | None = None
        with recording() as trips:
            try:
                page = await call_source(source.name, source.breaker,
                                         lambda: source.connector.fetch(query), self.retry,
                                         self.deadline)
            except ConnectorError as exc:
                error = exc.code
                self._fail(source, exc.code, exc.detail)
            except Exception:  # a bug in a connector: logged, reported without details
                log.exception("source %s: unexpected error", source.name)
                error = "SOURCE_ERROR"
                self._fail(source, error, "the source failed unexpectedly")
        self.trace.end(call, len(page.rows) if page is not None else None, trips, error)
        if page is None:
            return None
        source.answered, source.last_error = True, None
        if self.cache is not None and ttl > 0:
            await self.cache.put(source.name, ttl, query, page)
        return page

    async def read(self, source: Source, query: Query, step: str) -> Page | None:
        """One traced, cached, fault-tolerant read for a caller outside the resolver (the
        finance ledger); None when the source failed (``failures`` says why)."""
        if source.name not in self.readable:
            return None
        return await self._fetch(source, query, step)

    def _fail(self, source: Source, code: str, message: str) -> None:
        source.last_error = code
        if code in DOWN_CODES:
            # Asking it again in this request would most likely cost another timeout: the
            # request answers with the others' data, within about one source timeout.
            self._down.add(source.name)
        failure = SourceFailure(source.name, code, message)
        if failure not in self.failures:
            self.failures.append(failure)

    async def _customers(self, source: Source, where: Expr | None, step: str, *,
                         after: Any = None, limit: int | None = None) -> list[CustomerRecord]:
        mapping = source.config.customer
        if mapping is None:
            return []
        columns = self._columns.get(source.name)
        if columns is None:
            columns = self._columns[source.name] = customer_columns(mapping, self.groups,
                                                                    self.match_keys)
        query = Query("customer", columns, where, after, limit)
        page = await self._fetch(source, query, step)
        if page is None:
            return []
        defaults = source.config.defaults
        records = [mapping.to_record(source.name, row, defaults) for row in page.rows]
        if self.consent is not None:
            self.consent.observe(source.name, records, page.rows)
        for record in records:
            self._known.setdefault(record.ref, record)
        return records

    def _keys_of(self, record: CustomerRecord) -> frozenset[str]:
        keys = self._keys.get(record.ref)
        if keys is None:
            keys = self._keys[record.ref] = self.linker.keys(record)
        return keys

    # -- identity ----------------------------------------------------------------------

    async def expand(self, seeds: Iterable[CustomerRecord]) -> list[Cluster]:
        """The customers of ``seeds``: their indexed customers, then shared keys, round by round."""
        seeds = list(seeds)
        pending = seeds
        followed: set[Ref] = set()  # records whose keys and index placement were followed
        for _ in range(self.settings.identity_hops):
            pending = [r for r in pending if r.ref not in followed]
            if not pending:
                break
            followed.update(r.ref for r in pending)
            keys = set().union(*(self._keys_of(r) for r in pending))
            # The index's placement and the live key lookups need only this round's records:
            # one level, every source at once.
            await asyncio.gather(self._from_index(pending), self._search(keys))
            owners = {self._placed[r.ref] for r in pending if r.ref in self._placed}
            pending = [r for r in self._known.values() if r.ref not in followed and (
                self._placed.get(r.ref) in owners or not self._keys_of(r).isdisjoint(keys))]
        if pending:  # the last round found records: place them, without following them further
            await self._from_index(pending)
        seed_refs = {r.ref for r in seeds}
        clusters = cluster([r for r in self._known.values() if self._settled(r.ref)],
                           self.sources.rank, keys=self._keys_of, indexed=self._placed)
        return [replace(c, links={r.ref: self._link(self._evidence[r.ref]) for r in c.records
                                  if self._evidence.get(r.ref) is not None})
                for c in clusters if any(r.ref in seed_refs for r in c.records)]

    def _link(self, evidence: Any) -> Any:
        """The index's evidence, without naming a record of a source the request may not read."""
        other = getattr(evidence, "linked_to", None)
        return evidence if other is None or other[0] in self.readable else replace(
            evidence, linked_to=None)

    def _settled(self, ref: Ref) -> bool:
        """Whether the index's word on a record is known (it placed it, or it does not hold it)."""
        if not self.linker.indexed or ref in self._placed:
            return True
        placing = self._placing.get(ref)
        return placing is not None and placing.done()

    async def _search(self, keys: set[str]) -> None:
        """Live lookups of ``keys`` in every source, each key once per request."""
        new = keys - set(self._searches)
        if new:
            search = asyncio.ensure_future(asyncio.gather(
                *(self._lookup(source, new) for source in self._read())))
            for key in new:
                self._searches[key] = search
        await asyncio.gather(*{self._searches[k] for k in keys})

    async def _from_index(self, records: list[CustomerRecord]) -> None:
        """Place records through the crosswalk and fetch the other records of their customers."""
        if not self.linker.indexed:
            return
        refs = [r.ref for r in records if r.ref not in self._placing and r.ref not in self._placed]
        if refs:
            placing = asyncio.ensure_future(self._place(refs))
            for ref in refs:
                self._placing[ref] = placing
        await asyncio.gather(*{self._placing[r.ref] for r in records if r.ref in self._placing})
        await self._load_customers({self._placed[r.ref] for r in records if r.ref in self._placed})

    async def _place(self, refs: list[Ref]) -> None:
        self._placed.update(await self.linker.placed(refs))

    async def _load_customers(self, global_ids: set[str]) -> None:
        """Every record the index holds for these customers (one query per source), once per
        request: ids another lookup is loading are awaited, not read again."""
        wanted = global_ids - set(self._loading)
        if wanted:
            load = asyncio.ensure_future(self._read_customers(wanted))
            for global_id in wanted:
                self._loading[global_id] = load
        await asyncio.gather(*{self._loading[g] for g in global_ids})

    async def _read_customers(self, wanted: set[str]) -> None:
        missing: dict[str, list[str]] = {}
        for global_id, members in (await self.linker.members(wanted)).items():
            for member in members:
                self._placed[member.ref] = global_id
                self._evidence[member.ref] = member.evidence
                if member.ref not in self._known:
                    missing.setdefault(member.ref[0], []).append(member.ref[1])
        calls: list[Awaitable[list[CustomerRecord]]] = []
        for name, keys in missing.items():
            source = self._source(name)
            if source is None:
                continue
            size = max(1, source.connector.max_in_values)
            calls.extend(self._customers(source, Cond("key", "in", tuple(keys[i:i + size])),
                                         "members")
                         for i in range(0, len(keys), size))
        await asyncio.gather(*calls)

    async def _lookup(self, source: Source, keys: set[str]) -> None:
        mapping = source.config.customer
        if mapping is None or not self.live_lookups:
            return
        exprs = key_lookup(mapping, source.connector, keys)
        await asyncio.gather(*(self._customers(source, expr, "lookup") for expr in exprs))

    # -- entry points ------------------------------------------------------------------

    async def by_key(self, key: str) -> Cluster | None:
        """The customer carrying one match key (a key links records, so there is at most one)."""
        async def indexed() -> None:  # the customers the index saw with the key, meanwhile
            await self._load_customers(await self.linker.customers_with_key(key))

        await asyncio.gather(indexed(), self._search({key}))
        # Seeds carry the key now: a record the index saw with it may have changed since.
        seeds = [r for r in self._known.values() if key in self._keys_of(r)]
        clusters = await self.expand(seeds)
        return await self._consented(self.admitted(clusters[0] if clusters else None))

    async def by_id(self, global_id: str) -> Cluster | None:
        """A customer by id: an indexed id (following merges), or the id of a record."""
        found: Cluster | None = None
        current = await self.linker.resolve_id(global_id)
        if current is not None:
            await self._load_customers({current[0]})
            seeds = [r for ref, r in self._known.items() if self._placed.get(ref) == current[0]]
            found = next((c for c in await self.expand(seeds) if c.id == current[0]), None)
        if found is None:
            ref = decode_id(global_id)
            source = self._source(ref[0]) if ref else None
            if ref is None or source is None or source.config.customer is None:
                return None
            records = await self._customers(source, Cond("key", "in", (ref[1],)), "record")
            clusters = await self.expand(records) if records else []
            found = clusters[0] if clusters else None
        if found is not None and found.id != global_id:
            found = replace(found, redirected_from=global_id)
        return await self._consented(self.admitted(found))

    async def indexed_customers(self, global_ids: Sequence[str]) -> list[Cluster]:
        """The indexed customers of ``global_ids`` (current ids, as the crosswalk pages them), in
        that order: the index's members, read from the sources by primary key alone (no live
        lookups, no linking work: the index has ruled), then the row scope and consent as
        ``by_id`` applies them. A customer out of scope, objecting, or whose every record is
        gone from its source is left out. ``evidence`` and ``links`` stay empty (an export has
        no use for them; ``by_id`` gives them)."""
        await self._load_customers(set(global_ids))
        records: dict[str, list[CustomerRecord]] = {}
        for ref, record in self._known.items():
            owner = self._placed.get(ref)
            if owner is not None:
                records.setdefault(owner, []).append(record)
        rank = self.sources.rank
        found: list[Cluster] = []
        for global_id in global_ids:
            members = records.get(global_id)
            if members:
                members.sort(key=lambda r: sort_key(rank, r))
                admitted = self.admitted(Cluster(tuple(members), {}, global_id))
                if admitted is not None:
                    found.append(admitted)
        hidden = await self._objecting(found)
        return [c for c in found if c.id not in hidden] if hidden else found

    async def by_ref(self, ref: Ref) -> Cluster | None:
        """The customer a given source record belongs to."""
        source = self._source(ref[0])
        if source is None or source.config.customer is None:
            return None
        records = await self._customers(source, Cond("key", "in", (ref[1],)), "record")
        found = [c for c in await self.expand(records) if any(r.ref == ref for r in c.records)]
        return await self._consented(self.admitted(found[0] if found else None))

    async def page(self, flt: CustomerFilter, first: int, after: str | None) -> PageResult:
        """``first`` customers matching ``flt`` after the cursor, in source order."""
        start_rank, start_key = 0, None
        if after:
            position = decode_cursor(after)
            if position is None or position[0] not in self.sources.rank:
                raise ValueError("after: not a cursor of this gateway; pass an endCursor "
                                 "returned by customers")
            start_rank, start_key = self.sources.rank[position[0]], position[1]
        emitted: list[tuple[Cluster, str]] = []
        # A little more than the page: a record whose customer is listed by another record
        # (a duplicate in the same shop) does not count, and one more tells has_next.
        batch = first + 1 + max(first // 8, 4)
        starts = self._listing(flt)
        for source in self._read():
            if source.rank < start_rank or source.name not in starts \
                    or source.config.customer is None:
                continue
            where = plan_filter(source.name, source.config.customer, source.connector, flt)
            if where is NOTHING:
                continue
            last: Any = start_key if source.rank == start_rank else None
            size = min(batch, source.connector.max_page_size)
            while len(emitted) <= first:
                records = await self._customers(source, where, "page", after=last, limit=size)
                if not records:
                    break
                clusters = {r.ref: c for c in await self.expand(records) for r in c.records}
                hidden = await self._objecting(clusters.values())
                for record in records:
                    found = self.admitted(clusters.get(record.ref))
                    if found is not None and found.id not in hidden \
                            and self._represents(record, found, flt, starts):
                        emitted.append((found, encode_cursor(source.name, record.key)))
                        if len(emitted) > first:
                            break
                last = records[-1].native_key
                if len(records) < size:
                    break
            if len(emitted) > first:
                break
        page = emitted[:first]
        return PageResult([c for c, _ in page], [k for _, k in page], len(emitted) > first)

    def _listing(self, flt: CustomerFilter) -> frozenset[str]:
        """The sources a page starts from: the filter's shop, else those the scope lists from
        (the shop of a `known_in` filter is pushed down exactly like ``filter.shop``)."""
        if flt.shop is not None:
            return frozenset({flt.shop}) & self.readable
        if self.scope.unrestricted:
            return self.readable
        return self.scope.listing_sources(self.facts)

    def _represents(self, record: CustomerRecord, found: Cluster, flt: CustomerFilter,
                    starts: frozenset[str]) -> bool:
        """Whether ``record`` is its customer's first record, among the sources the page starts
        from, that matches the filter: each customer is listed once."""
        if not matches(flt, record):
            return False
        rank = self.sources.rank
        first_match = min((r for r in found.records if r.source in starts and matches(flt, r)),
                          key=lambda r: sort_key(rank, r))
        return first_match.ref == record.ref

    # -- children (transactions, interactions) ------------------------------------------

    async def children(self, clusters: list[Cluster], section: str,
                       newest: int | None = None) -> list[list[Any]]:
        """Transactions or interactions of each cluster: one query per table per source.
        ``newest``: only that many of each customer's newest are needed; sources that can rank
        rows by date return at most that many per record (the caller sorts and cuts)."""
        wanted: dict[str, dict[str, Any]] = {}  # source -> local key -> native key
        for found in clusters:
            for record in found.records:
                wanted.setdefault(record.source, {})[record.key] = record.native_key
        calls = []
        for name, keys in wanted.items():
            source = self._source(name)
            if source is None:
                continue
            for mapping in getattr(source.config, section):
                calls.append(self._child_rows(source, mapping, section, list(keys.values()),
                                              newest))
        per_ref: dict[tuple[str, str], list[Any]] = {}
        for rows in await asyncio.gather(*calls):
            for item in rows:
                per_ref.setdefault((item.source, item.customer_key), []).append(item)
        return [[item for r in found.records for item in per_ref.get(r.ref, [])]
                for found in clusters]

    async def _child_rows(self, source: Source, mapping: ChildMapping, section: str,
                          keys: list[Any], newest: int | None) -> list[Any]:
        size = max(1, source.connector.max_in_values)
        convert = mapping.to_transaction if section == "transactions" else mapping.to_interaction
        fields = tuple(mapping.entity.fields)
        date = mapping.fields.get("date")
        latest = Latest(date.logical, newest) if newest and date and date.logical else None
        out: list[Any] = []
        pages = await asyncio.gather(*(
            self._fetch(source, Query(mapping.entity.name, fields,
                                      Cond("customer_key", "in", tuple(keys[i:i + size])),
                                      latest=latest), section)
            for i in range(0, len(keys), size)))
        defaults = source.config.defaults
        for page in pages:
            if page is not None:
                out.extend(convert(source.name, row, defaults) for row in page.rows)
        return out
