"""The right of access: everything Panorama holds about a customer, as one JSON document.

``GET /me/export`` with the customer's own credential (role ``customer``, behind the same auth
and policy gates as ``/graphql``) answers a JSON attachment: the customer with every value's
provenance, every transaction and interaction (not a page of them), their consents, their
correction requests and every read of their data. Names are the GraphQL schema's, and only
what the customer's role view shows is included. The export is a read: it has its audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.utils.str_converters import to_camel_case

from gateway import merge
from gateway.audit import FieldAccess
from gateway.audit_trail import AuditUnrecorded
from gateway.schema_me import accesses_of, consents_of, corrections_of, subject_of

#: What the document is, so that a reader can tell versions apart.
FORMAT = "panorama-export/1"
PAGE = 1000  # access-log entries read per round


def plain(value: Any, readable: Callable[[str], bool], seen: set[str]) -> Any:
    """A strawberry value as JSON data: GraphQL names, only the fields ``readable`` allows (their
    coordinates are added to ``seen``); computed fields with arguments are left to the caller."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact, as the API gives it
    if isinstance(value, list):
        return [plain(item, readable, seen) for item in value]
    definition = getattr(type(value), "__strawberry_definition__", None)
    if definition is None:
        return value
    out = {}
    for field in definition.fields:
        if field.base_resolver is not None:
            continue
        name = field.graphql_name or to_camel_case(field.python_name)
        coordinate = f"{definition.name}.{name}"
        if readable(coordinate):
            seen.add(coordinate)
            out[name] = plain(getattr(value, field.python_name), readable, seen)
    return out


async def export_document(context: Any) -> tuple[dict[str, Any], list[str]]:
    """The document, and the coordinates it discloses (for the audit entry)."""
    from gateway.schema import Customer

    view = context.view

    def readable(coordinate: str) -> bool:
        # Masked values are left out rather than shown masked: this is the customer's own copy.
        return view is None or (view.can_read(coordinate) and view.mask(coordinate) is None)

    subject = await subject_of(context)
    seen: set[str] = {"Query.me"}
    document: dict[str, Any] = {"format": FORMAT, "exportedAt": datetime.now(UTC).isoformat(),
                                "customerId": subject.id, "customer": None}
    found = subject.found
    if found is not None and readable("Me.customer"):
        seen.add("Me.customer")
        customer = plain(Customer.of(found, context.sources), readable, seen)
        for section, convert in (("transactions", lambda r: merge.transaction(r, context.sources.shops)),
                                 ("interactions", merge.interaction)):
            if readable(f"Customer.{section}"):
                seen.add(f"Customer.{section}")
                (records,) = await context.resolver.children([found], section)
                ordered = sorted(records, key=lambda r: (r.date is not None, r.date), reverse=True)
                customer[section] = plain([convert(r) for r in ordered], readable, seen)
        document["customer"] = customer
    if readable("Me.consents"):
        seen.add("Me.consents")
        document["consents"] = plain(await consents_of(subject, context), readable, seen)
    if readable("Me.corrections"):
        seen.add("Me.corrections")
        document["corrections"] = plain(await corrections_of(subject), readable, seen)
    if readable("Me.accessLog"):
        seen.add("Me.accessLog")
        reads, before = [], None
        while True:
            entries, before = await accesses_of(subject, PAGE, before)
            reads += entries
            if before is None:
                break
        document["accessLog"] = plain(reads, readable, seen)
    return document, sorted(seen)


def json_error(message: str, code: str, status: int) -> Response:
    """A GraphQL-shaped error for an endpoint beside /graphql (an export)."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status)


class ExportEndpoint:
    """``GET /me/export``; ``graphql`` is the GraphQL view, whose request context it reuses."""

    def __init__(self, graphql: Any) -> None:
        self.graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        context = await self.graphql.get_context(request, None)
        if context.view is None or context.audit is None:
            return json_error("no access decision for this request", "FORBIDDEN", 403)
        try:
            document, coordinates = await export_document(context)
        except GraphQLError as exc:
            code = (exc.extensions or {}).get("code", "BAD_USER_INPUT")
            return json_error(exc.message, code, 403 if code == "FORBIDDEN" else 400)
        fields = [FieldAccess(c) for c in coordinates]
        try:
            await context.audit.append(context.audit.events(
                fields, {"operation": "export", "roots": ["me"], "outcome": "ok"}))
        except AuditUnrecorded as exc:
            return json_error(exc.message, "AUDIT_UNAVAILABLE", 503)
        filename = f"panorama-export-{datetime.now(UTC):%Y%m%d}.json"
        return Response(orjson.dumps(document), media_type="application/json",
                        headers={"content-disposition": f'attachment; filename="{filename}"'})
