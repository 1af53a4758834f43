"""Identity-resolution quality of ``panorama index``: pairwise precision, recall and F1.

    python bench/identity_quality.py [--sizes 10000,100000] [--skip-samples] [--examples N]

Each run indexes a config with the real :class:`~gateway.indexer.Indexer` into a fresh SQLite
crosswalk, in a child process (so that its peak RSS is its own), reads the clusters back with
``all_members()`` and scores every pair of records against the ground truth:

- ``demo-N``: ``build_world(customers=N)``, three shops and the CRM (served in this process);
  truth: the world's ``truth.json``; goal F1 >= 0.98.
- ``sakila-pagila``: Sakila in MariaDB, Pagila in PostgreSQL, the same 599 people; truth: the
  same ``customer_id``; goal F1 = 1.0.
- ``sakila-chinook-northwind`` (and its ``-contacts`` variant): three SQLite files that share
  no customer; truth: every record is its own customer; goal: zero false merges.

The exit code is 1 when a goal is missed. bench/README.md has the goals and recorded figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from math import comb
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from connectors.query import Query
from gateway.config import Config, load_config
from gateway.crm_server import create_crm_app, serve_in_background
from gateway.crosswalk import Evidence, KeyHasher, Member, open_crosswalk
from gateway.demo.world import build_world
from gateway.index_work import block_hash
from gateway.indexer import CHUNK, Indexer, fetch_refs, identity_fields
from gateway.matching import Matcher
from gateway.records import CustomerRecord
from gateway.sources import SourceSet

Ref = tuple[str, str]
T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "configs"
LOADER = REPO / "examples" / "load_samples.py"
DEMO_F1_GOAL = 0.98
#: Sakila's ELIZABETH BROWN and Northwind's Consolidated Holdings, whose contact has her name.
TRAP: tuple[Ref, Ref] = (("sakila", "5"), ("northwind", "CONSH"))
#: Source -> (SQLite file under the data folder, customer table, key): the truth of (c).
SQLITE_CUSTOMERS = {"sakila": ("sakila/sqlite.db", "customer", "customer_id"),
                    "chinook": ("chinook/sqlite.db", "Customer", "CustomerId"),
                    "northwind": ("northwind/sqlite.db", "Customers", "CustomerID")}


@dataclass
class RunStats:
    """What one index run cost: records, time, and the peak RSS of the process that ran it."""

    records: int
    customers: int
    links: dict[str, int]
    raw_seconds: float  # the same identity columns read through the same connectors, no indexing
    index_seconds: float
    rss_before_kb: int  # peak RSS once imports are done, before any read
    rss_peak_kb: int  # peak RSS (VmHWM) at the end of the run
    isolated: bool  # ran in a child process: the RSS figures are the index's alone
    raw_by_source: dict[str, float] = field(default_factory=dict)  # seconds
    read_by_source: dict[str, float] = field(default_factory=dict)  # seconds the index read it

    def lines(self) -> list[str]:
        index_rate = self.records / self.index_seconds if self.index_seconds else 0.0
        raw_rate = self.records / self.raw_seconds if self.raw_seconds else 0.0
        links = ", ".join(f"{rule} {n:,}" for rule, n in sorted(self.links.items())) or "none"
        grown = self.rss_peak_kb - self.rss_before_kb
        resolve = self.index_seconds - sum(self.read_by_source.values())
        where = "the index process" if self.isolated else "this process (not isolated)"
        return [
            f"customers {self.customers:,}; links by rule: {links}",
            f"index {self.index_seconds:.2f} s = {index_rate:,.0f} records/s: reading "
            f"{_seconds(self.read_by_source)}, then resolving and writing the crosswalk "
            f"{resolve:.2f} s = {self.records / resolve if resolve else 0:,.0f} records/s",
            f"raw read of the same columns through the same connectors {self.raw_seconds:.2f} s = "
            f"{raw_rate:,.0f} records/s ({_seconds(self.raw_by_source)}); index/raw "
            f"{index_rate / raw_rate if raw_rate else 0:.3f}",
            f"peak RSS (VmHWM of {where}): {self.rss_peak_kb / 1024:,.1f} MB, of which "
            f"{self.rss_before_kb / 1024:,.1f} MB before reading (interpreter and imports): "
            f"+{grown / 1024:,.1f} MB = {grown / max(self.records, 1):.1f} KB/record",
        ]


def _seconds(by_source: Mapping[str, float]) -> str:
    return ", ".join(f"{source} {t:.2f} s" for source, t in by_source.items())


@dataclass
class Quality:
    """Pairwise counts, and the clusters behind every wrong pair."""

    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    false_merges: list[list[Ref]] = field(default_factory=list)  # clusters mixing identities
    splits: list[list[list[Ref]]] = field(default_factory=list)  # identities over clusters

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_pairs(self) -> int:
        return self.predicted_pairs - self.correct_pairs

    @property
    def missed_pairs(self) -> int:
        return self.true_pairs - self.correct_pairs

    def lines(self) -> list[str]:
        return [f"pairs: true {self.true_pairs:,}, predicted {self.predicted_pairs:,}, correct "
                f"{self.correct_pairs:,} (false {self.false_pairs:,} in {len(self.false_merges):,}"
                f" clusters; missed {self.missed_pairs:,} over {len(self.splits):,} identities)",
                f"precision {self.precision:.5f}  recall {self.recall:.5f}  F1 {self.f1:.5f}"]


@dataclass
class Result:
    """One dataset's figures, its goal and whether it was met."""

    name: str
    about: str
    goal: str
    passed: bool
    quality: Quality
    stats: RunStats
    notes: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verdict = "PASS" if self.passed else "FAIL"
        return [f"== {self.name}: {self.about}", *self.stats.lines()[:1], *self.quality.lines(),
                f"goal {self.goal}: {verdict}", *self.notes, *self.stats.lines()[1:],
                *self.examples]


