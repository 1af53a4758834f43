"""Turn unified filters and identity keys into per-source filter trees, and re-check them.

A pushed-down filter is allowed to return more rows than asked (a phone matched on its
last digits, a condition the source cannot evaluate left out), never fewer: the gateway
re-checks every row with :func:`matches` on the unified values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from connectors.base import Connector
from connectors.query import AllOf, AnyOf, Cond, Expr
from gateway.identity import match_keys
from gateway.mapping import CustomerMapping
from gateway.records import CustomerRecord
from gateway.transforms import normalize_card, normalize_email, phone_tail, to_e164

#: A filter that no row of a source can satisfy: the source is not asked at all.
NOTHING = AnyOf(())


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the field and the fix."""


@dataclass(frozen=True)
class CustomerFilter:
    """The unified filter of ``customers``: every given part must hold (AND)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    city: str | None = None
    shop: str | None = None

    @classmethod
    def build(cls, *, name=None, email=None, phone=None, city=None, shop=None,
              country: str, shops: Iterable[str]) -> CustomerFilter:
        """Normalize and validate user input."""
        shops = list(shops)
        if email is not None:
            email = normalize_email(email)
            if not email or "@" not in email:
                raise FilterError("filter.email: not an e-mail address; give one like name@example.com")
        if phone is not None:
            e164 = to_e164(phone, country)
            if e164 is None:
                raise FilterError(f"filter.phone: {phone!r} is not a valid phone number; give it "
                                  f"in international form such as +33612345678")
            phone = e164
        if shop is not None and shop not in shops:
            raise FilterError(f"filter.shop: unknown shop {shop!r}; shops: {', '.join(shops)}")
        # lower(), not casefold(): "Groß" must stay "groß" for sources to find it; the exact
        # re-check in matches() casefolds both sides.
        name = " ".join(name.split()).lower() if name and name.strip() else None
        city = city.strip().lower() if city and city.strip() else None
        return cls(name, email, phone, city, shop)

    @property
    def empty(self) -> bool:
        return not any((self.name, self.email, self.phone, self.city, self.shop))


def _any(conds: Sequence[Expr]) -> Expr:
    return conds[0] if len(conds) == 1 else AnyOf(tuple(conds))


def _all(parts: Sequence[Expr | None]) -> Expr | None:
    kept = [p for p in parts if p is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else AllOf(tuple(kept))


def plan_filter(source: str, mapping: CustomerMapping, connector: Connector,
                flt: CustomerFilter) -> Expr | None:
    """The filter tree to push to one source: None means all rows, NOTHING means skip it."""
    parts: list[Expr] = []
    if flt.shop is not None and flt.shop != source:
        return NOTHING
    if flt.email is not None:
        if not mapping.email_fields:
            return NOTHING
        parts.append(_any([Cond(f, "in", (flt.email,), "email") for f in mapping.email_fields]))
    if flt.phone is not None:
        if not mapping.phone_fields:
            return NOTHING
        parts.append(_any([Cond(f, "in", (phone_tail(flt.phone),), "phone_tail")
                           for f in mapping.phone_fields]))
    if flt.city is not None:
        if not mapping.city_fields:
            return NOTHING
        if flt.city.isascii():
            parts.append(_any([Cond(f, "ieq", flt.city) for f in mapping.city_fields]))
        else:
            parts.extend(_contains_ascii(mapping.city_fields, flt.city))
    if flt.name is not None:
        if not mapping.name_fields:
            return NOTHING
        for word in flt.name.split():
            parts.extend(_contains_ascii(mapping.name_fields, word))
    return prune(_all(parts), connector)


def _contains_ascii(fields: tuple[str, ...], text: str) -> list[Expr]:
    """Conditions that ``text`` is in one of ``fields``, on its ASCII fragments only.

    Sources fold case reliably for ASCII only (SQLite's LOWER, PostgreSQL's C collation), so
    "noémie" is pushed down as "no" and "mie": a superset that the gateway then re-checks.
    """
    fragments = [f for f in re.split(r"[^\x00-\x7f]+", text) if len(f.strip()) >= 2]
    return [_any([Cond(f, "contains", fragment) for f in fields]) for fragment in fragments]


def prune(expr: Expr | None, connector: Connector) -> Expr | None:
    """Drop what the connector cannot evaluate, keeping a filter that returns a superset."""
    if expr is None:
        return None
    if isinstance(expr, Cond):
        supported = expr.op in connector.filter_ops and (
            expr.normalize is None or expr.normalize in connector.normalizers)
        return expr if supported else None
    parts = [prune(p, connector) for p in expr.parts]
    if isinstance(expr, AllOf):
        return _all(parts)
    kept = [p for p in parts if p is not None]
    if len(kept) < len(parts) or not connector.supports_or:
        return None  # one unconstrained alternative: the OR constrains nothing
    return _any(kept) if kept else AnyOf(())


def key_lookup(mapping: CustomerMapping, connector: Connector,
               keys: Iterable[str]) -> list[Expr]:
    """Filters that find a source's records carrying any of the match keys.

    One filter (an OR of every key kind) per call when the source evaluates OR, so that one
    round of identity costs one query per source; ``in`` lists are cut to the source's limit.
    """
    # key kind -> (fields carrying it, source-side normalizer, blocking value). A VAT number is
    # compared like a card (spaces and dashes removed, upper-case): close enough to find it.
    vat_fields = ("vat_number",) if "vat_number" in mapping.entity.fields else ()
    fields = {"email": (mapping.email_fields, "email", lambda v: v),
              "phone": (mapping.phone_fields, "phone_tail", phone_tail),
              "card": (mapping.card_fields, "card", lambda v: v),
              "vat": (vat_fields, "card", lambda v: v)}
    by_kind: dict[str, list[str]] = {kind: [] for kind in fields}
    for key in keys:
        kind, _, value = key.partition(":")
        if kind in by_kind:
            by_kind[kind].append(value)
    size = max(1, connector.max_in_values)
    conds: list[Expr] = []
    for kind, values in by_kind.items():
        logical, normalizer, blocking = fields[kind]
        if not values or not logical or normalizer not in connector.normalizers:
            continue
        wanted = sorted({blocking(v) for v in values})
        for start in range(0, len(wanted), size):
            chunk = tuple(wanted[start:start + size])
            conds.extend(Cond(f, "in", chunk, normalizer) for f in logical)
    if not conds:
        return []
    return [_any(conds)] if connector.supports_or else conds


def matches(flt: CustomerFilter, record: CustomerRecord) -> bool:
    """Whether one record satisfies the filter, on unified values (the exact check)."""
    if flt.shop is not None and record.source != flt.shop:
        return False
    if flt.email is not None and flt.email not in {normalize_email(e.value) for e in record.emails}:
        return False
    if flt.phone is not None and flt.phone not in {p.value for p in record.phones}:
        return False
    if flt.city is not None and flt.city.casefold() not in {
            a.city.strip().casefold() for a in record.addresses if a.city}:
        return False
    if flt.name is not None:
        names = " ".join(n for n in (record.given_name, record.family_name, record.full_name,
                                     record.legal_name) if n).casefold()
        if not all(word.casefold() in names for word in flt.name.split()):
            return False
    return True


def has_key(record: CustomerRecord, key: str) -> bool:
    return key in match_keys(record)


def card_key(number: str) -> str | None:
    card = normalize_card(number)
    return f"card:{card}" if card else None
