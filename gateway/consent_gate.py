"""Consent where customers are produced: who objected to a request's purpose is not there.

Every way a request finds customers (a lookup, a page, a customer returned by a mutation)
goes through the request's Resolver, which asks its :class:`ConsentGate` about the customers
it is about to return. The gate asks the consent store (one query per batch, never cached: a
decision counts from the very next request) and reads the sources' opt-out fields, which the
records brought along because the config adds them to each source's customer mapping
(:func:`fetching_consent_fields`). The strictest wins: an objection in Panorama or in any
source hides the customer (docs/audit.md). A purpose the policy makes not objectable
(``objectable: false``: a legal obligation, a contract) hides no one: objections to it, recorded
or a source's, are not applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from gateway.consent import ConsentConfig, ConsentStore, OptOutRule, SourceValues, objections_from_records
from gateway.identity import Cluster, Ref, encode_id
from gateway.records import CustomerRecord

if TYPE_CHECKING:
    from gateway.config import SourceConfig

#: Logical fields of a source's opt-out columns or properties: ``consent:<field>``.
PREFIX = "consent:"


def fetching_consent_fields(source: SourceConfig, consent: ConsentConfig) -> SourceConfig:
    """``source`` with its customer mapping also reading the opt-out fields ``consent`` names."""
    fields = consent.fields_by_source().get(source.name, ())
    if not fields or source.customer is None:
        return source
    entity = source.customer.entity
    mapped = dataclasses.replace(entity, fields={**entity.fields,
                                                 **{PREFIX + f: f for f in fields}})
    return dataclasses.replace(source, customer=dataclasses.replace(source.customer, entity=mapped))


def customer_aliases(found: Cluster) -> frozenset[str]:
    """The ids a decision about this customer may have been recorded under.

    An indexed customer has one id (merges redirect, and carry decisions over). A customer
    linked at query time has the id of its first record, which changes when a record of an
    earlier source joins: each record's id counts, so a decision does not lapse then.
    """
    if found.global_id is not None:
        return frozenset({found.id})
    return frozenset({found.id, *(encode_id(r.source, r.key) for r in found.records)})


class Objections(Protocol):
    """What the gate asks of recorded decisions: the consent store, or the objectors an export
    loaded once (gateway.finance.export), so that every chunk sees the same decisions."""

    async def objections_for(self, customers: Iterable[str], purpose: str) -> set[str]: ...


class ConsentGate:
    """One request's consent check; ``purpose`` None (no declared purpose) or a purpose that is
    not ``objectable`` hides no one."""

    def __init__(self, store: ConsentStore | Objections, purpose: str | None,
                 rules: Mapping[str, Sequence[OptOutRule]], objectable: bool = True) -> None:
        self.store = store
        self.purpose = purpose
        self.rules = rules
        self.objectable = objectable
        self._values: dict[Ref, dict[str, object]] = {}  # record -> its opt-out fields' values

    def observe(self, source: str, records: Sequence[CustomerRecord],
                rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep the opt-out fields of records just read (``rows``: their raw rows, in order)."""
        rules = self.rules.get(source)
        if rules:
            for record, row in zip(records, rows, strict=True):
                self._values[record.ref] = {r.field: row.get(PREFIX + r.field) for r in rules}

    def _source_values(self, clusters: Iterable[Cluster], by_record: bool = False
                       ) -> list[SourceValues]:
        return [SourceValues(r.ref if by_record else c.id, r.source, self._values.get(r.ref, {}))
                for c in clusters for r in c.records if r.source in self.rules]

    async def hidden(self, clusters: Iterable[Cluster]) -> set[str]:
        """Ids of the customers among ``clusters`` who object to the purpose (one store query)."""
        if self.purpose is None or not self.objectable:
            return set()
        clusters = list(clusters)
        if not clusters:
            return set()
        aliases = {c.id: customer_aliases(c) for c in clusters}
        objecting = await self.store.objections_for(
            sorted({a for ids in aliases.values() for a in ids}), self.purpose)
        hidden = {cid for cid, ids in aliases.items() if ids & objecting}
        hidden.update(str(owner) for owner, purpose in
                      objections_from_records(self._source_values(clusters), self.rules)
                      if purpose == self.purpose)
        return hidden

    async def admit(self, found: Cluster | None) -> Cluster | None:
        """``found``, or None when the customer objects: the answer for an unknown customer."""
        if found is None or not await self.hidden([found]):
            return found
        return None

    def opt_outs(self, found: Cluster) -> dict[str, list[Ref]]:
        """Purpose -> the customer's records whose own opt-out field objects to it."""
        out: dict[str, list[Ref]] = {}
        for owner, purpose in sorted(objections_from_records(
                self._source_values([found], by_record=True), self.rules), key=str):
            assert isinstance(owner, tuple)
            out.setdefault(purpose, []).append(owner)
        return out