def pairwise(predicted: Mapping[Ref, Hashable], truth: Mapping[Ref, Hashable]) -> Quality:
    """Pairs within a predicted cluster against pairs within a true identity.

    A record the truth does not know is its own identity; a record the index did not place
    is its own cluster (so every true pair it belongs to is missed).
    """
    refs = sorted(set(predicted) | set(truth))
    pred = {r: predicted.get(r, ("unindexed", r)) for r in refs}
    true = {r: truth.get(r, ("untracked", r)) for r in refs}
    clusters: dict[Hashable, list[Ref]] = defaultdict(list)
    identities: dict[Hashable, list[Ref]] = defaultdict(list)
    for r in refs:
        clusters[pred[r]].append(r)
        identities[true[r]].append(r)
    both = Counter((pred[r], true[r]) for r in refs)
    quality = Quality(true_pairs=sum(comb(len(m), 2) for m in identities.values()),
                      predicted_pairs=sum(comb(len(m), 2) for m in clusters.values()),
                      correct_pairs=sum(comb(n, 2) for n in both.values()))
    quality.false_merges = [m for m in clusters.values() if len({true[r] for r in m}) > 1]
    for members in identities.values():
        parts: dict[Hashable, list[Ref]] = defaultdict(list)
        for r in members:
            parts[pred[r]].append(r)
        if len(parts) > 1:
            quality.splits.append(list(parts.values()))
    return quality


# ----------------------------------------------------------------------------- index runs


async def raw_read(sources: SourceSet) -> dict[str, float]:
    """Read every record's identity columns through its connector, as the index does; seconds."""
    seconds = {}
    for source in sources:
        mapping = source.config.customer
        if mapping is None:
            continue
        started = time.perf_counter()
        fields, after = identity_fields(mapping.entity.fields), None
        size = min(CHUNK, source.connector.max_page_size)
        while True:
            page = await source.connector.fetch(Query("customer", fields, None, after, size))
            if len(page.rows) < size:
                break
            after = page.rows[-1]["key"]
        seconds[source.name] = time.perf_counter() - started
    return seconds


