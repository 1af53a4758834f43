"""Customer accounts: exact money, rates as of a day, risk classes, profitability, pushdown.

The money rules are checked on crafted ledgers (gateway.finance.account on known movements);
the pushdown on the real sample databases (Sakila in MariaDB, Pagila in PostgreSQL: schemas we
did not design), against the databases' own sums; the GraphQL surface on the demo world.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gateway.demo.run import DEMO_TOKEN_ENV
from gateway.demo.world import build_world
from gateway.finance.account import build_account
from gateway.finance.config import FinanceConfig, Thresholds, Tier, parse_finance_section
from gateway.finance.ledger import Ledger, Movements, OpenInvoice
from gateway.finance.money import MoneyError, currency_code, rounded
from gateway.finance.rates import MissingRate, RateTable
from gateway.finance.types import RiskClass
from tests.gateway_client import gateway_client
from tests.servers import demo_config_copy, running_crm
from tests.test_examples import CONFIG as SAMPLES_CONFIG
from tests.test_examples import HISTORY as SAMPLES_HISTORY
from tests.test_examples import samples  # noqa: F401 (the fixture that loads the samples)

AS_OF = date(2026, 9, 30)
RATES = RateTable("EUR", {date(2026, 1, 1): {"GBP": Decimal("1.1712"), "JPY": Decimal("0.0061")},
                          date(2026, 6, 1): {"GBP": Decimal("1.1800")}})
FINANCE = FinanceConfig(
    currency="EUR", payment_terms_days=30, rates=RATES,
    watch=Thresholds(days_past_due=15, failed_payments=2, overdue_amount=Decimal("50")),
    defaulter=Thresholds(days_past_due=90, failed_payments=4, overdue_amount=Decimal("500")),
    gross_margin=Decimal("0.5"), cost_per_customer=Decimal("2.00"),
    cost_per_transaction=Decimal("0.10"),
    tiers=(Tier("GOLD", min_revenue=Decimal("1000")), Tier("SILVER", min_revenue=Decimal("100")),
           Tier("BRONZE")))
SHOPS = {"paris": "Paris", "london": "London"}


def moves(*items: tuple[str, str, str, str, str], count: int = 1, key: str = "1") -> list:
    """Movements of record ``key``: (source, kind, status, currency, amount) each."""
    return [Movements(source, key, kind, status, currency, count, Decimal(amount))
            for source, kind, status, currency, amount in items]


def account(movements: list, opens: list | None = None, currency: str = "EUR",
            as_of: date = AS_OF, finance: FinanceConfig = FINANCE) -> Any:
    refs = {(m.source, m.customer_key) for m in movements} | {
        (o.source, o.customer_key) for o in opens or []}
    return build_account(finance, SHOPS, Ledger(movements, opens or []), refs, as_of,
                         currency)


def overdue(amount: str, days_ago: int, source: str = "paris", currency: str = "EUR") -> OpenInvoice:
    """A pending invoice of record 1, issued ``days_ago`` days before AS_OF."""
    issued = datetime.combine(AS_OF - timedelta(days=days_ago), time(9), tzinfo=UTC)
    return OpenInvoice(source, "1", Decimal(amount), currency, issued)


# --- exact money -------------------------------------------------------------------------------

def test_tenths_add_up_exactly_and_amounts_keep_their_minor_units() -> None:
    figures = account(moves(("paris", "INVOICE", "COMPLETED", "EUR", "0.10"),
                            ("paris", "INVOICE", "PENDING", "EUR", "0.20"),
                            ("paris", "PAYMENT", "COMPLETED", "EUR", "0.30")))
    assert str(figures.invoiced.amount) == "0.30"  # not 0.30000000000000004
    assert str(figures.balance.amount) == "0.00"
    assert figures.invoiced.currency == "EUR"


@pytest.mark.parametrize(("amount", "currency", "rule", "expected"), [
    ("0.125", "EUR", "half_even", "0.12"), ("0.135", "EUR", "half_even", "0.14"),
    ("0.125", "EUR", "half_up", "0.13"), ("1234.5", "JPY", "half_even", "1234"),
    ("1235.5", "JPY", "half_even", "1236"), ("0.0005", "BHD", "half_up", "0.001"),
    ("0.0005", "BHD", "half_even", "0.000"), ("-0.125", "EUR", "down", "-0.12"),
])
def test_rounding_follows_each_currencys_minor_units(amount, currency, rule, expected) -> None:
    config, problems = parse_finance_section({"rounding": rule})
    assert problems == []
    assert str(rounded(Decimal(amount), currency, config.rounding)) == expected


def test_unknown_currencies_are_refused_with_the_fix() -> None:
    for bad in ("XYZ", "euro", "", None, "XAU"):  # XAU: gold has no minor units
        with pytest.raises(MoneyError, match="not an ISO 4217 currency code"):
            currency_code(bad, "account(currency:)")
    assert currency_code(" gbp ", "x") == "GBP"


# --- rates ---------------------------------------------------------------------------------

def test_each_subtotal_is_converted_at_the_rate_in_force_on_the_day_and_the_rate_is_shown() -> None:
    movements = moves(("paris", "INVOICE", "COMPLETED", "EUR", "10.00"),
                      ("london", "INVOICE", "COMPLETED", "GBP", "50.00"),
                      ("london", "INVOICE", "COMPLETED", "GBP", "0.01"))
    summer = account(movements)
    assert summer.invoiced.amount == Decimal("10.00") + Decimal("59.01")  # 50.01 GBP x 1.18
    assert [(r.source, r.target, r.rate, r.effective) for r in summer.rates] == [
        ("GBP", "EUR", Decimal("1.18"), date(2026, 6, 1))]
    spring = account(movements, as_of=date(2026, 3, 31))
    assert spring.invoiced.amount == Decimal("10.00") + Decimal("58.57")  # 58.5717 rounded
    assert spring.rates[0].rate == Decimal("1.1712")
    london = next(s for s in spring.shops() if s.shop == "london")
    assert (london.currencies, london.invoiced.amount) == (["GBP"], Decimal("58.57"))


def test_cross_rates_go_through_the_base_and_round_to_the_target() -> None:
    yen = account(moves(("london", "PAYMENT", "COMPLETED", "GBP", "10.00")), currency="JPY")
    # 1 GBP = 1.18 EUR = 1.18 / 0.0061 JPY = 193.44... JPY; yen have no minor units.
    assert (yen.paid.amount, yen.paid.currency) == (Decimal("1934"), "JPY")
    rates = {r.source: r for r in yen.rates}  # EUR -> JPY converted the config's costs
    assert rates["GBP"].rate == (Decimal("1.18") / Decimal("0.0061")).quantize(
        rates["GBP"].rate)
    assert (rates["GBP"].target, rates["GBP"].effective) == ("JPY", date(2026, 6, 1))


def test_a_missing_rate_names_the_currency_the_day_and_the_config_key() -> None:
    with pytest.raises(MissingRate, match=r"no exchange rate for GBP on or before 2025-12-31 "
                                          r"\(its first rate is dated 2026-01-01\); add one "
                                          r"under finance.rates"):
        account(moves(("london", "PAYMENT", "COMPLETED", "GBP", "1.00")), as_of=date(2025, 12, 31))
    with pytest.raises(MissingRate, match="no exchange rate for USD"):
        account(moves(("london", "PAYMENT", "COMPLETED", "USD", "1.00")))


def test_a_source_currency_that_is_not_iso_names_the_source() -> None:
    with pytest.raises(MoneyError, match="source 'london'.*'€'.*defaults.currency"):
        account(moves(("london", "PAYMENT", "COMPLETED", "€", "1.00")))


# --- balance, credit, overdue --------------------------------------------------------------------

def test_refunds_lower_revenue_not_the_balance_and_credit_notes_are_open_credit() -> None:
    figures = account(moves(("paris", "INVOICE", "COMPLETED", "EUR", "100.00"),
                            ("paris", "INVOICE", "CANCELLED", "EUR", "40.00"),
                            ("paris", "PAYMENT", "COMPLETED", "EUR", "100.00"),
                            ("paris", "PAYMENT", "FAILED", "EUR", "100.00"),
                            ("paris", "REFUND", "COMPLETED", "EUR", "30.00"),
                            ("paris", "CREDIT", "COMPLETED", "EUR", "5.00")))
    assert figures.invoiced.amount == Decimal("100.00")  # the cancelled one does not count
    assert figures.balance.amount == Decimal("-5.00")
    assert figures.open_credit.amount == Decimal("5.00")
    assert (figures.failed_payments, figures.transaction_count) == (1, 6)
    profit = figures.profitability
    assert (profit.revenue.amount, profit.discounts.amount, profit.net_revenue.amount) == (
        Decimal("70.00"), Decimal("5.00"), Decimal("65.00"))
    # 65 x 0.5 - (2.00 + 6 x 0.10)
    assert (profit.cost_to_serve.amount, profit.margin.amount) == (Decimal("2.60"),
                                                                   Decimal("29.90"))
    assert profit.tier == "BRONZE"


def test_a_pending_invoice_is_overdue_only_once_its_terms_have_passed() -> None:
    figures = account(moves(("paris", "INVOICE", "PENDING", "EUR", "80.00")),
                      [overdue("30.00", days_ago=29), overdue("50.00", days_ago=45)])
    assert figures.overdue.amount == Decimal("50.00")
    assert figures.overdue_invoices == 1
    assert figures.oldest_overdue_date == AS_OF - timedelta(days=45)
    assert figures.days_past_due == 15
    assert figures.balance.amount == Decimal("80.00")


# --- risk ----------------------------------------------------------------------------------

def test_a_customer_who_pays_on_time_is_good() -> None:
    figures = account(moves(("paris", "INVOICE", "COMPLETED", "EUR", "120.00"),
                            ("paris", "PAYMENT", "COMPLETED", "EUR", "120.00"), count=12))
    assert (figures.risk.risk_class, figures.risk.score, figures.risk.reasons) == (
        RiskClass.GOOD, 100, [])


def test_one_threshold_reached_is_enough_for_watch_and_the_reason_says_which() -> None:
    figures = account(moves(("paris", "PAYMENT", "FAILED", "EUR", "20.00"), count=2))
    risk = figures.risk
    assert risk.risk_class is RiskClass.WATCH
    assert [(r.code, r.level, r.value, r.threshold) for r in risk.reasons] == [
        ("FAILED_PAYMENTS", RiskClass.WATCH, "2", "2")]
    assert risk.score == 85  # 30 x 2/4 off
    assert "failed payments 2 reached the WATCH threshold of 2" in risk.reasons[0].message


def test_a_long_unpaid_invoice_makes_a_defaulter_with_every_reason() -> None:
    figures = account(moves(("paris", "PAYMENT", "FAILED", "EUR", "10.00"), count=1),
                      [overdue("900.00", days_ago=200)])
    risk = figures.risk
    assert risk.risk_class is RiskClass.DEFAULTER
    assert {(r.code, r.level) for r in risk.reasons} == {
        ("DAYS_PAST_DUE", RiskClass.DEFAULTER), ("OVERDUE_AMOUNT", RiskClass.DEFAULTER)}
    assert next(r for r in risk.reasons if r.code == "OVERDUE_AMOUNT").value == "900.00 EUR"
    assert risk.score == round(100 - 40 - 30 - 30 * 0.25)


def test_thresholds_in_the_config_currency_are_converted_for_another_currency() -> None:
    # 45 GBP overdue = 53.10 EUR: over the 50 EUR watch threshold, whatever currency is asked.
    opens = [overdue("45.00", days_ago=31, source="london", currency="GBP")]
    for currency in ("EUR", "GBP"):
        risk = account([], opens, currency=currency).risk
        assert [r.code for r in risk.reasons] == ["OVERDUE_AMOUNT"], currency
        assert risk.risk_class is RiskClass.WATCH


def test_tiers_take_the_first_rule_whose_minimums_hold() -> None:
    def tier(amount: str) -> str | None:
        return account(moves(("paris", "INVOICE", "COMPLETED", "EUR", amount))).profitability.tier

    assert (tier("1000.00"), tier("999.99"), tier("100.00"), tier("1.00")) == (
        "GOLD", "SILVER", "SILVER", "BRONZE")


# --- the finance: section ------------------------------------------------------------------------

def test_config_problems_name_their_place_and_the_fix() -> None:
    _, problems = parse_finance_section({
        "currency": "EURO", "rounding": "nearest", "payment_terms_days": -3,
        "rates": {"2026-13-01": {"GBP": "1.1"}, "2026-01-01": {"GBP": "-1", "ABC": "2"}},
        "risk": {"watch": {"days_past_due": "soon"}, "defaulter": {"late": 3}},
        "profit": {"gross_margin": "1.5"}, "tiers": [{"min_revenue": 3}], "fx": {}})
    where = dict(problems)
    assert "ISO 4217" in where["finance.currency"]
    assert "half_even" in where["finance.rounding"]
    assert "whole number" in where["finance.payment_terms_days"]
    assert "YYYY-MM-DD" in where["finance.rates.2026-13-01"]
    assert "0 or more" in where["finance.rates.2026-01-01.GBP"]
    assert "ISO 4217" in where["finance.rates.2026-01-01.ABC"]
    assert "whole number" in where["finance.risk.watch.days_past_due"]
    assert "allowed here" in where["finance.risk.defaulter.late"]
    assert "between 0 and 1" in where["finance.profit.gross_margin"]
    assert "needs a name" in where["finance.tiers[0].name"]
    assert "allowed here" in where["finance.fx"]


# --- pushdown, on schemas we did not design ------------------------------------------------------

ACCOUNT_OF_MARY = """{
  customerByEmail(email: "mary.smith@sakilacustomer.org") {
    account(asOf: "2030-01-01") {
      paid { amount currency } transactionCount
      shops { shop paid { amount } transactionCount }
    }
  }
}"""


def _direct_sum(command: list[str]) -> tuple[Decimal, int]:
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    total, count = out.split()
    return Decimal(total), int(count)


def test_sums_run_in_the_sources_as_group_by_and_match_the_databases(samples) -> None:  # noqa: F811
    import asyncio

    async def ask() -> dict:
        async with gateway_client(SAMPLES_CONFIG, config_store=SAMPLES_HISTORY) as client:
            response = await client.post("/graphql", json={
                "query": ACCOUNT_OF_MARY, "extensions": {"explain": True}})
            return response.json()

    body = asyncio.run(ask())
    assert not body.get("errors"), body["errors"]
    sums = "SELECT SUM(amount), COUNT(*) FROM payment WHERE customer_id = 1"
    sakila = _direct_sum(["mariadb", "-uroot", "-h127.0.0.1", "-N", "-B", "sakila", "-e", sums])
    pagila = _direct_sum(["psql", "-h", "127.0.0.1", "-U", "postgres", "-At", "-F", " ",
                          "-d", "pagila", "-c", sums])
    account = body["data"]["customerByEmail"]["account"]
    shops = {s["shop"]: (Decimal(s["paid"]["amount"]), s["transactionCount"])
             for s in account["shops"]}
    assert shops == {"sakila": sakila, "pagila": pagila}
    assert Decimal(account["paid"]["amount"]) == sakila[0] + pagila[0]
    assert account["paid"]["currency"] == "USD"
    statements = {call["source"]: " ".join(call["statements"])
                  for call in body["extensions"]["explain"]["calls"] if call["step"] == "account"}
    for source in ("sakila", "pagila"):
        sql = statements[source]
        assert 'SUM("payment"."amount")' in sql.replace("`", '"'), sql
        assert "GROUP BY" in sql and "COUNT(*)" in sql, sql
        assert '"payment_date" <' in sql.replace("`", '"'), sql  # asOf, in the source


# --- GraphQL on the demo world -------------------------------------------------------------------

TOKEN = "finance-token"
ENV = {DEMO_TOKEN_ENV: TOKEN}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world"), customers=160, crm_url="http://unset")


@pytest.fixture
def config(world, tmp_path):
    with running_crm(world.crm_seed, token=TOKEN) as (url, _):
        yield demo_config_copy(world.config_path, url, tmp_path / "demo")


async def ask(client, query: str, variables: dict | None = None, explain: bool = False) -> dict:
    body: dict = {"query": query, "variables": variables or {}}
    if explain:
        body["extensions"] = {"explain": True}
    response = await client.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    return response.json()


FIRST_PAGE = """{ customers(first: 5) { edges { node { id
  account(asOf: "2025-12-31") { transactionCount invoiced { amount } shops { shop } } } } } }"""

PAGE_OF_TRANSACTIONS = """query($id: ID!, $after: String, $kinds: [TransactionKind!],
                                $from: Date, $to: Date) {
  customer(id: $id) { account(asOf: "2025-12-31") { transactionCount
    transactions(first: 3, after: $after, kinds: $kinds, from: $from, to: $to) {
      nodes { id kind date } pageInfo { hasNextPage endCursor } } } } }"""


async def test_accounts_of_a_page_are_read_in_one_round_per_table(config) -> None:
    async with gateway_client(config, environ=ENV) as client:
        body = await ask(client, FIRST_PAGE, explain=True)
    assert not body.get("errors"), body["errors"]
    calls = [c for c in body["extensions"]["explain"]["calls"] if c["step"] == "account"]
    tables = [(c["source"], c["entity"]) for c in calls]
    # Per transactions table, one read for the five customers (two when the source sums it:
    # the sums, then its pending invoices), never one per customer.
    assert calls and all(tables.count(t) <= 2 for t in tables), tables
    paris = [c for c in calls if c["source"] == "paris"]
    assert paris and all("GROUP BY" not in " ".join(c["statements"]) for c in paris), \
        "paris keeps its dates as text: with an asOf it is read row by row"


async def test_transactions_page_through_every_movement_once(config) -> None:
    async with gateway_client(config, environ=ENV) as client:
        first = (await ask(client, FIRST_PAGE))["data"]["customers"]["edges"]
        node = max(first, key=lambda e: e["node"]["account"]["transactionCount"])["node"]
        seen: list[str] = []
        after = None
        while True:
            body = await ask(client, PAGE_OF_TRANSACTIONS, {"id": node["id"], "after": after})
            assert not body.get("errors"), body["errors"]
            page = body["data"]["customer"]["account"]["transactions"]
            seen += [n["id"] for n in page["nodes"]]
            dates = [n["date"] for n in page["nodes"]]
            assert dates == sorted(dates, reverse=True)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == node["account"]["transactionCount"]
        payments = await ask(client, PAGE_OF_TRANSACTIONS, {"id": node["id"],
                                                            "kinds": ["PAYMENT"]})
        kinds = {n["kind"] for n in
                 payments["data"]["customer"]["account"]["transactions"]["nodes"]}
        assert kinds <= {"PAYMENT"}
        window = await ask(client, PAGE_OF_TRANSACTIONS, {"id": node["id"], "from": "2025-01-01",
                                                          "to": "2025-06-30"})
        for item in window["data"]["customer"]["account"]["transactions"]["nodes"]:
            assert "2025-01-01" <= item["date"][:10] <= "2025-06-30"


def _first_customer(selection: str) -> str:
    return "{ customers(first: 1) { edges { node { " + selection + " } } } }"


@pytest.mark.parametrize(("selection", "code", "message"), [
    ('account(currency: "XYZ") { balance { amount } }',
     "BAD_USER_INPUT", "'XYZ' is not an ISO 4217 currency code"),
    ('account(currency: "CHF") { balance { amount } }', "MISSING_RATE", "no exchange rate for CHF"),
    ("account { transactions(first: -1) { nodes { id } } }",
     "BAD_USER_INPUT", "transactions(first:): must be between 1 and"),
    ('account { transactions(after: "nope") { nodes { id } } }',
     "BAD_USER_INPUT", "not a cursor of this list"),
    ('account { transactions(from: "2025-02-01", to: "2025-01-01") { nodes { id } } }',
     "BAD_USER_INPUT", "`from` is after `to`"),
    ('account(asOf: "31/12/2025") { balance { amount } }', None, "Date"),
])
async def test_bad_input_gets_a_clear_error(config, selection, code, message) -> None:
    async with gateway_client(config, environ=ENV) as client:
        body = await ask(client, _first_customer(selection))
    error = body["errors"][0]
    assert message in error["message"], error
    if code is not None:
        assert error["extensions"]["code"] == code


SEGMENTS = """query($by: SegmentDimension!) { accountSegments(by: $by, asOf: "2025-12-31") {
  value customers balance { amount currency } invoiced { amount } overdue { amount }
  netRevenue { amount } margin { amount } } }"""

EVERY_ACCOUNT = """query($after: String) { customers(first: 50, after: $after) {
  edges { node { id account(asOf: "2025-12-31") { balance { amount } netRevenue: profitability {
    netRevenue { amount } tier } risk { class }
    shops { shop balance { amount } invoiced { amount } } } } }
  pageInfo { hasNextPage endCursor } } }"""


async def test_segments_total_every_customers_account(config) -> None:
    from gateway.config import load_config
    from gateway.indexing_cli import run_index

    assert await run_index(load_config(config, ENV), full=True) == 0
    async with gateway_client(config, environ=ENV) as client:
        nodes, after = [], None
        while True:
            body = await ask(client, EVERY_ACCOUNT, {"after": after})
            assert not body.get("errors"), body["errors"]
            page = body["data"]["customers"]
            nodes += [e["node"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        by = {}
        for dimension in ("TIER", "RISK", "SHOP", "REGION"):
            body = await ask(client, SEGMENTS, {"by": dimension})
            assert not body.get("errors"), body["errors"]
            by[dimension] = {s["value"]: s for s in body["data"]["accountSegments"]}

    def total(segments: dict, figure: str) -> Decimal:
        return sum((Decimal(s[figure]["amount"]) for s in segments.values()), Decimal(0))

    balances = sum((Decimal(n["account"]["balance"]["amount"]) for n in nodes), Decimal(0))
    for dimension in ("TIER", "RISK", "SHOP", "REGION"):
        assert total(by[dimension], "balance") == balances, dimension
    tiers = {}
    for node in nodes:
        tier = node["account"]["netRevenue"]["tier"]
        tiers[tier] = tiers.get(tier, 0) + 1
    assert {v: s["customers"] for v, s in by["TIER"].items()} == tiers
    assert list(by["TIER"]) == [t for t in ("GOLD", "SILVER", "BRONZE") if t in tiers]
    assert sum(s["customers"] for s in by["RISK"].values()) == len(nodes)
    paris = sum((Decimal(s["invoiced"]["amount"]) for n in nodes for s in n["account"]["shops"]
                 if s["shop"] == "paris"), Decimal(0))
    assert Decimal(by["SHOP"]["paris"]["invoiced"]["amount"]) == paris
    assert by["SHOP"]["paris"]["margin"] is None  # a customer's margin is not split by shop
    assert set(by["REGION"]) == {"eu", "uk"}  # paris and berlin in eu, london in uk
    assert total(by["TIER"], "margin") == sum(
        (Decimal(s["margin"]["amount"]) for s in by["RISK"].values()), Decimal(0))
