"""One customer's account, computed from the ledger: totals, per shop, risk and profitability.

Movements count by kind and status: an invoice unless cancelled or failed, a payment, refund or
credit once completed. Each shop's subtotal in each currency is summed exactly, then converted
once to the account's currency and rounded to its minor units. The balance is what the customer
owes (invoiced - paid - credited): a refund returns money for goods taken back, so it lowers
revenue, not the balance. A negative balance is open credit. A pending invoice is overdue once
its payment terms have passed. docs/finance.md gives every rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from gateway.finance.config import FinanceConfig, Thresholds
from gateway.finance.ledger import Ledger
from gateway.finance.money import MoneyError, SourceDataError, currency_code, rounded
from gateway.finance.rates import RateUsed
from gateway.finance.types import (
    Account,
    ExchangeRate,
    Profitability,
    Risk,
    RiskClass,
    RiskReason,
    ShopAccount,
)
from gateway.graphql_types import Money

#: The statuses in which a movement counts, per kind.
EFFECTIVE: Mapping[str, frozenset[str]] = {
    "INVOICE": frozenset({"COMPLETED", "PENDING", "UNKNOWN"}),
    "PAYMENT": frozenset({"COMPLETED"}),
    "REFUND": frozenset({"COMPLETED"}),
    "CREDIT": frozenset({"COMPLETED"}),
}
MEASURE = {"INVOICE": "invoiced", "PAYMENT": "paid", "REFUND": "refunded", "CREDIT": "credited"}
MEASURES = ("invoiced", "paid", "refunded", "credited", "overdue")


class Converter:
    """Amounts into one currency as of one day, rounded to its minor units. One converter
    serves a batch of accounts: rates and the config's amounts are looked up once."""

    def __init__(self, finance: FinanceConfig, currency: str, day: date) -> None:
        self.finance = finance
        self.currency = currency
        self.day = day
        self.used: dict[str, RateUsed] = {}
        self._quantum = rounded(Decimal(1), currency)  # 1, 1.00 or 1.000
        self._rounding = finance.rounding
        self._configured: dict[Decimal, Decimal] = {}
        self._limits: tuple[dict[str, Decimal | None], dict[str, Decimal | None]] | None = None

    def rate(self, currency: str) -> Decimal:
        rate = self.used.get(currency)
        if rate is None:
            rate = self.used[currency] = self.finance.rates.rate(currency, self.currency,
                                                                 self.day)
        return rate.rate

    def __call__(self, amount: Decimal, currency: str) -> Decimal:
        if currency != self.currency:
            amount = amount * self.rate(currency)
        return amount.quantize(self._quantum, self._rounding)

    def money(self, amount: Decimal) -> Money:
        return Money(amount=amount.quantize(self._quantum, self._rounding),
                     currency=self.currency)

    def configured(self, amount: Decimal) -> Decimal:
        """An amount of the config (thresholds, costs) in the account's currency."""
        if not amount:
            return amount
        converted = self._configured.get(amount)
        if converted is None:
            converted = self._configured[amount] = self(amount, self.finance.currency)
        return converted

    def limits(self) -> tuple[dict[str, Decimal | None], dict[str, Decimal | None]]:
        """The watch and defaulter thresholds in this currency."""
        if self._limits is None:
            self._limits = (risk_limits(self, self.finance.watch),
                            risk_limits(self, self.finance.defaulter))
        return self._limits

    def rates(self, currencies: set[str]) -> list[ExchangeRate]:
        """The rates that converted ``currencies`` (those an account was in)."""
        return [ExchangeRate(source=r.source, target=r.target, rate=r.rate, effective=r.since)
                for code in sorted(currencies) if (r := self.used.get(code)) is not None]