async def index_config(config_path: Path, environ: Mapping[str, str],
                       isolated: bool = False) -> RunStats:
    """A raw read, then ``panorama index`` (the Indexer as the CLI runs it) on a config."""
    config = load_config(config_path, environ)
    assert config.identity is not None, f"{config_path}: no identity section"
    rss_before = peak_rss_kb()
    sources = SourceSet.from_config(config)
    read_until: dict[str, float] = {}  # source -> when the index got its last chunk

    def progress(step: str, count: int) -> None:
        if step.startswith("reading "):
            read_until[step.removeprefix("reading ")] = time.perf_counter()

    try:
        raw = await raw_read(sources)
        async with open_crosswalk(config.identity.store, config.identity.base_dir) as crosswalk:
            indexer = Indexer(sources, crosswalk, Matcher(config.identity.rules),
                              KeyHasher(config.identity.secret), progress=progress)
            started = time.perf_counter()
            report = await indexer.run()
            index_seconds = time.perf_counter() - started
    finally:
        await sources.aclose()
    # Sources are read one after the other: each took from the previous one's end to its own.
    ends = [started, *read_until.values()]
    read = {source: end - ends[i] for i, (source, end) in enumerate(read_until.items())}
    return RunStats(sum(report.records.values()), report.customers, dict(report.links),
                    sum(raw.values()), index_seconds, rss_before, peak_rss_kb(), isolated,
                    raw, read)


def peak_rss_kb() -> int:
    """This process's peak resident set size, in KiB.

    Linux's ``VmHWM``: ``ru_maxrss`` of a child counts the parent's RSS at the fork too (the
    kernel carries it over exec), which would hide the index's own peak under the world's.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_index(config_path: Path, environ: Mapping[str, str], *, isolate: bool) -> RunStats:
    """Index in a child process (``isolate``: its own peak RSS) or in this one."""
    if not isolate:
        return asyncio.run(index_config(config_path, environ))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(config_path)],
                          env={**os.environ, **environ}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"indexing {config_path} failed (exit {proc.returncode}):\n{proc.stderr}")
    return RunStats(**json.loads(proc.stdout.strip().splitlines()[-1]))


async def read_members(config: Config) -> dict[Ref, Member]:
    """Every record's cluster as the crosswalk keeps it."""
    assert config.identity is not None
    async with open_crosswalk(config.identity.store, config.identity.base_dir) as crosswalk:
        return {m.ref: m async for m in crosswalk.all_members()}


# ------------------------------------------------------------------------ explaining errors


def describe(record: CustomerRecord | None, ref: Ref) -> str:
    """The identity attributes of a record, as the matcher sees them."""
    if record is None:
        return f"{ref[0]}:{ref[1]} (not found in its source)"
    name = record.legal_name if record.kind == "ORGANIZATION" else (
        " | ".join(p or "-" for p in (record.given_name, record.family_name)))
    parts = [f"{record.source}:{record.key} {record.kind} {name!r}"]
    if record.birth_date:
        parts.append(f"born {record.birth_date}")
    if record.vat_number:
        parts.append(f"vat {record.vat_number}")
    parts += [f"email {e.value}" for e in record.emails]
    parts += [f"phone {p.value}{'' if p.valid else ' (invalid)'}" for p in record.phones]
    parts += [f"card {c.number}" for c in record.cards]
    parts += [f"address {a.line1!r} {a.postcode or ''} {a.city or ''}".rstrip() for a in record.addresses]
    return "; ".join(parts)


def why(evidence: Evidence | None) -> str:
    if evidence is None:
        return "first record"
    other = f"{evidence.linked_to[0]}:{evidence.linked_to[1]}" if evidence.linked_to else "?"
    return f"linked to {other} by {evidence.rule} {evidence.score} (agreed: {', '.join(evidence.agreed)})"


#: First word of a missed pair's reason -> how close the pair came to linking (lower: closer).
CLOSENESS = {"fuzzy": 0, "a": 1, "no": 2}


