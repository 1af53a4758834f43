"""Deterministic identity: records sharing an e-mail, a phone or a card are one customer.

Match keys are normalized values (``email:jean@example.com``, ``phone:+33612345678``,
``card:AB1234``). Records linked by a key, directly or through a chain, form a cluster.
A cluster's global id is derived from its first record in source order (config order,
then local key), so it is the same from run to run while the data is the same; an id of
a record that is no longer first still resolves to the customer it belongs to.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.records import CustomerRecord
from gateway.transforms import normalize_card, normalize_email

ID_PREFIX = "cus_"


def match_keys(record: CustomerRecord) -> frozenset[str]:
    """The normalized identifiers that link this record to others."""
    keys = {f"email:{e}" for c in record.emails if (e := normalize_email(c.value))}
    keys.update(f"phone:{p.value}" for p in record.phones if p.valid)
    keys.update(f"card:{n}" for c in record.cards if (n := normalize_card(c.number)))
    return frozenset(keys)


def encode_ref(prefix: str, source: str, key: str) -> str:
    """An opaque token for a record: ``prefix`` + base64url of ``source:key``."""
    return prefix + base64.urlsafe_b64encode(f"{source}:{key}".encode()).decode().rstrip("=")


def decode_ref(prefix: str, token: str) -> tuple[str, str] | None:
    """The ``(source, key)`` of a token made by :func:`encode_ref`, or None if it is not one."""
    if not token.startswith(prefix):
        return None
    body = token[len(prefix):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    source, sep, key = raw.partition(":")
    return (source, key) if sep and source and key else None


def encode_id(source: str, key: str) -> str:
    """Global id of the cluster whose first record is ``(source, key)``."""
    return encode_ref(ID_PREFIX, source, key)


def decode_id(global_id: str) -> tuple[str, str] | None:
    """The ``(source, key)`` a global id was made from, or None if it is not one of ours."""
    return decode_ref(ID_PREFIX, global_id)


def sort_key(rank: dict[str, int], record: CustomerRecord) -> tuple:
    """Source order, then local key (numerically when the key is a number)."""
    key = record.key
    return (rank.get(record.source, len(rank)), 0 if key.isdigit() else 1,
            int(key) if key.isdigit() else 0, key)


Ref = tuple[str, str]


@dataclass(frozen=True)
class Cluster:
    """The records of one customer, in source order, with the keys that link them."""

    records: tuple[CustomerRecord, ...]
    evidence: dict[Ref, tuple[str, ...]]  # record ref -> kinds of keys it shares with others
    global_id: str | None = None  # the index's id; None for a customer not indexed yet
    links: Mapping[Ref, Any] = field(default_factory=dict)  # ref -> the index's evidence
    redirected_from: str | None = None  # the id asked for, when the customer now has another

    @property
    def first(self) -> CustomerRecord:
        return self.records[0]

    @property
    def id(self) -> str:
        return self.global_id or encode_id(self.first.source, self.first.key)


def cluster(records: Iterable[CustomerRecord], rank: dict[str, int], *,
            keys: Callable[[CustomerRecord], frozenset[str]] = match_keys,
            indexed: Mapping[Ref, str] | None = None) -> list[Cluster]:
    """Group records that share a match key, transitively (union-find).

    Records the index has placed (``indexed``: ref -> global id) stay in their customer: a
    shared key attaches records not indexed yet, but never joins two indexed customers, since
    the index (with its conflicts and stewards' decisions) has already ruled on them.
    """
    indexed = indexed or {}
    unique = {r.ref: r for r in sorted(records, key=lambda r: sort_key(rank, r))}
    parent = {ref: ref for ref in unique}
    owner_id = {ref: indexed.get(ref) for ref in unique}

    def find(ref: Ref) -> Ref:
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    def union(a: Ref, b: Ref) -> None:
        ra, rb = find(a), find(b)
        if ra == rb or (owner_id[ra] and owner_id[rb] and owner_id[ra] != owner_id[rb]):
            return
        parent[rb] = ra
        owner_id[ra] = owner_id[ra] or owner_id[rb]

    by_id: dict[str, Ref] = {}
    for ref in unique:
        if ref in indexed:
            union(by_id.setdefault(indexed[ref], ref), ref)
    owners: dict[str, list[Ref]] = {}
    keys_of = {ref: keys(rec) for ref, rec in unique.items()}
    for ref, record_keys in keys_of.items():
        for key in sorted(record_keys):
            owners.setdefault(key, []).append(ref)
    for key in sorted(owners):
        refs = owners[key]
        for other in refs[1:]:
            union(refs[0], other)
    groups: dict[Ref, list[CustomerRecord]] = {}
    for ref, rec in unique.items():
        groups.setdefault(find(ref), []).append(rec)
    clusters = []
    for root, members in groups.items():
        evidence = {}
        for rec in members:
            shared = {k for k in keys_of[rec.ref] if len(owners[k]) > 1}
            evidence[rec.ref] = tuple(sorted({k.split(":", 1)[0] for k in shared}))
        clusters.append(Cluster(tuple(members), evidence, owner_id[root]))
    clusters.sort(key=lambda c: sort_key(rank, c.first))
    return clusters
