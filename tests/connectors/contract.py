"""The connector contract: one suite, mixed into every connector's tests.

A backend's test class inherits :class:`ConnectorContract` and provides three fixtures:

- ``connector``: a connector over the contract dataset (``dataset.py``) with two entities,
  ``customer`` (fields ``dataset.CUSTOMER_FIELDS``, key ``id``) and ``note`` (fields
  ``dataset.NOTE_FIELDS``, key ``id``, parent ``customer_key``);
- ``broken_connector``: the same, but ``customer.email_0`` mapped to a column/property
  ``courriel`` that does not exist;
- ``unreachable_connector``: the same mapping, pointed at a port nothing listens on.

Keys are compared as text, since a CRM returns ids as strings.
"""

from __future__ import annotations

import pytest

from connectors import ConnectorError, SourceUnavailable, Unsupported
from connectors.query import AllOf, AnyOf, Cond, Latest, Query
from tests.connectors.dataset import CUSTOMER_FIELDS, DATASET_COLUMN, NOTES, PEOPLE


def keys(page) -> list[int]:
    return [int(str(row["id"])) for row in page.rows]


def people_where(pred) -> list[int]:
    return [p["id"] for p in PEOPLE if pred(p)]


async def fetch_or_unsupported(connector, query, op):
    """Fetch; a connector that does not declare ``op`` must refuse it with Unsupported."""
    if op in connector.filter_ops:
        return await connector.fetch(query)
    with pytest.raises(Unsupported):
        await connector.fetch(query)
    return None