def missed_reason(matcher: Matcher, a: CustomerRecord | None, b: CustomerRecord | None,
                  clusters: tuple[list[CustomerRecord], list[CustomerRecord]],
                  block_size: Mapping[str, int]) -> tuple[str, str]:
    """Why two records of one identity stayed apart: a reason to count, and its values."""
    if a is None or b is None:
        return "record not read", ""
    if shared := sorted(k.partition(":")[0] for k in matcher.keys(a) & matcher.keys(b)):
        return f"a shared {'+'.join(shared)} key refused by a guard", ""
    link = matcher.compare(a, b)
    if link is None:
        differ = a.birth_date and b.birth_date and a.birth_date != b.birth_date
        return "no shared key, and no fuzzy link", "birth dates differ" if differ else ""
    values = f"fuzzy {link.score} on {'+'.join(link.agreed)}"
    blocks = matcher.blocks(a) & matcher.blocks(b)
    if not blocks:
        return "fuzzy would link, but they share no block", values
    if all(block_size.get(x, 0) > matcher.max_block_size for x in blocks):
        sizes = ", ".join(f"{x} {block_size.get(x, 0)}" for x in sorted(blocks))
        return (f"fuzzy would link, never compared: every block they share is over "
                f"max_block_size {matcher.max_block_size}", f"{values}; blocks {sizes}")
    born_a, born_b = ({str(r.birth_date) for r in c if r.birth_date} for c in clusters)
    if born_a and born_b and born_a != born_b:
        return ("fuzzy would link, refused: their clusters hold other birth dates",
                f"{values}; {sorted(born_a)} / {sorted(born_b)}")
    if sum(map(len, clusters)) > matcher.rules.max_cluster_size:
        return "fuzzy would link, refused: max_cluster_size", values
    return "fuzzy would link, refused when joining the clusters (another reason)", values


async def block_sizes(config: Config, blocks: set[str]) -> dict[str, int]:
    """How many records carry each block, from the keyed hashes the crosswalk stores."""
    assert config.identity is not None
    hasher = KeyHasher(config.identity.secret)
    hashed = {block_hash(hasher, b): b for b in blocks}
    async with open_crosswalk(config.identity.store, config.identity.base_dir) as crosswalk:
        found = await crosswalk.refs_for_hashes(hashed)
    return {hashed[h]: len(refs) for h, refs in found.items()}


async def fetch_records(config: Config, refs: set[Ref]) -> dict[Ref, CustomerRecord]:
    """The identity attributes of some records, read again from their sources."""
    sources = SourceSet.from_config(config)
    try:
        return {r.ref: r for r in await fetch_refs(sources, sorted(refs))}
    finally:
        await sources.aclose()


def bridge(cluster: list[Ref], members: Mapping[Ref, Member], truth_of: Mapping[Ref, Hashable]) -> str:
    """The rule and agreed attributes of the link that joined two true identities."""
    for ref in cluster:
        e = members[ref].evidence if ref in members else None
        if e is not None and e.linked_to and truth_of.get(ref, ref) != truth_of.get(e.linked_to,
                                                                                     e.linked_to):
            return f"{e.rule} on {'+'.join(e.agreed)}"
    return "no single link (a chain)"


def round_robin(groups: Mapping[str, list[T]], limit: int) -> list[tuple[str, T]]:
    """Up to ``limit`` items, one of each group in turn: every kind shows, not only the commonest."""
    out: list[tuple[str, T]] = []
    depth = 0
    while len(out) < limit and any(depth < len(g) for g in groups.values()):
        out += [(name, g[depth]) for name, g in groups.items() if depth < len(g)]
        depth += 1
    return out[:limit]


