"""Probabilistic identity: one test per rule, the rules' parsing, and the demo world's truth."""

from __future__ import annotations

import random
import sqlite3
from datetime import date
from itertools import combinations
from pathlib import Path

import pytest

from gateway.match_rules import MatchRules, parse_rules
from gateway.matching import Link, Matcher, Resolved
from gateway.records import AddressValue, CardValue, ContactValue, CustomerRecord

RANK = {"paris": 0, "london": 1, "berlin": 2, "crm": 3}


def rec(source: str, key: object, given: str | None = None, family: str | None = None, *,
        birth: str | None = None, emails=(), phones=(), cards=(), postcode: str | None = None,
        city: str | None = None, street: str | None = None, kind: str = "PERSON",
        legal: str | None = None, vat: str | None = None) -> CustomerRecord:
    address = (AddressValue("HOME", street, None, postcode, city),) if postcode or city or street else ()
    return CustomerRecord(
        source=source, key=str(key), kind=kind, given_name=given, family_name=family,
        full_name=" ".join(p for p in (given, family) if p) or None, legal_name=legal,
        birth_date=date.fromisoformat(birth) if birth else None,
        emails=tuple(ContactValue(e, None) for e in emails),
        phones=tuple(ContactValue(p, None, valid=p.startswith("+")) for p in phones),
        addresses=address, cards=tuple(CardValue(c, None, None) for c in cards), vat_number=vat,
        native_key=key)


def groups(resolved: list[Resolved]) -> list[list[tuple[str, str]]]:
    return [[r.ref for r in c.records] for c in resolved]


def resolve(*records: CustomerRecord, rules: MatchRules | None = None, **kw) -> list[list]:
    return groups(Matcher(rules).resolve(records, rank=RANK, **kw))


# -- keys ----------------------------------------------------------------------------------


def test_keys_are_normalized_and_only_of_the_records_kind() -> None:
    matcher = Matcher()
    person = rec("paris", 1, "Jean", "Dupont", emails=[" Jean@Example.COM "],
                 phones=["+33612345678", "garbage"], cards=["ab-12 34"], vat="FR 74 912345678")
    assert matcher.keys(person) == {"email:jean@example.com", "phone:+33612345678", "card:AB1234"}
    company = rec("paris", 2, kind="ORGANIZATION", legal="Le Petit Bistro SARL",
                  emails=["commandes@bistro.example"], vat="FR 74 912345678")
    assert matcher.keys(company) == {"vat:FR74912345678", "email:commandes@bistro.example"}


@pytest.mark.parametrize("rule, a, b", [
    ("email", {"emails": ["Jean.Dupont@example.fr "]}, {"emails": ["jean.dupont@EXAMPLE.fr"]}),
    ("phone", {"phones": ["+33612345678"]}, {"phones": ["+33612345678"]}),
    ("card", {"cards": ["PAR-4821-0093"]}, {"cards": ["par 4821 0093"]}),
])
def test_a_shared_key_links(rule: str, a: dict, b: dict) -> None:
    resolved = Matcher().resolve([rec("paris", 1, "Jean", "Dupont", **a),
                                  rec("crm", 7, "Jean", "Dupont", **b)], rank=RANK)
    assert groups(resolved) == [[("paris", "1"), ("crm", "7")]]
    assert resolved[0].evidence[("paris", "1")] is None
    link = resolved[0].evidence[("crm", "7")]
    assert link == Link(("paris", "1"), ("crm", "7"), rule, 1.0, (rule,))


def test_a_shared_vat_number_links_organizations() -> None:
    a = rec("paris", 1, kind="ORGANIZATION", legal="Le Petit Bistro SARL", vat="FR74912345678")
    b = rec("london", "L1", kind="ORGANIZATION", legal="Petit Bistro (Covent Garden)",
            vat="FR 74 912 345 678")
    resolved = Matcher().resolve([a, b], rank=RANK)
    assert groups(resolved) == [[a.ref, b.ref]]
    link = resolved[0].evidence[b.ref]
    assert link is not None and link.rule == "vat"


