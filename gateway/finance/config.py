"""The config file's ``finance:`` section: reporting currency, rates, terms, risk, profit, tiers.

Every key is optional; without the section, accounts are in EUR with the defaults below and
only EUR amounts can be totalled (a rate is needed for any other currency). See docs/finance.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from gateway.finance.money import ROUNDINGS, MoneyError, currency_code
from gateway.finance.rates import RateTable

SECTION_KEYS = ("currency", "rounding", "payment_terms_days", "rates", "risk", "profit", "tiers")
THRESHOLD_KEYS = ("days_past_due", "failed_payments", "overdue_amount")
TIER_KEYS = ("name", "min_revenue", "min_margin", "min_transactions")
PROFIT_KEYS = ("gross_margin", "cost_per_customer", "cost_per_transaction")


@dataclass(frozen=True)
class Thresholds:
    """A risk level is reached when any one of its thresholds is (None: not used)."""

    days_past_due: int | None = None
    failed_payments: int | None = None
    overdue_amount: Decimal | None = None


@dataclass(frozen=True)
class Tier:
    """A customer is in the first tier whose every minimum they reach (none: everyone)."""

    name: str
    min_revenue: Decimal | None = None
    min_margin: Decimal | None = None
    min_transactions: int | None = None


@dataclass(frozen=True)
class FinanceConfig:
    currency: str = "EUR"  # the reporting currency of totals
    rounding: str = ROUND_HALF_EVEN
    payment_terms_days: int = 30  # a pending invoice older than this is overdue
    rates: RateTable = field(default_factory=lambda: RateTable("EUR", {}))
    watch: Thresholds = Thresholds(15, 1, Decimal("50"))
    defaulter: Thresholds = Thresholds(60, 3, Decimal("500"))
    gross_margin: Decimal = Decimal("0.30")  # share of net revenue left once goods are paid for
    cost_per_customer: Decimal = Decimal("0")
    cost_per_transaction: Decimal = Decimal("0")
    tiers: tuple[Tier, ...] = (Tier("GOLD", Decimal("1000")), Tier("SILVER", Decimal("250")),
                               Tier("BRONZE"))


Problem = Callable[[str, str], None]


def parse_finance_section(doc: Any, location: str = "finance"
                          ) -> tuple[FinanceConfig, list[tuple[str, str]]]:
    """The ``finance:`` section and its problems as ``(location, message)``; None: defaults."""
    problems: list[tuple[str, str]] = []

    def problem(where: str, message: str) -> None:
        problems.append((where, message))

    section = _mapping(doc, location, SECTION_KEYS, problem)
    defaults = FinanceConfig()
    currency = defaults.currency
    if "currency" in section:
        try:
            currency = currency_code(section["currency"], f"{location}.currency")
        except MoneyError as exc:
            problem(f"{location}.currency", str(exc).split(": ", 1)[1])
    rounding = section.get("rounding", "half_even")
    if rounding not in ROUNDINGS:
        problem(f"{location}.rounding", f"unknown rounding {rounding!r}; one of "
                                        f"{', '.join(ROUNDINGS)}")
        rounding = "half_even"
    terms = _whole(section.get("payment_terms_days"), f"{location}.payment_terms_days", problem)
    rates = _rates(section.get("rates"), currency, f"{location}.rates", problem)
    risk = _mapping(section.get("risk"), f"{location}.risk", ("watch", "defaulter"), problem)
    watch = _thresholds(risk.get("watch"), f"{location}.risk.watch", problem, defaults.watch)
    defaulter = _thresholds(risk.get("defaulter"), f"{location}.risk.defaulter", problem,
                            defaults.defaulter)
    profit = _mapping(section.get("profit"), f"{location}.profit", PROFIT_KEYS, problem)
    margin = _amount(profit.get("gross_margin"), f"{location}.profit.gross_margin", problem)
    if margin is not None and not 0 <= margin <= 1:
        problem(f"{location}.profit.gross_margin", "a share between 0 and 1, such as 0.3")
        margin = None
    tiers = _tiers(section["tiers"], f"{location}.tiers", problem) if "tiers" in section else None
    config = FinanceConfig(
        currency=currency, rounding=ROUNDINGS[rounding],
        payment_terms_days=defaults.payment_terms_days if terms is None else terms,
        rates=rates, watch=watch, defaulter=defaulter,
        gross_margin=defaults.gross_margin if margin is None else margin,
        cost_per_customer=_amount(profit.get("cost_per_customer"),
                                  f"{location}.profit.cost_per_customer", problem) or Decimal(0),
        cost_per_transaction=_amount(profit.get("cost_per_transaction"),
                                     f"{location}.profit.cost_per_transaction", problem
                                     ) or Decimal(0),
        tiers=defaults.tiers if tiers is None else tiers)
    return config, problems


def _mapping(doc: Any, where: str, allowed: tuple[str, ...] | None, problem: Problem) -> dict:
    """``doc`` as a mapping whose keys are among ``allowed`` (None: any key)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        problem(where, f"expected a mapping (key: value), got {type(doc).__name__}")
        return {}
    for key in doc:
        if allowed is not None and key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problem(f"{where}.{key}", f"unknown key; {hint}allowed here: {', '.join(allowed)}")
    return doc


