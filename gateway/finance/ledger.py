"""The money movements of customer records, summarized per record, kind, status and currency.

For each transactions table of a source, the ledger asks the source to sum it (one ``GROUP BY``
per table and batch of records, see ``connectors.query.Aggregate``) when that is exact: the
amount column holds exact numbers and its transform is linear (none, ``decimal``, ``cents``), the
kind, status and currency are constants or columns (mapped after grouping, as raw values), and
a date bound, if any, falls on a real date column. Otherwise it reads the rows and sums them
here, as Decimals. Pending invoices are always read one by one (there are few), since whether
one is overdue depends on its date.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.errors import ConnectorError
from connectors.query import Aggregate, AllOf, Cond, Expr, Page, Query
from gateway.mapping import UNKNOWN, ChildMapping
from gateway.sources import Source
from gateway.transforms import TRANSFORMS

#: Amount transforms that commute with a sum: SUM(transform(x)) == transform(SUM(x)).
LINEAR = (None, TRANSFORMS["decimal"], TRANSFORMS["cents"])

Read = Callable[[Source, Query, str], Awaitable[Page | None]]


@dataclass(frozen=True, slots=True)
class Movements:
    """Movements of one record that share kind, status and currency: how many, how much."""

    source: str
    customer_key: str
    kind: str
    status: str
    currency: str
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """A pending invoice: it becomes overdue when its payment terms have passed."""

    source: str
    customer_key: str
    amount: Decimal
    currency: str
    date: datetime | None


@dataclass
class Ledger:
    """What the sources said about a set of records."""

    movements: list[Movements]
    open_invoices: list[OpenInvoice]


@dataclass(frozen=True)
class _Plan:
    """How one transactions table is summarized."""

    mapping: ChildMapping
    by: tuple[str, ...]  # the parent, then the raw kind, status and currency columns
    amount: str | None  # the amount's logical field when the source may sum it
    pending: tuple[str, ...] | None  # raw status values that mean PENDING; None: unknown
    may_invoice: bool  # whether rows of this table can be invoices

    @classmethod
    def of(cls, mapping: ChildMapping) -> _Plan:
        fields = mapping.fields
        parent = mapping.entity.parent
        assert parent is not None, "transactions always name their customer"
        columns = tuple(spec.logical for name in ("kind", "status", "currency")
                        if (spec := fields.get(name)) is not None and spec.logical is not None)
        amount = fields.get("amount")
        summable = amount is not None and amount.logical is not None and \
            amount.table is None and amount.transform in LINEAR
        status, kind = fields.get("status"), fields.get("kind")
        pending: tuple[str, ...] | None = ()
        if status is not None and status.logical is not None:
            table = status.table
            pending = None if table is None else tuple(dict.fromkeys(
                v for raw, to in table.items() if to == "PENDING"
                for v in (raw, raw.upper(), raw.lower())))
        elif status is None or status.const != "PENDING":
            pending = ()
        may_invoice = kind is None or kind.logical is not None or kind.const == "INVOICE"
        return cls(mapping, (parent, *columns),
                   amount.logical if summable and amount is not None else None,
                   pending, may_invoice)

    def fields(self) -> tuple[str, ...]:
        """The logical fields a row read needs."""
        return tuple(spec.logical for name in ("kind", "status", "currency", "amount", "date")
                     if (spec := self.mapping.fields.get(name)) is not None
                     and spec.logical is not None)


class LedgerReader:
    """Reads the movements of records through ``read`` (the request's resolver: cache, breakers,
    trace); a source that fails leaves its part out, and the resolver reports it."""

    def __init__(self, read: Read) -> None:
        self.read = read
        self._plans: dict[int, _Plan] = {}

    def _plan(self, mapping: ChildMapping) -> _Plan:
        plan = self._plans.get(id(mapping))
        if plan is None:
            plan = self._plans[id(mapping)] = _Plan.of(mapping)
        return plan

    async def ledger(self, records: Mapping[Source, Iterable[Any]],
                     until: datetime | None) -> Ledger:
        """Movements of the records (source -> native keys) dated before ``until`` (None: all)."""
        ledger = Ledger([], [])
        calls = []
        for source, keys in records.items():
            native = list(dict.fromkeys(keys))
            size = max(1, source.connector.max_in_values)
            for mapping in source.config.transactions:
                for i in range(0, len(native), size):
                    calls.append(self._table(source, self._plan(mapping), native[i:i + size],
                                             until, ledger))
        await asyncio.gather(*calls)
        return ledger

    async def _table(self, source: Source, plan: _Plan, keys: list[Any],
                     until: datetime | None, ledger: Ledger) -> None:
        entity = plan.mapping.entity
        parent = Cond(entity.parent or "", "in", tuple(keys))
        date = plan.mapping.fields.get("date")
        bound: list[Expr] = [Cond(date.logical, "lt", until.replace(tzinfo=None))] \
            if until is not None and date is not None and date.logical is not None else []
        where: Expr = AllOf((parent, *bound)) if bound else parent
        if plan.amount is not None and plan.pending is not None:
            summary = Query(entity.name, (), where, aggregate=Aggregate(plan.by, (plan.amount,)))
            if await _can_aggregate(source, summary):
                await self._summed(source, plan, summary, ledger)
                return
        page = await self.read(source, Query(entity.name, plan.fields(), parent), "account")
        if page is not None:
            self._rows(source, plan, page, until, ledger)

    async def _summed(self, source: Source, plan: _Plan, summary: Query, ledger: Ledger) -> None:
        mapping, defaults = plan.mapping, source.config.defaults
        opens = None
        status = mapping.fields.get("status")
        if plan.pending and plan.may_invoice and status is not None and status.logical:
            where = AllOf((summary.where, Cond(status.logical, "in", plan.pending)))  # type: ignore[arg-type]
            opens = self.read(source, Query(mapping.entity.name, plan.fields(), where), "account")
        page, open_page = await asyncio.gather(
            self.read(source, summary, "account"), opens if opens else _none())
        if page is None:
            return
        parent = mapping.entity.parent or ""
        total = f"sum:{plan.amount}"
        fields = mapping.fields
        kind, status, currency = (fields.get(n) for n in ("kind", "status", "currency"))
        amount = fields["amount"]
        append = ledger.movements.append
        for row in page.rows:  # raw kind, status and currency read through their mappings
            value = amount.transform(row[total], defaults) if amount.transform else row[total]
            append(Movements(
                source.name, str(row[parent]),
                (kind.read(row, defaults) if kind else None) or UNKNOWN,
                (status.read(row, defaults) if status else None) or UNKNOWN,
                (currency.read(row, defaults) if currency else None) or defaults.currency,
                row["count"], value or Decimal(0)))
        if open_page is not None:
            for row in open_page.rows:
                record = mapping.to_transaction(source.name, row, defaults)
                if record.kind == "INVOICE" and record.status == "PENDING":
                    ledger.open_invoices.append(OpenInvoice(
                        source.name, record.customer_key, record.amount or Decimal(0),
                        record.currency, record.date))

    @staticmethod
    def _rows(source: Source, plan: _Plan, page: Page, until: datetime | None,
              ledger: Ledger) -> None:
        """Sum rows here, exactly: what the source could not sum, or not as of ``until``."""
        groups: dict[tuple[str, str, str, str], list[Any]] = {}
        for row in page.rows:
            record = plan.mapping.to_transaction(source.name, row, source.config.defaults)
            if until is not None and record.date is not None and record.date >= until:
                continue
            amount = record.amount or Decimal(0)
            group = groups.setdefault((record.customer_key, record.kind, record.status,
                                       record.currency), [0, Decimal(0)])
            group[0] += 1
            group[1] += amount
            if record.kind == "INVOICE" and record.status == "PENDING":
                ledger.open_invoices.append(OpenInvoice(
                    source.name, record.customer_key, amount, record.currency, record.date))
        ledger.movements.extend(Movements(source.name, key, kind, status, currency, n, total)
                                for (key, kind, status, currency), (n, total) in groups.items())


async def _can_aggregate(source: Source, query: Query) -> bool:
    """Whether the source sums ``query`` exactly; a source that cannot even say is read row by
    row (the read then reports its failure)."""
    try:
        return await source.connector.can_aggregate(query)
    except ConnectorError:
        return False


async def _none() -> None:
    return None