async def explain(config: Config, quality: Quality, members: Mapping[Ref, Member],
                  truth_of: Mapping[Ref, Hashable], limit: int) -> tuple[list[str], list[str]]:
    """Why pairs failed: every false merge's and missed link's reason, and examples with values."""
    assert config.identity is not None
    by_bridge: dict[str, list[list[Ref]]] = defaultdict(list)
    for cluster in quality.false_merges:
        by_bridge[bridge(cluster, members, truth_of)].append(cluster)
    merges = round_robin(by_bridge, limit)
    splits = [(parts[0][:25], parts[1][:25]) for parts in quality.splits[:2000]]
    in_cluster: dict[str, list[Ref]] = defaultdict(list)
    for ref, member in members.items():
        in_cluster[member.global_id].append(ref)

    def cluster_of(ref: Ref) -> list[Ref]:
        return in_cluster[members[ref].global_id] if ref in members else [ref]

    apart = {r for pair in splits for part in pair for r in cluster_of(part[0])}
    records = await fetch_records(config, {r for _, c in merges for r in c} | apart)
    matcher = Matcher(config.identity.rules)
    sizes = await block_sizes(config, {b for r in apart if r in records
                                       for b in matcher.blocks(records[r])})
    examples: list[str] = []
    for kind, cluster in merges:
        examples.append(f"false merge ({kind}): {len(cluster)} records, "
                        f"{len({truth_of.get(r, r) for r in cluster})} true identities:")
        examples += [f"    [{truth_of.get(r, 'itself')}] {describe(records.get(r), r)} -- "
                     f"{why(members[r].evidence if r in members else None)}" for r in cluster[:8]]
    by_reason: dict[str, list[tuple[Ref, Ref, str]]] = defaultdict(list)
    for part_a, part_b in splits:
        clusters = ([records[r] for r in cluster_of(part_a[0]) if r in records],
                    [records[r] for r in cluster_of(part_b[0]) if r in records])
        tried = [(*missed_reason(matcher, records.get(a), records.get(b), clusters, sizes), a, b)
                 for a in part_a for b in part_b]
        # the pair that came closest to linking tells most: a fuzzy match, then a shared key
        reason, values, a, b = min(tried, key=lambda t: CLOSENESS.get(t[0].split(" ")[0], 9))
        by_reason[reason].append((a, b, values))
    for reason, (a, b, values) in round_robin(by_reason, limit):
        examples.append(f"missed link [{truth_of.get(a)}]: {reason}{f' ({values})' if values else ''}")
        examples += [f"    {describe(records.get(r), r)} -- in a cluster of {len(cluster_of(r))}"
                     for r in (a, b)]
    summary = []
    if by_bridge:
        summary.append("false merges by the link that joined two identities: " + "; ".join(
            f"{b} {len(c)}" for b, c in sorted(by_bridge.items(), key=lambda kv: -len(kv[1]))))
    if by_reason:
        first = " (first 2000)" if len(quality.splits) > 2000 else ""
        summary.append(f"missed identities by reason{first}: " + "; ".join(
            f"{r} {len(c)}" for r, c in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))))
    return summary, examples


# ------------------------------------------------------------------------------- datasets


def bench_environ(workdir: Path, **extra: str) -> dict[str, str]:
    """The variables the bench configs read: a fresh secret and a crosswalk directory."""
    return {"PANORAMA_BENCH_SECRET": secrets.token_urlsafe(32),
            "PANORAMA_BENCH_CROSSWALK": str(workdir.resolve()), **extra}


def score(name: str, about: str, config_path: Path, environ: dict[str, str],
          truth_of: Mapping[Ref, Hashable], *, isolate: bool, examples: int
          ) -> tuple[Result, dict[Ref, str]]:
    """Index one config, read its clusters back and score them (the goal is the caller's)."""
    stats = run_index(config_path, environ, isolate=isolate)
    config = load_config(config_path, environ)
    members = asyncio.run(read_members(config))
    cluster = {r: m.global_id for r, m in members.items()}
    quality = pairwise(cluster, truth_of)
    summary, shown = asyncio.run(explain(config, quality, members, truth_of, examples))
    return Result(name, about, "", True, quality, stats, summary, shown), cluster


