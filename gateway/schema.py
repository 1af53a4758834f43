"""The GraphQL schema: the unified ``Customer`` and the queries that find customers.

Resolvers only translate: they hand arguments to the request's :class:`Resolver`, turn
clusters into values with ``merge``, and raise GraphQL errors that name the argument and
the fix. ``schema.graphql`` at the top level is this schema printed (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info

from gateway import graphql_types as gt
from gateway import merge
from gateway.audit_trail import AuditExtension
from gateway.finance.schema import account_of
from gateway.finance.segments import AccountSegment, SegmentDimension, account_segments
from gateway.finance.types import Account
from gateway.hardening import CostLimit, Hardening, MaskInternalErrors
from gateway.identity import Cluster
from gateway.planner import CustomerFilter as FilterValue
from gateway.planner import FilterError, card_key
from gateway.policy import RoleView, RowScope
from gateway.principal import Principal
from gateway.resolver import Resolver
from gateway.schema_audit import AuditLogPage, audit_log
from gateway.schema_cache import CacheMutation
from gateway.schema_me import Me, MeMutation, me
from gateway.schema_steward import Mutation as StewardMutation
from gateway.schema_steward import StewardLogEntry, steward_log
from gateway.selection import groups_for, selected_names
from gateway.settings import Settings
from gateway.sources import SourceSet
from gateway.transforms import normalize_email, to_e164


def user_error(message: str) -> GraphQLError:
    """An error the caller can fix; never a stack trace, never a host or SQL."""
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


@dataclass
class Context:
    """What resolvers of one request share."""

    resolver: Resolver
    settings: Settings
    sources: SourceSet
    request: Any = None
    steward: Any = None  # gateway.stewardship.Steward when the identity index is configured
    # Who is asking, with the request's purpose; set for every query that ran over HTTP (the
    # auth gate refuses requests without a credential), None only for a Context built by hand.
    principal: Principal | None = None
    # What the policy lets this request see (gateway.access): the role view it executes with
    # (fields, masks) and its rows; None only outside a request (nothing then executes).
    view: RoleView | None = None
    scope: RowScope | None = None
    # The audit log and consent store (gateway.privacy.Privacy), and this request's audit
    # (gateway.audit_trail.RequestAudit: what it disclosed, appended when it ends).
    privacy: Any = None
    audit: Any = None
    loaders: dict[str, DataLoader] = field(default_factory=dict)
    # An admin asked for the plan (request body `"extensions": {"explain": true}`).
    explain: bool = False
    # Whether the resolver was told which customer columns the operation needs.
    columns_chosen: bool = False

    def loader(self, section: str, first: int) -> DataLoader:
        """One DataLoader per request, relation and page size: every customer's children in one
        round, each source asked for the newest ``first`` rows per record where it can (0: every
        row, for lists paged in the gateway)."""
        name = f"{section}:{first}"
        if name not in self.loaders:
            async def load(clusters: list[Cluster]) -> list[list[Any]]:
                return await self.resolver.children(clusters, section, first)

            self.loaders[name] = DataLoader(load_fn=load, cache_key_fn=lambda c: c.id)
        return self.loaders[name]


def _page_size(first: int | None, settings: Settings, argument: str) -> int:
    size = settings.default_page_size if first is None else first
    if not 1 <= size <= settings.max_page_size:
        raise user_error(f"{argument}: must be between 1 and {settings.max_page_size} "
                         f"(the max_page_size setting); page with `after` for more")
    return size


@strawberry.type(description="One customer, as every source knows them, linked by identity.")
class Customer:
    id: strawberry.ID = strawberry.field(
        description="Global id; stays the same while the customer's records do.")
    kind: gt.CustomerKind
    display_name: str | None = strawberry.field(
        description="How to address the customer: the legal name of an organization, else the "
                    "person's full name.")
    name: gt.PersonName | None = strawberry.field(
        description="The preferred name, chosen by the survivorship rules (`chosenBy` says how).")
    names: list[gt.PersonName] = strawberry.field(description="Every distinct name, per source.")
    legal_name: gt.SourcedText | None = strawberry.field(description="An organization's name.")
    birth_date: gt.SourcedDate | None
    emails: list[gt.Email]
    phones: list[gt.Phone]
    addresses: list[gt.Address]
    loyalty_cards: list[gt.LoyaltyCard]
    source_records: list[gt.SourceRecord]
    match_evidence: list[gt.MatchEvidence] = strawberry.field(
        description="Why each record belongs to this customer.")
    redirected_from: strawberry.ID | None = strawberry.field(
        description="The id that was asked for, when this customer now has another id (records "
                    "merged, or the id of a record that belongs to this customer).")
    cluster: strawberry.Private[Cluster]

    @classmethod
    def of(cls, found: Cluster, sources: SourceSet) -> Customer:
        values = merge.customer_values(found, sources.shops, sources.survivorship)
        return cls(cluster=found, **{k: getattr(values, k) for k in values.__dataclass_fields__})

    @strawberry.field(description="Payments, invoices, refunds and credits across every shop, "
                                  "newest first.")
    async def transactions(self, info: Info, first: int | None = None) -> list[gt.Transaction]:
        context: Context = info.context
        size = _page_size(first, context.settings, "transactions.first")
        records = await context.loader("transactions", size).load(self.cluster)
        shops = context.sources.shops
        ordered = sorted(records, key=lambda r: (r.date is not None, r.date), reverse=True)
        return [merge.transaction(r, shops) for r in ordered[:size]]

    @strawberry.field(description="Every financial exchange across shops, totalled in one "
                                  "currency as of one day, with risk and profitability. "
                                  "`asOf`: default today (UTC); `currency`: an ISO 4217 code, "
                                  "default the config's finance.currency.")
    async def account(self, info: Info, as_of: date | None = None,
                      currency: str | None = None) -> Account | None:
        return await account_of(info.context, self.cluster, as_of, currency)

    @strawberry.field(description="Notes, calls, e-mails and meetings, newest first.")
    async def interactions(self, info: Info, first: int | None = None) -> list[gt.Interaction]:
        context: Context = info.context
        size = _page_size(first, context.settings, "interactions.first")
        records = await context.loader("interactions", size).load(self.cluster)
        ordered = sorted(records, key=lambda r: (r.date is not None, r.date), reverse=True)
        return [merge.interaction(r) for r in ordered[:size]]


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type(description="A page of customers (Relay connection).")
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: gt.PageInfo


def _resolver(info: Info) -> Resolver:
    """The request's resolver, told once which optional customer columns the operation needs."""
    resolver: Resolver = info.context.resolver
    if not info.context.columns_chosen:
        info.context.columns_chosen = True
        resolver.groups = groups_for(selected_names(info))
    return resolver


