"""Unified records: what one source says about a customer, after transforms.

These are plain values with their provenance (``source``, ``key``); the merge step
builds the customer view from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ContactValue:
    """An e-mail address or a phone number (E.164 when it parses) with its type."""

    value: str
    type: str | None
    valid: bool = True


@dataclass(frozen=True, slots=True)
class AddressValue:
    type: str | None = None
    line1: str | None = None
    line2: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class CardValue:
    number: str
    program: str | None
    points: int | None


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """One customer record of one source."""

    source: str
    key: str
    kind: str
    given_name: str | None
    family_name: str | None
    full_name: str | None
    legal_name: str | None
    birth_date: date | None
    emails: tuple[ContactValue, ...]
    phones: tuple[ContactValue, ...]
    addresses: tuple[AddressValue, ...]
    cards: tuple[CardValue, ...]
    vat_number: str | None = None
    updated_at: datetime | None = None
    # The key as the source typed it (int, str...), to hand back to that source.
    native_key: object = field(default=None, compare=False)

    @property
    def ref(self) -> tuple[str, str]:
        return (self.source, self.key)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    source: str
    table: str
    key: str
    customer_key: str
    kind: str
    amount: Decimal | None
    currency: str
    date: datetime | None
    status: str
    reference: str | None


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    source: str
    table: str
    key: str
    customer_key: str
    channel: str
    date: datetime | None
    subject: str | None
    summary: str | None
