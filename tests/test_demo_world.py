"""The demo world: deterministic, mapped by its own panorama.yaml, and linkable as intended."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import unicodedata
from collections import Counter, defaultdict
from decimal import Decimal
from itertools import combinations
from pathlib import Path

import phonenumbers
import pytest
import yaml

from gateway.demo.world import World, build_world, deterministic_clusters

SHOPS = ("paris", "london", "berlin")
DEFAULT_COUNTRY = {"paris": "FR", "london": "GB", "berlin": "DE", "crm": "FR"}
FILES = ("paris.db", "london.db", "berlin.db", "crm-seed.json", "truth.json", "panorama.yaml")
# Per source: (customer table, key, e-mail, phone columns, card (table, column, key column)).
IDENTIFIERS = {
    "paris": ("clients", "id", "courriel", ("telephone",), ("clients", "carte_fidelite", "id")),
    "london": ("customers", "customer_id", "email_address", ("mobile", "home_phone"),
               ("loyalty_accounts", "account_no", "customer_id")),
    "berlin": ("Kunde", "KundeId", "EMail", ("Telefon",), ("Kunde", "Kundenkarte", "KundeId")),
}
DECIMAL_TEXT = re.compile(r"^\d+\.\d{2}$")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def directory(world: World) -> Path:
    return world.config_path.parent


@pytest.fixture(scope="module")
def records(world: World, directory: Path) -> dict[tuple[str, str], dict]:
    """Every customer record of every source: raw values and match keys (placeholders are no
    key: they are hostile inputs, see test_hostile_inputs_are_planted)."""
    placeholders = {h["value"] for h in world.truth["hostile"] if h["kind"].startswith("placeholder")}
    out = {}
    for shop, (table, key, email, phones, (card_table, card, card_key)) in IDENTIFIERS.items():
        with sqlite3.connect(directory / f"{shop}.db") as db:
            db.row_factory = sqlite3.Row
            cards = dict(db.execute(f"SELECT {card_key}, {card} FROM {card_table}").fetchall())
            for row in db.execute(f"SELECT * FROM {table}"):
                out[(shop, str(row[key]))] = _record(
                    shop, row[email], [row[p] for p in phones], cards.get(row[key]), dict(row),
                    placeholders)
    for contact in world.crm_seed["contacts"]:
        props = contact["properties"]
        out[("crm", contact["id"])] = _record(
            "crm", props["email"], [props["phone"], props["mobilephone"]], props["loyalty_card"],
            props, placeholders)
    return out


def _e164(text: str | None, country: str) -> str | None:
    if not text:
        return None
    number = phonenumbers.parse(text, country)
    assert phonenumbers.is_valid_number(number), f"{text!r} is not a valid number in {country}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _record(source: str, email: str | None, phones: list, card: str | None, row: dict,
            placeholders: set[str]) -> dict:
    keys = set()
    if email and email.strip().lower() not in placeholders:
        keys.add("email:" + email.strip().lower())
    keys.update("phone:" + e for p in phones if p and re.sub(r"\D", "", p) not in placeholders
                and (e := _e164(p, DEFAULT_COUNTRY[source])))
    if card:
        keys.add("card:" + re.sub(r"[\s-]", "", card).upper())
    return {"keys": keys, "email": email, "phones": [p for p in phones if p], "row": row}


def _clusters(records: dict) -> list[frozenset]:
    """Records that share an e-mail, phone or card, transitively (union-find)."""
    parent = {ref: ref for ref in records}

    def find(ref):
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    owner: dict[str, tuple] = {}
    for ref, rec in records.items():
        for key in rec["keys"]:
            if key in owner:
                parent[find(ref)] = find(owner[key])
            else:
                owner[key] = ref
    groups = defaultdict(set)
    for ref in records:
        groups[find(ref)].add(ref)
    return [frozenset(g) for g in groups.values()]


def _truth_clusters(world: World) -> list[frozenset]:
    return [frozenset(c["records"].items()) for c in world.truth["customers"]]


def _key_clusters(world: World) -> list[frozenset]:
    """What deterministic keys alone should find (fuzzy records apart, shared keys joined)."""
    return [frozenset(c) for c in deterministic_clusters(world.truth)]


def _hostile_refs(world: World, kind: str | None = None) -> set[tuple[str, str]]:
    return {tuple(r) for h in world.truth["hostile"] if kind in (None, h["kind"])
            for r in h["records"]}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_writes_identical_bytes(tmp_path: Path) -> None:
    started = time.perf_counter()
    build_world(tmp_path / "a", seed=11)
    elapsed = time.perf_counter() - started
    build_world(tmp_path / "b", seed=11)
    build_world(tmp_path / "c", seed=12)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ("paris.db", "london.db", "berlin.db", "crm-seed.json"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    assert elapsed < 1.0, f"building 400 customers took {elapsed:.2f} s"


def test_rebuilding_in_place_gives_the_same_files(tmp_path: Path) -> None:
    build_world(tmp_path, seed=3)
    first = {name: (tmp_path / name).read_bytes() for name in FILES}
    build_world(tmp_path, seed=3)
    assert first == {name: (tmp_path / name).read_bytes() for name in FILES}


def test_seed_file_is_the_returned_seed(world: World, directory: Path) -> None:
    assert json.loads((directory / "crm-seed.json").read_text()) == world.crm_seed
    assert json.loads((directory / "truth.json").read_text()) == world.truth


def test_too_few_customers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        build_world(tmp_path, customers=5)


# -- the config ----------------------------------------------------------------------------


def _columns_of(spec) -> list[str]:
    if isinstance(spec, str):
        return [spec]
    return [spec["column"]] if isinstance(spec, dict) and "column" in spec else []


def _references(entity: dict) -> list[str]:
    """Every column an entity mapping names, as written (``alias.column`` or ``column``)."""
    refs = [entity["key"]] + ([entity["customer"]] if "customer" in entity else [])
    for join in entity.get("joins", []):
        on = join.get("on", join.get(True))  # YAML 1.1 reads a bare `on` key as True
        refs += re.findall(r"\b(\w+\.\w+)\b", on)
    for name, spec in entity["fields"].items():
        if name in ("emails", "phones", "loyalty_cards"):
            for item in spec:
                refs += _columns_of(item) + _columns_of(item.get("points"))
        elif name == "addresses":
            for item in spec:
                refs += [c for part, v in item.items() if part != "type" for c in _columns_of(v)]
        else:
            refs += _columns_of(spec)
    return refs


def test_every_mapped_table_and_column_exists(world: World, directory: Path) -> None:
    config = yaml.safe_load(world.config_path.read_text())
    assert list(config["sources"]) == ["paris", "london", "berlin", "crm"]
    checked = 0
    for name, source in config["sources"].items():
        entities = [source["customer"], *source.get("transactions", []),
                    *source.get("interactions", [])]
        if source["kind"] == "sqlite":
            with sqlite3.connect(directory / source["connection"]["path"]) as db:
                schema = {t: {c[1] for c in db.execute(f"PRAGMA table_info({t})")}
                          for (t,) in db.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}
            for entity in entities:
                aliases = {entity["table"]: entity["table"]}
                aliases.update({j.get("as", j["table"]): j["table"] for j in entity.get("joins", [])})
                for table in aliases.values():
                    assert table in schema, f"{name}: no table {table}"
                for ref in _references(entity):
                    alias, _, column = ref.rpartition(".")
                    table = aliases[alias or entity["table"]]
                    assert column in schema[table], f"{name}: no column {table}.{column}"
                    checked += 1
        else:
            for entity in entities:
                objects = world.crm_seed[entity["table"]]
                # every object has HubSpot's standard id and timestamps, seeded or not
                standard = {"hs_object_id", "createdate", "lastmodifieddate"}
                properties = standard | {k for o in objects for k in o["properties"]}
                for ref in _references(entity):
                    if ref == "associations.contacts":
                        assert all(o["contacts"] for o in objects)
                    else:
                        assert ref in properties, f"crm: no property {entity['table']}.{ref}"
                    checked += 1
    assert checked > 80


def test_config_loads_with_the_gateway_loader(world: World) -> None:
    from gateway.config import load_config

    config = load_config(world.config_path, {"PANORAMA_DEMO_CRM_TOKEN": "demo"})
    assert config.shops == {"paris": "Boulangerie Paris - Rue Cler",
                            "london": "Bakery London - Marylebone",
                            "berlin": "Bäckerei Berlin - Kastanienallee"}
    assert config.sources["crm"].connection["base_url"] == "http://127.0.0.1:8001"
    assert [s.defaults.currency for s in config.sources.values()] == ["EUR", "GBP", "EUR", "EUR"]


def test_crm_url_is_written_into_the_config(tmp_path: Path) -> None:
    world = build_world(tmp_path, crm_url="http://127.0.0.1:9999")
    crm = yaml.safe_load(world.config_path.read_text())["sources"]["crm"]
    assert crm["connection"] == {"base_url": "http://127.0.0.1:9999",
                                 "token": "${env:PANORAMA_DEMO_CRM_TOKEN}"}


def _rows(world: World, source, entity) -> list[dict]:
    """Rows of one mapped entity, keyed by logical field, read the way a connector would."""
    if source.kind == "crm":
        rows = []
        for obj in world.crm_seed[entity.table]:
            props = {**obj["properties"], "hs_object_id": obj["id"],
                     "associations.contacts": (obj.get("contacts") or [None])[0]}
            rows.append({logical: props.get(ref) for logical, ref in entity.fields.items()})
        return rows
    columns = ", ".join(f'{ref if "." in ref else entity.table + "." + ref} AS "{logical}"'
                        for logical, ref in entity.fields.items())
    joins = "".join(f" LEFT JOIN {j.table} AS {j.alias} ON {j.on}" for j in entity.joins)
    with sqlite3.connect(source.connection["path"]) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT {columns} FROM {entity.table}{joins}")]


def test_the_gateway_mapping_and_identity_find_the_truth(world: World) -> None:
    from gateway.config import load_config
    from gateway.identity import cluster
    from gateway.matching import Matcher

    config = load_config(world.config_path, {"PANORAMA_DEMO_CRM_TOKEN": "demo"})
    customers = []
    for name, source in config.sources.items():
        mapping = source.customer
        customers += [mapping.to_record(name, row, source.defaults)
                      for row in _rows(world, source, mapping.entity)]
    placeholders = _hostile_refs(world, "placeholder_phone")
    assert all(p.valid for r in customers if r.ref not in placeholders for p in r.phones)
    assert {r.kind for r in customers} == {"PERSON", "ORGANIZATION"}
    camille = next(r for r in customers if r.ref == ("paris", "1"))
    assert (camille.given_name, camille.family_name) == ("Camille", "Martin")
    assert [a.type for a in camille.addresses] == ["HOME", "BILLING"]
    london = next(r for r in customers if r.ref == ("london", "LDN-000001"))
    assert [c.points for c in london.cards] == [31] and london.given_name == "Camille"
    # The demo's keys, as its gateway reads them (its identity rules: placeholders ignored).
    assert config.identity is not None
    keys = Matcher(config.identity.rules).keys
    clusters = cluster(customers, {name: i for i, name in enumerate(config.sources)}, keys=keys)
    found = sorted(sorted(r.ref for r in c.records) for c in clusters)
    assert found == sorted(map(sorted, _key_clusters(world)))


def test_the_gateway_mapping_reads_every_transaction_and_interaction(world: World) -> None:
    from gateway.config import load_config

    config = load_config(world.config_path, {"PANORAMA_DEMO_CRM_TOKEN": "demo"})
    kinds, statuses, channels = Counter(), Counter(), Counter()
    for name, source in config.sources.items():
        for child in source.transactions:
            for row in _rows(world, source, child.entity):
                t = child.to_transaction(name, row, source.defaults)
                assert t.amount is not None and t.amount == t.amount.quantize(Decimal("0.01"))
                assert t.date is not None and t.customer_key
                kinds[t.kind] += 1
                statuses[t.status] += 1
                assert t.currency == ("GBP" if name == "london" else "EUR")
        for child in source.interactions:
            for row in _rows(world, source, child.entity):
                i = child.to_interaction(name, row, source.defaults)
                assert i.date is not None and i.summary and i.customer_key
                channels[i.channel] += 1
    assert set(kinds) == {"INVOICE", "PAYMENT", "REFUND", "CREDIT"}
    assert set(statuses) == {"COMPLETED", "PENDING", "FAILED", "CANCELLED"}
    assert set(channels) == {"NOTE", "CALL", "EMAIL", "MEETING"}


# -- who is who ----------------------------------------------------------------------------


def test_records_link_exactly_as_the_truth_says(world: World, records: dict) -> None:
    truth = _truth_clusters(world)
    assert sum(map(len, truth)) == len(records)
    assert sorted(map(sorted, _clusters(records))) == sorted(map(sorted, _key_clusters(world)))


def test_deterministic_clusters_split_fuzzy_records_and_join_shared_keys() -> None:
    truth = {"customers": [
        {"records": {"paris": "1", "london": "L1", "crm": "9"},
         "links": {"london": "fuzzy", "crm": "email"}},
        {"records": {"paris": "2"}, "links": {}},
        {"records": {"berlin": "3"}, "links": {}},
        {"records": {"crm": "4"}, "links": {}},
        {"records": {"paris": "5"}, "links": {}},
    ], "hostile": [
        {"kind": "card", "shared_key": True, "records": [["paris", "2"], ["berlin", "3"]]},
        {"kind": "placeholder_email", "shared_key": False,
         "records": [["crm", "4"], ["paris", "5"]]},
    ]}
    assert deterministic_clusters(truth) == [
        [("paris", "1"), ("crm", "9")], [("london", "L1")], [("paris", "2"), ("berlin", "3")],
        [("crm", "4")], [("paris", "5")]]


def test_showcase_person_is_in_every_shop_and_the_crm(world: World, records: dict) -> None:
    show = world.showcase
    assert set(show["records"]) == {"paris", "london", "berlin", "crm"}
    refs = set(show["records"].items())
    cluster = next(c for c in _clusters(records) if refs <= c)
    assert cluster == refs
    emails = {records[ref]["email"] for ref in refs}
    assert {"camille.martin@example.fr", "CAMILLE.MARTIN@EXAMPLE.FR "} <= emails
    assert len({p for ref in refs for p in records[ref]["phones"]}) >= 3
    assert f"phone:{show['phone']}" in set.intersection(*(records[r]["keys"] for r in refs))
    given = {records[("berlin", show["records"]["berlin"])]["row"]["Vorname"],
             records[("paris", show["records"]["paris"])]["row"]["prenom"]}
    assert given == {"Camille", "Camile"}  # the typo in Berlin
    contact = show["records"]["crm"]
    kinds = {kind for kind in ("notes", "calls", "emails", "meetings")
             for o in world.crm_seed[kind] if contact in o["contacts"]}
    assert kinds == {"notes", "calls", "emails", "meetings"}
    assert show["card"] == show["cards"]["paris"]


def test_showcase_money(world: World, directory: Path) -> None:
    records = world.showcase["records"]
    with sqlite3.connect(directory / "paris.db") as db:
        paid = db.execute("SELECT statut, count(*) FROM paiements WHERE client_id = ? "
                          "GROUP BY statut", (records["paris"],)).fetchall()
    assert dict(paid) == {"ok": 3, "rejete": 1}
    with sqlite3.connect(directory / "london.db") as db:
        refunds = db.execute("SELECT amount FROM refunds WHERE customer_id = ?",
                             (records["london"],)).fetchall()
    assert refunds == [("6.50",)]
    with sqlite3.connect(directory / "berlin.db") as db:
        credits = db.execute("SELECT Betrag FROM Gutschrift WHERE KundeId = ?",
                             (records["berlin"],)).fetchall()
    assert credits == [("1.90",)]


def test_showcase_organization_in_two_shops(world: World, records: dict) -> None:
    org = world.showcase["organization"]
    assert set(org["records"]) == {"paris", "london"}
    paris = records[("paris", org["records"]["paris"])]["row"]
    london = records[("london", org["records"]["london"])]["row"]
    assert (paris["type_client"], london["account_type"]) == ("professionnel", "TRADE")
    assert paris["raison_sociale"] == london["company_name"] == org["name"]
    assert paris["numero_tva"] == london["vat_number"].replace(" ", "") == org["vat"]
    assert records[("paris", org["records"]["paris"])]["keys"] & \
        records[("london", org["records"]["london"])]["keys"]


def test_every_shop_has_organizations(records: dict) -> None:
    column = {"paris": ("type_client", "professionnel"), "london": ("account_type", "TRADE"),
              "berlin": ("Kundentyp", "Firma")}
    for shop, (name, value) in column.items():
        assert sum(r["row"][name] == value for (s, _), r in records.items() if s == shop) >= 2


def test_overlap_proportions(world: World) -> None:
    people = [c for c in world.truth["customers"]
              if c["kind"] == "PERSON" and set(c["records"]) & set(SHOPS)]
    in_shops = Counter(len(set(c["records"]) & set(SHOPS)) for c in people)
    assert 0.30 <= (in_shops[2] + in_shops[3]) / len(people) <= 0.40
    assert 0.07 <= in_shops[3] / len(people) <= 0.13
    in_crm = sum("crm" in c["records"] for c in people) / len(people)
    assert 0.5 <= in_crm <= 0.7
    prospects = [c for c in world.truth["customers"] if set(c["records"]) == {"crm"}]
    assert len(prospects) >= 20
    links = Counter(link for c in people for link in c["links"].values())
    assert {"email", "typo", "phone", "card", "fuzzy"} <= set(links)
    multi = [c for c in people if len(set(c["records"]) & set(SHOPS)) > 1]
    fuzzy = [c for c in multi if "fuzzy" in c["links"].values()]
    assert 0.03 <= len(fuzzy) / len(multi) <= 0.08
    customers = [c for c in world.truth["customers"] if set(c["records"]) & set(SHOPS)]
    assert len(customers) == 400


def test_namesakes_stay_apart(world: World, records: dict) -> None:
    parties = {c["party"]: c for c in world.truth["customers"]}
    traps = world.truth["traps"]
    assert len(traps) >= 5
    clusters = _clusters(records)
    same_shop = 0
    for trap in traps:
        a, b = (parties[n] for n in trap["parties"])
        assert a["name"] == b["name"] == trap["name"]
        refs_a, refs_b = set(a["records"].items()), set(b["records"].items())
        assert not any(refs_a & c and refs_b & c for c in clusters), trap
        keys_a = set().union(*(records[r]["keys"] for r in refs_a))
        keys_b = set().union(*(records[r]["keys"] for r in refs_b))
        assert not keys_a & keys_b
        same_shop += bool(set(a["records"]) & set(b["records"]) & set(SHOPS))
    assert same_shop >= 1
    assert any(set(parties[t["parties"][1]]["records"]) == {"crm"} for t in traps)


def _fuzzy_records(world: World) -> list[tuple[dict, tuple[str, str]]]:
    """(customer, ref) of every record the truth says is linked fuzzily."""
    return [(c, (shop, c["records"][shop])) for c in world.truth["customers"]
            for shop, link in c["links"].items() if link == "fuzzy"]


def _street_and_number(line: str | None) -> tuple[str, str] | None:
    if not line:
        return None
    words = re.findall(r"\w+", _fold(line))
    abbreviations = {"av": "avenue", "bd": "boulevard", "rd": "road"}
    words = [abbreviations.get(w, w + "asse" if w.endswith("str") else w) for w in words]
    number = next(w for w in words if w.isdigit())
    return number, " ".join(sorted(w for w in words if w != number))


def _person(shop: str, row: dict) -> dict:
    """The identity attributes of a shop row, by meaning."""
    if shop == "paris":
        return {"name": (row["prenom"], row["nom"]), "birth": row["date_naissance"],
                "email": row["courriel"], "phones": [row["telephone"]]}
    if shop == "berlin":
        return {"name": (row["Vorname"], row["Nachname"]), "birth": row["Geburtsdatum"],
                "email": row["EMail"], "phones": [row["Telefon"]], "street": row["Strasse"]}
    return {"name": tuple(row["full_name"].rsplit(" ", 1)), "birth": None,
            "email": row["email_address"], "phones": [row["mobile"], row["home_phone"]],
            "street": row["street"]}


def test_fuzzy_records_share_no_key_and_differ_in_name(world: World, records: dict,
                                                       directory: Path) -> None:
    fuzzy = _fuzzy_records(world)
    assert len(fuzzy) >= 5
    with sqlite3.connect(directory / "paris.db") as db:
        home = dict(db.execute("SELECT c.id, a.rue FROM clients c JOIN adresses a "
                               "ON a.id = c.adresse_id").fetchall())
    ways: Counter[str] = Counter()
    corroborated: Counter[str] = Counter()
    for customer, ref in fuzzy:
        others = [r for r in customer["records"].items() if r != ref]
        assert records[ref]["keys"], ref  # a new e-mail and phone...
        assert not records[ref]["keys"] & set().union(*(records[r]["keys"] for r in others))
        me = _person(ref[0], records[ref]["row"])
        shops = [r for r in others if r[0] in SHOPS]
        them = [_person(r[0], records[r]["row"]) for r in shops]
        for person, r in [*zip(them, shops, strict=True), (me, ref)]:
            if r[0] == "paris":
                person["street"] = home.get(int(r[1]))
        # ...a name written another way...
        names = {tuple(_fold(n) for n in p["name"]) for p in them}
        mine = tuple(_fold(n) for n in me["name"])
        if mine[::-1] in names and mine not in names:
            ways["swapped"] += 1
        elif mine in names:
            ways["accents"] += 1  # or case: the folded names agree
        else:
            ways["typo"] += 1
        assert me["name"] not in {p["name"] for p in them}, ref
        # ...and the birth date or the home to say it is the same person.
        if me["birth"] and me["birth"] in {p["birth"] for p in them}:
            corroborated["birth_date"] += 1
        elif _street_and_number(me.get("street")) in {_street_and_number(p.get("street"))
                                                      for p in them}:
            corroborated["street"] += 1
        else:
            pytest.fail(f"nothing corroborates {ref}")
    assert ways["typo"] and ways["swapped"] + ways["accents"]
    assert set(corroborated) == {"birth_date", "street"}


def test_hostile_inputs_are_planted(world: World, records: dict) -> None:
    hostile = world.truth["hostile"]
    assert {h["kind"] for h in hostile} == {"placeholder_email", "placeholder_phone",
                                            "switchboard", "household", "card"}
    assert {h["value"] for h in hostile if h["kind"].startswith("placeholder")} == {
        "noemail@bakery.example", "none@none.fr", "0000000000", "0600000000"}
    parties = {c["party"]: c for c in world.truth["customers"]}
    special = {n for t in world.truth["traps"] for n in t["parties"]}
    special |= {c["party"] for c, _ in _fuzzy_records(world)}
    for case in hostile:
        refs = [tuple(r) for r in case["records"]]
        assert len(refs) == len(case["parties"]) >= 2 and len(set(refs)) == len(refs)
        assert case["shared_key"] == (not case["kind"].startswith("placeholder"))
        for n, ref in zip(case["parties"], refs, strict=True):
            # one person known to one source only: no other customer's truth is touched
            assert list(parties[n]["records"].items()) == [ref] and n not in special
            written = records[ref]["row"]
            assert any(case["value"] in re.sub(r"\s", "", str(v)).lower() or
                       re.sub(r"\D", "", case["value"]) == re.sub(r"\D", "", str(v))
                       for v in written.values() if v), (case["kind"], ref)
        names = [parties[n]["name"] for n in case["parties"]]
        assert len(set(names)) == len(names)
        if case["shared_key"]:  # a real key the records share: only the guards keep them apart
            assert set.intersection(*(records[r]["keys"] for r in refs))
        else:
            assert not set.intersection(*(records[r]["keys"] for r in refs))
    by_kind = {h["kind"]: h for h in hostile}
    assert len(by_kind["switchboard"]["records"]) > 6  # beyond the matcher's shared_key_limit
    assert {s for s, _ in by_kind["switchboard"]["records"]} == {"paris", "crm"}
    family = [records[tuple(r)]["row"] for r in by_kind["household"]["records"]]
    assert len({r["Nachname"] for r in family}) == 1 and len({r["Strasse"] for r in family}) == 1
    assert len({r["Vorname"] for r in family}) == len({r["Geburtsdatum"] for r in family}) == 3
    paris, berlin = (records[tuple(r)]["row"] for r in by_kind["card"]["records"])
    assert paris["carte_fidelite"] == berlin["Kundenkarte"]
    assert paris["date_naissance"] != berlin["Geburtsdatum"] and paris["prenom"] != berlin["Vorname"]


def test_the_matcher_finds_the_whole_truth(world: World) -> None:
    """What `panorama index` does: the demo's identity rules over every record."""
    from gateway.config import load_config
    from gateway.matching import Matcher

    config = load_config(world.config_path, {"PANORAMA_DEMO_CRM_TOKEN": "demo"})
    assert config.identity is not None
    customers = [mapping.to_record(name, row, source.defaults)
                 for name, source in config.sources.items() if (mapping := source.customer)
                 for row in _rows(world, source, mapping.entity)]
    resolved = Matcher(config.identity.rules).resolve(
        customers, rank={name: i for i, name in enumerate(config.sources)})
    cluster_of = {r.ref: i for i, c in enumerate(resolved) for r in c.records}

    def pairs(clusters) -> set:
        return {frozenset(p) for c in clusters for p in combinations(sorted(c), 2)}

    found = pairs([r.ref for r in c.records] for c in resolved)
    truth = pairs(_truth_clusters(world))
    precision, recall = len(found & truth) / len(found), len(found & truth) / len(truth)
    assert 2 * precision * recall / (precision + recall) >= 0.98, (precision, recall)
    fuzzy = _fuzzy_records(world)
    for customer, ref in fuzzy:
        assert {cluster_of[r] for r in customer["records"].items()} == {cluster_of[ref]}, ref
        # The evidence says why: a fuzzy link to or from the record (the first record of a
        # customer in source order has none of its own), corroborated.
        links = [link for link in resolved[cluster_of[ref]].evidence.values()
                 if link is not None and ref in (link.a, link.b)]
        assert links and {link.rule for link in links} == {"fuzzy"}, (ref, links)
        assert {"birth_date", "street"} & set(links[0].agreed), (ref, links)
    for case in world.truth["hostile"]:
        refs = [tuple(r) for r in case["records"]]
        assert len({cluster_of[r] for r in refs}) == len(refs), case["kind"]
    parties = {c["party"]: c for c in world.truth["customers"]}
    for trap in world.truth["traps"]:
        a, b = ({cluster_of[r] for r in parties[n]["records"].items()} for n in trap["parties"])
        assert not a & b, trap


