"""One audit entry per GraphQL request: who read which customers' fields, for what, or was refused.

A request notes what it disclosed as it runs (:class:`RequestAudit`: the customers it answered
with, the steward or consent actions it took); :class:`AuditExtension`, the outermost
extension of the schema, appends the entry once the answer is known: kind ``read`` with the
field coordinates the operation selected (masked or not, as the request's role view says), or
``denied`` when the policy refused a field. The log commits appends of concurrent requests
together (group commit), so the cost is one awaited append per request. If the log cannot
record the request, the answer is withheld: no personal data leaves without its entry.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from gateway.audit import AuditError, AuditEvent, AuditLog, FieldAccess
from gateway.identity import Cluster
from gateway.principal import Principal

log = logging.getLogger("panorama.audit")

#: ``extensions.code`` of errors that refuse access (the policy's and the steward gate's).
DENIED_CODES = frozenset({
    "FORBIDDEN", "INTROSPECTION_DISABLED", "UNAUTHENTICATED", "PURPOSE_REQUIRED",
    "UNKNOWN_PURPOSE", "PURPOSE_NOT_ALLOWED", "UNKNOWN_ROLE", "PRINCIPAL_INCOMPLETE",
    "NOTHING_VISIBLE"})


class AuditUnrecorded(GraphQLError):
    """The answer is withheld because the audit log could not record it."""

    def __init__(self) -> None:
        super().__init__("the audit log could not record this request, so nothing was returned; "
                         "try again, and tell the gateway's operators if it persists",
                         extensions={"code": "AUDIT_UNAVAILABLE"})


@dataclass
class Action:
    """A change a request made (a steward's action, a consent decision, a correction request)."""

    kind: str
    customers: tuple[str, ...]
    details: dict[str, Any]


@dataclass
class RequestAudit:
    """What one request disclosed and did, appended as one entry when it ends."""

    log: AuditLog
    principal: Principal
    customers: dict[str, None] = field(default_factory=dict)  # ids answered with, in order
    actions: list[Action] = field(default_factory=list)

    def returned(self, clusters: Iterable[Cluster | None]) -> None:
        """Note the customers an answer contains."""
        for found in clusters:
            if found is not None:
                self.customers[found.id] = None

    def action(self, kind: str, customers: Sequence[str], **details: Any) -> None:
        """Note a change the request made; its entry is of this kind (``steward``, ``consent``...)."""
        self.actions.append(Action(kind, tuple(customers), details))

    def events(self, fields: Sequence[FieldAccess], details: Mapping[str, Any],
               refused: Sequence[FieldAccess] | None = None) -> list[AuditEvent]:
        """The request's entries: ``denied`` (``refused`` given, nothing disclosed), ``read``, or
        one per change it made (the first also says what was read)."""
        read = list(self.customers)
        if refused is not None and not read and not self.actions:
            return [AuditEvent.of(self.principal, "denied", (), refused, **details)]
        if not self.actions:
            return [AuditEvent.of(self.principal, "read", read, fields, **details)]
        return [AuditEvent.of(self.principal, a.kind,
                              list(dict.fromkeys((*a.customers, *(read if i == 0 else ())))),
                              fields if i == 0 else (), **{**details, **a.details})
                for i, a in enumerate(self.actions)]

    async def append(self, events: Sequence[AuditEvent]) -> None:
        """Append the entries (AuditUnrecorded if the log cannot)."""
        try:
            if len(events) == 1:
                await self.log.append(events[0])
            else:
                await self.log.append_many(events)
        except AuditError:
            log.exception("audit log: could not append the entry of a request by %s",
                          self.principal.subject)
            raise AuditUnrecorded() from None


def selected_fields(schema: GraphQLSchema, document: DocumentNode,
                    operation_name: str | None) -> list[str]:
    """Schema coordinates (``Customer.emails``) the operation selects, fragments followed."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    found: dict[str, None] = {}
    walked: set[tuple[str, str]] = set()

    def walk(selections: SelectionSetNode, parent: GraphQLNamedType | None) -> None:
        for node in selections.selections:
            if isinstance(node, FieldNode):
                name = node.name.value
                if name.startswith("__") or not isinstance(
                        parent, GraphQLObjectType | GraphQLInterfaceType):
                    continue
                definition = parent.fields.get(name)
                if definition is None:
                    continue
                found[f"{parent.name}.{name}"] = None
                if node.selection_set is not None:
                    walk(node.selection_set, get_named_type(definition.type))
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                walk(node.selection_set,
                     schema.get_type(condition.name.value) if condition else parent)
            elif isinstance(node, FragmentSpreadNode):
                fragment = fragments.get(node.name.value)
                if fragment is None or (fragment.name.value, str(parent)) in walked:
                    continue
                walked.add((fragment.name.value, str(parent)))
                walk(fragment.selection_set, schema.get_type(fragment.type_condition.name.value))

    root = schema.get_root_type(operation.operation)
    walk(operation.selection_set, root)
    return list(found)


def _codes(errors: Sequence[GraphQLError] | None) -> list[tuple[str, str | None]]:
    """``(code, coordinate)`` of each error that refused access."""
    refused = []
    for error in errors or ():
        extensions = error.extensions or {}
        if extensions.get("code") in DENIED_CODES:
            refused.append((str(extensions["code"]), extensions.get("coordinate")))
    return refused


class AuditExtension(SchemaExtension):
    """Appends the request's entry when its operation ends (the outermost extension)."""

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        yield
        context = self.execution_context.context
        audit: RequestAudit | None = getattr(context, "audit", None)
        if audit is None:  # executed by hand (tests, tools), not a request
            return
        result = self.execution_context.result
        errors = list(getattr(result, "errors", None) or self.execution_context.pre_execution_errors
                      or ())
        document = self.execution_context.graphql_document
        schema = self.execution_context.schema._schema
        name = self.execution_context.operation_name
        coordinates = selected_fields(schema, document, name) if document is not None else []
        view = getattr(context, "view", None)
        fields = [FieldAccess(c, view is not None and view.mask(c) is not None)
                  for c in coordinates]
        operation = get_operation_ast(document, name) if document is not None else None
        root = schema.get_root_type(operation.operation) if operation is not None else None
        roots = [c.partition(".")[2] for c in coordinates
                 if root is not None and c.partition(".")[0] == root.name]
        refused = _codes(errors)
        data = getattr(result, "data", None)
        outcome = ("denied" if refused else "ok" if not errors
                   else "partial" if data else "error")
        failed = [f.source for f in getattr(getattr(context, "resolver", None), "failures", ())]
        if failed and outcome == "ok":
            outcome = "partial"  # a source did not answer; the others did
        details: dict[str, Any] = {
            "operation": operation.operation.value if operation is not None else "unknown",
            "roots": roots, "outcome": outcome}
        if failed:
            details["failed"] = sorted(set(failed))
        if refused:
            details["code"] = refused[0][0]
        denied = [FieldAccess(c) for _, c in refused if c] if refused else None
        await audit.append(audit.events(fields, details, denied))
