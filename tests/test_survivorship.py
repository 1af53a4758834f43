"""Survivorship: each rule on hand-built clusters, the config section, and the GraphQL answer."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, parse_config
from gateway.identity import Cluster
from gateway.merge import customer_values
from gateway.records import CustomerRecord
from gateway.survivorship import FIELDS, RULES, Survivorship, parse_survivorship, pick_value
from tests.gateway_client import gateway_client, graphql

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["paris", "london", "berlin", "crm"]


def rec(source, key, given=None, family=None, full=None, legal=None, born=None, kind="PERSON",
        updated=None):
    return CustomerRecord(
        source=source, key=str(key), kind=kind, given_name=given, family_name=family,
        full_name=full, legal_name=legal, birth_date=born, emails=(), phones=(), addresses=(),
        cards=(), updated_at=updated)


def rules(section=None) -> Survivorship:
    parsed, problems = parse_survivorship(section, SOURCES)
    assert problems == []
    return parsed


def pick(section, field, *records):
    return pick_value(rules(section), field, Cluster(tuple(records), {}).records)


def at(day):
    return datetime(2024, 5, day, 12, tzinfo=UTC)


# --- source_priority -------------------------------------------------------------------------

def test_without_a_section_the_first_source_in_config_order_with_a_value_wins():
    choice = pick(None, "birth_date", rec("paris", 1), rec("london", 2, born=date(1980, 1, 2)),
                  rec("crm", 3, born=date(1981, 1, 2)))
    assert (choice.record.source, choice.value, choice.reason) == (
        "london", date(1980, 1, 2), "source_priority")


def test_the_configured_priority_comes_first_then_the_other_sources_in_config_order():
    section = {"source_priority": ["crm"]}
    records = (rec("paris", 1, legal="Paris SA"), rec("london", 2, legal="London Ltd"),
               rec("crm", 3, legal="CRM Corp"))
    assert rules(section).priority == ("crm", "paris", "london", "berlin")
    choice = pick(section, "legal_name", *records)
    assert (choice.value, choice.reason) == ("CRM Corp", "source_priority (crm first)")
    choice = pick(section, "legal_name", *records[:2], rec("crm", 3))
    assert (choice.value, choice.reason) == ("Paris SA", "source_priority (paris first with a value)")


def test_source_priority_prefers_a_name_with_given_and_family_names_as_it_always_did():
    records = (rec("crm", 1, full="J. Dupont"), rec("paris", 2, "Jean", "Dupont", "Jean Dupont"))
    choice = pick({"source_priority": ["crm", "paris"]}, "name", *records)
    assert choice.record.source == "paris"
    assert choice.reason == "source_priority (paris first with given and family names)"
    # without any complete name, the first partial one
    choice = pick({"source_priority": ["crm", "paris"]}, "name", records[0], rec("paris", 2))
    assert (choice.value, choice.reason) == ((None, None, "J. Dupont"), "source_priority (crm first)")


def test_records_of_one_source_keep_their_cluster_order():
    choice = pick({"source_priority": ["london"]}, "birth_date",
                  rec("paris", 1, born=date(1990, 1, 1)), rec("london", 7, born=date(1970, 7, 7)),
                  rec("london", 9, born=date(1970, 9, 9)))
    assert (choice.record.key, choice.reason) == ("7", "source_priority (london first)")


# --- most_recent -----------------------------------------------------------------------------

def test_most_recent_takes_the_latest_record_that_has_a_value():
    section = {"default": "most_recent"}
    choice = pick(section, "birth_date",
                  rec("paris", 1, born=date(1980, 1, 1), updated=at(1)),
                  rec("london", 2, born=date(1980, 2, 2), updated=at(20)),
                  rec("crm", 3, updated=at(30)),                       # newest, but no value
                  rec("berlin", 4, born=date(1980, 4, 4)))             # no updated_at: last
    assert choice.record.source == "london"
    assert choice.reason == "most_recent (updated 2024-05-20T12:00:00+00:00)"


def test_most_recent_puts_records_without_updated_at_after_then_uses_priority():
    section = {"default": "most_recent", "source_priority": ["crm", "paris"]}
    choice = pick(section, "birth_date", rec("paris", 1, born=date(1980, 1, 1)),
                  rec("crm", 2, born=date(1981, 1, 1)))
    assert (choice.record.source, choice.reason) == (
        "crm", "most_recent (no updated_at; source priority)")


def test_most_recent_breaks_a_tie_by_source_priority_and_says_so():
    section = {"fields": {"legal_name": "most_recent"}, "source_priority": ["crm"]}
    choice = pick(section, "legal_name", rec("paris", 1, legal="Acme", updated=at(5)),
                  rec("crm", 2, legal="ACME SAS", updated=at(5)))
    assert choice.value == "ACME SAS"
    assert choice.reason.endswith("; tie broken by source priority)")
    # the same value twice is no tie
    choice = pick(section, "legal_name", rec("paris", 1, legal="Acme", updated=at(5)),
                  rec("crm", 2, legal="ACME", updated=at(5)))
    assert choice.value == "ACME" and "tie" not in choice.reason


def test_most_recent_compares_naive_and_aware_times():
    choice = pick({"default": "most_recent"}, "birth_date",
                  rec("paris", 1, born=date(1980, 1, 1), updated=datetime(2024, 5, 9)),
                  rec("crm", 2, born=date(1981, 1, 1), updated=at(8)))
    assert choice.record.source == "paris"


# --- most_complete ---------------------------------------------------------------------------

def test_most_complete_name_beats_partial_ones():
    choice = pick({"fields": {"name": "most_complete"}}, "name",
                  rec("paris", 1, given="Jean", full="Jean"),
                  rec("london", 2, "Jean", "Dupont", "Jean Dupont"),
                  rec("crm", 3, family="Dupont"))
    assert (choice.record.source, choice.reason) == ("london", "most_complete (3 parts)")


def test_most_complete_ties_go_to_source_priority():
    section = {"fields": {"name": "most_complete", "legal_name": "most_complete"},
               "source_priority": ["crm"]}
    choice = pick(section, "name", rec("paris", 1, "Jean", "Dupont", "Jean Dupont"),
                  rec("crm", 2, "Jean-Marc", "Dupont", "Jean-Marc Dupont"))
    assert choice.record.source == "crm"
    assert choice.reason == "most_complete (3 parts; tie broken by source priority)"
    choice = pick(section, "legal_name", rec("paris", 1, legal="Acme Industries SAS"),
                  rec("crm", 2, legal="Acme"))
    assert (choice.value, choice.reason) == ("Acme Industries SAS", "most_complete (3 words)")


# --- most_frequent ---------------------------------------------------------------------------

def test_most_frequent_counts_values_case_and_accent_insensitively():
    choice = pick({"fields": {"name": "most_frequent"}, "source_priority": ["crm"]}, "name",
                  rec("paris", 1, "Élodie", "Martin", "Élodie Martin"),
                  rec("london", 2, "Elodie", "MARTIN", "Elodie MARTIN"),
                  rec("berlin", 3, "elodie", "martin", "elodie  martin"),
                  rec("crm", 4, "Lola", "Martin", "Lola Martin"),
                  rec("crm", 5))                                       # no name: not counted
    # the winning value as the highest-priority record of its group writes it
    assert choice.value == ("Élodie", "Martin", "Élodie Martin")
    assert choice.reason == "most_frequent (3 of 4 records)"


def test_most_frequent_ties_go_to_source_priority():
    section = {"fields": {"birth_date": "most_frequent"}, "source_priority": ["london"]}
    choice = pick(section, "birth_date", rec("paris", 1, born=date(1980, 1, 1)),
                  rec("london", 2, born=date(1980, 1, 10)))
    assert choice.value == date(1980, 1, 10)
    assert choice.reason == "most_frequent (1 of 2 records; tie broken by source priority)"


def test_most_frequent_kind_decides_an_organization():
    found = Cluster((rec("paris", 1, kind="PERSON", full="Acme"),
                     rec("london", 2, kind="ORGANIZATION", legal="Acme SAS"),
                     rec("crm", 3, kind="ORGANIZATION", legal="ACME SAS")), {})
    values = customer_values(found, {}, rules({"fields": {"kind": "most_frequent"}}))
    assert values.kind.value == "ORGANIZATION" and values.display_name == "Acme SAS"
    assert customer_values(found, {}).kind.value == "PERSON"   # first source, as before


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("field", [f for f in FIELDS if f != "kind"])
def test_no_record_with_a_value_gives_no_value(rule, field):
    assert pick({"default": rule}, field, rec("paris", 1), rec("crm", 2, updated=at(1))) is None


# --- merge -----------------------------------------------------------------------------------

def test_golden_values_say_why_they_won_and_names_are_listed():
    found = Cluster((rec("paris", 1, "Jean", "Dupont", "Jean Dupont", born=date(1980, 1, 1)),
                     rec("crm", 2, "Jean", "Dupond", "Jean Dupond", born=date(1980, 1, 2),
                         updated=at(3))), {})
    values = customer_values(found, {}, rules({"default": "most_recent"}))
    assert (values.name.full, values.name.source.source, values.name.source.record_id) == (
        "Jean Dupond", "crm", "2")
    assert values.name.chosen_by.startswith("most_recent (updated 2024-05-03")
    assert values.birth_date.value == date(1980, 1, 2)
    assert values.birth_date.chosen_by == values.name.chosen_by
    assert [(n.full, n.chosen_by) for n in values.names] == [
        ("Jean Dupont", "listed"), ("Jean Dupond", "listed")]


def _legacy(records):
    """The merge as it was before survivorship rules (kept to prove the default unchanged)."""
    names = [r for r in records if r.given_name or r.family_name or r.full_name]
    name = next((r for r in names if r.given_name and r.family_name), names[0] if names else None)
    legal = next((r for r in records if r.legal_name), None)
    born = next((r for r in records if r.birth_date), None)
    kind = records[0].kind if records[0].kind in ("PERSON", "ORGANIZATION") else "PERSON"
    return (kind, name and (name.given_name, name.family_name, name.full_name, name.ref),
            legal and (legal.legal_name, legal.ref), born and (born.birth_date, born.ref))


def test_without_a_section_every_golden_value_is_what_it_was():
    rng = random.Random(7)

    def maybe(*values):
        return rng.choice((None, *values))

    for _ in range(500):
        records = tuple(
            rec(rng.choice(SOURCES), i, maybe("Jean", "jean"), maybe("Dupont"), maybe("J. Dupont"),
                maybe("Acme", "ACME SA"), maybe(date(1980, 1, 1), date(1981, 2, 2)),
                rng.choice(("PERSON", "ORGANIZATION", "UNKNOWN")), maybe(at(1), at(2)))
            for i in range(rng.randint(1, 5)))
        values = customer_values(Cluster(records, {}), {})
        got = (values.kind.value,
               values.name and (values.name.given, values.name.family, values.name.full,
                                (values.name.source.source, values.name.source.record_id)),
               values.legal_name and (values.legal_name.value, (values.legal_name.source.source,
                                                                values.legal_name.source.record_id)),
               values.birth_date and (values.birth_date.value, (values.birth_date.source.source,
                                                                values.birth_date.source.record_id)))
        assert got == _legacy(records)
        for value in (values.name, values.legal_name, values.birth_date):
            assert value is None or value.chosen_by == "source_priority"


# --- config ----------------------------------------------------------------------------------

def config_doc(survivorship):
    sources = {name: {"kind": "sqlite", "connection": {"path": f"{name}.db"},
                      "customer": {"table": "clients", "key": "id", "fields": {"full_name": "nom"}}}
               for name in SOURCES}
    return {"sources": sources, "survivorship": survivorship}


def config_problems(survivorship):
    with pytest.raises(ConfigError) as err:
        parse_config(config_doc(survivorship), "panorama.yaml", Path("."), {})
    return [str(p) for p in err.value.problems]


def test_the_section_is_parsed_into_the_config():
    config = parse_config(config_doc({"default": "most_recent", "source_priority": ["crm", "paris"],
                                      "fields": {"name": "most_complete"}}),
                          "panorama.yaml", Path("."), {})
    assert config.survivorship.rule("name") == "most_complete"
    assert config.survivorship.rule("birth_date") == "most_recent"
    assert config.survivorship.priority == ("crm", "paris", "london", "berlin")
    assert parse_config(config_doc(None), "panorama.yaml", Path("."), {}).survivorship == Survivorship()


def test_every_problem_names_its_location_and_the_allowed_values():
    found = config_problems({
        "default": "newest",
        "source_priority": ["crm", "pariss", "crm"],
        "fields": {"nmae": "most_frequent", "birth_date": "most_recnt", "emails": "most_recent"},
        "order": 1,
    })
    rules_list = "allowed: source_priority, most_recent, most_complete, most_frequent"
    assert found == [
        "survivorship.order: unknown key; allowed: default, source_priority, fields",
        f"survivorship.default: unknown rule 'newest'; {rules_list}",
        "survivorship.fields.nmae: unknown field; did you mean 'name'? "
        "allowed: name, legal_name, birth_date, kind",
        f"survivorship.fields.birth_date: unknown rule 'most_recnt'; did you mean 'most_recent'? "
        f"{rules_list}",
        "survivorship.fields.emails: a list keeps every source's values and takes no rule; "
        "rules apply to: name, legal_name, birth_date, kind",
        "survivorship.source_priority[1]: unknown source 'pariss'; did you mean 'paris'? "
        "configured sources: paris, london, berlin, crm",
        "survivorship.source_priority[2]: source 'crm' is listed twice; list each source once",
    ]


@pytest.mark.parametrize("section, location", [
    (["crm"], "survivorship: expected a mapping"),
    ({"fields": ["name"]}, "survivorship.fields: expected a mapping of field to rule"),
    ({"source_priority": "crm"}, "survivorship.source_priority: expected a list of source names"),
    ({"fields": {"name": 3}}, "survivorship.fields.name: unknown rule 3"),
])
def test_malformed_sections_are_problems(section, location):
    (problem,) = config_problems(section)
    assert problem.startswith(location)


def test_the_documented_section_is_valid():
    text = (ROOT / "docs" / "config.md").read_text().split("## Survivorship", 1)[1]
    section = yaml.safe_load(text.split("```yaml", 1)[1].split("```", 1)[0])["survivorship"]
    assert rules(section).fields


# --- end to end ------------------------------------------------------------------------------

SHOPS = {  # one customer, by e-mail, in two shops that disagree on name and birth date
    "lyon": (1, "Jean", "Dupont", "1980-01-02", "2024-03-01T10:00:00"),
    "nice": (7, "Jean-Marc", "Dupont", "1980-02-01", "2024-06-01T10:00:00"),
}


def write_world(tmp_path: Path, survivorship: dict | None) -> Path:
    for shop, row in SHOPS.items():
        with sqlite3.connect(tmp_path / f"{shop}.db") as db:
            db.execute("CREATE TABLE clients (id INTEGER PRIMARY KEY, prenom TEXT, nom TEXT, "
                       "naissance TEXT, modifie TEXT, courriel TEXT)")
            db.execute("INSERT INTO clients VALUES (?, ?, ?, ?, ?, 'Jean.Dupont@example.com')", row)
        db.close()
    config = {"sources": {shop: {
        "kind": "sqlite", "shop": shop.title(), "connection": {"path": f"{shop}.db"},
        "customer": {"table": "clients", "key": "id", "fields": {
            "given_name": "prenom", "family_name": "nom", "birth_date": "naissance",
            "updated_at": "modifie", "emails": ["courriel"]}}} for shop in SHOPS}}
    if survivorship is not None:
        config["survivorship"] = survivorship
    path = tmp_path / "panorama.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("survivorship, name, born, chosen_by", [
    (None, ("Jean Dupont", "lyon"), "1980-01-02", "source_priority"),
    ({"source_priority": ["nice"]}, ("Jean-Marc Dupont", "nice"), "1980-02-01",
     "source_priority (nice first)"),
    ({"fields": {"name": "most_recent"}}, ("Jean-Marc Dupont", "nice"), "1980-01-02",
     "most_recent (updated 2024-06-01T10:00:00+00:00)"),
])
async def test_graphql_name_follows_the_configured_rule(tmp_path, survivorship, name, born,
                                                        chosen_by):
    query = """{ customerByEmail(email: "jean.dupont@example.com") {
                   name { full chosenBy source { source recordId } }
                   names { full chosenBy }
                   birthDate { value chosenBy source { source } } } }"""
    async with gateway_client(write_world(tmp_path, survivorship)) as client:
        body = await graphql(client, query)
    assert "errors" not in body, body
    customer = body["data"]["customerByEmail"]
    assert (customer["name"]["full"], customer["name"]["source"]["source"]) == name
    assert customer["name"]["chosenBy"] == chosen_by
    assert customer["birthDate"]["value"] == born
    assert {n["chosenBy"] for n in customer["names"]} == {"listed"}
    assert len(customer["names"]) == 2
