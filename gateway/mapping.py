"""Mapped entities: how one source's rows become unified records.

The config loader builds these from ``panorama.yaml``. Each mapping owns the connector's
:class:`EntityMap` (logical field -> column) and the gateway side of every field
(transform, enumeration table, constant), and turns a raw row into a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.query import EntityMap
from gateway.records import (
    AddressValue,
    CardValue,
    ContactValue,
    CustomerRecord,
    InteractionRecord,
    TransactionRecord,
)
from gateway.transforms import TRANSFORMS, SourceDefaults, Transform, split_full_name, to_e164

UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One unified value: a column (through a transform or a table) or a constant."""

    logical: str | None = None  # the connector's logical field; None for constants
    transform: Transform | None = None
    table: Mapping[str, str] | None = None
    const: Any = None

    def read(self, row: Mapping[str, Any], defaults: SourceDefaults) -> Any:
        if self.logical is None:
            return self.const
        value = row.get(self.logical)
        if self.table is not None:
            if value is None:
                return None
            key = str(value).strip()
            return self.table.get(key, self.table.get(key.lower(), UNKNOWN))
        if self.transform is not None:
            return self.transform(value, defaults)
        return TRANSFORMS["string"](value, defaults) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class ContactSpec:
    value: FieldSpec
    type: str | None


@dataclass(frozen=True, slots=True)
class AddressSpec:
    type: str | None
    parts: Mapping[str, FieldSpec]


@dataclass(frozen=True, slots=True)
class CardSpec:
    number: FieldSpec
    program: str | None
    points: FieldSpec | None


@dataclass(frozen=True)
class CustomerMapping:
    """The customer entity of one source."""

    entity: EntityMap
    scalars: Mapping[str, FieldSpec]  # mapping_loader.CUSTOMER_SCALARS that the source maps
    emails: tuple[ContactSpec, ...] = ()
    phones: tuple[ContactSpec, ...] = ()
    addresses: tuple[AddressSpec, ...] = ()
    cards: tuple[CardSpec, ...] = ()

    @property
    def email_fields(self) -> tuple[str, ...]:
        return tuple(s.value.logical for s in self.emails if s.value.logical)

    @property
    def phone_fields(self) -> tuple[str, ...]:
        return tuple(s.value.logical for s in self.phones if s.value.logical)

    @property
    def card_fields(self) -> tuple[str, ...]:
        return tuple(s.number.logical for s in self.cards if s.number.logical)

    @property
    def name_fields(self) -> tuple[str, ...]:
        names = ("given_name", "family_name", "full_name", "legal_name")
        return tuple(s.logical for n in names if (s := self.scalars.get(n)) and s.logical)

    @property
    def city_fields(self) -> tuple[str, ...]:
        return tuple(s.logical for a in self.addresses if (s := a.parts.get("city")) and s.logical)

    def to_record(self, source: str, row: Mapping[str, Any], defaults: SourceDefaults) -> CustomerRecord:
        scalar = {name: spec.read(row, defaults) for name, spec in self.scalars.items()}
        given, family, full = scalar.get("given_name"), scalar.get("family_name"), scalar.get("full_name")
        if full and not (given or family):
            given, family = split_full_name(full)
        if not full and (given or family):
            full = " ".join(p for p in (given, family) if p)
        emails = [ContactValue(v, s.type) for s in self.emails if (v := s.value.read(row, defaults))]
        phones = []
        for phone in self.phones:
            raw = phone.value.read(row, defaults)
            if raw:
                e164 = to_e164(raw, defaults.country)  # None when the text is not a number
                phones.append(ContactValue(e164 or raw, phone.type, valid=e164 is not None))
        addresses = []
        for address in self.addresses:
            parts = {name: p.read(row, defaults) for name, p in address.parts.items()}
            if any(v for k, v in parts.items() if k != "country"):
                addresses.append(AddressValue(type=address.type, **parts))
        cards = []
        for card in self.cards:
            number = card.number.read(row, defaults)
            if number:
                points = card.points.read(row, defaults) if card.points else None
                cards.append(CardValue(str(number), card.program, points))
        return CustomerRecord(
            source=source,
            key=str(row[self.entity.key]),
            kind=scalar.get("kind") or "PERSON",
            given_name=given,
            family_name=family,
            full_name=full,
            legal_name=scalar.get("legal_name"),
            birth_date=scalar.get("birth_date"),
            vat_number=scalar.get("vat_number"),
            updated_at=scalar.get("updated_at"),
            emails=tuple(emails),
            phones=tuple(phones),
            addresses=tuple(addresses),
            cards=tuple(cards),
            native_key=row[self.entity.key],
        )


@dataclass(frozen=True)
class ChildMapping:
    """A transactions or interactions table of one source."""

    entity: EntityMap
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)

    def values(self, row: Mapping[str, Any], defaults: SourceDefaults) -> dict[str, Any]:
        return {name: spec.read(row, defaults) for name, spec in self.fields.items()}

    def parent_key(self, row: Mapping[str, Any]) -> str:
        assert self.entity.parent is not None, "child mappings always name their customer column"
        return str(row[self.entity.parent])

    def to_transaction(self, source: str, row: Mapping[str, Any],
                       defaults: SourceDefaults) -> TransactionRecord:
        v = self.values(row, defaults)
        return TransactionRecord(
            source=source, table=self.entity.table, key=str(row[self.entity.key]),
            customer_key=self.parent_key(row),
            kind=v.get("kind") or UNKNOWN, amount=v.get("amount"),
            currency=(v.get("currency") or defaults.currency), date=v.get("date"),
            status=v.get("status") or UNKNOWN, reference=_opt_str(v.get("reference")),
        )

    def to_interaction(self, source: str, row: Mapping[str, Any],
                       defaults: SourceDefaults) -> InteractionRecord:
        v = self.values(row, defaults)
        return InteractionRecord(
            source=source, table=self.entity.table, key=str(row[self.entity.key]),
            customer_key=self.parent_key(row),
            channel=v.get("channel") or UNKNOWN, date=v.get("date"),
            subject=_opt_str(v.get("subject")), summary=_opt_str(v.get("summary")),
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
