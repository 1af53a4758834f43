"""GraphQL for data subjects: ``me``, and what a customer may decide about their own data.

A principal with the ``customer`` role is bound to one customer (``customer_id``); ``me`` is
that customer: every value held about them across the sources, with provenance; their
consent per purpose; their correction requests; who read their data, when, for what purpose.
``objectTo`` and ``withdrawObjection`` record a decision that the very next request honours
(for the purposes the policy makes ``objectable`` only: others are refused, NOT_OBJECTABLE);
``requestCorrection`` records a request routed to the contact of the source holding the value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case

from gateway import graphql_types as gt
from gateway import merge
from gateway.audit import CustomerAccess
from gateway.consent import ConsentDecision, ConsentError, CorrectionRequest
from gateway.consent_gate import customer_aliases
from gateway.identity import Cluster
from gateway.principal import CUSTOMER_ROLE, Principal

if TYPE_CHECKING:
    from gateway.privacy import Privacy

# The Customer type lives in gateway.schema, which imports this module: refer to it lazily.
CustomerType = Annotated["Customer", strawberry.lazy("gateway.schema")]  # type: ignore[name-defined]  # noqa: F821

#: How Panorama's own decisions made here are recorded (ConsentDecision.source).
SELF_SERVICE = "self-service"
#: The code of a refused objection (or withdrawal) to a purpose that is not objectable.
NOT_OBJECTABLE = "NOT_OBJECTABLE"
#: Entries of the access log read per page, at most.
MAX_ACCESSES = 1000


def _refuse(message: str, code: str = "BAD_USER_INPUT") -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


@dataclass
class Subject:
    """The customer a request is about: who asks, their customer (None if no source knows them
    now), and the ids their decisions and reads may be recorded under."""

    principal: Principal
    privacy: Privacy
    found: Cluster | None

    @property
    def id(self) -> str:
        assert self.principal.customer_id is not None
        return self.found.id if self.found is not None else self.principal.customer_id

    @property
    def aliases(self) -> list[str]:
        known = customer_aliases(self.found) if self.found is not None else frozenset()
        return sorted({self.id, str(self.principal.customer_id), *known})


async def subject_of(context: Any) -> Subject:
    """The customer the request's principal is bound to; FORBIDDEN for anyone else."""
    principal: Principal | None = context.principal
    if principal is None or principal.customer_id is None or not principal.has_role(CUSTOMER_ROLE):
        raise _refuse("`me` answers a customer's own credential (role customer, bound to a "
                      "customer id); staff look customers up with `customer(id:)`", "FORBIDDEN")
    privacy = getattr(context, "privacy", None)
    if privacy is None:
        raise _refuse("self-service needs the consent store and the audit log; this gateway "
                      "was built without them", "NOT_CONFIGURED")
    found = await context.resolver.by_id(principal.customer_id)
    if context.audit is not None:
        context.audit.returned([found])
    return Subject(principal, privacy, found)


# -- types ------------------------------------------------------------------------------------

@strawberry.type(name="ConsentDecision", description="A decision recorded in Panorama.")
class Decision:
    objected: bool = strawberry.field(description="An objection, or its withdrawal.")
    at: datetime
    via: str = strawberry.field(description="How it came: self-service (you), support (staff "
                                            "acting on your word), merge (records merged).")


@strawberry.type(description="Where you stand on one purpose of use.")
class Consent:
    purpose: str
    objected: bool = strawberry.field(
        description="Whether you are left out of everything done for this purpose: by your "
                    "latest decision here, or by a source's own opt-out (the strictest wins). "
                    "Never for a purpose you may not object to (see `objectable`).")
    objectable: bool = strawberry.field(
        description="Whether you may object to this purpose. Processing required by law (e.g. "
                    "invoicing) or by your contract is not: objections to it, yours or a "
                    "source's, are not applied.")
    decision: Decision | None = strawberry.field(
        description="Your latest decision about it in Panorama, if any.")
    source_opt_outs: list[gt.Provenance] = strawberry.field(
        description="Records whose source's own opt-out (e.g. the CRM's e-mail opt-out) objects "
                    "to this purpose. Withdrawing an objection here does not lift them: ask "
                    "that source with `requestCorrection`.")


@strawberry.type(name="AccessLogEntry",
                 description="A read of your data: when, for what purpose, by what kind of staff "
                             "or which application.")
class AccessEntry:
    id: int = strawberry.field(description="Pass as `before` to see older entries.")
    at: datetime
    purpose: str | None
    roles: list[str] = strawberry.field(description="The reader's roles (support, finance...).")
    by: str | None = strawberry.field(
        description="The application that read it, or you; staff are named by their roles only.")
    by_you: bool
    fields: list[str] = strawberry.field(description="What was read, e.g. Customer.emails.")


@strawberry.type(name="CorrectionRequest",
                 description="A value you said is wrong, and where the request went.")
