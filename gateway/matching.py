"""Probabilistic identity: which customer records are the same customer, and why.

A pure, synchronous engine (no I/O) over :class:`~gateway.records.CustomerRecord`:

1. Deterministic keys (``email:jean@example.com``, ``phone:+33612345678``, ``card:AB1234``,
   ``vat:FR74912345678``) link records, except placeholders, keys shared by many records
   whose names disagree (a switchboard), and a household's phone or card between persons
   whose given names clearly differ.
2. Fuzzy links between records sharing a block (family-name prefix and skeleton, postcode,
   birth year...) whose names are alike and whose other attributes corroborate, strongest
   first.

Every union checks the two whole clusters: kinds, birth dates (persons), VAT numbers
(organizations) and the stewards' ``cannot_link`` pairs; ``must_link`` pairs always win.
Each record of a result carries the :class:`Link` that attached it. Work is near-linear:
blocks larger than :attr:`Matcher.max_block_size` are skipped (their records meet in finer
blocks) and each record's folded values are computed once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from gateway.identity import encode_id, sort_key
from gateway.match_rules import FUZZY_ATTRIBUTES, KEY_READERS, KindRules, MatchRules
from gateway.records import CustomerRecord
from gateway.transforms import fold, normalize_vat

Ref = tuple[str, str]
KINDS = ("PERSON", "ORGANIZATION")  # any other kind (UNKNOWN) merges with either
# Deterministic keys are applied in this order within groups of the same size.
KEY_ORDER = {"vat": 0, "email": 1, "phone": 2, "card": 3}
# Legal forms say nothing about which company it is: dropped from organization names.
LEGAL_FORMS = frozenset({
    "sarl", "sas", "sasu", "sa", "eurl", "sci", "snc", "gmbh", "ag", "kg", "ohg", "ug", "ev",
    "ltd", "limited", "plc", "llp", "llc", "inc", "corp", "co", "bv", "nv", "srl", "spa",
})
# Abbreviations written out before streets are compared. "st" is left alone: Street or Saint.
STREET_WORDS = {"bd": "boulevard", "bld": "boulevard", "blvd": "boulevard", "av": "avenue",
                "ave": "avenue", "rd": "road", "str": "strasse", "pl": "place", "r": "rue",
                "rte": "route", "ch": "chemin", "sq": "square"}
NON_WORD = re.compile(r"[\W_]+")
VOWELS = re.compile(r"[aeiouyhw]")
SOUNDS = str.maketrans({"d": "t", "z": "s", "c": "k", "q": "k", "v": "f", "j": "i"})


@dataclass(frozen=True, slots=True)
class Link:
    """Why two records are one customer: the rule, its score and the attributes that agreed."""

    a: Ref
    b: Ref
    rule: str  # email | phone | card | vat | fuzzy | steward
    score: float
    agreed: tuple[str, ...]  # attribute or key names, never values

    def toward(self, ref: Ref) -> Link:
        """The same link, with ``b`` the given record."""
        return self if self.b == ref else Link(self.b, self.a, self.rule, self.score, self.agreed)


@dataclass(frozen=True)
class Resolved:
    """One customer: its records in source order, each with the link that attached it."""

    records: tuple[CustomerRecord, ...]
    evidence: dict[Ref, Link | None]  # None for the first record

    @property
    def first(self) -> CustomerRecord:
        return self.records[0]

    @property
    def id(self) -> str:
        return encode_id(self.first.source, self.first.key)


@dataclass(frozen=True, slots=True)
class Signature:
    """What the index keeps of a record to find its candidates without the record itself."""

    keys: frozenset[str]
    blocks: frozenset[str]
    name: str  # folded, words sorted: what block members' names are compared on
    cutoff: float  # the record's kind's name-similarity cutoff, 0-100


def similar_pairs(names: Sequence[str], cutoffs: Sequence[float]) -> Iterator[tuple[int, int]]:
    """Positions ``(x, y)``, ``x < y``, of names alike enough (at ``cutoffs[x]``) to compare."""
    for x in range(len(names) - 1):
        hits = process.extract(names[x], names[x + 1:], scorer=fuzz.ratio, processor=None,
                               score_cutoff=cutoffs[x], limit=None)
        for _, _, y in hits:
            yield x, x + 1 + y


class _Profile:
    """What matching reads of one record, folded once."""

    __slots__ = ("record", "ref", "kind", "rules", "keys", "name", "given", "family", "birth",
                 "vat", "postcodes", "cities", "streets")

    def __init__(self, matcher: Matcher, record: CustomerRecord) -> None:
        self.record, self.ref = record, record.ref
        self.kind = record.kind if record.kind in KINDS else None
        self.rules = matcher.rules.for_kind(record.kind)
        self.keys = matcher.keys(record)
        organization = record.kind == "ORGANIZATION"
        text = (record.legal_name or record.full_name) if organization else (
            " ".join(p for p in (record.given_name, record.family_name) if p)
            or record.full_name or record.legal_name)
        words = _words(text)
        if organization:
            words = [w for w in words if w not in LEGAL_FORMS] or words
        self.name = " ".join(sorted(words))
        self.given = " ".join(_words(record.given_name))
        self.family = "".join(_words(record.family_name))
        self.birth: date | None = record.birth_date
        self.vat = normalize_vat(record.vat_number)
        addresses = record.addresses
        self.postcodes = frozenset(p for a in addresses if a.postcode
                                   and (p := NON_WORD.sub("", a.postcode).upper()))
        self.cities = frozenset(c for a in addresses if (c := " ".join(_words(a.city))))
        self.streets = tuple(s for a in addresses if a.line1 and (s := _street(a.line1))[1])


def _words(text: str | None) -> list[str]:
    return list(_folded_words(text)) if text else []


@lru_cache(maxsize=1 << 16)
def _folded_words(text: str) -> tuple[str, ...]:
    # Names and towns repeat (Martin, Paris...): folding each once is a third of the work.
    return tuple(NON_WORD.sub(" ", fold(text)).split())


@lru_cache(maxsize=65536)
def _street(line: str) -> tuple[frozenset[str], str]:
    """House numbers, and the other words sorted: ``12 av. Victor-Hugo`` -> ({12}, avenue hugo victor)."""
    numbers, words = set(), []
    for word in _words(line):
        if any(c.isdigit() for c in word):
            numbers.add(word)
        else:
            word = STREET_WORDS.get(word, word)
            words.append(word[:-3] + "strasse" if word.endswith("str") and len(word) > 5 else word)
    return frozenset(numbers), " ".join(sorted(words))


@lru_cache(maxsize=65536)
def _skeleton(word: str) -> str:
    """A crude sound key: Dupont/Dupond -> dpnt, Müller/Mueller -> mlr, Schmidt/Schmit -> smt."""
    if not word:
        return ""
    word = word.replace("sch", "s").replace("ph", "f").replace("ck", "k").translate(SOUNDS)
    tail = VOWELS.sub("", word[1:])
    out = word[0]
    for c in tail:
        if c != out[-1]:
            out += c
    return out[:5]


def _street_similarity(a: tuple[frozenset[str], str], b: tuple[frozenset[str], str]) -> float:
    if a[0] and b[0] and not a[0] & b[0]:
        return 0.0  # another house of the same street is another address
    return fuzz.ratio(a[1], b[1]) / 100


def _other_given_name(a: str, b: str) -> bool:
    """Whether two folded given names are two people: more than a slip apart (Camile/Camille
    is one, Théo/Mathéo and Marie/Mario... are two), and neither an initial, a prefix nor a
    part of the other (J./Jean, Jean/Jean-Pierre, Claire/Marie-Claire are one)."""
    if not a or not b or a.startswith(b) or b.startswith(a):
        return False
    wa, wb = set(a.split()), set(b.split())
    if wa <= wb or wb <= wa:
        return False
    return OSA.distance(a, b) > (1 if max(len(a), len(b)) < Matcher.long_given_name else 2)


def _swapped(a: _Profile, b: _Profile) -> bool:
    """Whether one record has given and family names the other way round."""
    return bool(a.family) and a.family == "".join(b.given.split()) \
        and b.family == "".join(a.given.split())


def _aligned_given(a: _Profile, b: _Profile) -> tuple[str, str]:
    """The given names to compare, after a swap of given and family names in one record."""
    return ("", "") if _swapped(a, b) else (a.given, b.given)


def _other_family_name(a: str, b: str) -> bool:
    """Like :func:`_other_given_name`; a compound name ending with the other is one family
    (Ben Salah written as given "Ali Ben" and family "Salah" in a one-column shop)."""
    if a and b and (a.endswith(b) or b.endswith(a)):
        return False
    return _other_given_name(a, b)


def _aligned_family(a: _Profile, b: _Profile) -> tuple[str, str]:
    """The family names to compare (Jones and Johnson at one address are two families)."""
    return ("", "") if _swapped(a, b) else (a.family, b.family)


class Matcher:
    """Decides which records are one customer, under one set of :class:`MatchRules`."""

    max_block_size = 100
    """Blocks with more records are skipped: their records also meet in finer blocks."""
    household_keys = ("phone", "card")
    """Key kinds a household shares: they do not link persons whose given names clearly differ."""
    long_given_name = 8
    """Given names this long may differ by two slips (one below) and still be one person's."""
    agreement = 0.85
    """An address attribute at least this similar counts as agreeing."""

    def __init__(self, rules: MatchRules | None = None) -> None:
        self.rules = rules or MatchRules()
        self._placeholder = {kind: self.rules.placeholders.matcher(kind) for kind in KEY_READERS}

    def keys(self, record: CustomerRecord) -> frozenset[str]:
        """Deterministic keys of the record's kind, without placeholders."""
        keys: set[str] = set()
        for kind in self.rules.for_kind(record.kind).keys:
            placeholder = self._placeholder[kind]
            keys.update(f"{kind}:{v}" for v in KEY_READERS[kind](record) if not placeholder(v))
        return frozenset(keys)

    def blocks(self, record: CustomerRecord) -> set[str]:
        """The blocks of the record: only records sharing a block are compared."""
        return self._blocks(_Profile(self, record))

    def signature(self, record: CustomerRecord) -> Signature:
        """The record's keys, blocks and folded name, read in one pass."""
        p = _Profile(self, record)
        return Signature(p.keys, frozenset(self._blocks(p)), p.name,
                         p.rules.fuzzy.min_name_similarity * 100)

    def _blocks(self, p: _Profile) -> set[str]:
        if not p.name or not p.rules.fuzzy.enabled:
            return set()
        if p.kind == "ORGANIZATION":
            words = p.name.split()
            longest = max(words, key=lambda w: (len(w), w))
            out = {"o:" + "".join(words)[:6], "os:" + _skeleton(longest)}
            out.update(f"op:{longest[:4]}:{pc}" for pc in p.postcodes)
            return out
        family, given = p.family, p.given.replace(" ", "")
        if not (family and given):
            return {"n:" + p.name.replace(" ", "")[:6]}
        sound = _skeleton(family)
        # Both orders, so that records with given and family names swapped meet.
        out = {f"n:{family[:4]}{given[0]}", f"n:{given[:4]}{family[0]}"}
        out.update(f"p:{sound}:{pc}" for pc in p.postcodes)
        # Each name part with the postcode: a common first name's block is too large to compare
        # in, and a typo can change a family name's sound; swapped parts still meet.
        out.update(f"q:{part[:4]}:{pc}" for part in (given, family) for pc in p.postcodes)
        if p.birth:
            out.add(f"b:{sound}:{p.birth.year}")
            out.add(f"d:{p.birth.isoformat()}:{given[0]}")  # a family name mangled beyond its sound
        return out

    def compare(self, a: CustomerRecord, b: CustomerRecord) -> Link | None:
        """The fuzzy link between two records, or None (not alike enough, or a conflict)."""
        return self._compare(_Profile(self, a), _Profile(self, b))

    def _compare(self, a: _Profile, b: _Profile) -> Link | None:
        if a.kind and b.kind and a.kind != b.kind:
            return None
        rules = a.rules if a.kind else b.rules
        fuzzy = rules.fuzzy
        if not fuzzy.enabled or not a.name or not b.name or _conflict(rules, a, b):
            return None
        name = fuzz.ratio(a.name, b.name) / 100
        if name < fuzzy.min_name_similarity:
            return None
        if a.kind != "ORGANIZATION" and (_other_given_name(*_aligned_given(a, b))
                                         or _other_family_name(*_aligned_family(a, b))):
            return None  # siblings (one family name), neighbours (one address): two people
        similarity = {"name": name}
        if a.birth and b.birth:
            similarity["birth_date"] = float(a.birth == b.birth)
        if a.postcodes and b.postcodes:
            similarity["postcode"] = float(bool(a.postcodes & b.postcodes))
        if a.cities and b.cities:
            similarity["city"] = max(fuzz.ratio(x, y) for x in a.cities for y in b.cities) / 100
        if a.streets and b.streets:
            similarity["street"] = max(_street_similarity(x, y) for x in a.streets for y in b.streets)
        weights = fuzzy.weights
        total = sum(weights.get(k, 0.0) for k in similarity)
        if total <= 0:
            return None
        score = sum(weights.get(k, 0.0) * s for k, s in similarity.items()) / total
        agreed = tuple(k for k in FUZZY_ATTRIBUTES if k in similarity and (
            similarity[k] >= (fuzzy.min_name_similarity if k == "name" else self.agreement)))
        if fuzzy.corroborate and not any(k in agreed for k in fuzzy.corroborate):
            return None  # a name alone, or a name and a town, is many people
        if score < fuzzy.threshold:
            return None
        first, second = sorted((a.ref, b.ref))
        return Link(first, second, "fuzzy", round(score, 4), agreed)

    def resolve(self, records: Iterable[CustomerRecord], *, rank: Mapping[str, int] | None = None,
                must_link: Iterable[tuple[Ref, Ref]] = (),
                cannot_link: Iterable[tuple[Ref, Ref]] = (),
                skip_block: Callable[[str], bool] | None = None) -> list[Resolved]:
        """Group records into customers; the same input in any order gives the same result.

        ``rank`` orders sources (config order) for each customer's records and the result;
        ``must_link`` and ``cannot_link`` are stewards' decisions on pairs of record refs.
        ``skip_block`` names blocks not to compare in: the index resolves a large run a
        group of candidates at a time, and a block too large in the whole run stays skipped.
        """
        unique = {r.ref: r for r in records}
        profiles = [_Profile(self, unique[ref]) for ref in sorted(unique)]
        index = {p.ref: i for i, p in enumerate(profiles)}
        clusters = _Clusters(profiles, self.rules)
        for a, b in map(_pair, cannot_link):
            if a in index and b in index and a != b:
                clusters.forbid(index[a], index[b])
        for a, b in sorted(map(_pair, must_link)):
            if a in index and b in index:
                clusters.union(index[a], index[b], Link(a, b, "steward", 1.0, ()), force=True)
        self._link_keys(profiles, clusters)
        links = self._fuzzy_links(profiles, clusters, skip_block)
        for link in sorted(links, key=lambda x: (-x.score, x.a, x.b)):
            clusters.union(index[link.a], index[link.b], link, weak=True)
        return clusters.resolved(dict(rank or {}))

    def _link_keys(self, profiles: list[_Profile], clusters: _Clusters) -> None:
        owners: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(profiles):
            for key in p.keys:
                owners[key].append(i)
        groups = sorted(((len(m), KEY_ORDER[k.partition(":")[0]], k) for k, m in owners.items()
                         if len(m) > 1))
        for size, _, key in groups:
            members = owners[key]
            if size > self.rules.shared_key_limit and self._names_disagree(profiles, members):
                continue  # a switchboard or a family's number: it says nothing about who
            kind = key.partition(":")[0]
            household = kind in self.household_keys
            for pos in range(1, size):
                m = profiles[members[pos]]
                tried = set()
                for e in members[:pos]:
                    other = profiles[e]
                    if household and m.kind != "ORGANIZATION" and other.kind != "ORGANIZATION" \
                            and _other_given_name(m.given, other.given):
                        continue
                    root = clusters.find(e)
                    if root == clusters.find(members[pos]):
                        break
                    if root in tried:
                        continue
                    tried.add(root)
                    shared = {k.partition(":")[0] for k in m.keys & other.keys}
                    link = Link(other.ref, m.ref, kind, 1.0, tuple(k for k in KEY_ORDER if k in shared))
                    if clusters.union(e, members[pos], link):
                        break

    def _names_disagree(self, profiles: list[_Profile], members: list[int]) -> bool:
        named = [profiles[i] for i in members if profiles[i].name]
        if not named:
            return False
        cutoff = named[0].rules.fuzzy.min_name_similarity * 100
        return any(fuzz.ratio(named[0].name, p.name) < cutoff for p in named[1:])

    def _fuzzy_links(self, profiles: list[_Profile], clusters: _Clusters,
                     skip_block: Callable[[str], bool] | None = None) -> list[Link]:
        blocks: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(profiles):
            for block in self._blocks(p):
                blocks[block].append(i)
        seen: set[tuple[int, int]] = set()
        links = []
        for block, members in blocks.items():
            if not 1 < len(members) <= self.max_block_size or (skip_block and skip_block(block)):
                continue
            names = [profiles[i].name for i in members]
            cutoffs = [profiles[i].rules.fuzzy.min_name_similarity * 100 for i in members]
            for x, y in similar_pairs(names, cutoffs):
                i, j = members[x], members[y]
                if (i, j) in seen or clusters.find(i) == clusters.find(j):
                    continue
                seen.add((i, j))
                if link := self._compare(profiles[i], profiles[j]):
                    links.append(link)
        return links


