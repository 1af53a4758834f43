"""Merge: build one customer's unified values from its records, with provenance.

Records come in source order (config order, then local key). The single-valued fields
(name, legal name, birth date, kind) are picked by the configured survivorship rules
(:mod:`gateway.survivorship`; by default the first source that gives a value wins), and
lists keep every distinct value with every source that gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry

from gateway import graphql_types as gt
from gateway.identity import Cluster
from gateway.records import CustomerRecord, InteractionRecord, TransactionRecord
from gateway.survivorship import ATTRIBUTES, Survivorship, pick_value
from gateway.transforms import normalize_email

T = TypeVar("T")
CONFIG_ORDER = Survivorship()  # no `survivorship:` section: the first source with a value wins


@dataclass(frozen=True)
class CustomerValues:
    """The merged, single view of one cluster."""

    id: str
    kind: gt.CustomerKind
    display_name: str | None
    name: gt.PersonName | None
    names: list[gt.PersonName]
    legal_name: gt.SourcedText | None
    birth_date: gt.SourcedDate | None
    emails: list[gt.Email]
    phones: list[gt.Phone]
    addresses: list[gt.Address]
    loyalty_cards: list[gt.LoyaltyCard]
    source_records: list[gt.SourceRecord]
    match_evidence: list[gt.MatchEvidence]
    redirected_from: str | None


def provenance(record: CustomerRecord | TransactionRecord | InteractionRecord) -> gt.Provenance:
    return gt.Provenance(source=record.source, record_id=record.key)


def _distinct(items: Iterable[tuple[Hashable, CustomerRecord, T]],
              build: Callable[[T, gt.Provenance, list[gt.Provenance]], Any]) -> list[Any]:
    """One output per distinct key, from its first record, listing every record's provenance."""
    first: dict[Hashable, tuple[T, CustomerRecord]] = {}
    seen: dict[Hashable, list[gt.Provenance]] = {}
    for key, record, value in items:
        first.setdefault(key, (value, record))
        origins = seen.setdefault(key, [])
        if all(p.source != record.source or p.record_id != record.key for p in origins):
            origins.append(provenance(record))
    return [build(value, provenance(rec), seen[key]) for key, (value, rec) in first.items()]


def naming(records: Sequence[CustomerRecord], rules: Survivorship = CONFIG_ORDER,
           chosen_name: Any = None) -> tuple[gt.CustomerKind, str | None]:
    """A customer's kind and display name (the legal name of an organization, else the
    person's full name): what an export needs of the golden view, without the rest of it."""
    if len(records) == 1 and chosen_name is None:
        # Every rule picks the only candidate there is: read it (most customers, in an export).
        record = records[0]
        name, legal = ATTRIBUTES["name"].read(record), ATTRIBUTES["legal_name"].read(record)
        single = gt.CustomerKind(ATTRIBUTES["kind"].read(record))
        person = name[2] if name else None
        return single, ((legal or person) if single is gt.CustomerKind.ORGANIZATION
                        else (person or legal))
    if chosen_name is None:
        chosen_name = pick_value(rules, "name", records)
    legal = pick_value(rules, "legal_name", records)
    chosen_kind = pick_value(rules, "kind", records)
    kind = gt.CustomerKind(chosen_kind.value if chosen_kind else "PERSON")
    person = chosen_name.value[2] if chosen_name else None
    organization = legal.value if legal else None
    return kind, ((organization or person) if kind is gt.CustomerKind.ORGANIZATION
                  else (person or organization))