def test_placeholders_are_never_evidence() -> None:
    rules, problems = parse_rules({"placeholders": {"emails": ["*@shop.example"],
                                                    "phones": ["+33 6 11 22 33 44"]}})
    assert problems == []
    matcher = Matcher(rules)
    junk = {"emails": ["NoEmail@shop.fr", "none@x.fr", "test@test.com", "caisse@shop.example"],
            "phones": ["+33600000000", "+33123456789", "+33666666666", "+33611223344"]}
    a, b = rec("paris", 1, "Jean", "Dupont", **junk), rec("crm", 2, "Paul", "Durand", **junk)
    assert matcher.keys(a) == frozenset()
    assert len(matcher.resolve([a, b])) == 2
    assert Matcher().keys(rec("paris", 3, phones=["+33611223344"])) == {"phone:+33611223344"}


def test_a_switchboard_phone_on_many_records_is_not_a_link() -> None:
    names = ["Jean Dupont", "Paul Durand", "Luc Petit", "Anne Roux", "Marc Blanc", "Eve Noir",
             "Lea Morel", "Hugo Faure"]
    records = [rec("crm", i, *n.split(), phones=["+33140203040"]) for i, n in enumerate(names)]
    assert len(resolve(*records)) == len(names)
    # The same number on as many records of one person still links them.
    same = [rec("crm", i, "Jean", "Dupont", phones=["+33140203040"]) for i in range(8)]
    assert len(resolve(*same)) == 1


def test_a_family_phone_does_not_link_people_with_other_given_names() -> None:
    jean = rec("paris", 1, "Jean", "Martin", phones=["+33612345678"])
    marie = rec("crm", 2, "Marie", "Martin", phones=["+33612345678"])
    initial = rec("london", 3, "J.", "Martin", phones=["+33612345678"])
    assert resolve(jean, marie, initial) == [[("paris", "1"), ("london", "3")], [("crm", "2")]]
    # An e-mail is personal: it still links (no birth dates to say otherwise).
    assert len(resolve(jean, rec("crm", 2, "Marie", "Martin", emails=["x@y.fr"]),
                       rec("paris", 1, "Jean", "Martin", emails=["x@y.fr"]))) == 1


def test_a_card_number_reused_by_two_shops_does_not_merge_two_people() -> None:
    paris = rec("paris", 1, "Jean", "Dupont", birth="1980-02-03", cards=["B-00042"])
    berlin = rec("berlin", 10042, "Hans", "Weber", birth="1975-06-30", cards=["B-00042"])
    assert len(resolve(paris, berlin)) == 2


# -- fuzzy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, agreed", [
    (("Jean", "Dupont"), ("Jean", "Dupond"), ("name", "birth_date")),
    (("Camille", "Martin"), ("Camile", "Martin"), ("name", "birth_date")),
    (("Hélène", "Lefèvre"), ("HELENE", "LEFEVRE"), ("name", "birth_date")),
    (("Jürgen", "Müller"), ("Juergen", "Mueller"), ("name", "birth_date")),
    (("Martin", "Camille"), ("Camille", "Martin"), ("name", "birth_date")),  # swapped
])
def test_typos_link_fuzzily_when_the_birth_date_agrees(a: tuple, b: tuple, agreed: tuple) -> None:
    x = rec("paris", 1, *a, birth="1988-04-12", emails=["a@x.fr"])
    y = rec("berlin", 2, *b, birth="1988-04-12", emails=["b@y.de"])
    assert Matcher().blocks(x) & Matcher().blocks(y)
    resolved = Matcher().resolve([y, x], rank=RANK)
    assert groups(resolved) == [[x.ref, y.ref]]
    link = resolved[0].evidence[y.ref]
    assert link is not None and (link.rule, link.agreed) == ("fuzzy", agreed) and link.score >= 0.86


def test_typos_link_fuzzily_when_the_address_agrees() -> None:
    home = {"postcode": "75007", "city": "Paris", "street": "12 rue Cler"}
    x = rec("paris", 1, "Hélène", "Dupont", **home)
    y = rec("crm", 2, "Helene", "Dupond", postcode="75007", city="PARIS", street="12, Rue Cler")
    link = Matcher().compare(x, y)
    assert link is not None and link.agreed == ("name", "postcode", "city", "street")
    # Another house of the same street is another address: a name and a postcode are not enough.
    assert Matcher().compare(x, rec("crm", 3, "Hélène", "Dupont", postcode="75007",
                                    street="45 rue Cler")) is None


