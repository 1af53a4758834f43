"""Accounts totalled per segment (tier, risk class, shop, region), for finance dashboards.

``Query.accountSegments`` walks the identity index like an export does (chunks of customers,
each read through a fresh resolver with the request's row scope and consent, accounts computed
per chunk), and keeps only running totals: memory does not grow with the customer base, and no
customer's figures leave the gateway. Without an index there is no customer base to walk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError

from gateway.finance.account import MEASURES, Converter
from gateway.finance.money import MoneyError, currency_code
from gateway.finance.schema import accounts, end_of, money_error
from gateway.finance.types import Account
from gateway.graphql_types import Money
from gateway.resolver import Resolver


@strawberry.enum(description="What customers are grouped by.")
class SegmentDimension(Enum):
    TIER = "TIER"
    RISK = "RISK"
    SHOP = "SHOP"
    REGION = "REGION"


@strawberry.type(description="The accounts of one segment's customers, totalled in one currency.")
class AccountSegment:
    value: str | None = strawberry.field(description="The tier, risk class, shop (source name) "
                                                     "or region; null: customers without one.")
    customers: int
    invoiced: Money
    paid: Money
    refunded: Money
    credited: Money
    balance: Money
    overdue: Money
    net_revenue: Money | None = strawberry.field(description="Per tier and risk class only: a "
                                                             "customer's revenue is not split "
                                                             "by shop.")
    margin: Money | None = strawberry.field(description="Per tier and risk class only.")


@dataclass
class _Totals:
    customers: int = 0
    sums: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(
        (*MEASURES, "balance", "net_revenue", "margin"), Decimal(0)))


def _parts(account: Account, by: SegmentDimension, regions: dict[str, str | None]
           ) -> Iterator[tuple[str | None, dict[str, Decimal]]]:
    """The segments one account falls in, with the figures it adds to each."""
    if by in (SegmentDimension.TIER, SegmentDimension.RISK):
        value = account.profitability.tier if by is SegmentDimension.TIER \
            else account.risk.risk_class.value
        figures = {m: getattr(account, m).amount for m in MEASURES}
        figures["balance"] = account.balance.amount
        figures["net_revenue"] = account.profitability.net_revenue.amount
        figures["margin"] = account.profitability.margin.amount
        yield value, figures
        return
    grouped: dict[str | None, dict[str, Decimal]] = {}
    for name, _, shop in account.shop_figures or ():
        value = name if by is SegmentDimension.SHOP else regions.get(name)
        figures = grouped.setdefault(value, dict.fromkeys((*MEASURES, "balance"), Decimal(0)))
        for measure in MEASURES:
            figures[measure] += shop.sums[measure]
        figures["balance"] += shop.sums["invoiced"] - shop.sums["paid"] - shop.sums["credited"]
    yield from grouped.items()


async def account_segments(context: Any, by: SegmentDimension, as_of: date | None,
                           currency: str | None) -> list[AccountSegment]:
    request: Resolver = context.resolver
    if not request.linker.indexed or request.linker.crosswalk is None:
        raise GraphQLError("accountSegments walks the identity index, and this config has no "
                           "`identity:` section: add one (docs/identity.md), then run "
                           "`panorama index`", extensions={"code": "NO_IDENTITY_INDEX"})
    sources, finance = context.sources, context.sources.finance
    try:
        code = finance.currency if currency is None else currency_code(
            currency, "accountSegments(currency:)")
    except MoneyError as exc:
        raise money_error(exc) from None
    day = as_of if as_of is not None else datetime.now(UTC).date()
    until = end_of(as_of) if as_of is not None else None
    regions = {s.name: s.config.region for s in sources}
    totals: dict[str | None, _Totals] = {}
    size = context.settings.export_chunk_size
    cursor: str | None = None
    while True:
        ids = await request.linker.crosswalk.global_ids(cursor, size)
        if not ids:
            break
        cursor = ids[-1]
        # A fresh resolver per chunk: what it has read is dropped with it (constant memory).
        resolver = Resolver(sources, context.settings, request.linker, request.scope,
                            request.facts)
        resolver.cache = request.cache
        if context.privacy is not None:  # objectors to the purpose are left out, as everywhere
            resolver.consent = context.privacy.gate(context.principal)
        resolver.match_keys = False  # the index has placed every record: no key is parsed
        clusters = await resolver.indexed_customers(ids)
        found = await accounts(resolver, sources, clusters, day, code, until) if clusters else []
        request.failures.extend(f for f in resolver.failures if f not in request.failures)
        if resolver.failures:  # totals without a source would be wrong, not partial
            raise GraphQLError("accountSegments: a source could not answer, so no total is "
                               "given; see the other errors", extensions={"code": "INCOMPLETE"})
        for account in found:
            if isinstance(account, Exception):
                raise account
            for value, figures in _parts(account, by, regions):
                segment = totals.setdefault(value, _Totals())
                segment.customers += 1
                for measure, amount in figures.items():
                    segment.sums[measure] += amount
        if len(ids) < size:
            break
    money = Converter(finance, code, day).money
    per_customer = by in (SegmentDimension.TIER, SegmentDimension.RISK)
    order = {t.name: i for i, t in enumerate(finance.tiers)} if by is SegmentDimension.TIER \
        else {r: i for i, r in enumerate(("GOOD", "WATCH", "DEFAULTER"))}
    return [AccountSegment(
        value=value, customers=t.customers, invoiced=money(t.sums["invoiced"]),
        paid=money(t.sums["paid"]), refunded=money(t.sums["refunded"]),
        credited=money(t.sums["credited"]), balance=money(t.sums["balance"]),
        overdue=money(t.sums["overdue"]),
        net_revenue=money(t.sums["net_revenue"]) if per_customer else None,
        margin=money(t.sums["margin"]) if per_customer else None)
        for value, t in sorted(totals.items(), key=lambda item: (
            item[0] is None, order.get(item[0] or "", len(order)), item[0] or ""))]
