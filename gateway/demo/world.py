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
SOURCES = ("paris", "london", "berlin", "crm")


@dataclass(frozen=True)
class World:
    """What ``build_world`` wrote, and the values the demo shows off."""

    config_path: Path
    crm_seed: dict  # the CRM's objects, as gateway.crm_server takes them
    showcase: dict  # the showcase person (name, email, phone, card, ...) and "organization"
    truth: dict  # the expected customers and traps (also written to truth.json)


def build_world(directory: Path, *, seed: int = 7, customers: int = 400,
                crm_url: str = "http://127.0.0.1:8001") -> World:
    """Write paris.db, london.db, berlin.db, crm-seed.json, truth.json and panorama.yaml.

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
    traps = people.populate(rng, parties, customers, taken)
    keys: dict[str, dict[int, str]] = {}
    cards: dict[int, str] = {}  # party -> card of the shop it signed up at (the CRM keeps it)
    for shop, write in shops.WRITERS.items():
        rows = people.shop_rows(rng, parties, shop, taken)
        keys[shop] = write(directory / f"{shop}.db", rows)
        cards.update((p.n, row["card"]) for p, row in rows if p.shops[0] == shop and row["card"])
    crm_seed, keys["crm"] = crm.seed(rng, parties, cards)
    truth = _truth(parties, keys, traps)
    _write_json(directory / "crm-seed.json", crm_seed)
    _write_json(directory / "truth.json", truth)
    config_path = directory / "panorama.yaml"
    config = TEMPLATE.read_text(encoding="utf-8").replace("__CRM_URL__", json.dumps(crm_url))
    config_path.write_text(config, encoding="utf-8")
    # A demo-only HMAC secret for the crosswalk, derived from the seed so the world stays a pure
    # function of its arguments. Never do this for real data: see docs/identity.md.
    secret = hashlib.sha256(f"panorama-demo-{seed}".encode()).hexdigest()
    (directory / "identity.secret").write_text(secret + "\n", encoding="utf-8")
    return World(config_path, crm_seed, showcase.values(parties, keys), truth)


def _truth(parties: list[people.Party], keys: dict[str, dict[int, str]],
           traps: list[tuple[int, int]]) -> dict:
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
                 "how each record after the first is linked (email; typo: e-mail, misspelt "
                 "name; phone: phone only; card: CRM card only). Traps: parties with the same "
                 "name that must stay apart.",
        "customers": customers,
        "traps": [{"name": parties[a].name, "parties": [a, b]} for a, b in traps],
    }


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