def _whole(value: Any, where: str, problem: Problem) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    problem(where, f"expected a whole number, 0 or more, got {value!r}")
    return None


def _amount(value: Any, where: str, problem: Problem) -> Decimal | None:
    """A non-negative exact decimal; write amounts as text ("12.50") or plain numbers."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) \
            and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        problem(where, f"expected an amount, 0 or more, such as \"12.50\", got {value!r}")
        return None
    return amount


def _rates(doc: Any, base: str, where: str, problem: Problem) -> RateTable:
    """``{date: {CUR: rate}}``: units of the reporting currency per 1 unit of each currency."""
    dated: dict[date, dict[str, Decimal]] = {}
    for day, table in _mapping(doc, where, None, problem).items():
        at = f"{where}.{day}"
        try:
            when = day if isinstance(day, date) else date.fromisoformat(str(day))
        except ValueError:
            problem(at, "expected a date written YYYY-MM-DD, the day the rates take effect")
            continue
        rates: dict[str, Decimal] = {}
        for code, value in _mapping(table, at, None, problem).items():
            try:
                currency = currency_code(code, f"{at}.{code}")
            except MoneyError as exc:
                problem(f"{at}.{code}", str(exc).split(": ", 1)[1])
                continue
            rate = _amount(value, f"{at}.{code}", problem)
            if rate is not None and rate == 0:
                problem(f"{at}.{code}", "a rate cannot be 0")
            elif rate is not None and currency != base:
                rates[currency] = rate
        dated[when] = rates
    return RateTable(base, dated)


def _thresholds(doc: Any, where: str, problem: Problem, default: Thresholds) -> Thresholds:
    if doc is None:
        return default
    doc = _mapping(doc, where, THRESHOLD_KEYS, problem)
    return Thresholds(_whole(doc.get("days_past_due"), f"{where}.days_past_due", problem),
                      _whole(doc.get("failed_payments"), f"{where}.failed_payments", problem),
                      _amount(doc.get("overdue_amount"), f"{where}.overdue_amount", problem))


def _tiers(doc: Any, where: str, problem: Problem) -> tuple[Tier, ...]:
    if not isinstance(doc, list):
        problem(where, "expected a list of tiers, best first, e.g. "
                       "[{name: GOLD, min_revenue: 1000}, {name: BRONZE}]")
        return ()
    tiers = []
    for i, item in enumerate(doc):
        at = f"{where}[{i}]"
        item = _mapping(item, at, TIER_KEYS, problem)
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            problem(f"{at}.name", "each tier needs a name, such as GOLD")
            continue
        tiers.append(Tier(name.strip(), _amount(item.get("min_revenue"), f"{at}.min_revenue",
                                               problem),
                          _amount(item.get("min_margin"), f"{at}.min_margin", problem),
                          _whole(item.get("min_transactions"), f"{at}.min_transactions",
                                 problem)))
    return tuple(tiers)