def _pair(pair: Iterable) -> tuple[Ref, Ref]:
    """A steward's pair of refs in canonical order (lists from JSON become tuples)."""
    a, b = sorted((str(s), str(k)) for s, k in pair)
    return a, b


def _conflict(rules: KindRules, a: _Profile, b: _Profile) -> bool:
    return any(x is not None and y is not None and x != y
               for x, y in ((getattr(a, CONFLICT_FIELDS[c]), getattr(b, CONFLICT_FIELDS[c]))
                            for c in rules.conflicts))


CONFLICT_FIELDS = {"birth_date": "birth", "vat": "vat"}


class _Clusters:
    """Union-find whose roots know their members' kinds, conflict values and forbidden refs."""

    def __init__(self, profiles: list[_Profile], rules: MatchRules) -> None:
        self.profiles, self.rules = profiles, rules
        self.parent = list(range(len(profiles)))
        self.size = [1] * len(profiles)
        self.values: dict[int, dict[str, set]] = {}  # root -> field -> values (created on demand)
        self.forbidden: dict[int, set[int]] = defaultdict(set)  # root -> records it must not meet
        self.links: list[tuple[int, int, Link]] = []

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def forbid(self, i: int, j: int) -> None:
        self.forbidden[self.find(i)].add(j)
        self.forbidden[self.find(j)].add(i)

    def _values(self, root: int) -> dict[str, set]:
        if root in self.values:
            return self.values[root]
        p = self.profiles[root]
        return {"kind": {p.kind} - {None}, "birth": {p.birth} - {None}, "vat": {p.vat} - {None}}

    def union(self, i: int, j: int, link: Link, *, force: bool = False, weak: bool = False) -> bool:
        """Merge the clusters of ``i`` and ``j`` unless a conflict forbids it; record the link."""
        a, b = self.find(i), self.find(j)
        if a == b:
            return False
        va, vb = self._values(a), self._values(b)
        if not force:
            if weak and self.size[a] + self.size[b] > self.rules.max_cluster_size:
                return False
            kinds = va["kind"] | vb["kind"]
            checked = ["kind", *(CONFLICT_FIELDS[c] for c in self.rules.for_kind(
                next(iter(kinds)) if len(kinds) == 1 else "").conflicts)]
            if any(_clash(va[f], vb[f]) for f in checked):
                return False
            fa, fb = self.forbidden.get(a, ()), self.forbidden.get(b, ())
            small, other = (fa, b) if len(fa) <= len(fb) else (fb, a)
            if any(self.find(k) == other for k in small):
                return False
        if self.size[a] < self.size[b]:
            a, b, va, vb = b, a, vb, va
        self.parent[b] = a
        self.size[a] += self.size[b]
        self.values[a] = {f: va[f] | vb[f] for f in va}
        self.values.pop(b, None)
        if b in self.forbidden:
            self.forbidden[a] |= self.forbidden.pop(b)
        self.links.append((i, j, link))
        return True

    def resolved(self, rank: dict[str, int]) -> list[Resolved]:
        """The clusters in source order, each record with the link that reached it first."""
        def order(record: CustomerRecord) -> tuple:
            return (*sort_key(rank, record), record.ref)

        groups: dict[int, list[_Profile]] = defaultdict(list)
        for i, p in enumerate(self.profiles):
            groups[self.find(i)].append(p)
        edges: dict[Ref, list[tuple[Ref, Link]]] = defaultdict(list)
        for i, j, link in self.links:
            a, b = self.profiles[i].ref, self.profiles[j].ref
            edges[a].append((b, link))
            edges[b].append((a, link))
        out = []
        for members in groups.values():
            members.sort(key=lambda p: order(p.record))
            evidence: dict[Ref, Link | None] = {members[0].ref: None}
            queue = [members[0].ref]
            for ref in queue:  # breadth first: each record explained by its nearest link
                for other, link in sorted(edges.get(ref, ()), key=lambda e: e[0]):
                    if other not in evidence:
                        evidence[other] = link.toward(other)
                        queue.append(other)
            out.append(Resolved(tuple(p.record for p in members), evidence))
        out.sort(key=lambda r: order(r.first))
        return out


def _clash(a: set, b: set) -> bool:
    """Some value of ``a`` differs from some value of ``b``."""
    return bool(a) and bool(b) and (len(a) > 1 or a != b)