def bench_demo(customers: int, workdir: Path, *, seed: int = 7, isolate: bool = True,
               examples: int = 5) -> Result:
    """(a) The demo world's truth, the CRM served in this process with the world's seed."""
    world = build_world(workdir, seed=seed, customers=customers,
                        crm_url="${env:PANORAMA_BENCH_CRM_URL}")
    token = secrets.token_urlsafe(16)
    truth = world.truth
    truth_of = {(s, k): c["party"] for c in truth["customers"] for s, k in c["records"].items()}
    with serve_in_background(create_crm_app(world.crm_seed, token=token)) as crm:
        environ = {"PANORAMA_DEMO_CRM_TOKEN": token, "PANORAMA_BENCH_CRM_URL": crm.url}
        result, cluster = score(
            f"demo-{customers}", f"demo world, {customers:,} shop customers (seed {seed}), "
            "paris + london + berlin + the CRM served in-process",
            world.config_path, environ, truth_of, isolate=isolate, examples=examples)
    result.goal = f"F1 >= {DEMO_F1_GOAL}"
    result.passed = result.quality.f1 >= DEMO_F1_GOAL
    result.notes[:0] = [link_recall(truth, cluster), traps_kept(truth, cluster),
                        hostile_kept(truth, cluster)]
    return result


def link_recall(truth: dict, cluster: Mapping[Ref, str]) -> str:
    """How often each kind of link in the truth (email, typo, phone, card) was found."""
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for c in truth["customers"]:
        first = [(s, k) for s, k in c["records"].items() if s not in c["links"]]
        for source, how in c["links"].items():
            how = how or "unspecified"
            total[how] += 1
            ref = (source, c["records"][source])
            found[how] += bool(first and ref in cluster and cluster[ref] == cluster.get(first[0]))
    return "links found by how the truth links them: " + ", ".join(
        f"{how} {found[how]}/{n} ({found[how] / n:.1%})" for how, n in total.most_common())


def traps_kept(truth: dict, cluster: Mapping[Ref, str]) -> str:
    """Whether the parties the generator gave one name stay apart."""
    records = {c["party"]: {(s, k) for s, k in c["records"].items()} for c in truth["customers"]}
    merged = [t["name"] for t in truth["traps"]
              if {cluster.get(r) for r in records[t["parties"][0]]} & {
                  cluster.get(r) for r in records[t["parties"][1]]} - {None}]
    return (f"same-name traps kept apart: {len(truth['traps']) - len(merged)}/{len(truth['traps'])}"
            + (f" (merged: {', '.join(merged)})" if merged else ""))


def hostile_kept(truth: dict, cluster: Mapping[Ref, str]) -> str:
    """Whether the values that must link no one (placeholders, shared numbers) linked no one."""
    party_of = {(s, k): c["party"] for c in truth["customers"] for s, k in c["records"].items()}
    kept: Counter[str] = Counter()
    total: Counter[str] = Counter()
    failed = []
    for case in truth.get("hostile", []):
        parties: dict[str, set] = defaultdict(set)
        for source, key in case["records"]:
            parties[cluster.get((source, key), f"{source}:{key}")].add(party_of.get((source, key)))
        total[case["kind"]] += 1
        if all(len(p) == 1 for p in parties.values()):
            kept[case["kind"]] += 1
        else:
            failed.append(f"{case['kind']} {case['value']!r}")
    return ("hostile inputs that joined no one: " + ", ".join(
        f"{kind} {kept[kind]}/{n}" for kind, n in sorted(total.items()))
        + (f" (joined people: {'; '.join(failed[:10])})" if failed else ""))


