"""Value transforms named in mappings, as one table: name -> function(value, defaults).

Transforms turn a source's raw value into the unified form. They never raise on odd
data: a value that cannot be transformed is kept as text (a phone number that does not
parse stays as written) or becomes ``None`` (an unreadable date), so one bad row never
hides a customer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import phonenumbers

from connectors.query import PHONE_TAIL_DIGITS


@dataclass(frozen=True, slots=True)
class SourceDefaults:
    """Per-source defaults that transforms need."""

    country: str = "FR"
    currency: str = "EUR"


Transform = Callable[[Any, SourceDefaults], Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    text = text.strip()
    return text or None


def normalize_email(value: Any, _: SourceDefaults | None = None) -> str | None:
    """Trimmed, lower-cased e-mail; the form used for matching."""
    text = _text(value)
    return text.lower() if text else None


def normalize_card(value: Any, _: SourceDefaults | None = None) -> str | None:
    """Card number without spaces or dashes, upper-cased; the form used for matching."""
    text = _text(value)
    return re.sub(r"[\s\-]", "", text).upper() if text else None


def normalize_vat(value: Any, _: SourceDefaults | None = None) -> str | None:
    """VAT or registration number without spaces, dots or dashes, upper-cased."""
    text = _text(value)
    return re.sub(r"[\s.\-/]", "", text).upper() or None if text else None


def to_e164(value: Any, country: str) -> str | None:
    """E.164 form of a phone number, or None when it is not a valid number."""
    text = _text(value)
    return _parse_e164(text, country) if text else None


@lru_cache(maxsize=65536)
def _parse_e164(text: str, country: str) -> str | None:
    # Parsing costs ~50 µs and the same numbers come back on every request: cache it.
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_tail(e164_or_raw: str) -> str:
    """The last digits of a number: the blocking key sources compare (see connectors.query)."""
    return re.sub(r"\D", "", e164_or_raw)[-PHONE_TAIL_DIGITS:]


def _phone(value: Any, defaults: SourceDefaults) -> str | None:
    # An unparseable number is kept as written: it is still worth showing.
    return to_e164(value, defaults.country) or _text(value)


def _decimal(value: Any, _: SourceDefaults) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() gives the shortest text that round-trips, so 12.5 stays 12.5, not 12.4999...
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None


def _cents(value: Any, defaults: SourceDefaults) -> Decimal | None:
    amount = _decimal(value, defaults)
    return None if amount is None else (amount / 100).quantize(Decimal("0.01"))


def _datetime(value: Any, _: SourceDefaults) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
        if seconds > 10_000_000_000:  # milliseconds since the epoch
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    text = _text(value)
    if not text:
        return None
    if text.isdigit():
        return _datetime(int(text), _)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(value: Any, defaults: SourceDefaults) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = _datetime(value, defaults)
    return moment.date() if moment else None


def _title(value: Any, _: SourceDefaults) -> str | None:
    text = _text(value)
    return text.title() if text else None


def _int(value: Any, _: SourceDefaults) -> int | None:
    amount = _decimal(value, _)
    return None if amount is None else int(amount)


TRANSFORMS: dict[str, Transform] = {
    "string": lambda v, _: _text(v),
    "trim": lambda v, _: _text(v),
    "lower": lambda v, _: (t.lower() if (t := _text(v)) else None),
    "upper": lambda v, _: (t.upper() if (t := _text(v)) else None),
    "title": _title,
    "email": normalize_email,
    "phone": _phone,
    "card": normalize_card,
    "vat": normalize_vat,
    "decimal": _decimal,
    "cents": _cents,
    "date": _date,
    "datetime": _datetime,
    "int": _int,
}


# Letters that carry no combining mark to strip, yet are written plainly when accents are dropped.
PLAIN_LETTERS = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe"})


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a text, for comparisons in the gateway."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.translate(PLAIN_LETTERS).strip()


def split_full_name(full: str | None) -> tuple[str | None, str | None]:
    """Given and family names from one column: the family name is the last word."""
    if not full:
        return None, None
    given, _, family = full.strip().rpartition(" ")
    return (given or None), family
