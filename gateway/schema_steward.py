"""GraphQL for data stewards: mutations that link, unlink, merge and split, and their log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.resolver import Resolver
from gateway.stewardship import Outcome, Ref, Steward, StewardError

# The Customer type lives in gateway.schema, which imports this module: refer to it lazily.
CustomerType = Annotated["Customer", strawberry.lazy("gateway.schema")]  # type: ignore[name-defined]  # noqa: F821


@strawberry.input(description="A record of a source: its logical source name and local key.")
class RecordRef:
    source: str
    local_id: str

    def ref(self) -> Ref:
        return (self.source, self.local_id)


@strawberry.type(name="StewardAction", description="One entry of the stewards' audit log.")
class StewardLogEntry:
    id: int
    action: str
    actor: str
    reason: str
    at: datetime
    details: JSON = strawberry.field(
        description="Records and customer ids the action named (never personal values).")


def _steward(info: Info) -> tuple[Steward, str]:
    steward: Steward | None = info.context.steward
    if steward is None:
        raise GraphQLError("steward actions need the identity index: add an `identity:` section "
                           "to the config (docs/identity.md)",
                           extensions={"code": "NOT_CONFIGURED"})
    try:
        return steward, steward.authorize(info.context.principal, info.context.request.headers)
    except StewardError as exc:
        raise GraphQLError(str(exc), extensions={"code": exc.code}) from None


async def _customer_of(info: Info, ref: Ref) -> Any:
    from gateway.schema import Customer

    context = info.context
    fresh = Resolver(context.sources, context.settings, context.resolver.linker,
                     context.resolver.scope, context.resolver.facts)
    fresh.consent = context.resolver.consent  # the request's purpose holds here too
    found = await fresh.by_ref(ref)
    if context.audit is not None:
        context.audit.returned([found])
    return Customer.of(found, context.sources) if found else None


async def _run(info: Info, action: Any) -> tuple[Ref, ...]:
    steward, actor = _steward(info)
    try:
        outcome: Outcome = await action(steward, actor)
    except StewardError as exc:
        raise GraphQLError(str(exc), extensions={"code": exc.code}) from None
    if info.context.audit is not None:  # the request's audit entry is this action's
        info.context.audit.action("steward", outcome.customers, action=outcome.action.action,
                                  steward_action=outcome.action.id)
    return outcome.anchors


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Say these records are one customer; the index keeps them "
                                     "together from now on. Returns that customer.")
    async def link_records(self, info: Info, records: list[RecordRef],
                           reason: str) -> CustomerType | None:
        (anchor,) = await _run(info, lambda s, a: s.link([r.ref() for r in records], a, reason))
        return await _customer_of(info, anchor)

    @strawberry.mutation(description="Take a record out of its customer; the index never links "
                                     "it to those records again. Returns the record's customer.")
    async def unlink_record(self, info: Info, record: RecordRef,
                            reason: str) -> CustomerType | None:
        (anchor,) = await _run(info, lambda s, a: s.unlink(record.ref(), a, reason))
        return await _customer_of(info, anchor)

    @strawberry.mutation(description="Merge customers into one; the ids of the others redirect "
                                     "to it.")
    async def merge_customers(self, info: Info, ids: list[strawberry.ID],
                              reason: str) -> CustomerType | None:
        (anchor,) = await _run(info, lambda s, a: s.merge([str(i) for i in ids], a, reason))
        return await _customer_of(info, anchor)

    @strawberry.mutation(description="Split these records off a customer into a customer of their "
                                     "own. Returns both customers.")
    async def split_customer(self, info: Info, id: strawberry.ID, records: list[RecordRef],
                             reason: str) -> list[CustomerType]:
        parts = await _run(info, lambda s, a: s.split(str(id), [r.ref() for r in records], a,
                                                      reason))
        found = [await _customer_of(info, ref) for ref in parts]
        return [c for c in found if c is not None]


async def steward_log(info: Info, first: int = 20) -> list[StewardLogEntry]:
    steward, _ = _steward(info)
    return [StewardLogEntry(id=a.id or 0, action=a.action, actor=a.actor, reason=a.reason,
                            at=a.at, details=JSON(a.payload))
            for a in await steward.crosswalk.steward_log(max(1, min(first, 500)))]
