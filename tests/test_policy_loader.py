"""The policy file: its format, and validation that lists every problem with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError
from gateway.policy.catalog import default_catalog
from gateway.policy.errors import PolicyFileError
from gateway.policy.loader import load_policy, parse_policy
from gateway.policy.masks import Mask
from gateway.policy.model import ALLOW, DENY, Match, RowRule

DEMO = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "policies.yaml"
EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "policies.example.yaml"
CATALOG = default_catalog()


def minimal(**roles) -> dict:
    return {"version": 1,
            "categories": {"lookup": {"fields": {"Query": ["customer"]}},
                           "core": {"fields": {"Customer": ["id", "kind"]}},
                           "contact": {"fields": {"Customer": ["emails"],
                                                  "Email": ["address", "type"]}}},
            "purposes": {"support": {"categories": ["lookup", "core", "contact"]},
                         "billing": {"categories": "*"}},
            "roles": roles or {"admin": {"purposes": ["support"], "all_fields": True}}}


def problems_of(document) -> list[str]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(document, "policies.yaml", CATALOG)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", [DEMO, EXAMPLE])
def test_shipped_policies_load_without_problems_or_warnings(path):
    policy = load_policy(path, CATALOG)
    assert policy.warnings == ()
    assert policy.digest and policy.path == str(path)


def test_the_demo_ships_the_six_roles():
    roles = load_policy(DEMO, CATALOG).roles
    assert {"finance", "marketing", "support", "shop_staff", "admin", "customer"} <= set(roles)


def test_purposes_say_whether_a_customer_may_object_to_them():
    document = minimal()
    document["purposes"]["billing"]["objectable"] = False
    policy = parse_policy(document, "p.yaml", CATALOG)
    assert policy.purposes["support"].objectable is True  # the default: objections apply
    assert policy.purposes["billing"].objectable is False
    assert policy.not_objectable == {"billing"}
    demo = load_policy(DEMO, CATALOG)
    assert {p for p, purpose in demo.purposes.items() if purpose.objectable} == {"marketing", "analytics"}
    assert not {p.name for p in load_policy(EXAMPLE, CATALOG).purposes.values() if p.objectable}


def test_objectable_must_be_true_or_false():
    document = minimal()
    document["purposes"]["billing"]["objectable"] = "maybe"
    document["purposes"]["support"]["objectable"] = 0
    assert problems_of(document) == [
        "purposes.support.objectable: expected true or false (may a customer object to purpose "
        "'support'?), got 0",
        "purposes.billing.objectable: expected true or false (may a customer object to purpose "
        "'billing'?), got 'maybe'"]


def test_a_document_becomes_the_model():
    policy = parse_policy(minimal(
        base={"rules": {"lookup": "allow", "core": "allow"}, "introspection": True},
        agent={"inherits": ["base"], "purposes": ["support"],
               "rules": {"contact": "allow", "Email.address": {"mask": "last_digits", "keep": 2},
                         "Email.type": "deny"},
               "rows": {"known_in": {"shop": "$principal.shop"},
                        "sources": {"region": ["eu", "uk"]}}}), "p.yaml", CATALOG)
    agent = policy.roles["agent"]
    assert agent.rules["contact"] is ALLOW and agent.rules["Email.type"] is DENY
    assert agent.rules["Email.address"].mask == Mask("last_digits", (("keep", 2),))
    assert agent.rows == (RowRule("known_in", (Match("shop", principal="shop"),), "agent"),
                          RowRule("sources", (Match("region", ("eu", "uk")),), "agent"))
    assert [r.name for r in policy.ancestry("agent")] == ["agent", "base"]
    assert policy.introspection_of("agent") is True
    assert policy.purposes_of("agent") == {"support"}
    assert policy.category_of["Email.address"] == "contact"
    assert policy.purposes["billing"].categories == {"lookup", "core", "contact"}


def test_every_problem_is_listed_with_its_location_and_a_fix():
    document = minimal(
        agent={"inherits": ["bose"], "purposes": ["suport"], "introspection": "yes",
               "rules": {"contacts": "allow", "Email.address": "maybe",
                         "Email.type": {"mask": "scramble"}, "contact": {"mask": "redact"},
                         "Customer.emails": {"mask": "redact"},
                         "Customer.kind": {"mask": "email_partial"},
                         "Customer.id": {"mask": "last_digits", "keep": 0, "size": 3}},
               "rows": {"known_in": {"shop": "$principal.shopp"}, "sources": {"city": "x"},
                        "subject": "$principal.shop", "others": {}},
               "colour": "red"})
    document["categories"]["identity"] = {"fields": {"Customer": ["nmae", "emails"],
                                                     "Costumer": ["id"]}}
    document["purposes"]["support"]["categories"].append("identiti")
    document["extra"] = 1
    found = problems_of(document)
    expected = [
        "(top level).extra: unknown key",
        "categories.identity.fields.Customer: type Customer has no field 'nmae'; "
        "did you mean 'name'?",
        "categories.identity.fields.Costumer: no object type 'Costumer' in the schema; "
        "did you mean 'Customer'?",
        "categories.identity: Customer.emails is already in category 'contact'",
        "purposes.support.categories: unknown category 'identiti'; did you mean 'identity'?",
        "roles.agent.colour: unknown key",
        "roles.agent.inherits: unknown role 'bose'",
        "roles.agent.purposes: unknown purpose 'suport'; did you mean 'support'?",
        "roles.agent.rules.contacts: unknown target; did you mean 'contact'?",
        "roles.agent.rules.Email.address: expected allow, deny or {mask: STRATEGY}",
        "roles.agent.rules.Email.type: unknown mask strategy 'scramble'; known: redact",
        "roles.agent.rules.contact: masks name one field",
        "roles.agent.rules.Customer.emails: Customer.emails is an object (Email); mask one of "
        "its scalar fields instead: Email.address, Email.type",
        "roles.agent.rules.Customer.kind: email_partial cannot keep the type of Customer.kind "
        "(CustomerKind!); strategies that can: none (deny the field instead)",
        "roles.agent.rules.Customer.id.keep: expected a whole number of at least 1",
        "roles.agent.rules.Customer.id.size: unknown parameter of last_digits; allowed: keep",
        "roles.agent.rows.others: unknown key; allowed here: known_in, sources, subject",
        "roles.agent.rows.known_in.shop: expected $principal.<attribute> with one of: subject, "
        "shop, region, customer_id, kind; got '$principal.shopp'",
        "roles.agent.rows.sources.city: unknown key; allowed here: name, shop, label, kind, "
        "region",
        "roles.agent.rows.sources: empty; give a source attribute and its value",
        "roles.agent.rows.subject: write $principal.customer_id",
        "roles.agent.introspection: expected true or false, got 'yes'",
    ]
    for want in expected:
        assert any(want in problem for problem in found), (want, found)
    assert len(found) == len(expected), found


def test_an_error_says_how_many_problems_and_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        parse_policy({"version": 2, "roles": {}}, "p.yaml", CATALOG)
    text = str(caught.value)
    assert text.startswith("p.yaml: 2 problem(s):")
    assert "version: unsupported version 2" in text and "roles: no roles defined" in text


@pytest.mark.parametrize(("roles", "cycle"), [
    ({"a": {"inherits": ["b"]}, "b": {"inherits": ["a"]}}, "a -> b -> a"),
    ({"a": {"inherits": ["a"]}}, "a -> a"),
    ({"a": {"inherits": ["b"]}, "b": {"inherits": ["c"]}, "c": {"inherits": ["a"]},
      "d": {"inherits": ["a"]}}, "a -> b -> c -> a"),
])
def test_inheritance_cycles_are_refused(roles, cycle):
    found = problems_of(minimal(**roles))
    assert len(found) == 1 and f"inheritance cycle {cycle}; remove one of these" in found[0]


def test_unclassified_fields_and_useless_roles_are_warned_about():
    policy = parse_policy(minimal(admin={"purposes": ["support"], "all_fields": True},
                                  orphan={"rules": {"core": "allow"}}), "p.yaml", CATALOG)
    loose, useless = policy.warnings
    assert "field(s) in no category and named by no rule: only roles with all_fields" in loose
    assert "Customer.phones" in loose and "Customer.emails" not in loose
    assert "Query.customer," not in loose and "Query.customers," in loose
    assert "role orphan has no purposes" in useless


def test_a_rule_on_a_field_counts_as_classifying_it():
    policy = parse_policy(minimal(admin={"purposes": ["support"], "all_fields": True},
                                  agent={"purposes": ["support"],
                                         "rules": {"Customer.phones": "allow"}}), "p", CATALOG)
    assert "Customer.phones" not in policy.warnings[0]


def test_yaml_syntax_and_missing_files_are_problems_too(tmp_path):
    bad = tmp_path / "policies.yaml"
    bad.write_text("roles:\n  admin: [unclosed\n")
    with pytest.raises(PolicyFileError) as caught:
        load_policy(bad, CATALOG)
    assert "line 3" in str(caught.value) and "fix the YAML syntax" in str(caught.value)
    with pytest.raises(PolicyFileError, match="file not found"):
        load_policy(tmp_path / "missing.yaml", CATALOG)


def test_names_are_checked():
    found = problems_of(minimal(**{"Support Desk": {"purposes": ["support"]}}))
    assert found == ["roles.Support Desk: role names are lower-case letters, digits, '-' and "
                     "'_', starting with a letter"]
