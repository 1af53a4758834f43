"""Decisions: views per (roles, purpose), inheritance, purposes, lineage, rows. No I/O."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from graphql import build_schema

from gateway import principal
from gateway.policy.catalog import Catalog, default_catalog
from gateway.policy.decide import Decider
from gateway.policy.errors import (
    NothingVisible,
    PrincipalIncomplete,
    PurposeNotAllowed,
    PurposeRequired,
    UnknownPurpose,
    UnknownRole,
)
from gateway.policy.loader import load_policy, parse_policy
from gateway.policy.masks import Mask
from gateway.policy.rows import RowScope, SourceTest, scope_for, source_facts
from gateway.schema import sdl

DEMO = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "policies.yaml"
CATALOG = default_catalog()


def asking(roles: tuple[str, ...] = ("support",), purpose: str | None = "support",
              **attributes) -> principal.Principal:
    return principal.Principal("someone", roles, purpose=purpose, **attributes)


@pytest.fixture(scope="module")
def demo() -> Decider:
    return Decider(load_policy(DEMO, CATALOG), CATALOG)


def decider(catalog: Catalog = CATALOG, **roles) -> Decider:
    document = {
        "categories": {"lookup": {"fields": {"Query": ["customer", "customers"],
                                             "CustomerConnection": ["edges"],
                                             "CustomerEdge": ["node"]}},
                       "core": {"fields": {"Customer": ["id"]}},
                       "identity": {"fields": {"Customer": ["name", "displayName", "legalName"],
                                               "PersonName": ["given", "family", "full"],
                                               "SourcedText": ["value"]}},
                       "contact": {"fields": {"Customer": ["emails", "addresses"],
                                              "Email": ["address", "type"],
                                              "Address": ["city", "country"]}}},
        "purposes": {"support": {"categories": ["lookup", "core", "identity", "contact"]},
                     "stats": {"categories": ["lookup", "core"]}},
        "roles": roles}
    return Decider(parse_policy(document, "p.yaml", catalog), catalog)


BASE = {"rules": {"lookup": "allow", "core": "allow"}}


def test_a_principal_without_a_purpose_is_told_which_it_may_declare(demo):
    with pytest.raises(PurposeRequired, match="Panorama-Purpose header; role 'finance' may act "
                                              "for: billing, risk"):
        demo.view_for(asking(roles=("finance",), purpose=None))


def test_unknown_and_forbidden_purposes_and_roles_are_refused_with_the_allowed_ones(demo):
    with pytest.raises(UnknownPurpose, match="unknown purpose 'sales'; role 'marketing' may act "
                                             "for: analytics, marketing"):
        demo.view(("marketing",), "sales")
    with pytest.raises(PurposeNotAllowed, match="role 'marketing' may not act for purpose "
                                                "'billing'; allowed: analytics, marketing") as e:
        demo.view(("marketing",), "billing")
    assert e.value.code == "PURPOSE_NOT_ALLOWED" and e.value.status == 403
    with pytest.raises(UnknownRole, match="unknown role 'boss'; roles: staff, finance"):
        demo.view(("boss",), "support")
    with pytest.raises(UnknownRole, match="the principal has no role"):
        demo.view((), "support")


def test_views_are_cached_per_roles_and_purpose(demo):
    one = demo.view(("marketing",), "marketing")
    assert demo.view(["marketing"], "marketing") is one
    assert demo.view_for(asking(roles=("marketing",), purpose="marketing")) is one
    other = demo.view(("marketing",), "analytics")
    assert other is not one and other.key != one.key


def test_the_six_demo_roles_see_different_views_of_a_customer(demo):
    views = {role: demo.view((role,), purpose) for role, purpose in [
        ("finance", "billing"), ("marketing", "marketing"), ("support", "support"),
        ("shop_staff", "sale"), ("customer", "self_service"), ("admin", "administration")]}
    assert len({frozenset(v.fields.items()) for v in views.values()}) == 6
    own = set(demo.policy.categories["own_data"].fields)
    assert views["admin"].fields.keys() == CATALOG.fields.keys() - own  # `me` is a customer's
    assert views["finance"].mask("Phone.number") == Mask("last_digits")
    assert not views["finance"].can_read("Customer.interactions")
    assert views["marketing"].mask("Money.amount").strategy == "amount_bucket"
    assert not views["marketing"].can_read("Address.line1")
    assert not views["marketing"].can_read("Interaction.summary")  # not for this purpose
    assert views["support"].mask("SourcedDate.value") == Mask("year_only")
    assert views["shop_staff"].mask("Email.address") == Mask("email_partial")
    assert not views["shop_staff"].can_read("Customer.addresses")
    assert {c for c in views["customer"].fields if c.startswith("Query.")} == {"Query.me"}
    assert views["customer"].can_read("Mutation.objectTo") and views["customer"].can_read("Me.customer")
    assert not views["customer"].introspection and views["support"].introspection
    assert not any(v.can_read("Customer.matchEvidence") for r, v in views.items() if r != "admin")


def test_a_purpose_limits_the_categories_whatever_the_rules_say(demo):
    analytics = demo.view(("marketing",), "analytics")
    assert not analytics.can_read("Customer.emails") and not analytics.can_read("Customer.name")
    assert analytics.can_read("Customer.transactions") and analytics.can_read("Interaction.date")
    assert analytics.input_fields == {"CustomerFilter.shop"}


def test_deny_by_default_a_field_no_rule_names_is_seen_by_all_fields_roles_only():
    extended = Catalog(build_schema(sdl() + "extend type Customer { creditScore: Int }"))
    policy = load_policy(DEMO, extended)
    assert "Customer.creditScore" in policy.warnings[0]
    demo = Decider(policy, extended)
    for role in policy.roles:
        for purpose in sorted(policy.purposes_of(role)):
            view = demo.view((role,), purpose)
            assert view.can_read("Customer.creditScore") == (role == "admin"), (role, purpose)


def test_a_rule_on_a_field_beats_a_rule_on_its_category_in_any_ancestor():
    d = decider(base={**BASE, "rules": {**BASE["rules"], "Email.address": {"mask": "hash"}}},
                agent={"inherits": ["base"], "purposes": ["support"],
                       "rules": {"contact": "allow", "Email.type": "deny"}})
    view = d.view(("agent",), "support")
    assert view.mask("Email.address") == Mask("hash")
    assert not view.can_read("Email.type") and view.can_read("Address.city")


def test_the_nearest_role_wins_and_parents_count_in_the_order_listed():
    d = decider(a={"rules": {"contact": "deny", "Email.type": "deny"}},
                b={"rules": {"contact": "allow", "Email.type": "allow", "Address.city": "allow"}},
                agent={"inherits": ["a", "b"], "purposes": ["support"],
                       "rules": {**BASE["rules"], "Customer.emails": "allow",
                                 "Customer.addresses": "allow", "Email.address": "allow",
                                 "Address.country": "deny"}})
    view = d.view(("agent",), "support")
    assert view.can_read("Customer.emails") and view.can_read("Email.address")  # its own rules
    assert not view.can_read("Email.type")  # a is listed before b
    assert view.can_read("Address.city")  # b's rule on the field beats a's on the category
    assert not view.can_read("Address.country")


def test_several_roles_see_the_union_unmasked_where_any_sees_it_plain():
    d = decider(masked={**BASE, "purposes": ["support"],
                        "rules": {**BASE["rules"], "contact": "allow",
                                  "Email.address": {"mask": "email_partial"}},
                        "rows": {"known_in": {"shop": "$principal.shop"}}},
                plain={**BASE, "purposes": ["support", "stats"],
                       "rules": {**BASE["rules"], "Customer.emails": "allow",
                                 "Email.address": "allow"}},
                stats={**BASE, "purposes": ["stats"], "introspection": True})
    both = d.view(("masked", "plain"), "support")
    assert both.mask("Email.address") is None and both.can_read("Address.city")
    assert [r.role for r in both.rows] == ["masked"]
    # a role that may not act for the purpose adds nothing, not even its rows or introspection
    assert d.view(("stats", "masked"), "support").mask("Email.address") == Mask("email_partial")
    assert not d.view(("masked", "stats"), "support").introspection


def test_a_computed_field_needs_what_it_is_computed_from():
    no_names = decider(agent={"purposes": ["support"],
                              "rules": {**BASE["rules"], "Customer.displayName": "allow"}})
    assert not no_names.view(("agent",), "support").can_read("Customer.displayName")
    masked = {**BASE["rules"], "identity": "allow", "PersonName.full": {"mask": "redact"}}
    plain_display = decider(agent={"purposes": ["support"], "rules": masked})
    view = plain_display.view(("agent",), "support")
    assert view.can_read("PersonName.full") and not view.can_read("Customer.displayName")
    masked_display = decider(agent={"purposes": ["support"], "rules": {
        **masked, "Customer.displayName": {"mask": "redact"}}})
    assert masked_display.view(("agent",), "support").mask("Customer.displayName") == Mask("redact")


def test_filters_and_lookups_need_the_field_they_test_readable_and_unmasked(demo):
    staff = demo.view(("shop_staff",), "sale")
    assert not staff.can_read("Customer.addresses")
    assert "CustomerFilter.city" not in staff.input_fields  # Address.city is out of reach
    assert "CustomerFilter.email" not in staff.input_fields  # e-mails are masked
    assert not staff.can_read("Query.customerByEmail") and not staff.can_read("Query.customerByPhone")
    assert staff.can_read("Query.customerByCard")
    support = demo.view(("support",), "support")
    assert {"CustomerFilter.email", "CustomerFilter.phone", "CustomerFilter.city"} <= support.input_fields
    assert not support.can_read("Query.customerByCard")  # card numbers are masked for support


def test_a_field_whose_type_shows_nothing_is_hidden():
    d = decider(agent={"purposes": ["support"],
                       "rules": {**BASE["rules"], "Customer.emails": "allow"}})
    view = d.view(("agent",), "support")
    assert not view.can_read("Customer.emails")
    assert view.fields.keys() == {"Query.customer", "Query.customers", "CustomerConnection.edges",
                                  "CustomerEdge.node", "Customer.id"}
    # customers(filter:) goes: no field of CustomerFilter is usable; paging stays
    assert view.arguments == {"Query.customer(id:)", "Query.customers(first:)",
                              "Query.customers(after:)"}


def test_a_view_with_no_way_in_is_refused():
    d = decider(agent={"purposes": ["support"], "rules": {"core": "allow"}})
    with pytest.raises(NothingVisible, match="may read nothing for purpose 'support'"):
        d.view(("agent",), "support")


FACTS = {"paris": {"name": "paris", "shop": "paris", "label": "Paris", "kind": "sqlite",
                   "region": "eu"},
         "london": {"name": "london", "shop": "london", "label": "London", "kind": "sqlite",
                    "region": "uk"},
         "crm": {"name": "crm", "shop": None, "label": None, "kind": "crm", "region": "eu"}}


def test_row_filters_take_the_principals_attributes(demo):
    view = demo.view(("shop_staff",), "sale")
    scope = demo.rows_for(view, asking(roles=("shop_staff",), shop="paris"))
    assert scope.known_in == ((SourceTest("shop", frozenset({"paris"})),),)
    assert scope.readable_sources(FACTS) == {"paris", "london", "crm"}
    assert scope.listing_sources(FACTS) == {"paris"}
    assert scope.admits("cus_1", ["crm", "paris"], FACTS)
    assert not scope.admits("cus_2", ["crm", "london"], FACTS)
    with pytest.raises(PrincipalIncomplete, match="role 'shop_staff' reads only rows matching "
                                                  "the principal's shop, and this principal has "
                                                  "none; .*--shop VALUE"):
        demo.rows_for(view, asking(roles=("shop_staff",)))
    mine = demo.rows_for(demo.view(("customer",), "self_service"),
                         asking(roles=("customer",), customer_id="cus_1"))
    assert mine.admits("cus_1", ["london"], FACTS) and not mine.admits("cus_2", ["london"], FACTS)
    assert demo.rows_for(demo.view(("admin",), "administration"), asking()).unrestricted


def test_a_region_bound_scope_never_reads_other_regions():
    scope = RowScope(sources=((SourceTest("region", frozenset({"uk"})),),))
    assert scope.readable_sources(FACTS) == {"london"} == scope.listing_sources(FACTS)
    assert scope.admits("cus_1", ["paris", "london"], FACTS)  # through its London record
    assert not scope.admits("cus_2", ["paris", "crm"], FACTS)


def test_every_row_rule_applies():
    rules = Decider(load_policy(DEMO, CATALOG), CATALOG).policy.rows_of("shop_staff")
    both = scope_for(rules * 2, asking(shop="paris"))
    assert len(both.known_in) == 2 and both.listing_sources(FACTS) == {"paris"}
    scope = RowScope(known_in=((SourceTest("shop", frozenset({"paris"})),),
                               (SourceTest("region", frozenset({"uk"})),)))
    assert scope.admits("c", ["paris", "london"], FACTS)
    assert not scope.admits("c", ["paris", "crm"], FACTS)


def test_source_facts_come_from_the_config():
    config = SimpleNamespace(sources={
        "paris": SimpleNamespace(shop="Boulangerie Paris", kind="sqlite"),
        "crm": SimpleNamespace(shop=None, kind="crm", region="eu")})
    assert source_facts(config) == {
        "paris": {"name": "paris", "shop": "paris", "label": "Boulangerie Paris",
                  "kind": "sqlite", "region": None},
        "crm": {"name": "crm", "shop": None, "label": None, "kind": "crm", "region": "eu"}}


def test_the_lineage_table_is_in_step_with_the_schema():
    from gateway.policy.lineage import LINEAGE

    for element, dependencies in LINEAGE.items():
        assert CATALOG.knows(element), f"lineage names {element}, which the schema lacks"
        for dependency in dependencies:
            assert dependency in CATALOG.fields, f"{element} depends on unknown {dependency}"
    unlisted = [c for c in (*CATALOG.arguments, *CATALOG.input_fields) if c not in LINEAGE]
    assert not unlisted, f"add these to gateway/policy/lineage.py (what they reveal): {unlisted}"


def test_row_filters_name_attributes_a_principal_has():
    from gateway.policy.model import PRINCIPAL_ATTRIBUTES

    assert set(PRINCIPAL_ATTRIBUTES) <= set(principal.Principal.__dataclass_fields__)
