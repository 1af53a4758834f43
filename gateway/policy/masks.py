"""Masking strategies: pure functions that hide part of a value and keep its GraphQL type.

A masked field stays in the role's schema with its type, so clients keep working: a masked
e-mail is still a ``String``, a birth date masked to its year is still a ``Date`` (January 1st
of that year), a bucketed amount is still a ``Decimal`` (the lower bound of its bucket).
Strategies are looked up by name in :data:`STRATEGIES`; add one by adding an entry.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

REDACTED = "[redacted]"
TEXT = frozenset({"String", "ID"})
DEFAULT_BOUNDS = (0, 10, 20, 50, 100, 200, 500, 1000, 5000)


@dataclass(frozen=True)
class Mask:
    """A strategy by name with its parameters, as a policy rule gives it."""

    strategy: str
    params: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.strategy}({args})" if args else self.strategy


def _redact(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    # Text keeps its type as a marker; any other (nullable) type becomes null.
    return REDACTED if isinstance(value, str) else None


def _email_partial(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    local, at, domain = str(value).partition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


def _last_digits(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    text = str(value)
    keep = params.get("keep", 4)
    total = sum(ch.isalnum() for ch in text)
    # A value no longer than what would be kept is hidden whole: keeping it would reveal all.
    shown = keep if total > keep else 0
    out, seen = [], 0
    for ch in text:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - shown else "*")
        else:
            out.append(ch)
    return "".join(out)


def _hash(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    # Keyed, so that a dictionary of likely e-mails cannot be hashed to undo it; stable for a
    # given key, so equal values still group together.
    digest = hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()
    return f"h_{digest[:params.get('length', 16)]}"


def _year_only(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    if isinstance(value, datetime):
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if isinstance(value, date):
        return date(value.year, 1, 1)
    match = re.match(r"\d{4}", str(value))
    return match.group(0) if match else None


def _amount_bucket(value: Any, params: Mapping[str, Any], key: bytes) -> Any:
    bounds = params.get("bounds", DEFAULT_BOUNDS)
    size = abs(Decimal(str(value)))
    lower = max((b for b in bounds if Decimal(str(b)) <= size), default=bounds[0])
    bucket = Decimal(str(lower)) * (-1 if value < 0 else 1)
    return type(value)(bucket) if isinstance(value, (int, float)) else bucket


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def _bounds(value: Any) -> tuple[Any, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in value)):
        raise ValueError(f"expected a list of numbers such as [0, 10, 50, 100], got {value!r}")
    if sorted(value) != value or len(set(value)) != len(value) or value[0] < 0:
        raise ValueError("bounds must be ascending, distinct and not negative")
    return tuple(value)


@dataclass(frozen=True)
class Strategy:
    """How to mask: the function, the scalar types whose type it keeps, its parameters."""

    summary: str
    apply: Callable[[Any, Mapping[str, Any], bytes], Any]
    types: frozenset[str]
    params: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    #: Also fits any nullable field (its value becomes null): only redaction does.
    any_nullable: bool = False

    def fits(self, scalar: str, non_null: bool) -> bool:
        return scalar in self.types or (self.any_nullable and not non_null)


STRATEGIES: dict[str, Strategy] = {
    "redact": Strategy("replaced by [redacted] (text) or null", _redact, TEXT,
                       any_nullable=True),
    "email_partial": Strategy("first letter and domain kept: j***@example.com", _email_partial,
                              frozenset({"String"})),
    "last_digits": Strategy("only the last digits kept: +*******5678", _last_digits, TEXT,
                            {"keep": _positive_int}),
    "hash": Strategy("a keyed hash (h_3f9a...): equal values stay equal", _hash, TEXT,
                     {"length": _positive_int}),
    "year_only": Strategy("only the year kept: a date becomes January 1st of its year",
                          _year_only, frozenset({"Date", "DateTime"})),
    "amount_bucket": Strategy("the lower bound of the amount's bucket: 37.40 becomes 20",
                              _amount_bucket, frozenset({"Decimal", "Int", "Float"}),
                              {"bounds": _bounds}),
}


def mask_value(mask: Mask, value: Any, key: bytes = b"") -> Any:
    """The masked value; null stays null and a list is masked item by item."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [mask_value(mask, item, key) for item in value]
    return STRATEGIES[mask.strategy].apply(value, dict(mask.params), key)
