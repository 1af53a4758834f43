"""Build the demo world: three shop databases, a CRM seed and the ``panorama.yaml`` mapping them.

``build_world`` is a pure function of its arguments: the same seed writes byte-identical files.
See :mod:`gateway.demo.people` for who shops where and how their records link.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from gateway.demo import crm, people, shops, showcase

MIN_CUSTOMERS = 40
TEMPLATE = Path(__file__).with_name("panorama.yaml")
POLICY = Path(__file__).with_name("policies.yaml")  # the template's `policy:`, copied beside it
SOURCES = ("paris", "london", "berlin", "crm")


@dataclass(frozen=True)
class World:
    """What ``build_world`` wrote, and the values the demo shows off."""

    config_path: Path
    crm_seed: dict  # the CRM's objects, as gateway.crm_server takes them
    showcase: dict  # the showcase person (name, email, phone, card, ...), "organization", "fuzzy"
    truth: dict  # the expected customers, traps and hostile inputs (also in truth.json)


def build_world(directory: Path, *, seed: int = 7, customers: int = 400,
                crm_url: str = "http://127.0.0.1:8001") -> World:
    """Write paris.db, london.db, berlin.db, crm-seed.json, truth.json, panorama.yaml and the
    policies.yaml it names.

    ``customers`` counts the shops' customers (people and companies); the CRM adds prospects
    who never bought. ``crm_url`` is written into panorama.yaml as the CRM's base URL.
    """
    if customers < MIN_CUSTOMERS:
        raise ValueError(f"customers={customers} is too few for the overlaps and traps; "
                         f"use at least {MIN_CUSTOMERS}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    taken: set[str] = set()  # every e-mail, phone and card drawn so far: none is reused
    parties = showcase.parties(taken)
    traps, hostile = people.populate(rng, parties, customers, taken)
    keys: dict[str, dict[int, str]] = {}
    cards: dict[int, str] = {}  # party -> card of the shop it signed up at (the CRM keeps it)
    for shop, write in shops.WRITERS.items():
        rows = people.shop_rows(rng, parties, shop, taken)
        keys[shop] = write(directory / f"{shop}.db", rows)
        cards.update((p.n, row["card"]) for p, row in rows if p.shops[0] == shop and row["card"])
    crm_seed, keys["crm"] = crm.seed(rng, parties, cards)
    truth = _truth(parties, keys, traps, hostile)
    _write_json(directory / "crm-seed.json", crm_seed)
    _write_json(directory / "truth.json", truth)
    config_path = directory / "panorama.yaml"
    config = TEMPLATE.read_text(encoding="utf-8").replace("__CRM_URL__", json.dumps(crm_url))
    config_path.write_text(config, encoding="utf-8")
    (directory / POLICY.name).write_text(POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    # A demo-only HMAC secret for the crosswalk, derived from the seed so the world stays a pure
    # function of its arguments. Never do this for real data: see docs/identity.md.
    secret = hashlib.sha256(f"panorama-demo-{seed}".encode()).hexdigest()
    (directory / "identity.secret").write_text(secret + "\n", encoding="utf-8")
    # Likewise the token secret, so the world loads as it is; `panorama demo` replaces it with a
    # random one every run (tokens must not be forgeable by whoever knows the seed).
    token_secret = hashlib.sha256(f"panorama-demo-tokens-{seed}".encode()).hexdigest()
    (directory / "auth.secret").write_text(token_secret + "\n", encoding="utf-8")
    return World(config_path, crm_seed, showcase.values(parties, keys), truth)


def deterministic_clusters(truth: dict) -> list[list[tuple[str, str]]]:
    """The customers as resolution by deterministic keys alone (no index) finds them.

    ``truth["customers"]`` is the whole truth, fuzzy links included: it is what
    ``panorama index`` (the probabilistic matcher) should find. Keys alone cannot find a
    record linked fuzzily: it is a customer of its own here. And keys alone have no guard
    against a real key that several people share (``hostile`` cases with ``shared_key``: a
    switchboard, a family's phone, a card number two shops issued): their records are one
    customer here. Placeholders are no key at all and join no one. Clusters are lists of
    ``(source, key)``, each in truth order.
    """
    clusters: list[list[tuple[str, str]]] = []
    for customer in truth["customers"]:
        refs = customer["records"].items()
        fuzzy = [ref for ref in refs if customer["links"].get(ref[0]) == "fuzzy"]
        clusters += [[ref for ref in refs if ref not in fuzzy]] + [[ref] for ref in fuzzy]
    index = {ref: i for i, refs in enumerate(clusters) for ref in refs}
    parent = list(range(len(clusters)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for case in truth["hostile"]:
        if case["shared_key"]:
            first, *others = (find(index[tuple(ref)]) for ref in case["records"])
            for other in others:
                parent[find(other)] = find(first)
    merged: dict[int, list[tuple[str, str]]] = {}
    for i, refs in enumerate(clusters):
        merged.setdefault(find(i), []).extend(refs)
    return list(merged.values())


def _truth(parties: list[people.Party], keys: dict[str, dict[int, str]],
           traps: list[tuple[int, int]], hostile: list[dict]) -> dict:
    customers = []
    for p in parties:
        records = {source: keys[source][p.n] for source in SOURCES if p.n in keys[source]}
        links = {shop: p.links[shop] for shop in p.shops[1:]}
        if "crm" in records and p.shops:
            links["crm"] = p.crm or ""
        customers.append({"party": p.n, "kind": p.kind, "name": p.name, "records": records,
                          "links": links})
    return {
        "about": "The expected customers: the records (source -> local key) of each party, and "
                 "how each record after the first is linked to the first one. email: the same "
                 "e-mail (other case or spaces; the name may lose its accents); typo: the same "
                 "e-mail, a misspelt name; phone: the phone only (another e-mail or none); "
                 "card: CRM only, the card of the shop where the person signed up; fuzzy: no "
                 "shared e-mail, phone or card, a slightly different name (typo, accents "
                 "dropped, or given and family name swapped in London's full name), and the "
                 "same birth date or home address: only the probabilistic matcher (panorama "
                 "index) links it. Traps: parties with the same name that must stay apart. "
                 "Hostile: values that must link no one (placeholder_email, placeholder_phone: "
                 "never a key; switchboard: a company number several employees gave; "
                 "household: a family's home phone; card: one card number two shops issued to "
                 "two people); shared_key says whether resolution by keys alone, without the "
                 "matcher's guards, would wrongly join them (see world.deterministic_clusters).",
        "customers": customers,
        "traps": [{"name": parties[a].name, "parties": [a, b]} for a, b in traps],
        "hostile": [{"kind": case["kind"], "value": case["value"],
                     "shared_key": case["shared_key"],
                     "parties": [n for n, _ in case["carriers"]],
                     "records": [[source, keys[source][n]] for n, source in case["carriers"]]}
                    for case in hostile],
    }


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