def _customer(found: Cluster | None, info: Info) -> Customer | None:
    if info.context.audit is not None:
        info.context.audit.returned([found])
    return Customer.of(found, info.context.sources) if found else None


@strawberry.type
class Query:
    @strawberry.field(description="A customer by global id; an id of a record that has since "
                                  "been linked to another customer returns that customer.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return _customer(await _resolver(info).by_id(str(id)), info)

    @strawberry.field(description="Accounts totalled per tier, risk class, shop or region, over "
                                  "every customer of the identity index the caller may read "
                                  "(docs/finance.md). `asOf` and `currency` as in "
                                  "Customer.account.")
    async def account_segments(self, info: Info, by: SegmentDimension, as_of: date | None = None,
                               currency: str | None = None) -> list[AccountSegment]:
        return await account_segments(info.context, by, as_of, currency)

    @strawberry.field(description="Customers in a stable order, page by page.")
    async def customers(self, info: Info, filter: gt.CustomerFilter | None = None,
                        first: int | None = None, after: str | None = None) -> CustomerConnection:
        context: Context = info.context
        size = _page_size(first, context.settings, "first")
        given = filter or gt.CustomerFilter()
        try:
            flt = FilterValue.build(name=given.name, email=given.email, phone=given.phone,
                                    city=given.city, shop=given.shop,
                                    country=context.settings.default_country,
                                    shops=context.sources.shops)
            page = await _resolver(info).page(flt, size, after)
        except (FilterError, ValueError) as exc:
            raise user_error(str(exc)) from None
        if context.audit is not None:
            context.audit.returned(page.clusters)
        edges = [CustomerEdge(cursor=cursor, node=Customer.of(found, context.sources))
                 for found, cursor in zip(page.clusters, page.cursors, strict=True)]
        return CustomerConnection(edges=edges, page_info=gt.PageInfo(
            has_next_page=page.has_next, has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None))

    @strawberry.field(description="The customer with this e-mail address (any case, any source).")
    async def customer_by_email(self, info: Info, email: str) -> Customer | None:
        address = normalize_email(email)
        if not address or "@" not in address:
            raise user_error("email: not an e-mail address; give one like name@example.com")
        return _customer(await _resolver(info).by_key(f"email:{address}"), info)

    @strawberry.field(description="The customer with this phone number (national numbers use the "
                                  "default_country setting).")
    async def customer_by_phone(self, info: Info, phone: str) -> Customer | None:
        number = to_e164(phone, info.context.settings.default_country)
        if number is None:
            raise user_error(f"phone: {phone!r} is not a valid phone number; give it in "
                             f"international form such as +33612345678")
        return _customer(await _resolver(info).by_key(f"phone:{number}"), info)

    @strawberry.field(description="The customer holding this loyalty card (spaces and dashes "
                                  "ignored).")
    async def customer_by_card(self, info: Info, number: str) -> Customer | None:
        key = card_key(number)
        if key is None:
            raise user_error("number: empty card number; give the number printed on the card")
        return _customer(await _resolver(info).by_key(key), info)

    @strawberry.field(description="You: everything held about you, your consents, your correction "
                                  "requests and who read your data (a customer's own credential).")
    async def me(self, info: Info) -> Me:
        return await me(info)

    @strawberry.field(description="The stewards' audit log, newest first (admin role needed).")
    async def steward_log(self, info: Info, first: int = 20) -> list[StewardLogEntry]:
        return await steward_log(info, first)

    @strawberry.field(description="The audit log, newest first: who read or changed what, when, for "
                                  "which purpose (admin role needed).")
    async def audit_log(self, info: Info, customer: strawberry.ID | None = None,
                        subject: str | None = None, kind: str | None = None,
                        purpose: str | None = None, before: int | None = None,
                        first: int = 50) -> AuditLogPage:
        return await audit_log(info, customer, subject, kind, purpose, before, first)

    @strawberry.field(description="The configured sources, in identity order.")
    def sources(self, info: Info) -> list[gt.Source]:
        readable = info.context.resolver.readable  # a region-bound role sees its region's only
        return [gt.Source(name=s.name, kind=s.config.kind, shop=s.config.shop, ready=s.answered)
                for s in info.context.sources if s.name in readable]


@strawberry.type
class Mutation(StewardMutation, MeMutation, CacheMutation):
    """Stewards' corrections of identity (admin role), a customer's own decisions, and the
    cache's invalidation (admin role)."""


def _mask(error: GraphQLError) -> bool:
    """Hide the text of unexpected exceptions: it may carry hosts, SQL or secrets."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        # Factories: a fresh extension per request; the parse/validation LRU caches are shared.
        # The audit extension comes first, so that it ends last and sees the final answer.
        # Hardening (the request limits, gateway.hardening) sets the token limit before parsing
        # and adds its rule before ValidationCache validates, CostLimit checks the estimated
        # cost with the variables after it; MaskInternalErrors answers a
        # correlation id that the log line with the traceback carries.
        extensions=[AuditExtension, Hardening, lambda: ParserCache(maxsize=256),
                    lambda: ValidationCache(maxsize=256), CostLimit,
                    lambda: MaskInternalErrors(should_mask_error=_mask,
                                               error_message="Internal error; the gateway's log "
                                                             "has the details.")],
    )


def sdl() -> str:
    """The schema in SDL, as published in schema.graphql."""
    return build_schema().as_str() + "\n"