def customer_values(found: Cluster, shops: Mapping[str, str],
                    rules: Survivorship = CONFIG_ORDER) -> CustomerValues:
    records = found.records
    person_names = _distinct(
        ((((r.given_name or "").casefold(), (r.family_name or "").casefold(),
           (r.full_name or "").casefold()), r, r)
         for r in records if r.given_name or r.family_name or r.full_name),
        lambda r, p, _: gt.PersonName(given=r.given_name, family=r.family_name, full=r.full_name,
                                      source=p, chosen_by="listed"))
    chosen_name = pick_value(rules, "name", records)
    legal = pick_value(rules, "legal_name", records)
    born = pick_value(rules, "birth_date", records)
    kind, display_name = naming(records, rules, chosen_name)
    name = gt.PersonName(given=chosen_name.value[0], family=chosen_name.value[1],
                         full=chosen_name.value[2], source=provenance(chosen_name.record),
                         chosen_by=chosen_name.reason) if chosen_name else None
    return CustomerValues(
        id=found.id,
        kind=kind,
        display_name=display_name,
        name=name,
        names=person_names,
        legal_name=gt.SourcedText(value=legal.value, source=provenance(legal.record),
                                  chosen_by=legal.reason) if legal else None,
        birth_date=gt.SourcedDate(value=born.value, source=provenance(born.record),
                                  chosen_by=born.reason) if born else None,
        emails=_distinct(
            ((normalize_email(e.value), r, e) for r in records for e in r.emails),
            lambda e, p, ps: gt.Email(address=normalize_email(e.value) or e.value, type=e.type,
                                      source=p, sources=ps)),
        phones=_distinct(
            ((ph.value, r, ph) for r in records for ph in r.phones),
            lambda ph, p, ps: gt.Phone(number=ph.value, valid=ph.valid, type=ph.type, source=p,
                                       sources=ps)),
        addresses=_distinct(
            ((((a.line1 or "").casefold(), (a.postcode or "").replace(" ", ""),
               (a.city or "").casefold()), r, a) for r in records for a in r.addresses),
            lambda a, p, ps: gt.Address(type=a.type, line1=a.line1, line2=a.line2,
                                        postcode=a.postcode, city=a.city, region=a.region,
                                        country=a.country, source=p, sources=ps)),
        loyalty_cards=[gt.LoyaltyCard(number=c.number, program=c.program, points=c.points,
                                      shop=r.source if r.source in shops else None,
                                      source=provenance(r))
                       for r in records for c in r.cards],
        source_records=[gt.SourceRecord(source=r.source, shop=shops.get(r.source), local_id=r.key,
                                        matched_by=list(found.evidence.get(r.ref, ())))
                        for r in records],
        match_evidence=match_evidence(found),
        redirected_from=found.redirected_from,
    )


def match_evidence(found: Cluster) -> list[gt.MatchEvidence]:
    """One entry per record that was linked to another (the customer's first record has none)."""
    out = []
    for record in found.records:
        link = found.links.get(record.ref)
        if link is not None:
            other = link.linked_to
            out.append(gt.MatchEvidence(
                record=provenance(record), rule=link.rule, score=link.score,
                agreed=list(link.agreed), indexed=True,
                linked_to=gt.Provenance(source=other[0], record_id=other[1]) if other else None))
        elif record is not found.first and (kinds := found.evidence.get(record.ref)):
            out.append(gt.MatchEvidence(record=provenance(record), rule=kinds[0], score=1.0,
                                        agreed=list(kinds), linked_to=None, indexed=False))
    return out


def transaction(record: TransactionRecord, shops: Mapping[str, str]) -> gt.Transaction:
    amount = gt.Money(amount=record.amount, currency=record.currency) \
        if record.amount is not None else None
    return gt.Transaction(
        id=strawberry.ID(f"{record.source}/{record.table}/{record.key}"),
        kind=_enum(gt.TransactionKind, record.kind),
        amount=amount,
        shop=record.source if record.source in shops else None,
        date=record.date,
        status=_enum(gt.TransactionStatus, record.status),
        reference=record.reference,
        source=provenance(record),
    )


def interaction(record: InteractionRecord) -> gt.Interaction:
    return gt.Interaction(
        id=strawberry.ID(f"{record.source}/{record.table}/{record.key}"),
        channel=_enum(gt.Channel, record.channel),
        date=record.date, subject=record.subject, summary=record.summary,
        source=provenance(record),
    )


def _enum(enum: type, value: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        return enum("UNKNOWN")
