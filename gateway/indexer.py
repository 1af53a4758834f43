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
from pathlib import Path
from typing import Any

from connectors.errors import ConnectorError
from connectors.query import Cond, Query
from gateway.crosswalk import Crosswalk, Evidence, IndexRun, KeyHasher, Member
from gateway.identity import encode_id, sort_key
from gateway.index_work import WorkArea, block_hash, signature_hashes
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
    held = set(previous.values())
    for i in order:
        counts = Counter(previous[r.ref] for r in clusters[i] if r.ref in previous)
        kept = next((g for g in sorted(counts, key=lambda g: (-counts[g], g)) if g not in used), None)
        if kept is None:
            base = encode_id(*clusters[i][0].ref)
            kept, n = base, 2
            while kept in used or (kept not in held and unavailable(kept)):
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

    #: Records resolved together in a whole run (whole components; more when one is larger).
    batch_size = CHUNK

    def __init__(self, sources: SourceSet, crosswalk: Crosswalk, matcher: Matcher,
                 hasher: KeyHasher, *, progress: Callable[[str, int], None] | None = None,
                 work_dir: str | Path | None = None) -> None:
        self.sources = sources
        self.work_dir = work_dir
        self.crosswalk = crosswalk
        self.matcher = matcher
        self.hasher = hasher
        #: Called with a step (``reading <source>``, ``resolving``) and how many records it did.
        self.progress = progress or (lambda step, n: None)

    def hashes(self, record: CustomerRecord) -> set[str]:
        keys, blocks = signature_hashes(self.hasher, self.matcher.signature(record))
        return {*keys, *blocks}

    async def run(self, *, full: bool = False) -> IndexReport:
        """Index what changed since the last run, or everything (``full``, or a first run).

        When any source must be read whole (``full``, no watermark yet, or no ``updated_at``
        mapped), every source is, and the run resolves them all through a :class:`WorkArea`
        in bounded memory; otherwise only the changed records and their neighbours are.
        """
        report = IndexReport()
        fingerprint = self.hasher.hash(SECRET_FINGERPRINT)
        stored = await self.crosswalk.watermark(SECRET_FINGERPRINT)
        if stored is not None and stored != fingerprint and not full:
            raise IndexFailed("identity.secret changed since the last index, so the stored hashes "
                              "no longer match: run `panorama index --full` to rebuild them")
        watermarks: dict[str, str] = {SECRET_FINGERPRINT: fingerprint}
        plans: list[tuple[Source, tuple[str, ...], Any]] = []
        for source in self.sources:
            if source.config.customer is None:
                continue
            fields = identity_fields(source.config.customer.entity.fields)
            since = None if full or "updated_at" not in fields else \
                await self.crosswalk.watermark(source.name)
            plans.append((source, fields, since))
        if any(since is None for _, _, since in plans):
            return await self._run_whole([(s, f, None) for s, f, _ in plans], report, watermarks)
        changed: list[CustomerRecord] = []
        async for records in self._read(plans, report, watermarks):
            changed.extend(records)
        return await self._commit(await self._scope(changed), report, watermarks=watermarks)

    async def reindex(self, refs: Iterable[Ref]) -> IndexReport:
        """Resolve again the customers of these records (after a steward's decision)."""
        report = IndexReport()
        records = await fetch_refs(self.sources, list(refs))
        return await self._commit(await self._scope(records), report)

    async def _read(self, plans: list[tuple[Source, tuple[str, ...], Any]], report: IndexReport,
                    watermarks: dict[str, str]) -> AsyncIterator[list[CustomerRecord]]:
        """Each source's records (changed since ``since`` when it is set), a chunk at a time."""
        for source, fields, since in plans:
            report.incremental[source.name] = since is not None
            where = Cond("updated_at", "gt", since) if since is not None else None
            count, latest = 0, None
            try:
                async for records in read_records(source, where, fields):
                    count += len(records)
                    stamps = [r.updated_at for r in records if r.updated_at]
                    if stamps and (latest is None or max(stamps) > latest):
                        latest = max(stamps)
                    self.progress(f"reading {source.name}", len(records))
                    yield records
            except ConnectorError as exc:
                raise IndexFailed(f"source '{source.name}' could not be read ({exc.code}: "
                                  f"{exc.detail}); nothing was written") from None
            report.records[source.name] = count
            if latest is not None:
                watermarks[source.name] = latest.isoformat()

    async def _run_whole(self, plans: list[tuple[Source, tuple[str, ...], Any]], report: IndexReport,
                         watermarks: dict[str, str]) -> IndexReport:
        """Read every source, resolve component by component, write it all in one transaction."""
        must = await self.crosswalk.must_links()
        cannot = await self.crosswalk.cannot_links()
        redirects: dict[str, str] = {}
        with WorkArea(self.work_dir) as work:
            work.expect_must_links(must)
            async for records in self._read(plans, report, watermarks):
                previous = await self.crosswalk.members_of_refs(r.ref for r in records)
                work.add(records, [self.matcher.signature(r) for r in records], self.hasher,
                         previous)
            work.find_components(self.matcher.max_block_size)
            oversized = work.oversized

            def skip_block(block: str) -> bool:
                return block_hash(self.hasher, block) in oversized

            for batch in work.batches(self.batch_size):
                previous = {r.ref: old for _, r, old in batch if old is not None}
                numbers = {r.ref: n for n, r, _ in batch}
                members, clusters = self._resolve([r for _, r, _ in batch], must, cannot,
                                                  skip_block if oversized else None)
                ids, moved = assign_ids(clusters, previous, self.sources.rank, work.held_elsewhere)
                redirects.update(moved)
                work.save((numbers[ref], Member(ref, ids[i], evidence))
                          for i, cluster in enumerate(members) for ref, evidence in cluster)
                report.customers += len(clusters)
                report.links.update(e.rule for m in members for _, e in m if e is not None)
                self.progress("resolving", len(batch))
            stats = await self.crosswalk.apply_index(IndexRun(
                members=work.members(), key_hashes=work.key_hashes(), redirects=redirects,
                watermarks=watermarks, scope_sources={s.name for s, _, _ in plans}))
        report.redirects = len(redirects)
        report.removed = stats.removed
        return report

    async def _commit(self, scope: list[CustomerRecord], report: IndexReport, *,
                      watermarks: dict[str, str] | None = None) -> IndexReport:
        """Resolve a small scope, keep ids stable, and write it in one crosswalk transaction."""
        members, clusters = self._resolve(scope, await self.crosswalk.must_links(),
                                          await self.crosswalk.cannot_links())
        previous = await self.crosswalk.members_of_refs(r.ref for r in scope)
        # Ids held by customers outside the scope must not be handed out again: only the few
        # ids a new customer could get are looked up.
        in_scope = set(previous.values())
        fresh = {encode_id(*c[0].ref) for c in clusters}
        candidates = fresh | {f"{base}~{n}" for base in fresh for n in range(2, 6)}
        outside = {g for g in await self.crosswalk.members(candidates) if g not in in_scope}
        ids, redirects = assign_ids(clusters, previous, self.sources.rank, outside.__contains__)
        run_members = [Member(ref, ids[i], evidence)
                       for i, cluster in enumerate(clusters)
                       for ref, evidence in members[i]]
        await self.crosswalk.apply_index(IndexRun(
            members=run_members, key_hashes={r.ref: self.hashes(r) for r in scope},
            redirects=redirects, watermarks=watermarks or {}))
        report.customers = len(clusters)
        report.redirects = len(redirects)
        report.links.update(e.rule for _, e in (p for m in members for p in m) if e is not None)
        return report

    async def _scope(self, changed: list[CustomerRecord]) -> list[CustomerRecord]:
        """Changed records, plus every record that could link with them, plus their clusters."""
        if not changed:
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

    def _resolve(self, scope: list[CustomerRecord], must: list[tuple[Ref, Ref]],
                 cannot: list[tuple[Ref, Ref]], skip_block: Callable[[str], bool] | None = None
                 ) -> tuple[list[list[tuple[Ref, Evidence | None]]], list[list[CustomerRecord]]]:
        resolved = self.matcher.resolve(scope, rank=self.sources.rank, must_link=must,
                                        cannot_link=cannot, skip_block=skip_block)
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
