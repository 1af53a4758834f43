"""Exact money: ISO 4217 currency codes, their minor units, and rounding to them.

Amounts are :class:`~decimal.Decimal` from the source to the answer. A currency is an ISO 4217
code that has minor units (EUR 2, JPY 0, BHD 3); codes without (gold, SDRs) are not money here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import iso4217

#: Rounding rules a config may name (``finance.rounding``).
ROUNDINGS: Mapping[str, str] = {
    "half_even": ROUND_HALF_EVEN,  # banker's rounding: 0.125 -> 0.12, 0.135 -> 0.14
    "half_up": ROUND_HALF_UP,  # 0.125 -> 0.13
    "down": ROUND_DOWN,  # towards zero
}


class MoneyError(ValueError):
    """Bad money input (an unknown currency, a missing rate); the message names the fix."""

    code = "BAD_USER_INPUT"


class SourceDataError(MoneyError):
    """A source holds money Panorama cannot total (a currency that is not ISO 4217)."""

    code = "SOURCE_DATA"


@lru_cache(maxsize=512)
def minor_units(code: str) -> int | None:
    """Digits after the decimal point of ``code``; None when it is not an ISO 4217 currency
    of money (unknown, or without minor units such as XAU)."""
    try:
        return iso4217.Currency(code).exponent
    except ValueError:
        return None


def currency_code(value: Any, where: str) -> str:
    """``value`` as an ISO 4217 code (trimmed, upper-cased), or MoneyError naming ``where``."""
    code = value.strip().upper() if isinstance(value, str) else None
    if not code or minor_units(code) is None:
        raise MoneyError(f"{where}: {value!r} is not an ISO 4217 currency code of money; "
                         f"write three letters such as EUR, GBP, USD or JPY")
    return code


def rounded(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``amount`` with exactly the minor units of ``currency`` (JPY 0, EUR 2, BHD 3)."""
    digits = minor_units(currency)
    assert digits is not None, f"{currency} was checked with currency_code"
    return amount.quantize(Decimal(1).scaleb(-digits), rounding)

