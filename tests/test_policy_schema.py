"""Per-role schemas: real documents validated and executed against the real schema.

Execution goes through the role's strawberry schema with a stub resolver standing in for the
sources, so masks are seen exactly as a client would see them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from graphql import build_schema as build_sdl
from graphql import get_introspection_query, get_named_type, graphql_sync, print_schema

from gateway.identity import Cluster
from gateway.policy.catalog import Catalog
from gateway.policy.decide import Decider
from gateway.policy.loader import load_policy, parse_policy
from gateway.policy.schema_view import RoleSchemas
from gateway.principal import Principal
from gateway.records import AddressValue, CardValue, ContactValue, CustomerRecord, TransactionRecord
from gateway.schema import Context, build_schema
from gateway.settings import Settings
from gateway.sources import SourceSet

DEMO = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "policies.yaml"
SCHEMA = build_schema()
CATALOG = Catalog.of(SCHEMA)
DECIDER = Decider(load_policy(DEMO, CATALOG), CATALOG)
SCHEMAS = RoleSchemas(SCHEMA, mask_key=b"test key")
ROLES = {"finance": "billing", "marketing": "marketing", "support": "support",
         "shop_staff": "sale", "customer": "self_service", "admin": "administration"}

CAMILLE = CustomerRecord(
    source="paris", key="7", kind="PERSON", given_name="Camille", family_name="Martin",
    full_name=None, legal_name=None, birth_date=date(1984, 7, 14),
    emails=(ContactValue("camille.martin@example.fr", "PERSONAL"),),
    phones=(ContactValue("+33612345678", "MOBILE"),),
    addresses=(AddressValue("HOME", "12 rue Cler", None, "75007", "Paris", None, "FR"),),
    cards=(CardValue("PAR-000123", "Carte Boulangerie Paris", 120),))
PURCHASE = TransactionRecord("paris", "achats", "1", "7", "INVOICE", Decimal("37.40"), "EUR",
                             datetime(2024, 3, 1, 10), "COMPLETED", "A-1")


class StubResolver:
    """Answers every lookup with Camille, as the resolver would from the sources."""

    failures: list = []

    async def by_id(self, global_id):
        return Cluster((CAMILLE,), {CAMILLE.ref: ()})

    async def by_key(self, key):
        return await self.by_id(key)

    groups = None  # every customer column (gateway.selection)

    async def children(self, clusters, section, newest=None):
        return [[PURCHASE] if section == "transactions" else [] for _ in clusters]


def view(role: str, purpose: str | None = None):
    return DECIDER.view((role,), purpose or ROLES[role])


#: The customer role reads its own record through `me`, bound to its customer id.
CUSTOMER = Principal("camille", ("customer",), purpose="self_service", customer_id="cus_x")


async def run(role: str, query: str, **variables):
    schema = SCHEMAS.strawberry_for(view(role))
    principal = CUSTOMER if role == "customer" else None
    # `me` needs a consent store and an audit log to exist; reading the record touches neither.
    context = Context(StubResolver(), Settings(), SourceSet([]),  # type: ignore[arg-type]
                      principal=principal, privacy=object() if principal else None)
    return await schema.execute(query, variable_values=variables, context_value=context)


def errors_of(role: str, document: str, purpose: str | None = None) -> list:
    return SCHEMAS.validate(document, view(role, purpose))


# shop staff may not read addresses: every way of asking for them fails, naming the field
ADDRESS_PATHS = {
    "direct": '{ customer(id: "x") { addresses { city } } }',
    "alias": '{ c: customer(id: "x") { home: addresses { town: city } } }',
    "named fragment": '{ customer(id: "x") { ...Where } } fragment Where on Customer { addresses { city } }',
    "nested fragments": '{ customer(id: "x") { ...A } } fragment A on Customer { ...B } '
                        'fragment B on Customer { addresses { city } }',
    "inline fragment": '{ customer(id: "x") { ... on Customer { addresses { city } } } }',
    "bare inline fragment": '{ customer(id: "x") { ... { addresses { city } } } }',
    "include false": 'query($yes: Boolean = false) { customer(id: "x") '
                     '{ addresses @include(if: $yes) { city } } }',
    "skip true": '{ customer(id: "x") { addresses @skip(if: true) { city } } }',
    "second operation": 'query Fine { customer(id: "x") { id } } '
                        'query Sneaky { customer(id: "x") { addresses { city } } }',
    "nested path": '{ customers { edges { node { addresses { city } } } } }',
    "another lookup": '{ customerByCard(number: "PAR-000123") { addresses { city } } }',
    "variables": 'query($id: ID!) { customer(id: $id) { id addresses { city } } }',
}


@pytest.mark.parametrize("path", ADDRESS_PATHS)
def test_a_denied_field_fails_validation_on_every_path_naming_it(path):
    document = ADDRESS_PATHS[path]
    errors = errors_of("shop_staff", document)
    named = [e for e in errors if e.extensions.get("coordinate") == "Customer.addresses"]
    assert named, errors
    assert named[0].message == ("Cannot query field 'addresses' on type 'Customer': role "
                                "'shop_staff' for purpose 'sale' may not read it.")
    assert named[0].extensions["code"] == "FORBIDDEN"
    # the same paths to a field the role may read validate
    assert errors_of("shop_staff", document.replace("addresses", "phones")
                     .replace("city", "number")) == []
    assert errors_of("admin", document) == []


def test_suggestions_never_name_a_hidden_field():
    errors = errors_of("shop_staff", '{ customer(id: "x") { adresses } }')
    assert len(errors) == 1 and "addresses" not in errors[0].message


def test_a_mutation_is_refused_naming_it_for_roles_without_mutations():
    errors = errors_of("support", 'mutation { mergeCustomers(ids: ["a", "b"], reason: "dup") { id } }')
    assert [e.extensions["coordinate"] for e in errors] == ["Mutation.mergeCustomers"]
    assert errors_of("admin", 'mutation { mergeCustomers(ids: ["a", "b"], reason: "dup") { id } }') == []


def test_filters_on_a_field_the_role_may_not_read_are_refused():
    errors = errors_of("shop_staff", '{ customers(filter: {city: "Paris"}) { edges { cursor } } }')
    assert [e.extensions.get("coordinate") for e in errors] == ["CustomerFilter.city"]
    assert "Field 'city' of input 'CustomerFilter' is not allowed" in errors[0].message
    assert errors_of("shop_staff", '{ customers(filter: {name: "Martin"}) { edges { cursor } } }') == []
    # the same filter in a variable, where validation cannot see it: coercion refuses it
    document = 'query($f: CustomerFilter) { customers(filter: $f) { edges { cursor } } }'
    assert errors_of("shop_staff", document) == []
    refused = SCHEMAS.check_variables(document, view("shop_staff"), {"f": {"city": "Paris"}})
    assert len(refused) == 1 and "'city'" in refused[0].message
    assert SCHEMAS.check_variables(document, view("shop_staff"), {"f": {"name": "Martin"}}) == []
    assert SCHEMAS.check_variables(document, view("support"), {"f": {"city": "Paris"}}) == []


async def test_a_refused_filter_variable_stops_execution_too():
    result = await run("shop_staff", 'query($f: CustomerFilter) { customers(filter: $f) '
                                     '{ edges { cursor } } }', f={"email": "camille.martin@example.fr"})
    assert result.data is None and "'email'" in result.errors[0].message


def test_lookups_by_a_masked_value_are_not_offered():
    errors = errors_of("shop_staff", '{ customerByEmail(email: "camille.martin@example.fr") { id } }')
    assert errors[0].extensions["coordinate"] == "Query.customerByEmail"


def test_an_argument_the_role_may_not_use_is_named():
    policy = parse_policy({
        "categories": {"lookup": {"fields": {"Query": ["customers"], "CustomerConnection": ["edges"],
                                             "CustomerEdge": ["cursor"]}}},
        "purposes": {"any": {"categories": "*"}},
        "roles": {"agent": {"purposes": ["any"], "rules": {"lookup": "allow"}}}}, "p", CATALOG)
    agent = Decider(policy, CATALOG).view(("agent",), "any")
    errors = SCHEMAS.validate('{ customers(filter: {shop: "paris"}) { edges { cursor } } }', agent)
    assert errors[0].message == ("Unknown argument 'filter' on field 'Query.customers': role 'agent' "
                                 "for purpose 'any' may not use it.")
    assert errors[0].extensions["coordinate"] == "Query.customers(filter:)"


def test_a_role_that_may_not_introspect_gets_a_clear_refusal():
    for document in (get_introspection_query(), '{ __type(name: "Customer") { name } }',
                     'query A { __typename } query B { __schema { types { name } } }'):
        errors = errors_of("customer", document)
        assert errors and all(e.extensions["code"] == "INTROSPECTION_DISABLED" for e in errors)
        assert "introspection" in errors[0].message and "role 'customer'" in errors[0].message
    assert errors_of("customer", '{ __typename me { customer { id __typename } } }') == []
    assert errors_of("support", get_introspection_query()) == []


def test_introspection_shows_a_role_only_its_schema():
    result = graphql_sync(SCHEMAS.for_view(view("marketing")), get_introspection_query())
    names = {t["name"] for t in result.data["__schema"]["types"]}
    assert {"Customer", "Email", "Money", "Interaction"} <= names
    assert not {"StewardAction", "MatchEvidence", "SourcedDate", "JSON", "Mutation"} & names
    assert result.data["__schema"]["mutationType"] is None
    customer = next(t for t in result.data["__schema"]["types"] if t["name"] == "Customer")
    assert "birthDate" not in {f["name"] for f in customer["fields"]}


def test_a_masked_field_keeps_its_type_and_says_it_is_masked():
    printed = print_schema(SCHEMAS.for_view(view("shop_staff")))
    assert ("Masked for role 'shop_staff' for purpose 'sale': first letter and domain kept: "
            "j***@example.com.\n  \"\"\"\n  address: String!") in printed
    assert "  amount: Decimal!" in print_schema(SCHEMAS.for_view(view("marketing")))


def test_schemas_are_built_once_per_view():
    assert SCHEMAS.for_view(view("finance")) is SCHEMAS.for_view(view("finance"))
    assert SCHEMAS.for_view(view("finance")) is not SCHEMAS.for_view(view("finance", "risk"))
    assert SCHEMAS.strawberry_for(view("finance")) is SCHEMAS.strawberry_for(view("finance"))
    assert SCHEMAS.rules(view("finance")) is SCHEMAS.rules(view("finance"))


WIDE = {"id": {}, "displayName": {}, "emails": {"address": {}}, "phones": {"number": {}},
        "addresses": {"line1": {}, "city": {}}, "birthDate": {"value": {}},
        "loyaltyCards": {"number": {}, "points": {}},
        "transactions": {"amount": {"amount": {}, "currency": {}}, "reference": {}},
        "interactions": {"channel": {}, "summary": {}}, "matchEvidence": {"rule": {}}}


def _select(type_: object, wanted: dict) -> str:
    """The part of ``wanted`` that the type offers, as a selection set."""
    fields = type_.fields  # type: ignore[attr-defined]
    parts = []
    for name, sub in wanted.items():
        if name in fields:
            inner = _select(get_named_type(fields[name].type), sub) if sub else ""
            parts.append(f"{name} {{ {inner} }}" if sub else name)
    return " ".join(parts)


def _selectable(role: str) -> str:
    """WIDE, cut down to what the role may select."""
    schema = SCHEMAS.for_view(view(role))
    wanted = _select(schema.type_map["Customer"], WIDE)
    if role == "customer":
        return "{ me { customer { " + wanted + " } } }"
    return '{ customer(id: "cus_x") { ' + wanted + " } }"


async def test_six_roles_see_six_different_views_of_the_same_customer():
    seen = {}
    for role in ROLES:
        result = await run(role, _selectable(role))
        assert result.errors is None, (role, result.errors)
        seen[role] = result.data["me"]["customer"] if role == "customer" else result.data["customer"]
    assert len({repr(sorted(v.items())) for v in seen.values()}) == 6
    admin, finance, marketing = seen["admin"], seen["finance"], seen["marketing"]
    support, staff, customer = seen["support"], seen["shop_staff"], seen["customer"]
    assert admin["emails"] == [{"address": "camille.martin@example.fr"}]
    assert admin["birthDate"] == {"value": "1984-07-14"} and "matchEvidence" in admin
    assert finance["phones"] == [{"number": "+*******5678"}]
    assert finance["transactions"] == [{"amount": {"amount": "37.40", "currency": "EUR"},
                                       "reference": "A-1"}]
    assert "birthDate" not in finance and "interactions" not in finance
    assert marketing["transactions"] == [{"amount": {"amount": "20", "currency": "EUR"}}]
    assert marketing["loyaltyCards"][0]["number"].startswith("h_")
    assert marketing["addresses"] == [{"city": "Paris"}]
    assert marketing["transactions"][0].keys() == {"amount"}  # no reference
    assert support["birthDate"] == {"value": "1984-01-01"}
    assert support["loyaltyCards"] == [{"number": "***-**0123", "points": 120}]
    assert staff["emails"] == [{"address": "c***@example.fr"}] and "addresses" not in staff
    assert staff["loyaltyCards"] == [{"number": "PAR-000123", "points": 120}]
    assert customer["birthDate"] == {"value": "1984-07-14"}
    assert customer["emails"] == [{"address": "camille.martin@example.fr"}]
    assert "matchEvidence" not in customer and "matchEvidence" in admin


async def test_a_mask_holds_through_aliases_and_fragments():
    result = await run("shop_staff", """
        query($yes: Boolean = true) {
          a: customer(id: "x") {
            e1: emails { address } ...More ... on Customer { e3: emails { x: address } } }
          b: customerByCard(number: "PAR-000123") { emails @include(if: $yes) { address } }
        }
        fragment More on Customer { e2: emails { address } }""")
    assert result.errors is None
    a, b = result.data["a"], result.data["b"]
    values = {a["e1"][0]["address"], a["e2"][0]["address"], a["e3"][0]["x"], b["emails"][0]["address"]}
    assert values == {"c***@example.fr"}


def test_sort_values_that_reveal_a_hidden_field_are_refused():
    sdl = build_sdl("""
        enum CustomerOrder { ID EMAIL }
        type Email { address: String! }
        type Customer { id: ID! emails: [Email!]! }
        type Query { customers(orderBy: CustomerOrder): [Customer!]! }""")
    catalog = Catalog(sdl)
    policy = parse_policy({
        "categories": {"core": {"fields": {"Query": ["customers"], "Customer": ["id"]}},
                       "contact": {"fields": {"Customer": ["emails"], "Email": ["address"]}}},
        "purposes": {"any": {"categories": "*"}},
        "roles": {"agent": {"purposes": ["any"], "rules": {"core": "allow"}},
                  "masked": {"purposes": ["any"], "rules": {
                      "core": "allow", "contact": "allow", "Email.address": {"mask": "hash"}}},
                  "admin": {"purposes": ["any"], "all_fields": True}}}, "p", catalog)
    lineage = {"Query.customers(orderBy:)": (), "CustomerOrder.EMAIL": ("Email.address",),
               "CustomerOrder.ID": ()}
    decider = Decider(policy, catalog, lineage)
    agent = decider.view(("agent",), "any")
    assert agent.hidden_enum_values == {"CustomerOrder.EMAIL"}
    assert decider.view(("masked",), "any").hidden_enum_values == {"CustomerOrder.EMAIL"}
    assert decider.view(("admin",), "any").hidden_enum_values == frozenset()
    schemas = RoleSchemas(sdl)
    assert schemas.validate("{ customers(orderBy: ID) { id } }", agent) == []
    errors = schemas.validate("{ customers(orderBy: EMAIL) { id } }", agent)
    assert len(errors) == 1 and "EMAIL" in errors[0].message
    refused = schemas.check_variables("query($o: CustomerOrder) { customers(orderBy: $o) { id } }",
                                      agent, {"o": "EMAIL"})
    assert len(refused) == 1 and "EMAIL" in refused[0].message
