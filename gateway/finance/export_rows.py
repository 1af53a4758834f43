"""What a row of the accounts export holds, as the principal's role may see it, and its filters.

Every column stands for GraphQL coordinates (``balance`` is ``Customer.account``,
``Account.balance``, ``Money.amount``): a column the role may not read at every step is left
out of the header, one whose value the role sees masked is masked the same way (the role's
mask of the last coordinate). Rows are plain values built straight from the account (no
field-by-field GraphQL execution) and encoded with orjson (NDJSON) or the csv module (CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import orjson

from gateway import merge
from gateway.finance.types import Account, RiskClass
from gateway.identity import Cluster
from gateway.policy import RoleView
from gateway.policy.masks import Mask, mask_value
from gateway.survivorship import Survivorship

FORMATS = ("csv", "ndjson")
ACCOUNT = "Customer.account"
#: Without these there is no export: it lists customers (as ``customers`` does), each row's
#: id is the cursor, and the account is what it exports.
REQUIRED = ("Query.customers", "Customer.id", ACCOUNT)


class ExportError(ValueError):
    """A request the export cannot serve; the message names the fix. ``code``/``status``: what
    the HTTP endpoint answers."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class Subject:
    """What a row is built from: the customer, its kind and display name, its account."""

    found: Cluster
    naming: tuple[Any, str | None] | None
    account: Account | None  # None: the account could not be computed (the row's error)


Get = Callable[[Subject], Any]


@dataclass(frozen=True)
class Column:
    name: str
    path: tuple[str, ...]  # coordinates from Customer down to the value
    get: Get
    kind: str = "text"  # how an unmasked value is written: see CONVERT
    of_account: bool = True  # empty in a row whose account failed


def _acct(get: Callable[[Account], Any]) -> Get:
    return lambda s: get(s.account)  # type: ignore[arg-type]


def _money(name: str, attr: str, *through: str) -> Column:
    """An amount of the account (``through``: Account.profitability...)."""
    if through:
        return Column(name, (ACCOUNT, *through, "Money.amount"),
                      _acct(lambda a: getattr(a.profitability, attr).amount), "amount")
    graphql = "".join(w.capitalize() if i else w for i, w in enumerate(attr.split("_")))
    return Column(name, (ACCOUNT, f"Account.{graphql}", "Money.amount"),
                  _acct(lambda a: getattr(a, attr).amount), "amount")


def _plain(name: str, attr: str, graphql: str, kind: str = "int") -> Column:
    return Column(name, (ACCOUNT, f"Account.{graphql}"), _acct(lambda a: getattr(a, attr)),
                  kind)


PROFIT = ("Account.profitability",)
COLUMNS: tuple[Column, ...] = (
    Column("customer_id", ("Customer.id",), lambda s: s.found.id, of_account=False),
    Column("display_name", ("Customer.displayName",),
           lambda s: s.naming[1] if s.naming else None, of_account=False),
    Column("kind", ("Customer.kind",), lambda s: s.naming[0] if s.naming else None, "enum",
           of_account=False),
    Column("shops", (ACCOUNT, "Account.shops", "ShopAccount.shop"),
           _acct(lambda a: [name for name, _, _ in a.shop_figures or ()]), "list"),
    # Filled from the request (every row says the same), so error rows carry them too.
    Column("currency", (ACCOUNT, "Account.currency"), lambda s: None, of_account=False),
    Column("as_of", (ACCOUNT, "Account.asOf"), lambda s: None, of_account=False),
    _money("invoiced", "invoiced"),
    _money("paid", "paid"),
    _money("refunded", "refunded"),
    _money("credited", "credited"),
    _money("balance", "balance"),
    _money("open_credit", "open_credit"),
    _money("overdue", "overdue"),
    _plain("oldest_overdue_date", "oldest_overdue_date", "oldestOverdueDate", "date"),
    _plain("days_past_due", "days_past_due", "daysPastDue"),
    _plain("overdue_invoices", "overdue_invoices", "overdueInvoices"),
    _plain("transaction_count", "transaction_count", "transactionCount"),
    _plain("failed_payments", "failed_payments", "failedPayments"),
    Column("risk_class", (ACCOUNT, "Account.risk", "Risk.class"),
           _acct(lambda a: a.risk.risk_class), "enum"),
    Column("risk_score", (ACCOUNT, "Account.risk", "Risk.score"), _acct(lambda a: a.risk.score),
           "int"),
    Column("risk_reasons", (ACCOUNT, "Account.risk", "Risk.reasons", "RiskReason.code"),
           _acct(lambda a: [r.code for r in a.risk.reasons]), "list"),
    _money("revenue", "revenue", *PROFIT, "Profitability.revenue"),
    _money("discounts", "discounts", *PROFIT, "Profitability.discounts"),
    _money("net_revenue", "net_revenue", *PROFIT, "Profitability.netRevenue"),
    _money("cost_to_serve", "cost_to_serve", *PROFIT, "Profitability.costToServe"),
    _money("margin", "margin", *PROFIT, "Profitability.margin"),
    Column("tier", (ACCOUNT, *PROFIT, "Profitability.tier"),
           _acct(lambda a: a.profitability.tier)),
)
NAMES = tuple(c.name for c in COLUMNS) + ("error",)