def test_showcase_fuzzy_person(world: World, records: dict) -> None:
    show = world.showcase["fuzzy"]
    assert show["shop"] == "paris" and set(show["fuzzy"]) <= {"london", "berlin"}
    customer = next(c for c in world.truth["customers"] if c["records"] == show["records"])
    assert customer["name"] == show["name"]
    paris = records[("paris", show["records"]["paris"])]
    assert f"email:{show['email']}" in paris["keys"]
    for shop, key in show["fuzzy"].items():
        assert customer["links"][shop] == "fuzzy" and customer["records"][shop] == key
        assert not records[(shop, key)]["keys"] & paris["keys"]


def test_realistic_variations_between_linked_records(world: World, records: dict) -> None:
    spellings, formats, name_pairs = 0, Counter(), set()
    for cluster in _truth_clusters(world):
        shop_refs = [r for r in cluster if r[0] in SHOPS]
        emails = {records[r]["email"] for r in shop_refs if records[r]["email"]}
        spellings += len({e.strip().lower() for e in emails}) < len(emails)
        for ref in cluster:
            for phone in records[ref]["phones"]:
                formats[re.sub(r"\d", "9", phone)] += 1
        names = {_full_name(ref[0], records[ref]["row"]) for ref in shop_refs} - {None}
        name_pairs.update((a, b) for a in names for b in names if a < b)
    assert spellings >= 50
    assert {"99 99 99 99 99", "+99999999999", "9999 9 99 99 99 99", "99.99.99.99.99",
            "99999 999999", "+99 9999 999999"} <= set(formats)
    folded_equal = [(a, b) for a, b in name_pairs if a != b and _fold(a) == _fold(b)]
    assert any(_fold(a) != a.casefold() for a, b in folded_equal)  # an accent dropped
    assert ("Camille Martin", "Camile Martin") in name_pairs or \
        ("Camile Martin", "Camille Martin") in name_pairs