def test_a_name_alone_is_not_evidence() -> None:
    assert Matcher().compare(rec("paris", 1, "Jean", "Dupont"), rec("crm", 2, "Jean", "Dupont")) is None
    assert resolve(rec("paris", 1, "Jean", "Dupont", city="Paris"),
                   rec("crm", 2, "Jean", "Dupont", city="Paris")) == [[("paris", "1")], [("crm", "2")]]


def test_namesakes_with_different_birth_dates_never_merge() -> None:
    a = rec("paris", 1, "Jean", "Dupont", birth="1980-02-03", postcode="75007", street="1 rue Cler")
    b = rec("berlin", 2, "Jean", "Dupont", birth="1980-02-04", postcode="75007", street="1 rue Cler")
    assert Matcher().compare(a, b) is None
    assert len(resolve(a, b)) == 2
    # Not even through a shared e-mail, nor through a third record without a birth date.
    c = rec("crm", 3, "Jean", "Dupont", emails=["jd@x.fr"], phones=["+33612345678"])
    a2 = rec("paris", 1, "Jean", "Dupont", birth="1980-02-03", emails=["jd@x.fr"])
    b2 = rec("berlin", 2, "Jean", "Dupont", birth="1980-02-04", phones=["+33612345678"])
    assert sorted(map(len, resolve(a2, b2, c))) == [1, 2]


def test_twins_are_not_one_person_with_a_typo() -> None:
    a = rec("paris", 1, "Mathéo", "Dupont", birth="2001-05-06", postcode="75007", street="1 rue Cler")
    b = rec("crm", 2, "Théo", "Dupont", birth="2001-05-06", postcode="75007", street="1 rue Cler")
    assert Matcher().compare(a, b) is None
    assert Matcher().compare(a, rec("crm", 3, "Matheo", "Dupont", birth="2001-05-06")) is not None


def test_organizations_link_fuzzily_by_name_and_address_never_across_vat_numbers() -> None:
    def company(key: int, legal: str, vat: str | None = None) -> CustomerRecord:
        return rec("paris", key, kind="ORGANIZATION", legal=legal, vat=vat, postcode="75007",
                   street="27 rue Saint-Dominique")

    link = Matcher().compare(company(1, "Le Petit Bistro SARL", "FR74912345678"),
                             company(2, "LE PETIT BISTRO"))
    assert link is not None and link.agreed == ("name", "postcode", "street")
    assert Matcher().compare(company(1, "Le Petit Bistro SARL", "FR74912345678"),
                             company(2, "Le Petit Bistro SAS", "FR11222333444")) is None


def test_weak_links_cannot_grow_a_cluster_past_the_limit() -> None:
    rules, _ = parse_rules({"max_cluster_size": 3})
    twins = [rec("crm", i, "Jean", "Dupont", birth="1980-02-03") for i in range(7)]
    assert sorted(map(len, resolve(*twins, rules=rules))) == [1, 3, 3]
    # Deterministic keys are not capped.
    same = [rec("crm", i, "Jean", "Dupont", emails=["jd@x.fr"]) for i in range(5)]
    assert len(resolve(*same, rules=rules)) == 1


def test_a_person_and_an_organization_never_merge() -> None:
    person = rec("paris", 1, "Petit", "Bistro", emails=["contact@bistro.example"])
    company = rec("paris", 2, kind="ORGANIZATION", legal="Petit Bistro",
                  emails=["contact@bistro.example"])
    assert len(resolve(person, company)) == 2
    assert Matcher().compare(person, company) is None


def test_huge_blocks_are_skipped_and_their_records_meet_in_finer_ones() -> None:
    class Small(Matcher):
        max_block_size = 4

    crowd = [rec("crm", i, "Jean", f"Dupont{'x' * i}") for i in range(6)]  # one "n:dupoj" block
    x = rec("paris", 1, "Jean", "Dupont", birth="1980-02-03")
    y = rec("berlin", 2, "Jean", "Dupond", birth="1980-02-03")
    assert len(Small().resolve([*crowd, x, y])) == 7


# -- stewards ------------------------------------------------------------------------------


