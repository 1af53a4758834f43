"""Filter planning: what is pushed to each source, and the exact re-check in the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.base import Connector
from connectors.query import AllOf, AnyOf, Cond
from gateway.config import parse_config
from gateway.planner import NOTHING, CustomerFilter, FilterError, key_lookup, matches, plan_filter
from tests.test_config import DOC_EXAMPLE


class Everything(Connector):
    filter_ops = frozenset({"eq", "in", "ieq", "contains", "gt"})
    normalizers = frozenset({"email", "phone_tail", "card"})


class Plain(Connector):
    """A source that evaluates equality only, without OR."""

    filter_ops = frozenset({"eq", "in"})
    normalizers = frozenset({"email"})
    supports_or = False
    max_in_values = 2


@pytest.fixture(scope="module")
def lyon():
    return parse_config(DOC_EXAMPLE, "x", Path("."), {}).sources["lyon"]


def build(**kw):
    return CustomerFilter.build(country="FR", shops=["lyon", "paris"], **kw)


def test_filter_values_are_normalized_and_validated():
    flt = build(email=" Jean@Example.com", phone="06 12 34 56 78", name="  Jean   DUPONT ")
    assert (flt.email, flt.phone, flt.name) == ("jean@example.com", "+33612345678", "jean dupont")
    with pytest.raises(FilterError, match="filter.phone"):
        build(phone="not a phone")
    with pytest.raises(FilterError, match="shops: lyon, paris"):
        build(shop="berlin")
    with pytest.raises(FilterError, match="filter.email"):
        build(email="nobody")


def test_plan_pushes_every_part_the_source_can_evaluate(lyon):
    where = plan_filter("lyon", lyon.customer, Everything("lyon", {}, {}),
                        build(email="a@b.fr", phone="+33612345678", city="Lyon", name="jean"))
    assert where == AllOf((
        Cond("email_0", "in", ("a@b.fr",), "email"),
        Cond("phone_0", "in", ("612345678",), "phone_tail"),
        Cond("address_0_city", "ieq", "lyon"),
        AnyOf((Cond("given_name", "contains", "jean"), Cond("family_name", "contains", "jean"))),
    ))


def test_plan_drops_what_a_source_cannot_do_keeping_a_superset(lyon):
    where = plan_filter("lyon", lyon.customer, Plain("lyon", {}, {}),
                        build(email="a@b.fr", city="Lyon", name="jean"))
    assert where == Cond("email_0", "in", ("a@b.fr",), "email")


def test_plan_skips_sources_that_cannot_match(lyon):
    connector = Everything("lyon", {}, {})
    assert plan_filter("lyon", lyon.customer, connector, build(shop="paris")) is NOTHING
    assert plan_filter("lyon", lyon.customer, connector, build(shop="lyon")) is None


def test_key_lookup_chunks_by_the_connectors_limit(lyon):
    exprs = key_lookup(lyon.customer, Plain("lyon", {}, {}),
                       {"email:a@x", "email:b@x", "email:c@x", "phone:+33612345678"})
    # phone_tail is not supported by Plain: only e-mails, in chunks of two, one query each (no OR)
    assert exprs == [Cond("email_0", "in", ("a@x", "b@x"), "email"),
                     Cond("email_0", "in", ("c@x",), "email")]


def test_key_lookup_is_one_query_per_source_when_it_can_or(lyon):
    exprs = key_lookup(lyon.customer, Everything("lyon", {}, {}),
                       {"email:a@x", "phone:+33612345678", "card:AB12"})
    assert exprs == [AnyOf((Cond("email_0", "in", ("a@x",), "email"),
                            Cond("phone_0", "in", ("612345678",), "phone_tail"),
                            Cond("card_0", "in", ("AB12",), "card")))]


def test_exact_recheck_on_unified_values(lyon):
    row = {"key": 1, "given_name": "Jean", "family_name": "Dupont", "email_0": "JEAN@x.fr ",
           "phone_0": "06 12 34 56 78", "address_0_city": "LYON", "card_0": None}
    record = lyon.customer.to_record("lyon", row, lyon.defaults)
    assert matches(build(email="jean@x.fr", phone="+33612345678", city="lyon",
                         name="dupont jean"), record)
    assert not matches(build(phone="+33612345679"), record)  # same tail is not enough
    assert not matches(build(name="jeanne"), record)
    assert not matches(build(shop="paris"), record)


def test_non_ascii_words_are_pushed_down_as_ascii_fragments(lyon):
    where = plan_filter("lyon", lyon.customer, Everything("lyon", {}, {}),
                        build(name="Noémie", city="Zürich"))
    names = lambda v: AnyOf((Cond("given_name", "contains", v),  # noqa: E731
                             Cond("family_name", "contains", v)))
    assert where == AllOf((Cond("address_0_city", "contains", "rich"), names("no"), names("mie")))