def _full_name(shop: str, row: dict) -> str | None:
    if shop == "london":
        return row["full_name"] if row["account_type"] == "RETAIL" else None
    given, family = (row["prenom"], row["nom"]) if shop == "paris" else (row["Vorname"],
                                                                         row["Nachname"])
    return f"{given} {family.title() if shop == 'paris' else family}" if family else None


def test_cards_have_a_format_per_shop(world: World, records: dict) -> None:
    patterns = {"paris": r"PAR-\d{4}-\d{4}", "london": r"LDN \d{4} \d{4}", "berlin": r"B-\d{5}"}
    reused = _hostile_refs(world, "card")  # Berlin issued one of Paris's numbers
    for ref, rec in records.items():
        source = ref[0]
        cards = [k for k in rec["keys"] if k.startswith("card:")]
        if source in patterns and cards and ref not in reused:
            raw = {"paris": "carte_fidelite", "berlin": "Kundenkarte"}.get(source)
            if raw:
                assert re.fullmatch(patterns[source], rec["row"][raw])


# -- money ---------------------------------------------------------------------------------


def test_money_is_exact(directory: Path) -> None:
    text_columns = {"london.db": [("orders", "total"), ("payments", "amount"),
                                  ("refunds", "amount")],
                    "berlin.db": [("Rechnung", "Betrag"), ("Zahlung", "Betrag"),
                                  ("Gutschrift", "Betrag")]}
    for file, columns in text_columns.items():
        with sqlite3.connect(directory / file) as db:
            for table, column in columns:
                values = db.execute(f"SELECT {column}, typeof({column}) FROM {table}").fetchall()
                assert values, f"{table} is empty"
                for value, kind in values:
                    assert kind == "text" and DECIMAL_TEXT.match(value), (table, value)
    with sqlite3.connect(directory / "paris.db") as db:
        for table in ("achats", "paiements"):
            kinds = db.execute(f"SELECT DISTINCT typeof(montant_centimes) FROM {table}").fetchall()
            assert kinds == [("integer",)]