class ConnectorContract:
    async def test_fetch_all_returns_every_row_with_raw_values(self, connector):
        page = await connector.fetch(Query("customer", CUSTOMER_FIELDS))
        by_id = {int(str(r["id"])): r for r in page.rows}
        assert sorted(by_id) == [p["id"] for p in PEOPLE]
        for person in PEOPLE:
            row = by_id[person["id"]]
            for logical in CUSTOMER_FIELDS[1:]:
                assert row[logical] == person[DATASET_COLUMN[logical]], (person["id"], logical)

    async def test_returns_only_requested_fields_and_the_key(self, connector):
        page = await connector.fetch(Query("customer", ("family_name",), limit=3))
        assert page.rows and all(set(r) == {"id", "family_name"} for r in page.rows)

    async def test_limit_orders_by_key(self, connector):
        page = await connector.fetch(Query("customer", ("given_name",), limit=5))
        assert keys(page) == [1, 2, 3, 4, 5]

    async def test_keyset_after_continues_where_the_page_ended(self, connector):
        first = await connector.fetch(Query("customer", ("given_name",), limit=9))
        after = first.rows[-1]["id"]
        rest = await connector.fetch(Query("customer", ("given_name",), after=after, limit=100))
        assert keys(first) + keys(rest) == list(range(1, 13))

    async def test_eq(self, connector):
        page = await connector.fetch(Query("customer", ("given_name",),
                                           where=Cond("given_name", "eq", "Marie")))
        assert keys(page) == [2]

    async def test_in_on_key(self, connector):
        page = await connector.fetch(Query("customer", ("given_name",),
                                           where=Cond("id", "in", (3, 10, 12))))
        assert sorted(keys(page)) == [3, 10, 12]

    async def test_in_with_no_values_matches_nothing(self, connector):
        page = await connector.fetch(Query("customer", ("given_name",), where=Cond("id", "in", ())))
        assert page.rows == []

    async def test_contains_is_case_insensitive(self, connector):
        query = Query("customer", ("family_name",), where=Cond("family_name", "contains", "durand"))
        page = await fetch_or_unsupported(connector, query, "contains")
        if page is not None:
            assert sorted(keys(page)) == [2, 3]

    async def test_ieq_ignores_case(self, connector):
        query = Query("customer", ("address_0_city",),
                      where=Cond("address_0_city", "ieq", "paris"))
        page = await fetch_or_unsupported(connector, query, "ieq")
        if page is not None:
            assert sorted(keys(page)) == people_where(lambda p: p["city"].lower() == "paris")

    async def test_email_normalizer(self, connector):
        assert "email" in connector.normalizers
        query = Query("customer", ("email_0",), where=Cond(
            "email_0", "in", ("jean.dupont@example.com", "tom.girard@example.com"),
            normalize="email"))
        page = await connector.fetch(query)
        assert sorted(keys(page)) == [1, 12]

    async def test_phone_tail_normalizer_matches_every_format(self, connector):
        assert "phone_tail" in connector.normalizers
        query = Query("customer", ("phone_0",),
                      where=Cond("phone_0", "in", ("655443322", "698765432"),
                                 normalize="phone_tail"))
        page = await connector.fetch(query)
        assert sorted(keys(page)) == [2, 3, 10, 11, 12]

    async def test_card_normalizer(self, connector):
        assert "card" in connector.normalizers
        query = Query("customer", ("card_0",),
                      where=Cond("card_0", "in", ("AB1234", "GH0002"), normalize="card"))
        page = await connector.fetch(query)
        assert sorted(keys(page)) == [1, 5]

    async def test_or_of_ands(self, connector):
        where = AnyOf((
            AllOf((Cond("given_name", "eq", "Emma"), Cond("family_name", "eq", "Petit"))),
            Cond("id", "in", (4,)),
        ))
        page = await connector.fetch(Query("customer", ("given_name",), where=where))
        assert sorted(keys(page)) == [4, 9]

    async def test_and_with_keyset_and_limit(self, connector):
        where = Cond("email_0", "in", ("hugo.moreau@example.com", "emma.petit@example.com",
                                        "louis.roux@example.com"), normalize="email")
        page = await connector.fetch(Query("customer", ("given_name",), where=where,
                                           after=PEOPLE[7]["id"], limit=1))
        assert keys(page) == [9]

    @pytest.mark.parametrize("evil", [
        "x' OR '1'='1", "'; DROP TABLE contract_people; --", "\" OR 1=1 --", "%", "_", "\\",
        "1) OR (1=1",
    ])
    async def test_values_are_data_never_sql(self, connector, evil):
        for cond in (Cond("given_name", "eq", evil), Cond("email_0", "in", (evil,), "email"),
                     Cond("id", "in", (evil,))):
            page = await connector.fetch(Query("customer", ("given_name",), where=cond))
            assert page.rows == [], (cond, page.rows)
        if "contains" in connector.filter_ops:
            page = await connector.fetch(Query("customer", ("given_name",),
                                               where=Cond("given_name", "contains", evil)))
            assert page.rows == []
        everyone = await connector.fetch(Query("customer", ("given_name",)))
        assert len(everyone.rows) == len(PEOPLE)

    async def test_children_by_parent_keys(self, connector):
        parents = await connector.fetch(Query("customer", ("given_name",),
                                              where=Cond("id", "in", (1, 10))))
        parent_keys = tuple(r["id"] for r in parents.rows)
        page = await connector.fetch(Query("note", ("customer_key", "text", "date"),
                                           where=Cond("customer_key", "in", parent_keys)))
        got = sorted((int(str(r["customer_key"])), r["text"]) for r in page.rows)
        want = sorted((n["person_id"], n["text"]) for n in NOTES if n["person_id"] in (1, 10))
        assert got == want

    async def test_latest_keeps_at_least_each_parents_newest_rows(self, connector):
        # A hint: a connector may return more rows, never miss one of the newest.
        page = await connector.fetch(Query("note", ("customer_key", "text", "date"),
                                           where=Cond("customer_key", "in", (1, 2, 10)),
                                           latest=Latest("date", 1)))
        got = {(int(str(r["customer_key"])), r["text"]) for r in page.rows}
        for parent in (1, 2, 10):
            newest = max((n for n in NOTES if n["person_id"] == parent), key=lambda n: n["date"])
            assert (parent, newest["text"]) in got, parent

    async def test_unknown_entity_names_the_mapped_ones(self, connector):
        with pytest.raises(Unsupported) as err:
            await connector.fetch(Query("invoice", ("id",)))
        assert "invoice" in str(err.value) and "customer" in str(err.value)

    async def test_unknown_field_is_refused(self, connector):
        with pytest.raises(ConnectorError) as err:
            await connector.fetch(Query("customer", ("shoe_size",)))
        assert "shoe_size" in str(err.value)

    async def test_ping(self, connector):
        await connector.ping()

    async def test_verify_accepts_a_good_mapping(self, connector):
        assert await connector.verify() == []

    async def test_verify_names_the_missing_column_and_the_ones_there(self, broken_connector):
        problems = await broken_connector.verify()
        assert len(problems) == 1
        assert "courriel" in problems[0]
        # the message lists what is there, to help fix it
        assert "given_name" in problems[0] or "firstname" in problems[0]

    async def test_introspect_lists_tables_and_columns(self, connector):
        tables = await connector.introspect()
        assert tables and all(isinstance(cols, dict) for cols in tables.values())
        assert all(isinstance(name, str) and isinstance(declared, str)
                   for cols in tables.values() for name, declared in cols.items())

    async def test_introspect_gives_each_column_its_declared_type(self, connector):
        tables = await connector.introspect()
        customer, note = connector.entities["customer"], connector.entities["note"]
        people = tables[customer.table]
        # every column the mapping reads is there (an association is no column)
        assert {c for c in customer.fields.values() if "." not in c} <= set(people)
        # the key is a number: INTEGER in SQL (int4, int...), a CRM's 'number'
        key_type = people[customer.fields["id"]].lower()
        assert "int" in key_type or key_type == "number", key_type
        # the note date holds a point in time: TIMESTAMP in SQL, a CRM's 'datetime'
        assert "time" in tables[note.table][note.fields["date"]].lower()

    async def test_unreachable_source_is_unavailable_and_names_only_the_source(
            self, unreachable_connector):
        with pytest.raises(SourceUnavailable) as err:
            await unreachable_connector.fetch(Query("customer", ("given_name",), limit=1))
        message = str(err.value)
        assert unreachable_connector.name in message
        assert "127.0.0.1" not in message and "password" not in message.lower()