def load_samples_module() -> ModuleType:
    """examples/load_samples.py, imported by path as the tests do."""
    spec = importlib.util.spec_from_file_location("panorama_bench_load_samples", LOADER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqlite_keys(data_dir: Path, source: str) -> list[str]:
    """Every customer key of a sample SQLite file, opened read-only."""
    path, table, key = SQLITE_CUSTOMERS[source]
    with sqlite3.connect((data_dir / path).as_uri() + "?mode=ro", uri=True) as db:
        return [str(k) for (k,) in db.execute(f'SELECT "{key}" FROM "{table}"')]


def bench_sakila_pagila(workdir: Path, *, isolate: bool = True, examples: int = 5) -> Result:
    """(b) Sakila (MariaDB) and Pagila (PostgreSQL): one customer per customer_id."""
    loader = load_samples_module()
    data_dir = loader.default_data_dir()
    loader.load_sakila_mariadb(data_dir, verbose=False)
    loader.load_pagila_postgres(data_dir, verbose=False)
    keys = sqlite_keys(data_dir, "sakila")  # the same 599 customers as both servers hold
    truth_of = {(s, k): k for s in ("sakila", "pagila") for k in keys}
    result, _ = score("sakila-pagila", "Sakila (MariaDB) + Pagila (PostgreSQL), the same people",
                   CONFIGS / "sakila-pagila.yaml", bench_environ(workdir), truth_of,
                   isolate=isolate, examples=examples)
    result.goal, result.passed = "F1 = 1.0", result.quality.f1 == 1.0
    return result


def bench_three_shops(workdir: Path, *, contacts: bool = False, isolate: bool = True,
                      examples: int = 5) -> Result:
    """(c) Sakila, Chinook and Northwind from SQLite: nobody in common, so no merge at all."""
    data_dir = load_samples_module().default_data_dir()
    truth_of = {(s, k): f"{s}:{k}" for s in SQLITE_CUSTOMERS for k in sqlite_keys(data_dir, s)}
    name = "sakila-chinook-northwind" + ("-contacts" if contacts else "")
    what = "Northwind contacts as persons" if contacts else "Northwind companies as organizations"
    environ = bench_environ(workdir, PANORAMA_SAMPLE_DATA=str(data_dir))
    result, cluster = score(name, f"Sakila + Chinook + Northwind (SQLite), {what}",
                            CONFIGS / f"{name}.yaml", environ, truth_of, isolate=isolate,
                            examples=examples)
    apart = cluster[TRAP[0]] != cluster[TRAP[1]]
    config = load_config(CONFIGS / f"{name}.yaml", environ)
    assert config.identity is not None
    trap = asyncio.run(fetch_records(config, set(TRAP)))
    link = Matcher(config.identity.rules).compare(trap[TRAP[0]], trap[TRAP[1]])
    result.notes[:0] = [
        f"false merges: {result.quality.false_pairs} pairs in {len(result.quality.false_merges)}"
        f" clusters; trap ELIZABETH BROWN {'kept apart' if apart else 'MERGED'} (fuzzy compare "
        f"alone: {f'link {link.score} on {link.agreed}' if link else 'no link'}):",
        *(f"    {describe(trap[r], r)}" for r in TRAP)]
    result.goal = "zero false merges"
    result.passed = result.quality.false_pairs == 0 and apart
    return result


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000",
                        help="demo world sizes in shop customers, comma-separated (default: %(default)s)")
    parser.add_argument("--skip-samples", action="store_true",
                        help="only the demo worlds: skip Sakila/Pagila and Sakila/Chinook/Northwind")
    parser.add_argument("--examples", type=int, default=5, help="failing pairs shown per dataset")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # the isolated index run: its figures as one line of JSON
        stats = asyncio.run(index_config(Path(args.child), os.environ, isolated=True))
        print(json.dumps(asdict(stats)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    shown = args.examples
    runs: list[Callable[[Path], Result]] = [partial(bench_demo, n, examples=shown) for n in sizes]
    if not args.skip_samples:
        runs += [partial(bench_sakila_pagila, examples=shown),
                 partial(bench_three_shops, examples=shown),
                 partial(bench_three_shops, contacts=True, examples=shown)]
    results = []
    for run in runs:
        with tempfile.TemporaryDirectory(prefix="panorama-bench-") as tmp:
            result = run(Path(tmp))
        print("\n".join(result.lines()) + "\n", flush=True)
        results.append(result)
    print("== summary")
    for r in results:
        rate = r.stats.records / r.stats.index_seconds if r.stats.index_seconds else 0.0
        print(f"{r.name:36} {r.stats.records:>8,} records  F1 {r.quality.f1:.5f}  false pairs "
              f"{r.quality.false_pairs:>4}  {rate:>8,.0f} rec/s  {r.stats.rss_peak_kb / 1024:>7,.1f} MB"
              f"  {r.goal}: {'PASS' if r.passed else 'FAIL'}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
