"""``panorama index``: read identity attributes, resolve customers, keep their ids stable.

A run reads only the identity attributes of each source (names, birth date, VAT, e-mails,
phones, cards, the first lines of addresses), incrementally where the source maps an
``updated_at`` (one watermark per source) and fully otherwise, resolves the records in scope
with the configured matching rules, gives each customer a global id (the id most of its
records already had, so re-indexing unchanged data changes nothing), and writes the result
to the crosswalk in one transaction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConnectorError
from connectors.query import Cond, Query
from gateway.crosswalk import Crosswalk, Evidence, IndexRun, KeyHasher, Member
from gateway.identity import encode_id, sort_key
from gateway.matching import Matcher
from gateway.records import CustomerRecord
from gateway.sources import Source, SourceSet

Ref = tuple[str, str]
CHUNK = 5000
# Logical customer fields that identity needs; everything else stays in the source.
# Kept with the watermarks (source names never hold ':'): a keyed hash of a constant, which
# tells whether the stored hashes were made with the current secret.
SECRET_FINGERPRINT = "panorama:secret-fingerprint"
IDENTITY_FIELD = re.compile(
    r"^(key|kind|given_name|family_name|full_name|legal_name|birth_date|vat_number|updated_at"
    r"|email_\d+|phone_\d+|card_\d+|address_\d+_(line1|postcode|city))$")


class IndexFailed(RuntimeError):
    """A source could not be read; nothing was written."""


def identity_fields(fields: Iterable[str]) -> tuple[str, ...]:
    return tuple(f for f in fields if IDENTITY_FIELD.match(f))


@dataclass
class IndexReport:
    records: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    links: Counter = field(default_factory=Counter)
    redirects: int = 0
    removed: int = 0
    incremental: dict[str, bool] = field(default_factory=dict)

    def lines(self) -> list[str]:
        read = ", ".join(f"{s} {n} {'changed' if self.incremental.get(s) else '(all)'}"
                         for s, n in self.records.items())
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.links.items())) or "none"
        return [f"records read: {read}",
                f"customers in scope: {self.customers}; links by rule: {rules}",
                f"ids redirected: {self.redirects}; records gone from their source: {self.removed}"]


async def read_records(source: Source, where: Any, fields: tuple[str, ...],
                       chunk: int = CHUNK) -> AsyncIterator[list[CustomerRecord]]:
    """Every record of a source matching ``where``, a keyset page at a time."""
    mapping = source.config.customer
    assert mapping is not None
    after: Any = None
    size = min(chunk, source.connector.max_page_size)
    while True:
        page = await source.connector.fetch(Query("customer", fields, where, after, size))
        if page.rows:
            yield [mapping.to_record(source.name, row, source.config.defaults) for row in page.rows]
        if len(page.rows) < size:
            return
        after = page.rows[-1]["key"]


async def fetch_refs(sources: SourceSet, refs: Iterable[Ref]) -> list[CustomerRecord]:
    """The identity attributes of known records, one query per source and chunk."""
    by_source: dict[str, list[str]] = {}
    for source_name, key in refs:
        by_source.setdefault(source_name, []).append(key)
    out: list[CustomerRecord] = []
    for name, keys in by_source.items():
        source = sources.get(name)
        if source is None or source.config.customer is None:
            continue
        fields = identity_fields(source.config.customer.entity.fields)
        size = max(1, source.connector.max_in_values)
        for start in range(0, len(keys), size):
            where = Cond("key", "in", tuple(keys[start:start + size]))
            async for records in read_records(source, where, fields):
                out.extend(records)
    return out


def assign_ids(clusters: list[list[CustomerRecord]], previous: Mapping[Ref, str],
               rank: dict[str, int], unavailable: Callable[[str], bool]
               ) -> tuple[list[str], dict[str, str]]:
    """A global id per cluster, and redirects from ids that no cluster keeps.

    Largest clusters choose first: each keeps the previous id most of its records had (so a
    split leaves the id with the larger part, and re-indexing unchanged data keeps every id);
    ties go to the smaller id. A cluster with no previous id gets the id of its first record,
    made unique if needed. An id no cluster keeps redirects to where most of its records went.
    """
    order = sorted(range(len(clusters)),
                   key=lambda i: (-len(clusters[i]), sort_key(rank, clusters[i][0])))
    ids: list[str] = [""] * len(clusters)
    used: set[str] = set()
    for i in order:
        counts = Counter(previous[r.ref] for r in clusters[i] if r.ref in previous)
        kept = next((g for g in sorted(counts, key=lambda g: (-counts[g], g)) if g not in used), None)
        if kept is None:
            base = encode_id(*clusters[i][0].ref)
            kept, n = base, 2
            while kept in used or (kept not in previous.values() and unavailable(kept)):
                kept, n = f"{base}~{n}", n + 1
        ids[i] = kept
        used.add(kept)
    went: dict[str, Counter] = {}
    for i, members in enumerate(clusters):
        for record in members:
            old = previous.get(record.ref)
            if old is not None and old not in used:
                went.setdefault(old, Counter())[ids[i]] += 1
    redirects = {old: sorted(c, key=lambda g: (-c[g], g))[0] for old, c in went.items()}
    return ids, redirects


class Indexer:
    """One index run over a config's sources."""

    def __init__(self, sources: SourceSet, crosswalk: Crosswalk, matcher: Matcher,
                 hasher: KeyHasher, *, progress: Callable[[str, int], None] | None = None) -> None:
        self.sources = sources
        self.crosswalk = crosswalk
        self.matcher = matcher
        self.hasher = hasher
        self.progress = progress or (lambda source, n: None)

    def hashes(self, record: CustomerRecord) -> set[str]:
        keys = set(self.matcher.keys(record)) | {f"block:{b}" for b in self.matcher.blocks(record)}
        return {self.hasher.hash(k) for k in keys}

    async def run(self, *, full: bool = False) -> IndexReport:
        report = IndexReport()
        changed: list[CustomerRecord] = []
        fingerprint = self.hasher.hash(SECRET_FINGERPRINT)
        stored = await self.crosswalk.watermark(SECRET_FINGERPRINT)
        if stored is not None and stored != fingerprint and not full:
            raise IndexFailed("identity.secret changed since the last index, so the stored hashes "
                              "no longer match: run `panorama index --full` to rebuild them")
        watermarks: dict[str, str] = {SECRET_FINGERPRINT: fingerprint}
        for source in self.sources:
            mapping = source.config.customer
            if mapping is None:
                continue
            fields = identity_fields(mapping.entity.fields)
            since = None if full else await self.crosswalk.watermark(source.name)
            incremental = since is not None and "updated_at" in mapping.entity.fields
            report.incremental[source.name] = incremental
            where = Cond("updated_at", "gt", since) if incremental else None
            count = 0
            try:
                async for records in read_records(source, where, fields):
                    changed.extend(records)
                    count += len(records)
                    self.progress(source.name, len(records))
            except ConnectorError as exc:
                raise IndexFailed(f"source '{source.name}' could not be read ({exc.code}: "
                                  f"{exc.detail}); nothing was written") from None
            report.records[source.name] = count
            stamps = [r.updated_at for r in changed if r.source == source.name and r.updated_at]
            if stamps:
                watermarks[source.name] = max(stamps).isoformat()
        scope = await self._scope(changed, full)
        return await self._commit(scope, report, watermarks=watermarks, full=full)

    async def reindex(self, refs: Iterable[Ref]) -> IndexReport:
        """Resolve again the customers of these records (after a steward's decision)."""
        report = IndexReport()
        records = await fetch_refs(self.sources, list(refs))
        return await self._commit(await self._scope(records, False), report)

    async def _commit(self, scope: list[CustomerRecord], report: IndexReport, *,
                      watermarks: dict[str, str] | None = None, full: bool = False) -> IndexReport:
        """Resolve the scope, keep ids stable, and write it all in one crosswalk transaction."""
        members, clusters = await self._resolve(scope)
        previous = await self.crosswalk.members_of_refs(r.ref for r in scope)
        # Ids held by customers outside the scope must not be handed out again. A full run has
        # everything in scope; otherwise only the few ids a new customer could get are looked up.
        outside: set[str] = set()
        if not full:
            in_scope = set(previous.values())
            fresh = {encode_id(*c[0].ref) for c in clusters}
            candidates = fresh | {f"{base}~{n}" for base in fresh for n in range(2, 6)}
            outside = {g for g in await self.crosswalk.members(candidates) if g not in in_scope}
        ids, redirects = assign_ids(clusters, previous, self.sources.rank, outside.__contains__)
        run_members = [Member(ref, ids[i], evidence)
                       for i, cluster in enumerate(clusters)
                       for ref, evidence in members[i]]
        removed: set[Ref] = set()
        if full:
            read = {r.ref for r in scope}
            async for member in self.crosswalk.all_members():
                if member.ref not in read:
                    removed.add(member.ref)
        await self.crosswalk.apply_index(IndexRun(
            members=run_members, removed=removed,
            key_hashes={r.ref: self.hashes(r) for r in scope},
            redirects=redirects, watermarks=watermarks or {},
            scope_sources=set(report.records) if full else None))
        report.customers = len(clusters)
        report.redirects = len(redirects)
        report.removed = len(removed)
        report.links.update(e.rule for _, e in (p for m in members for p in m) if e is not None)
        return report

    async def _scope(self, changed: list[CustomerRecord], full: bool) -> list[CustomerRecord]:
        """Changed records, plus every record that could link with them, plus their clusters."""
        if full or not changed:
            return changed
        known = {r.ref: r for r in changed}
        hashes = set().union(*(self.hashes(r) for r in changed))
        candidates = {ref for refs in (await self.crosswalk.refs_for_hashes(hashes)).values()
                      for ref in refs}
        gids = set((await self.crosswalk.members_of_refs(candidates | set(known))).values())
        for members in (await self.crosswalk.members(gids)).values():
            candidates.update(m.ref for m in members)
        missing = [ref for ref in candidates if ref not in known]
        for record in await fetch_refs(self.sources, missing):
            known.setdefault(record.ref, record)
        return list(known.values())

    async def _resolve(self, scope: list[CustomerRecord]):
        must = await self.crosswalk.must_links()
        cannot = await self.crosswalk.cannot_links()
        resolved = self.matcher.resolve(scope, rank=self.sources.rank, must_link=must,
                                        cannot_link=cannot)
        clusters = [list(r.records) for r in resolved]
        members = [[(rec.ref, _evidence(rec.ref, r.evidence.get(rec.ref))) for rec in r.records]
                   for r in resolved]
        return members, clusters


def _evidence(ref: Ref, link: Any) -> Evidence | None:
    """What the crosswalk keeps of a link: the rule, the score, what agreed, the other record."""
    if link is None:
        return None
    other = link.b if link.a == ref else link.a
    return Evidence(rule=link.rule, score=link.score, agreed=tuple(link.agreed), linked_to=other)
