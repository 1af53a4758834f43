"""Masking strategies: pure, and a masked value keeps its GraphQL type."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from gateway.policy.masks import REDACTED, STRATEGIES, Mask, mask_value

KEY = b"k" * 32


def masked(strategy: str, value, **params):
    return mask_value(Mask(strategy, tuple(params.items())), value, KEY)


@pytest.mark.parametrize(("value", "want"), [
    ("jean.dupont@example.com", "j***@example.com"),
    ("a@b.fr", "a***@b.fr"),
    ("not-an-address", "***"),
    ("@example.com", "***"),
])
def test_partial_email_keeps_the_first_letter_and_the_domain(value, want):
    assert masked("email_partial", value) == want


@pytest.mark.parametrize(("value", "want"), [
    ("+33612345678", "+*******5678"),
    ("PAR-000123", "***-**0123"),
    ("1234", "****"),  # keeping four of four would reveal everything
    ("", ""),
])
def test_last_digits_keeps_only_the_last_four(value, want):
    assert masked("last_digits", value) == want


def test_last_digits_takes_how_many_to_keep():
    assert masked("last_digits", "+33612345678", keep=2) == "+*********78"


def test_hash_is_keyed_stable_and_a_string():
    one = masked("hash", "jean@example.com")
    assert one == masked("hash", "jean@example.com")
    assert one != masked("hash", "jeanne@example.com")
    assert one.startswith("h_") and len(one) == 18
    assert mask_value(Mask("hash"), "jean@example.com", b"other key") != one


def test_year_only_keeps_the_type_of_dates():
    assert masked("year_only", date(1984, 7, 14)) == date(1984, 1, 1)
    stamp = datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert masked("year_only", stamp) == datetime(2023, 1, 1, tzinfo=UTC)
    assert masked("year_only", "1984-07-14") == "1984"


@pytest.mark.parametrize(("value", "want"), [
    (Decimal("37.40"), Decimal("20")),
    (Decimal("0.99"), Decimal("0")),
    (Decimal("5000"), Decimal("5000")),
    (Decimal("123456.78"), Decimal("5000")),
    (Decimal("-37.40"), Decimal("-20")),  # a refund stays a refund
    (37, 20),
    (37.4, 20.0),
])
def test_amount_bucket_gives_the_lower_bound_in_the_same_type(value, want):
    got = masked("amount_bucket", value)
    assert got == want and type(got) is type(want)


def test_amount_bucket_takes_its_bounds():
    assert masked("amount_bucket", Decimal("75"), bounds=(0, 100)) == Decimal("0")


def test_redact_keeps_text_a_string_and_makes_other_values_null():
    assert masked("redact", "secret") == REDACTED
    assert masked("redact", 42) is None


def test_null_stays_null_and_lists_are_masked_item_by_item():
    for strategy in STRATEGIES:
        assert masked(strategy, None) is None
    assert masked("last_digits", ["+33612345678", "+447700900123"]) == ["+*******5678",
                                                                          "+********0123"]


def test_every_strategy_says_what_it_does_and_which_types_it_keeps():
    for name, strategy in STRATEGIES.items():
        assert strategy.summary and (strategy.types or strategy.any_nullable), name