def test_must_link_wins_and_cannot_link_holds_through_chains() -> None:
    a = rec("paris", 1, "Jean", "Dupont", birth="1980-02-03")
    b = rec("crm", 2, "Jean", "Dupont", birth="1981-02-03")
    resolved = Matcher().resolve([a, b], rank=RANK, must_link=[(b.ref, a.ref)])
    assert groups(resolved) == [[a.ref, b.ref]]
    assert resolved[0].evidence[b.ref] == Link(a.ref, b.ref, "steward", 1.0, ())
    x = rec("paris", 1, "Jean", "Dupont", emails=["jd@x.fr"])
    y = rec("london", 2, "Jean", "Dupont", emails=["jd@x.fr"], phones=["+33612345678"])
    z = rec("crm", 3, "Jean", "Dupont", phones=["+33612345678"])
    assert len(resolve(x, y, z)) == 1
    assert resolve(x, y, z, cannot_link=[(x.ref, z.ref)]) == [[x.ref, y.ref], [z.ref]]
    assert resolve(x, y, cannot_link=[(y.ref, x.ref)]) == [[x.ref], [y.ref]]
    # Refs as a crosswalk stored them in JSON: lists.
    assert resolve(x, y, cannot_link=[[list(y.ref), list(x.ref)]]) == [[x.ref], [y.ref]]


def test_the_same_records_in_any_order_give_the_same_customers() -> None:
    records = [
        rec("paris", 10, "Jean", "Dupont", birth="1980-02-03", emails=["jd@x.fr"]),
        rec("paris", 9, "Jean", "Dupond", birth="1980-02-03", phones=["+33612345678"]),
        rec("london", "LDN-2", "Jean", "Dupont", emails=["JD@x.fr"], phones=["+33698765432"]),
        rec("crm", 3, "Jean", "Dupont", phones=["+33698765432"], birth="1980-02-03"),
        rec("crm", 4, "Marie", "Dupont", phones=["+33612345678"]),
        rec("berlin", 5, "Jean", "Dupont", birth="1980-02-03"),
        rec("berlin", 6, "Jean", "Dupont", birth="1999-09-09", emails=["other@x.de"]),
    ]
    first = Matcher().resolve(records, rank=RANK)
    for seed in range(6):
        random.Random(seed).shuffle(records)
        again = Matcher().resolve(records, rank=RANK)
        assert groups(again) == groups(first)
        assert [c.evidence for c in again] == [c.evidence for c in first]
    assert [len(c.records) for c in first] == [5, 1, 1]


# -- rules ---------------------------------------------------------------------------------


def test_rules_default_and_parse() -> None:
    assert parse_rules(None) == (MatchRules(), [])
    rules, problems = parse_rules({
        "shared_key_limit": 3, "max_cluster_size": 10,
        "person": {"keys": ["email"], "fuzzy": {"threshold": 0.9, "weights": {"name": 1}}},
        "organization": {"fuzzy": False}})
    assert problems == []
    assert (rules.shared_key_limit, rules.max_cluster_size) == (3, 10)
    assert rules.person.keys == ("email",) and rules.person.fuzzy.threshold == 0.9
    assert rules.person.fuzzy.weights == {"name": 1.0}
    assert rules.person.conflicts == ("birth_date",) and not rules.organization.fuzzy.enabled


def test_rules_problems_say_where_and_what_is_allowed() -> None:
    rules, problems = parse_rules({
        "persn": {},
        "shared_key_limit": 0,
        "placeholders": {"emails": "noemail@*"},
        "person": {"keys": ["email", "fax"], "conflicts": ["age"],
                   "fuzzy": {"threshold": "x", "min_name_similarity": 1.5,
                             "weights": {"name": -1, "shoe_size": 1}}},
        "organization": {"fuzzy": {"weights": {"postcode": 1}}},
    }, "config.identity")
    assert problems == [
        "config.identity.persn: unknown key; did you mean 'person'? allowed: placeholders, "
        "shared_key_limit, max_cluster_size, person, organization",
        "config.identity.placeholders.emails: expected a list of strings, got 'noemail@*'",
        "config.identity.shared_key_limit: expected a whole number of at least 1, got 0",
        "config.identity.person.keys: unknown key kind 'fax'; allowed: email, phone, card, vat",
        "config.identity.person.conflicts: unknown conflict attribute 'age'; allowed: "
        "birth_date, vat",
        "config.identity.person.fuzzy.threshold: expected a number between 0 and 1, got 'x'",
        "config.identity.person.fuzzy.min_name_similarity: expected a number between 0 and 1, "
        "got 1.5",
        "config.identity.person.fuzzy.weights.name: expected a non-negative number, got -1",
        "config.identity.person.fuzzy.weights.shoe_size: unknown attribute; allowed: name, "
        "birth_date, postcode, city, street",
        "config.identity.organization.fuzzy.weights: the name needs a positive weight: every "
        "fuzzy link compares names",
    ]
    assert rules == MatchRules()  # every bad value kept its default
    assert parse_rules([1, 2])[1] == [
        "identity: expected a mapping with keys placeholders, shared_key_limit, "
        "max_cluster_size, person, organization, got list"]