@dataclass(slots=True)
class ShopFigures:
    """One shop's part of an account, summed in the account's currency (not yet rounded)."""

    sums: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MEASURES, Decimal(0)))
    currencies: set[str] = field(default_factory=set)
    count: int = 0
    failed: int = 0

    def account(self, name: str, label: str | None, convert: Converter) -> ShopAccount:
        sums = self.sums
        return ShopAccount(
            shop=name, label=label, currencies=sorted(self.currencies),
            invoiced=convert.money(sums["invoiced"]), paid=convert.money(sums["paid"]),
            refunded=convert.money(sums["refunded"]), credited=convert.money(sums["credited"]),
            overdue=convert.money(sums["overdue"]),
            balance=convert.money(sums["invoiced"] - sums["paid"] - sums["credited"]),
            transaction_count=self.count, failed_payments=self.failed)


def build_account(finance: FinanceConfig, labels: Mapping[str, str], ledger: Ledger,
                  refs: set[tuple[str, str]], as_of: date, currency: str,
                  convert: Converter | None = None) -> Account:
    """The account of the customer whose records are ``refs``, from a ledger that may hold
    other customers' movements too; ``convert``: one shared by a batch of accounts of the same
    currency and day. MoneyError for a currency that is not ISO 4217 or a rate the config
    lacks."""
    convert = convert or Converter(finance, currency, as_of)
    native: dict[tuple[str, str], dict[str, Decimal]] = {}
    shops: dict[str, ShopFigures] = {}
    for m in ledger.movements:
        if (m.source, m.customer_key) not in refs:
            continue
        code = _currency(m.currency, m.source)
        shop = shops.get(m.source)
        if shop is None:
            shop = shops[m.source] = ShopFigures()
        shop.count += m.count
        shop.currencies.add(code)
        if m.kind == "PAYMENT" and m.status == "FAILED":
            shop.failed += m.count
        if m.status in EFFECTIVE.get(m.kind, ()):
            sums = native.get((m.source, code))
            if sums is None:
                sums = native[(m.source, code)] = dict.fromkeys(MEASURES, Decimal(0))
            sums[MEASURE[m.kind]] += m.amount
    oldest: date | None = None
    overdue_count = 0
    terms = timedelta(days=finance.payment_terms_days)
    for invoice in ledger.open_invoices:
        if (invoice.source, invoice.customer_key) not in refs or invoice.date is None:
            continue
        issued = invoice.date.date()
        if issued + terms < as_of:
            code = _currency(invoice.currency, invoice.source)
            native.setdefault((invoice.source, code),
                              dict.fromkeys(MEASURES, Decimal(0)))["overdue"] += invoice.amount
            shops.setdefault(invoice.source, ShopFigures()).currencies.add(code)
            overdue_count += 1
            oldest = issued if oldest is None else min(oldest, issued)
    total = dict.fromkeys(MEASURES, Decimal(0))
    for (source, code), sums in native.items():
        shop_sums = shops[source].sums
        for measure, amount in sums.items():
            if amount:
                converted = convert(amount, code)
                shop_sums[measure] += converted
                total[measure] += converted
    count = failed = 0
    currencies: set[str] = set()
    for shop in shops.values():
        count += shop.count
        failed += shop.failed
        currencies |= shop.currencies
    balance = total["invoiced"] - total["paid"] - total["credited"]
    days_past_due = (as_of - (oldest + terms)).days if oldest is not None else 0
    money = convert.money
    account = Account(
        currency=currency, as_of=as_of, invoiced=money(total["invoiced"]),
        paid=money(total["paid"]), refunded=money(total["refunded"]),
        credited=money(total["credited"]), overdue=money(total["overdue"]),
        balance=money(balance), open_credit=money(max(Decimal(0), -balance)),
        oldest_overdue_date=oldest, days_past_due=max(0, days_past_due),
        overdue_invoices=overdue_count, transaction_count=count, failed_payments=failed,
        rates=convert.rates(currencies),
        risk=assess(convert, days_past_due, failed, total["overdue"]),
        profitability=profitability(finance, convert, total, count))
    # Shops become ShopAccount values only when a query selects them (an export does not).
    account.shop_figures = [(name, labels.get(name), shop) for name, shop in sorted(shops.items())]
    account.converter = convert
    return account


