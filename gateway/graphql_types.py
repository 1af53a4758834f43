"""GraphQL output types of the unified customer model (values only, no resolvers).

Every value that comes from a source carries a :class:`Provenance`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import strawberry


@strawberry.enum(description="A natural person or a legal entity.")
class CustomerKind(Enum):
    PERSON = "PERSON"
    ORGANIZATION = "ORGANIZATION"


@strawberry.enum(description="What a money movement is.")
class TransactionKind(Enum):
    PAYMENT = "PAYMENT"
    INVOICE = "INVOICE"
    REFUND = "REFUND"
    CREDIT = "CREDIT"
    UNKNOWN = "UNKNOWN"


@strawberry.enum(description="Where a money movement stands.")
class TransactionStatus(Enum):
    COMPLETED = "COMPLETED"
    PENDING = "PENDING"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"


@strawberry.enum(description="The channel of an interaction with the customer.")
class Channel(Enum):
    NOTE = "NOTE"
    CALL = "CALL"
    EMAIL = "EMAIL"
    MEETING = "MEETING"
    UNKNOWN = "UNKNOWN"


@strawberry.type(description="Where a value comes from: a source and the record in it.")
class Provenance:
    source: str = strawberry.field(description="Logical name of the source (see `sources`).")
    record_id: str = strawberry.field(description="Local key of the record in that source.")


CHOSEN_BY = ("Why this value won: the survivorship rule and its detail, e.g. "
             "\"most_frequent (3 of 4 records)\" or \"source_priority (crm first)\".")


@strawberry.type(description="A person's name as one source gives it.")
class PersonName:
    given: str | None
    family: str | None
    full: str | None
    source: Provenance
    chosen_by: str = strawberry.field(
        description="Why this name won: the survivorship rule and its detail, e.g. "
                    "\"most_complete (3 parts)\"; \"listed\" for an entry of `names`.")


@strawberry.type(description="A text value with its provenance.")
class SourcedText:
    value: str
    source: Provenance
    chosen_by: str = strawberry.field(description=CHOSEN_BY)


@strawberry.type(description="A date with its provenance.")
class SourcedDate:
    value: date
    source: Provenance
    chosen_by: str = strawberry.field(description=CHOSEN_BY)


@strawberry.type(description="An e-mail address (lower-cased), once per address.")
class Email:
    address: str
    type: str | None
    source: Provenance = strawberry.field(description="The first source that gives it.")
    sources: list[Provenance] = strawberry.field(description="Every source that gives it.")


@strawberry.type(description="A phone number, in E.164 form when it could be read as one.")
class Phone:
    number: str
    valid: bool = strawberry.field(description="False when the source's text is not a valid number.")
    type: str | None
    source: Provenance
    sources: list[Provenance]


@strawberry.type(description="A postal address.")
class Address:
    type: str | None
    line1: str | None
    line2: str | None
    postcode: str | None
    city: str | None
    region: str | None
    country: str | None
    source: Provenance
    sources: list[Provenance]


@strawberry.type(description="A loyalty card held in one shop.")
class LoyaltyCard:
    number: str
    program: str | None
    points: int | None
    shop: str | None = strawberry.field(description="The shop (source name) that issued it.")
    source: Provenance


@strawberry.type(description="A record of a source that belongs to this customer, and why.")
class SourceRecord:
    source: str
    shop: str | None
    local_id: str
    matched_by: list[str] = strawberry.field(
        description="Kinds of identifiers this record shares with the customer's other records "
                    "(email, phone, card); empty for a customer known by one record.")


@strawberry.type(description="Why a record belongs to its customer: the rule that linked it and "
                             "which attributes agreed, never their values.")
class MatchEvidence:
    record: Provenance
    rule: str = strawberry.field(
        description="email, phone, card or vat (a shared identifier), fuzzy (names and other "
                    "attributes scored), or steward (a person decided).")
    score: float = strawberry.field(description="1.0 for identifiers and stewards; the fuzzy "
                                                "score otherwise.")
    agreed: list[str] = strawberry.field(description="Attributes that agreed, e.g. name, "
                                                     "birth_date, postcode.")
    linked_to: Provenance | None = strawberry.field(
        description="The record it was linked to, when the index knows it.")
    indexed: bool = strawberry.field(
        description="False for a record linked at query time, before `panorama index` saw it.")


@strawberry.type(description="An exact amount of money (a decimal, never a float) and its currency.")
class Money:
    amount: Decimal
    currency: str


@strawberry.type(description="A payment, invoice, refund or credit in one shop.")
class Transaction:
    id: strawberry.ID
    kind: TransactionKind
    amount: Money | None
    shop: str | None = strawberry.field(description="The shop (source name) where it happened.")
    date: datetime | None
    status: TransactionStatus
    reference: str | None
    source: Provenance


@strawberry.type(description="A note, call, e-mail or meeting with the customer.")
class Interaction:
    id: strawberry.ID
    channel: Channel
    date: datetime | None
    subject: str | None
    summary: str | None
    source: Provenance


@strawberry.type(description="A configured source.")
class Source:
    name: str
    kind: str
    shop: str | None = strawberry.field(description="The shop's label; null for a non-shop source.")
    ready: bool = strawberry.field(description="Whether the source has answered since start-up.")


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.input(description="Every given part must hold. Values are matched the way identity "
                              "keys are: e-mail case-insensitively, phone as E.164.")
class CustomerFilter:
    name: str | None = strawberry.field(
        default=None, description="Words that must all appear in a name (case-insensitive).")
    email: str | None = None
    phone: str | None = strawberry.field(
        default=None, description="A phone number; national numbers use the default country.")
    city: str | None = strawberry.field(default=None, description="City of any address, any case.")
    shop: str | None = strawberry.field(
        default=None, description="Customers known in this shop (a source name).")