def test_money_is_consistent(directory: Path) -> None:
    with sqlite3.connect(directory / "paris.db") as db:
        wrong = db.execute("SELECT count(*) FROM paiements p JOIN achats a ON a.id = p.achat_id "
                           "WHERE p.montant_centimes != a.montant_centimes "
                           "OR p.client_id != a.client_id OR p.date_paiement < a.date_achat"
                           ).fetchone()[0]
        statuses = dict(db.execute("SELECT statut, count(*) FROM achats GROUP BY statut"))
    assert wrong == 0
    assert set(statuses) == {"payee", "attente", "annulee"}
    with sqlite3.connect(directory / "london.db") as db:
        over = db.execute("SELECT count(*) FROM refunds r JOIN orders o USING (order_id) "
                          "WHERE CAST(r.amount AS REAL) > CAST(o.total AS REAL) "
                          "OR o.state != 'PAID'").fetchone()[0]
        assert over == 0
        assert db.execute("SELECT count(*) FROM refunds").fetchone()[0] >= 5


def test_dates_are_before_the_demo_today(directory: Path, world: World) -> None:
    with sqlite3.connect(directory / "london.db") as db:
        latest = db.execute("SELECT max(ordered_at), max(paid_at) FROM orders, payments").fetchone()
    assert max(latest) < 1767225600  # 2026-01-01T00:00:00Z
    with sqlite3.connect(directory / "paris.db") as db:
        assert db.execute("SELECT max(date_paiement) FROM paiements").fetchone()[0] < "2026"
    stamps = [o["properties"]["hs_timestamp"] for kind in ("notes", "calls", "emails", "meetings")
              for o in world.crm_seed[kind]]
    assert all(re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) and s < "2026" for s in stamps)


# -- the CRM seed --------------------------------------------------------------------------


def test_crm_seed_shape(world: World) -> None:
    seed = world.crm_seed
    assert set(seed) == {"contacts", "notes", "calls", "emails", "meetings"}
    contacts = {c["id"] for c in seed["contacts"]}
    for kind, objects in seed.items():
        ids = [o["id"] for o in objects]
        assert all(i.isdigit() for i in ids) and len(set(ids)) == len(ids), kind
        assert len(objects) >= 20, kind
        if kind != "contacts":
            assert all(o["contacts"] and set(o["contacts"]) <= contacts for o in objects)
    emails = [c["properties"]["email"] for c in seed["contacts"] if c["properties"]["email"]]
    assert all(e == e.strip().lower() for e in emails)
    assert len(set(emails)) == len(emails)
    calls = seed["calls"][0]["properties"]
    assert {"hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_direction"} <= set(calls)


def test_crm_server_accepts_the_seed(world: World) -> None:
    store = pytest.importorskip("gateway.crm_server.store")
    loaded = store.Store(world.crm_seed)
    assert len(loaded.objects["contacts"]) == len(world.crm_seed["contacts"])
    assert loaded.objects["contacts"]["1"].properties["email"] == world.showcase["email"]
