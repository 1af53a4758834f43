"""The finance part of the GraphQL schema: ``Customer.account`` and its transactions.

Accounts of the customers of one nesting level are computed together: one ledger read per
source table for all of them (a DataLoader per day and currency), through the request's
resolver, so the row scope, cache, breakers and explain apply as to any other read.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from graphql import GraphQLError
from strawberry.dataloader import DataLoader

from gateway import graphql_types as gt
from gateway import merge
from gateway.finance.account import Converter, build_account
from gateway.finance.ledger import Ledger, LedgerReader
from gateway.finance.money import MoneyError, currency_code
from gateway.finance.types import Account, TransactionPage
from gateway.identity import Cluster


def money_error(exc: MoneyError) -> GraphQLError:
    return GraphQLError(str(exc), extensions={"code": exc.code})


def end_of(day: date) -> datetime:
    """The first instant after ``day`` (UTC): movements before it are as of ``day``."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


async def account_of(context: Any, found: Cluster, as_of: date | None,
                     currency: str | None) -> Account:
    """``found``'s account as of a day in a currency (default the config's). Without a day, every
    movement recorded counts, and overdue invoices are judged as of today (UTC): no date bound
    to push down, so a source whose dates are text can still sum in SQL."""
    finance = context.sources.finance
    day = as_of if as_of is not None else datetime.now(UTC).date()
    until = end_of(as_of) if as_of is not None else None
    try:
        code = finance.currency if currency is None else currency_code(currency,
                                                                         "account(currency:)")
    except MoneyError as exc:
        raise money_error(exc) from None
    name = f"account:{as_of}:{code}"
    if name not in context.loaders:
        async def load(clusters: list[Cluster]) -> list[Account | Exception]:
            return await accounts(context.resolver, context.sources, clusters, day, code, until)

        context.loaders[name] = DataLoader(load_fn=load, cache_key_fn=lambda c: c.id)
    return await context.loaders[name].load(found)


async def accounts(resolver: Any, sources: Any, clusters: list[Cluster], day: date,
                   currency: str, until: datetime | None) -> list[Account | Exception]:
    """The accounts of ``clusters`` as of ``day``, counting movements dated before ``until``
    (None: all): one ledger read for all of them."""
    wanted: dict[Any, list[Any]] = {}
    for found in clusters:
        for record in found.records:
            source = sources.get(record.source)
            if source is not None and record.source in resolver.readable:
                wanted.setdefault(source, []).append(record.native_key)
    ledger = await LedgerReader(resolver.read).ledger(wanted, until)
    own = _per_customer(ledger, clusters)
    convert = Converter(sources.finance, currency, day)  # rates and thresholds looked up once
    out: list[Account | Exception] = []
    for found in clusters:
        try:
            account = build_account(sources.finance, sources.shops, own[found.id],
                                    {r.ref for r in found.records}, day, currency, convert)
        except MoneyError as exc:
            out.append(money_error(exc))
            continue
        account.cluster, account.bounded = found, until is not None
        out.append(account)
    return out


def _per_customer(ledger: Ledger, clusters: list[Cluster]) -> dict[str, Ledger]:
    """Each customer's part of the ledger: build_account scans the ledger it is given, so one
    shared by the batch would cost customers x movements (an export's chunk is 1,000)."""
    owner = {r.ref: found.id for found in clusters for r in found.records}
    parts = {found.id: Ledger([], []) for found in clusters}
    for m in ledger.movements:
        if (who := owner.get((m.source, m.customer_key))) is not None:
            parts[who].movements.append(m)
    for invoice in ledger.open_invoices:
        if (who := owner.get((invoice.source, invoice.customer_key))) is not None:
            parts[who].open_invoices.append(invoice)
    return parts


# --- transactions, paged -----------------------------------------------------------------------

def _cursor(record: Any) -> str:
    key = [record.date.isoformat() if record.date else None,
           f"{record.source}/{record.table}/{record.key}"]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _position(record: Any) -> tuple:
    """Sort key, newest first once reversed; undated movements come last."""
    return (record.date is not None, record.date.isoformat() if record.date else "",
            f"{record.source}/{record.table}/{record.key}")


def _after(cursor: str) -> tuple:
    try:
        when, ident = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(ident, str) or not isinstance(when, str | None):
            raise ValueError
        return (when is not None, when or "", ident)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise GraphQLError("transactions(after:): not a cursor of this list; pass the "
                           "pageInfo.endCursor of the previous page",
                           extensions={"code": "BAD_USER_INPUT"}) from None


async def transaction_page(context: Any, account: Account, first: int | None, after: str | None,
                           since: date | None, until: date | None,
                           kinds: list[gt.TransactionKind] | None) -> TransactionPage:
    settings = context.settings
    size = settings.default_page_size if first is None else first
    if not 1 <= size <= settings.max_page_size:
        raise GraphQLError(f"transactions(first:): must be between 1 and "
                           f"{settings.max_page_size} (the max_page_size setting); page with "
                           f"`after` for more", extensions={"code": "BAD_USER_INPUT"})
    if since is not None and until is not None and since > until:
        raise GraphQLError("transactions: `from` is after `to`; give the earlier day as `from`",
                           extensions={"code": "BAD_USER_INPUT"})
    start = _after(after) if after is not None else None
    # Every movement of the customer (no newest-N cut: a page may start anywhere).
    records = await context.loader("transactions", 0).load(account.cluster)
    wanted = {k.value for k in kinds} if kinds else None
    last = end_of(account.as_of) if account.bounded else None
    kept = [r for r in records
            if (last is None or r.date is None or r.date < last)
            and (since is None or (r.date is not None and r.date.date() >= since))
            and (until is None or (r.date is not None and r.date.date() <= until))
            and (wanted is None or r.kind in wanted)]
    kept.sort(key=_position, reverse=True)
    if start is not None:
        kept = [r for r in kept if _position(r) < start]
    page = kept[:size]
    shops = context.sources.shops
    return TransactionPage(
        nodes=[merge.transaction(r, shops) for r in page],
        page_info=gt.PageInfo(has_next_page=len(kept) > size, has_previous_page=start is not None,
                              start_cursor=_cursor(page[0]) if page else None,
                              end_cursor=_cursor(page[-1]) if page else None))