@lru_cache(maxsize=1024)
def _currency(code: str, source: str) -> str:
    """``code`` checked as ISO 4217 (once per code and source: it runs per movement)."""
    try:
        return currency_code(code, f"source '{source}'")
    except MoneyError as exc:
        raise SourceDataError(f"{exc}; fix the source's data, or map its currency column or "
                              f"set defaults.currency in the config (docs/finance.md)") from None


# --- risk ------------------------------------------------------------------------------------

#: How much each measure weighs in the score (out of 100).
WEIGHTS = {"DAYS_PAST_DUE": 40, "FAILED_PAYMENTS": 30, "OVERDUE_AMOUNT": 30}


def risk_limits(convert: Converter, level: Thresholds) -> dict[str, Decimal | None]:
    """A level's thresholds, the overdue amount in the account's currency."""
    amount = level.overdue_amount
    return {"DAYS_PAST_DUE": _opt(level.days_past_due),
            "FAILED_PAYMENTS": _opt(level.failed_payments),
            "OVERDUE_AMOUNT": None if amount is None else convert.configured(amount)}


def assess(convert: Converter, days_past_due: int, failed: int, overdue: Decimal) -> Risk:
    """DEFAULTER when any defaulter threshold is reached, WATCH when any watch threshold is,
    else GOOD; the score falls from 100 as each measure nears its defaulter threshold."""
    if not (days_past_due > 0 or failed or overdue):
        return Risk(risk_class=RiskClass.GOOD, score=100, reasons=[])  # most customers
    figures = {"DAYS_PAST_DUE": Decimal(days_past_due), "FAILED_PAYMENTS": Decimal(failed),
               "OVERDUE_AMOUNT": overdue}
    watch, defaulter = convert.limits()
    reasons: list[RiskReason] = []
    for code, value in figures.items():
        for level, table in ((RiskClass.DEFAULTER, defaulter), (RiskClass.WATCH, watch)):
            threshold = table[code]
            if threshold is not None and value > 0 and value >= threshold:
                reasons.append(RiskReason(
                    code=code, level=level, value=_shown(code, value, convert.currency),
                    threshold=_shown(code, threshold, convert.currency),
                    message=f"{_label(code)} {_shown(code, value, convert.currency)} reached "
                            f"the {level.value} threshold of "
                            f"{_shown(code, threshold, convert.currency)}"))
                break
    penalty = Decimal(0)
    for code, weight in WEIGHTS.items():
        threshold = defaulter[code]
        if threshold:
            penalty += weight * min(Decimal(1), figures[code] / threshold)
    levels = {r.level for r in reasons}
    risk_class = RiskClass.DEFAULTER if RiskClass.DEFAULTER in levels else (
        RiskClass.WATCH if levels else RiskClass.GOOD)
    return Risk(risk_class=risk_class, score=int(round(100 - penalty)), reasons=reasons)


def _opt(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _label(code: str) -> str:
    return {"DAYS_PAST_DUE": "days past due", "FAILED_PAYMENTS": "failed payments",
            "OVERDUE_AMOUNT": "overdue amount"}[code]


def _shown(code: str, value: Decimal, currency: str) -> str:
    return f"{value} {currency}" if code == "OVERDUE_AMOUNT" else str(int(value))


# --- profitability -----------------------------------------------------------------------------

def profitability(finance: FinanceConfig, convert: Converter, total: Mapping[str, Decimal],
                  count: int) -> Profitability:
    revenue = total["invoiced"] - total["refunded"]
    net = revenue - total["credited"]
    cost = convert.configured(finance.cost_per_customer) + convert.configured(
        finance.cost_per_transaction) * count
    margin = net * finance.gross_margin - cost
    tier = next((t.name for t in finance.tiers
                 if (t.min_revenue is None or net >= convert.configured(t.min_revenue))
                 and (t.min_margin is None or margin >= convert.configured(t.min_margin))
                 and (t.min_transactions is None or count >= t.min_transactions)), None)
    return Profitability(revenue=convert.money(revenue), discounts=convert.money(total["credited"]),
                         net_revenue=convert.money(net), cost_to_serve=convert.money(cost),
                         margin=convert.money(margin), tier=tier)