def plain(value: Any, csv_text: bool) -> Any:
    """An exported value: amounts as exact decimal strings (never floats), dates ISO, enums by
    name, lists ``;``-joined. In CSV a line break in a text becomes a space: every row is one
    line, so an interrupted file is resumed after its last complete line."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.replace("\r", " ").replace("\n", " ") if csv_text else value
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return ";".join(str(plain(v, csv_text)) for v in value)
    return str(value)


def _text(value: Any) -> Any:
    return None if value is None else value.replace("\r", " ").replace("\n", " ")


#: Unmasked values by column kind, without asking each value its type (rows are hot).
CONVERT: Mapping[str, Callable[[Any], Any]] = {
    "amount": str,  # Decimals already rounded to the currency's minor units
    "int": lambda v: v,
    "date": lambda v: None if v is None else v.isoformat(),
    "enum": lambda v: None if v is None else v.value,
    "list": ";".join,
    "text": lambda v: v,
}


# --- filters ---------------------------------------------------------------------------------

FILTER_KEYS = ("shop", "tier", "risk", "min_balance", "overdue")
#: What each filter reads: a role must see it, unmasked, to filter on it.
FILTER_NEEDS: Mapping[str, tuple[str, ...]] = {
    "shop": (ACCOUNT, "Account.shops", "ShopAccount.shop"),
    "tier": (ACCOUNT, *PROFIT, "Profitability.tier"),
    "risk": (ACCOUNT, "Account.risk", "Risk.class"),
    "min_balance": (ACCOUNT, "Account.balance", "Money.amount"),
    "overdue": (ACCOUNT, "Account.overdue", "Money.amount"),
}


@dataclass(frozen=True)
class Filters:
    """Which accounts to write; every given part must hold. ``given``: as the caller wrote
    them (the audit entry and the resume command repeat them)."""

    shop: str | None = None
    tier: str | None = None
    risk: RiskClass | None = None
    min_balance: Decimal | None = None
    overdue: bool | None = None
    given: tuple[str, ...] = field(default=())

    @property
    def active(self) -> bool:
        return bool(self.given)

    def admits(self, account: Account) -> bool:
        return ((self.shop is None or any(name == self.shop for name, _, _ in account.shop_figures or ()))
                and (self.tier is None or account.profitability.tier == self.tier)
                and (self.risk is None or account.risk.risk_class is self.risk)
                and (self.min_balance is None or account.balance.amount >= self.min_balance)
                and (self.overdue is None or (account.overdue.amount > 0) is self.overdue))


def parse_filters(texts: Iterable[str], shops: Sequence[str], tiers: Sequence[str]) -> Filters:
    """``KEY=VALUE`` texts; ExportError naming the allowed keys or values."""
    values: dict[str, Any] = {}
    given: list[str] = []
    for text in texts:
        key, sep, raw = text.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in FILTER_KEYS:
            raise ExportError(f"filter {text!r}: write KEY=VALUE with KEY one of "
                              f"{', '.join(FILTER_KEYS)} (e.g. tier=GOLD, risk=WATCH, "
                              f"min_balance=100.00, overdue=true, shop=paris)")
        if key in values:
            raise ExportError(f"filter {key} given twice; give each key once")
        values[key] = _filter_value(key, raw, shops, tiers)
        given.append(f"{key}={raw}")
    return Filters(**values, given=tuple(given))


def _filter_value(key: str, raw: str, shops: Sequence[str], tiers: Sequence[str]) -> Any:
    def allowed(options: Sequence[str]) -> ExportError:
        return ExportError(f"filter {key}={raw!r}: not one of {', '.join(options) or '(none)'}")

    if key == "shop":
        if raw not in shops:
            raise allowed(shops)
        return raw
    if key == "tier":
        if raw not in tiers:
            raise allowed(tiers)
        return raw
    if key == "risk":
        if raw.upper() not in RiskClass.__members__:
            raise allowed(tuple(RiskClass.__members__))
        return RiskClass[raw.upper()]
    if key == "overdue":
        if raw.lower() not in ("true", "false"):
            raise allowed(("true", "false"))
        return raw.lower() == "true"
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise ExportError(f"filter min_balance={raw!r}: write an amount in the export's "
                          f"currency such as 100 or -20.50")
    return amount


# --- rows as the role sees them -----------------------------------------------------------------

class RowFormat:
    """The columns a role view shows, and rows of them encoded in one format."""

    def __init__(self, view: RoleView | None, mask_key: bytes, fmt: str, currency: str,
                 as_of: Any, survivorship: Survivorship) -> None:
        if fmt not in FORMATS:
            raise ExportError(f"format {fmt!r}: use csv or ndjson")

        def readable(path: tuple[str, ...]) -> bool:
            return view is None or all(view.can_read(c) for c in path)

        def mask(coordinate: str) -> Mask | None:
            return view.mask(coordinate) if view is not None else None

        missing = [c for c in REQUIRED if not readable((c,))]
        if missing:
            who = view.describe() if view is not None else "this principal"
            raise ExportError(f"{who} may not read {', '.join(missing)}: an accounts export "
                              f"needs {', '.join(REQUIRED)} (docs/export.md)", "FORBIDDEN", 403)
        self.columns = [c for c in COLUMNS if readable(c.path)]
        self.header = [c.name for c in self.columns] + ["error"]
        self.masks = [mask(c.path[-1]) for c in self.columns]
        self.mask_key = mask_key
        self.csv = fmt == "csv"
        self.convert = [self._converter(c, m) for c, m in zip(self.columns, self.masks,
                                                                strict=True)]
        self.names = any(c.name in ("display_name", "kind") for c in self.columns)
        self.survivorship = survivorship
        # Every row says the same currency and as_of (masked once, if at all).
        fixed = {"currency": currency, "as_of": as_of}
        self.fixed = {i: self._masked(i, fixed[c.name]) for i, c in enumerate(self.columns)
                      if c.name in fixed}
        #: Coordinates a row discloses, and whether masked (the audit entry's fields).
        self.fields = sorted({c: mask(c) is not None for column in self.columns
                              for c in column.path}.items())
        self.viewable, self.mask_of = readable, mask

    def _converter(self, column: Column, mask: Mask | None) -> Callable[[Any], Any]:
        if mask is not None:
            return lambda v: plain(mask_value(mask, v, self.mask_key), self.csv)
        if column.kind == "text" and self.csv:
            return _text
        return CONVERT[column.kind]

    def _masked(self, index: int, value: Any) -> Any:
        mask = self.masks[index]
        value = value if mask is None else mask_value(mask, value, self.mask_key)
        return plain(value, self.csv)

    def check_filters(self, filters: Filters) -> None:
        """A filter reads its column: refused when the role does not see it in clear."""
        for text in filters.given:
            key = text.partition("=")[0]
            path = FILTER_NEEDS[key]
            if not self.viewable(path) or self.mask_of(path[-1]) is not None:
                raise ExportError(f"filter {key}: the role may not read "
                                  f"{' > '.join(path)} in clear, so it may not filter on it",
                                  "FORBIDDEN", 403)

    def subject(self, found: Cluster, account: Account | None) -> Subject:
        named = merge.naming(found.records, self.survivorship) if self.names else None
        return Subject(found, named, account)

    def row(self, found: Cluster, account: Account | Exception) -> list[Any]:
        failed = isinstance(account, Exception)
        subject = self.subject(found, None if failed else account)  # type: ignore[arg-type]
        fixed, convert = self.fixed, self.convert
        values: list[Any] = []
        for i, column in enumerate(self.columns):
            if i in fixed:
                values.append(fixed[i])
            elif failed and column.of_account:
                values.append(None)
            else:
                values.append(convert[i](column.get(subject)))
        values.append(str(account) if failed else None)
        return values

    def header_bytes(self) -> bytes:
        return self.encode([self.header]) if self.csv else b""

    def encode(self, rows: list[list[Any]]) -> bytes:
        if self.csv:
            out = io.StringIO()
            csv.writer(out).writerows(rows)
            return out.getvalue().encode()
        header = self.header
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        return b"".join(dumps(dict(zip(header, row, strict=True)), option=option)
                        for row in rows)
