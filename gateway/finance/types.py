"""GraphQL output types of a customer's account (values only; the schema adds resolvers)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from gateway.graphql_types import Money, PageInfo, Transaction, TransactionKind


@strawberry.enum(description="How finance judges a customer as a payer (thresholds in the "
                             "config's finance.risk).")
class RiskClass(Enum):
    GOOD = "GOOD"
    WATCH = "WATCH"
    DEFAULTER = "DEFAULTER"


@strawberry.type(description="One threshold the customer reached, and by how much.")
class RiskReason:
    code: str = strawberry.field(description="DAYS_PAST_DUE, FAILED_PAYMENTS or OVERDUE_AMOUNT.")
    level: RiskClass = strawberry.field(description="The class this threshold leads to.")
    value: str = strawberry.field(description="The customer's figure.")
    threshold: str = strawberry.field(description="The configured threshold it reached.")
    message: str


@strawberry.type(description="A payment-behaviour assessment that says why.")
class Risk:
    risk_class: RiskClass = strawberry.field(name="class")
    score: int = strawberry.field(description="100: no sign of risk; 0: every defaulter "
                                              "threshold reached. See docs/finance.md.")
    reasons: list[RiskReason]


@strawberry.type(description="What the customer is worth, in the account's currency.")
class Profitability:
    revenue: Money = strawberry.field(description="Invoiced, less refunds.")
    discounts: Money = strawberry.field(description="Credit notes granted.")
    net_revenue: Money = strawberry.field(description="Revenue less discounts.")
    cost_to_serve: Money = strawberry.field(description="Per customer plus per transaction, "
                                                        "as configured.")
    margin: Money = strawberry.field(description="Net revenue times the gross margin, less the "
                                                 "cost to serve.")
    tier: str | None = strawberry.field(description="The first configured tier whose minimums "
                                                    "the customer reaches.")


@strawberry.type(description="The rate that converted one currency: 1 `from` = `rate` `to`.")
class ExchangeRate:
    source: str = strawberry.field(name="from")
    target: str = strawberry.field(name="to")
    rate: Decimal
    effective: date = strawberry.field(description="The date the rate applies from.")


@strawberry.type(description="One shop's part of an account, in the account's currency.")
class ShopAccount:
    shop: str = strawberry.field(description="The source name.")
    label: str | None = strawberry.field(description="The shop's name.")
    currencies: list[str] = strawberry.field(description="Currencies its movements were in.")
    invoiced: Money
    paid: Money
    refunded: Money
    credited: Money
    balance: Money
    overdue: Money
    transaction_count: int
    failed_payments: int


@strawberry.type(description="A page of transactions, newest first.")
class TransactionPage:
    nodes: list[Transaction]
    page_info: PageInfo


@strawberry.type(description="Every financial exchange with the customer across shops, totalled "
                             "in one currency as of one day (docs/finance.md).")
class Account:
    currency: str = strawberry.field(description="ISO 4217 code of every amount below.")
    as_of: date = strawberry.field(description="Rates and overdue invoices are as of this day; "
                                               "when it was asked for, movements dated after "
                                               "it are left out.")
    invoiced: Money = strawberry.field(description="Invoices, unless cancelled or failed.")
    paid: Money = strawberry.field(description="Completed payments.")
    refunded: Money = strawberry.field(description="Completed refunds.")
    credited: Money = strawberry.field(description="Completed credit notes.")
    balance: Money = strawberry.field(description="What the customer owes: invoiced - paid - "
                                                  "credited (negative: open credit).")
    open_credit: Money = strawberry.field(description="What the customer may still spend: the "
                                                      "balance, when negative, as a positive "
                                                      "amount.")
    overdue: Money = strawberry.field(description="Pending invoices past their payment terms.")
    oldest_overdue_date: date | None
    days_past_due: int = strawberry.field(description="Days since the oldest overdue invoice "
                                                      "fell due.")
    overdue_invoices: int
    transaction_count: int
    failed_payments: int
    rates: list[ExchangeRate] = strawberry.field(description="The rates that converted other "
                                                             "currencies into this one.")
    risk: Risk
    profitability: Profitability
    cluster: strawberry.Private[Any] = None
    bounded: strawberry.Private[bool] = False  # whether later movements were left out
    # (name, label, gateway.finance.account.ShopFigures) per shop, and the Converter that
    # rounds them: ShopAccount values are made only when a query selects `shops`.
    shop_figures: strawberry.Private[list[tuple[str, str | None, Any]] | None] = None
    converter: strawberry.Private[Any] = None

    @strawberry.field(description="The same figures per shop (source), in this currency.")
    def shops(self) -> list[ShopAccount]:
        return [figures.account(name, label, self.converter)
                for name, label, figures in self.shop_figures or ()]

    @strawberry.field(description="Transactions across every shop, newest first; `after` is "
                                  "the `endCursor` of the previous page.")
    async def transactions(self, info: Info, first: int | None = None, after: str | None = None,
                           since: Annotated[date | None, strawberry.argument(name="from")] = None,
                           until: Annotated[date | None, strawberry.argument(name="to")] = None,
                           kinds: list[TransactionKind] | None = None) -> TransactionPage:
        from gateway.finance.schema import transaction_page  # the schema imports this module

        return await transaction_page(info.context, self, first, after, since, until, kinds)
