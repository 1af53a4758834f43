"""GraphQL for admins: the audit log, newest first, filtered and paged.

The same entries ``panorama audit list`` shows; ``panorama audit verify`` checks their chain.
Entries hold ids, field paths and codes only, never personal values (gateway.audit).
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.types import Info

from gateway.audit import AuditError, AuditFilter
from gateway.audit.events import MAX_PAGE


@strawberry.type(description="A field a request read, and whether it was masked.")
class AuditFieldRead:
    path: str
    masked: bool


@strawberry.type(description="One entry of the audit log (ids, field paths and codes only).")
class AuditLogEntry:
    id: int
    at: datetime
    kind: str = strawberry.field(description="read, denied, steward, admin, consent or correction.")
    subject: str
    subject_kind: str = strawberry.field(description="user (a person) or service (an application).")
    roles: list[str]
    purpose: str | None
    customers: list[strawberry.ID]
    fields: list[AuditFieldRead]
    details: JSON
    hash: str = strawberry.field(description="This entry's link in the hash chain.")


@strawberry.type(description="A page of the audit log; pass `nextBefore` as `before` for the next.")
class AuditLogPage:
    entries: list[AuditLogEntry]
    next_before: int | None


def _refused(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


async def audit_log(info: Info, customer: strawberry.ID | None = None, subject: str | None = None,
                    kind: str | None = None, purpose: str | None = None, before: int | None = None,
                    first: int = 50) -> AuditLogPage:
    principal = info.context.principal
    # The policy hides this field from other roles; the check stays for a policy that grants it.
    if principal is None or not principal.is_admin:
        raise _refused("the audit log is for the admin role", "FORBIDDEN")
    privacy = info.context.privacy
    if privacy is None:
        raise _refused("the audit log is not open in this gateway", "NOT_CONFIGURED")
    if not 1 <= first <= MAX_PAGE:
        raise _refused(f"first: must be between 1 and {MAX_PAGE}; got {first}", "BAD_USER_INPUT")
    where = AuditFilter(customers=(customer,) if customer else (), subject=subject,
                        kinds=(kind,) if kind else (), purpose=purpose, before=before, limit=first)
    try:
        page = await privacy.log.query(where)
    except ValueError as exc:  # a filter part the log refuses, named by the message
        raise _refused(str(exc), "BAD_USER_INPUT") from None
    except AuditError as exc:
        raise _refused(f"the audit log could not be read: {exc}", "AUDIT_UNAVAILABLE") from None
    return AuditLogPage(
        entries=[AuditLogEntry(
            id=e.id, at=e.at, kind=e.kind, subject=e.subject, subject_kind=e.subject_kind,
            roles=list(e.roles), purpose=e.purpose, customers=[strawberry.ID(c) for c in e.customers],
            fields=[AuditFieldRead(path=f.path, masked=f.masked) for f in e.fields],
            details=JSON(e.details), hash=e.hash) for e in page.entries],
        next_before=page.next_before)