class Correction:
    id: int
    field: str
    source: str = strawberry.field(description="The source that holds the value.")
    record: str | None = strawberry.field(description="The record in that source.")
    requested: str
    message: str
    status: str = strawberry.field(description="routed (sent to the source's contact), unrouted "
                                               "(waiting for an administrator), done, rejected.")
    routed_to: str | None = strawberry.field(description="The contact it was routed to.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, request: CorrectionRequest) -> Correction:
        assert request.id is not None and request.status is not None
        assert request.created_at is not None and request.updated_at is not None
        return cls(id=request.id, field=request.field, source=request.source,
                   record=request.record, requested=request.requested, message=request.message,
                   status=request.status, routed_to=request.routed_to,
                   created_at=request.created_at, updated_at=request.updated_at)


# -- what a customer's view is made of (also the right-of-access export's) -------------------

async def consents_of(subject: Subject, context: Any) -> list[Consent]:
    """One entry per purpose the policy defines (but the one of this request), or that a
    decision or a source's opt-out names."""
    latest = await subject.privacy.consent.latest(subject.aliases)
    decided: dict[str, ConsentDecision] = {}
    for per_purpose in latest.values():
        for name, decision in per_purpose.items():
            if name not in decided or (decision.id or 0) > (decided[name].id or 0):
                decided[name] = decision
    gate = getattr(context.resolver, "consent", None)
    opt_outs = gate.opt_outs(subject.found) if gate is not None and subject.found else {}
    own = subject.principal.purpose
    purposes = sorted({*(p for p in subject.privacy.purposes if p != own), *decided, *opt_outs})
    out = []
    for name in purposes:
        latest_one = decided.get(name)
        records = [gt.Provenance(source=s, record_id=k) for s, k in opt_outs.get(name, [])]
        objectable = subject.privacy.objectable(name) and name != own
        out.append(Consent(
            purpose=name, objectable=objectable,
            objected=objectable and (bool(latest_one and latest_one.objected) or bool(records)),
            decision=Decision(objected=latest_one.objected, at=latest_one.at, via=latest_one.source)
            if latest_one is not None and latest_one.at is not None else None,
            source_opt_outs=records))
    return out


async def corrections_of(subject: Subject) -> list[Correction]:
    found: list[CorrectionRequest] = []
    for alias in subject.aliases:
        found += await subject.privacy.consent.corrections(customer=alias, limit=1000)
    return [Correction.of(r) for r in sorted(found, key=lambda r: -(r.id or 0))]


def _access(entry: CustomerAccess) -> AccessEntry:
    return AccessEntry(id=entry.id, at=entry.at, purpose=entry.purpose, roles=list(entry.roles),
                       by=entry.subject, by_you=entry.by_you, fields=list(entry.fields))


async def accesses_of(subject: Subject, first: int, before: int | None = None
                      ) -> tuple[list[AccessEntry], int | None]:
    """A page of reads of the customer's data, newest first, and where the next page starts."""
    page = await subject.privacy.log.accesses(
        subject.aliases, before=before, limit=first, own_subjects={subject.principal.subject},
        show_subjects=subject.privacy.audit_config.show_subjects_to_customers)
    return [_access(a) for a in page.accesses], page.next_before


@strawberry.type(description="You, as Panorama knows you (a customer's own credential only).")
class Me:
    subject: strawberry.Private[Subject]

    @strawberry.field(description="Everything the sources hold about you, each value with the "
                                  "source and record it comes from; null if no source knows you "
                                  "now.")
    def customer(self, info: Info) -> CustomerType | None:  # type: ignore[valid-type]
        from gateway.schema import Customer

        found = self.subject.found
        return Customer.of(found, info.context.sources) if found is not None else None

    @strawberry.field(description="Your consent, per purpose of use.")
    async def consents(self, info: Info) -> list[Consent]:
        return await consents_of(self.subject, info.context)

    @strawberry.field(description="The purposes you may object to (`objectTo`); the others "
                                  "are required by law or by your contract.")
    def objectable_purposes(self) -> list[str]:
        return objectable_purposes(self.subject)

    @strawberry.field(description="Your correction requests, newest first.")
    async def corrections(self) -> list[Correction]:
        return await corrections_of(self.subject)

    @strawberry.field(description="Who read your data, when and for what purpose, newest first.")
    async def access_log(self, info: Info, first: int | None = None,
                         before: int | None = None) -> list[AccessEntry]:
        size = 50 if first is None else first
        if not 1 <= size <= MAX_ACCESSES:
            raise _refuse(f"first: must be between 1 and {MAX_ACCESSES}; page with `before`")
        entries, _ = await accesses_of(self.subject, size, before)
        return entries


async def me(info: Info) -> Me:
    return Me(subject=await subject_of(info.context))


# -- decisions and corrections ------------------------------------------------------------------

def objectable_purposes(subject: Subject) -> list[str]:
    """The policy's purposes the customer may object to (never the one they ask for)."""
    return sorted(p for p in subject.privacy.purposes
                  if p != subject.principal.purpose and subject.privacy.objectable(p))


def _objectable(subject: Subject, purpose: str) -> str:
    name = purpose.strip().lower()
    known = subject.privacy.purposes
    choices = ", ".join(objectable_purposes(subject)) or "none"
    if name == subject.principal.purpose:
        raise _refuse(f"purpose: '{name}' is how you see your own data here; it cannot be "
                      f"objected to; you may object to: {choices}", NOT_OBJECTABLE)
    if known and name not in known:
        raise _refuse(f"purpose: unknown purpose '{name}'; you may object to: {choices}")
    if not subject.privacy.objectable(name):
        raise _refuse(f"purpose: '{name}' cannot be objected to (it is required by law or by "
                      f"your contract); you may object to: {choices}", NOT_OBJECTABLE)
    return name


async def _decide(info: Info, purpose: str, objected: bool) -> Consent:
    subject = await subject_of(info.context)
    name = _objectable(subject, purpose)
    try:
        stored = await subject.privacy.consent.record(ConsentDecision(
            subject.id, name, objected, subject.principal.subject, SELF_SERVICE))
    except ConsentError as exc:
        raise _refuse(str(exc)) from None
    if info.context.audit is not None:
        info.context.audit.action("consent", [subject.id], purpose=name, objected=objected,
                                  decision=stored.id)
    return next(c for c in await consents_of(subject, info.context) if c.purpose == name)


def _provenances(value: Any) -> list[gt.Provenance]:
    """Every Provenance inside a value of the customer's (dataclasses, lists)."""
    if isinstance(value, gt.Provenance):
        return [value]
    if isinstance(value, list):
        return [p for item in value for p in _provenances(item)]
    if is_dataclass(value) and not isinstance(value, type):
        return [p for f in fields(value) for p in _provenances(getattr(value, f.name))]
    return []


#: Customer fields a correction may name (its data fields, not ids or computed ones).
CORRECTABLE = ("name", "names", "legal_name", "birth_date", "emails", "phones", "addresses",
               "loyalty_cards", "transactions", "interactions", "kind")


def _owner(subject: Subject, context: Any, path: str, source: str | None) -> tuple[str, str, str | None]:
    """``(field path, source, record)`` of a correction: the source that holds the value."""
    head = path.removeprefix("Customer.").strip()
    attribute = next((a for a in CORRECTABLE if to_camel_case(a) == head.partition(".")[0]), None)
    if attribute is None:
        raise _refuse(f"field: name a field of your data, e.g. emails or birthDate (fields: "
                      f"{', '.join(to_camel_case(a) for a in CORRECTABLE)})")
    found = subject.found
    if found is None:
        raise _refuse("no source holds data about you now; there is nothing to correct")
    yours = list(dict.fromkeys(r.source for r in found.records))
    holders: dict[str, str] = {}
    if attribute not in ("transactions", "interactions"):
        values = merge.customer_values(found, context.sources.shops, context.sources.survivorship)
        for p in _provenances(getattr(values, attribute)):
            holders.setdefault(p.source, p.record_id)
    if source is not None:
        if source not in yours:
            raise _refuse(f"source: '{source}' holds nothing about you; yours: {', '.join(yours)}")
        chosen = source
    elif len(holders) == 1 or (not holders and len(yours) == 1):
        chosen = next(iter(holders or {yours[0]: ""}))
    else:
        among = ", ".join(holders or yours)
        raise _refuse(f"source: {head} is held by {among}; say which with `source`")
    record = holders.get(chosen) or next(r.key for r in found.records if r.source == chosen)
    return f"Customer.{head}", chosen, record


@strawberry.type
class MeMutation:
    @strawberry.mutation(description="Object to a purpose of use: from the next request on, "
                                     "you are left out of everything done for it. Only the "
                                     "purposes of `me.objectablePurposes` (NOT_OBJECTABLE "
                                     "otherwise).")
    async def object_to(self, info: Info, purpose: str) -> Consent:
        return await _decide(info, purpose, True)

    @strawberry.mutation(description="Withdraw your objection to a purpose (one of "
                                     "`me.objectablePurposes`). A source's own opt-out stays "
                                     "(see `sourceOptOuts`).")
    async def withdraw_objection(self, info: Info, purpose: str) -> Consent:
        return await _decide(info, purpose, False)

    @strawberry.mutation(description="Say a value held about you is wrong: the request is "
                                     "recorded and routed to the contact of the source that "
                                     "holds it.")
    async def request_correction(self, info: Info, field: str, message: str,
                                 source: str | None = None, value: str | None = None) -> Correction:
        subject = await subject_of(info.context)
        path, owner, record = _owner(subject, info.context, field, source)
        privacy = subject.privacy
        try:
            stored = await privacy.consent.add_correction(CorrectionRequest(
                subject.id, path, owner, (value or message).strip(), subject.principal.subject,
                message, record), privacy.consent_config.contacts)
        except ConsentError as exc:
            raise _refuse(str(exc)) from None
        if info.context.audit is not None:
            info.context.audit.action("correction", [subject.id], correction=stored.id,
                                      field=path, source=owner, status=stored.status)
        return Correction.of(stored)