# -- the demo world ------------------------------------------------------------------------


def demo_records(world) -> list[CustomerRecord]:
    """Every customer record of the demo, read through the config's mappings."""
    from gateway.config import load_config

    config = load_config(world.config_path, {"PANORAMA_DEMO_CRM_TOKEN": "x"})
    records = []
    for name, source in config.sources.items():
        mapping = source.customer
        entity = mapping.entity
        if source.kind == "crm":
            rows = [{logical: {**c["properties"], "hs_object_id": c["id"]}.get(column)
                     for logical, column in entity.fields.items()}
                    for c in world.crm_seed["contacts"]]
        else:
            columns = ", ".join(f'{c if "." in c else entity.table + "." + c} AS "{logical}"'
                                for logical, c in entity.fields.items())
            joins = "".join(f" LEFT JOIN {j.table} AS {j.alias} ON {j.on}" for j in entity.joins)
            with sqlite3.connect(Path(source.connection["path"])) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute(f"SELECT {columns} FROM {entity.table}{joins}")]
        records += [mapping.to_record(name, row, source.defaults) for row in rows]
    return records


def pairwise_f1(found: list[list], truth: list[list]) -> float:
    def pairs(clusters: list[list]) -> set:
        return {frozenset(p) for c in clusters for p in combinations(c, 2)}

    got, want = pairs(found), pairs(truth)
    precision = len(got & want) / len(got) if got else 1.0
    recall = len(got & want) / len(want) if want else 1.0
    return 2 * precision * recall / (precision + recall)


def check_demo(directory: Path, customers: int) -> float:
    from gateway.demo.world import build_world

    world = build_world(directory, customers=customers)
    records = demo_records(world)
    resolved = Matcher().resolve(records, rank=RANK)
    truth = {c["party"]: [(s, k) for s, k in c["records"].items()] for c in world.truth["customers"]}
    assert sum(map(len, truth.values())) == len(records)
    cluster_of = {ref: i for i, c in enumerate(groups(resolved)) for ref in c}
    for trap in world.truth["traps"]:
        a, b = (truth[p] for p in trap["parties"])
        assert not {cluster_of[r] for r in a} & {cluster_of[r] for r in b}, trap
    return pairwise_f1(groups(resolved), [c for c in truth.values() if c])


def test_the_demo_world_resolves_as_the_truth_says(tmp_path: Path) -> None:
    assert check_demo(tmp_path, 300) >= 0.98


def test_street_abbreviations_are_written_out_before_comparing():
    from gateway.matching import _street, _street_similarity

    assert _street_similarity(_street("23 r. de Rivoli"), _street("23, RUE DE RIVOLI")) == 1.0
    assert _street_similarity(_street("4 av. Bosquet"), _street("4 avenue Bosquet")) == 1.0
    assert _street_similarity(_street("4 av. Bosquet"), _street("6 avenue Bosquet")) < 0.5


def test_folding_writes_plain_letters_for_dotless_i_and_friends():
    from gateway.transforms import fold

    assert fold("Yılmaz") == fold("YILMAZ") == "yilmaz"
    assert fold("Łukasz Søren Œuvre") == "lukasz soren oeuvre"
    assert fold("  Hélène ") == "helene"


def test_neighbours_with_alike_names_are_two_families():
    from gateway.matching import _other_family_name

    assert _other_family_name("jones", "johnson")
    assert not _other_family_name("dupont", "dupond")      # a typo
    assert not _other_family_name("bensalah", "salah")     # a compound name split elsewhere
    assert not _other_family_name("", "martin")            # unknown: no evidence either way
