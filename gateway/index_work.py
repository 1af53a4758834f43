"""The scratch space of a whole index run: how a million records resolve in bounded memory.

A run that reads its sources whole cannot hold every record to resolve them together: memory
would grow with the sources. Instead each record is written here, in a private SQLite file
(in a temporary directory of mode 0700, deleted when the run ends; never the crosswalk), with
the keyed hashes of its keys and blocks. Then, without the records:

1. **Candidates** are found a group at a time: records sharing a key, a previous global id or
   a steward's must-link, and, in each block no larger than ``max_block_size``, records whose
   names are alike enough to be compared.
2. A union-find over record numbers (8 bytes a record) joins candidates into **components**.
3. Each component is resolved on its own, a batch of components at a time, by the ordinary
   :meth:`Matcher.resolve`, told which blocks were too large in the whole run.

No link can cross components, and all the records that held one global id are in one
component, so the result (clusters and ids alike) is the one resolving everything at once
would give, while memory is bounded by the batch and the largest component.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import itertools
import pickle
import sqlite3
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from gateway.crosswalk import Evidence, KeyHasher, Member
from gateway.matching import Signature, similar_pairs
from gateway.records import AddressValue, CardValue, ContactValue, CustomerRecord

Ref = tuple[str, str]

_TABLES = (
    # One row a record: the record itself (identity attributes only), its hashes, its old id.
    "CREATE TABLE records (n INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL,"
    " record BLOB NOT NULL, hashes TEXT NOT NULL, previous TEXT)",
    # Groups whose members are all candidates of each other: a key, an old id, a must-link.
    "CREATE TABLE groups (h TEXT NOT NULL, n INTEGER NOT NULL)",
    # Blocks: their members are candidates when their names are alike.
    "CREATE TABLE blocks (h TEXT NOT NULL, n INTEGER NOT NULL, name TEXT NOT NULL,"
    " cutoff REAL NOT NULL)",
    "CREATE TABLE results (n INTEGER PRIMARY KEY, global_id TEXT NOT NULL, rule TEXT,"
    " score REAL, agreed TEXT, linked_source TEXT, linked_key TEXT)",
)


def block_hash(hasher: KeyHasher, block: str) -> str:
    """What the crosswalk stores of a block: blocks and keys share one hash space, apart."""
    return hasher.hash(f"block:{block}")


def signature_hashes(hasher: KeyHasher, sig: Signature) -> tuple[list[str], list[str]]:
    """The keyed hashes of a record's keys, and of its blocks."""
    return [hasher.hash(k) for k in sig.keys], [block_hash(hasher, b) for b in sorted(sig.blocks)]


def _by_fields(cls: type) -> None:
    # Pickled as (class, field values): the default for slotted dataclasses looks their fields
    # up for every object, which made unpickling the run's slowest step.
    names = tuple(f.name for f in dataclasses.fields(cls))
    copyreg.pickle(cls, lambda obj: (cls, tuple(getattr(obj, n) for n in names)))


for _cls in (CustomerRecord, ContactValue, AddressValue, CardValue):
    _by_fields(_cls)


class WorkArea:
    """A run's records on disk, their candidate components, and the run's results."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="panorama-index-", dir=directory)
        self.db = sqlite3.connect(Path(self._dir.name) / "work.db", isolation_level=None)
        # Scratch data: nothing to recover after a crash, so no journal and no fsync.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -65536",
                       "temp_store = FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        for statement in _TABLES:
            self.db.execute(statement)
        self.count = 0
        self._must: dict[Ref, list[int]] = {}  # ref -> the must-link pairs it is in
        self._root: array | None = None
        self.oversized: set[str] = set()

    def __enter__(self) -> WorkArea:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # One transaction per chunk: in autocommit mode every row would be its own.
        self.db.execute("BEGIN")
        yield
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # -- 1. records in ----------------------------------------------------------------------

    def expect_must_links(self, pairs: Iterable[tuple[Ref, Ref]]) -> None:
        """Stewards' must-link pairs: their two records become candidates of each other."""
        for i, (a, b) in enumerate(pairs):
            self._must.setdefault(a, []).append(i)
            self._must.setdefault(b, []).append(i)

    def add(self, records: list[CustomerRecord], signatures: list[Signature], hasher: KeyHasher,
            previous: Mapping[Ref, str]) -> None:
        """Write a chunk of records with their hashes, candidate groups and previous ids."""
        rows: list[tuple] = []
        groups: list[tuple[str, int]] = []
        blocks: list[tuple[str, int, str, float]] = []
        for record, sig in zip(records, signatures, strict=True):
            n = self.count
            self.count += 1
            keys, block_hashes = signature_hashes(hasher, sig)
            old = previous.get(record.ref)
            rows.append((n, record.source, record.key, pickle.dumps(record, pickle.HIGHEST_PROTOCOL),
                         " ".join(sorted({*keys, *block_hashes})), old))
            groups.extend((h, n) for h in keys)
            if old is not None:
                groups.append((f"id:{old}", n))
            groups.extend((f"must:{i}", n) for i in self._must.get(record.ref, ()))
            if sig.name:
                blocks.extend((h, n, sig.name, sig.cutoff) for h in block_hashes)
        with self._transaction():
            self.db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT INTO groups VALUES (?, ?)", groups)
            self.db.executemany("INSERT INTO blocks VALUES (?, ?, ?, ?)", blocks)

    # -- 2. components ----------------------------------------------------------------------

    def find_components(self, max_block_size: int) -> None:
        """Join candidates into components; remember the blocks too large to compare in."""
        self.db.execute("CREATE INDEX groups_h ON groups (h)")  # after the inserts: faster
        parent = array("q", range(self.count))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        def union(members: Iterable[int]) -> None:
            roots = iter({find(i) for i in members})
            first = next(roots)
            for other in roots:
                parent[other] = first

        for (members,) in self.db.execute(
                "SELECT group_concat(n) FROM groups GROUP BY h HAVING count(*) > 1"):
            union(map(int, members.split(",")))
        rows = self.db.execute("SELECT h, n, name, cutoff FROM blocks ORDER BY h")
        for block, group in itertools.groupby(rows, key=lambda row: row[0]):
            members = list(group)
            if len(members) > max_block_size:
                self.oversized.add(block)
            elif len(members) > 1:
                names = [m[2] for m in members]
                for x, y in similar_pairs(names, [m[3] for m in members]):
                    union((members[x][1], members[y][1]))
        self._root = array("q", (find(i) for i in range(self.count)))

    def batches(self, size: int) -> Iterator[list[tuple[int, CustomerRecord, str | None]]]:
        """Whole components, a batch of about ``size`` records at a time: (n, record, old id)."""
        root = self._root
        assert root is not None, "find_components() first"
        order = sorted(range(self.count), key=root.__getitem__)
        start = 0
        while start < len(order):
            end = min(start + size, len(order))
            while end < len(order) and root[order[end]] == root[order[end - 1]]:
                end += 1  # never split a component
            wanted = order[start:end]
            found = {n: (pickle.loads(blob), old) for n, blob, old in self.db.execute(
                "SELECT n, record, previous FROM records WHERE n IN"
                " (SELECT value FROM json_each(?))", (f"[{','.join(map(str, wanted))}]",))}
            yield [(n, *found[n]) for n in wanted]
            start = end

    def held_elsewhere(self, global_id: str) -> bool:
        """Whether some record of the run held this id before (its batch decides it)."""
        return self.db.execute("SELECT 1 FROM groups WHERE h = ? LIMIT 1",
                               (f"id:{global_id}",)).fetchone() is not None

    # -- 3. results out ---------------------------------------------------------------------

    def save(self, results: Iterable[tuple[int, Member]]) -> None:
        rows = []
        for n, member in results:
            e = member.evidence
            rows.append((n, member.global_id) + ((None,) * 5 if e is None else (
                e.rule, e.score, " ".join(e.agreed),
                *(e.linked_to if e.linked_to is not None else (None, None)))))
        with self._transaction():
            self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def members(self) -> Iterator[Member]:
        """Every record's new assignment, streamed."""
        for source, key, global_id, rule, score, agreed, linked_source, linked_key in self.db.execute(
                "SELECT r.source, r.key, x.global_id, x.rule, x.score, x.agreed, x.linked_source,"
                " x.linked_key FROM records AS r JOIN results AS x USING (n) ORDER BY n"):
            evidence = None if rule is None else Evidence(
                rule, score, tuple(agreed.split()) if agreed else (),
                None if linked_source is None else (linked_source, linked_key))
            yield Member((source, key), global_id, evidence)

    def key_hashes(self) -> Iterator[tuple[Ref, list[str]]]:
        """Every record's key and block hashes, streamed."""
        for source, key, hashes in self.db.execute(
                "SELECT source, key, hashes FROM records ORDER BY n"):
            yield (source, key), hashes.split()
