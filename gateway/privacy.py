"""The gateway's own records about people: its audit log and its consent store, for one app.

:class:`Privacy` opens both at start-up and closes them at shutdown (the app's lifespan), and
gives each request what it needs of them: a :class:`~gateway.audit_trail.RequestAudit` that
appends the request's entry, and a :class:`~gateway.consent_gate.ConsentGate` for the
request's purpose. Requests refused before GraphQL (no credential, a purpose the policy
refuses) are recorded here too, as ``denied`` entries.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Collection
from typing import Any

from gateway.audit import AuditConfig, AuditError, AuditEvent, open_configured_audit_log
from gateway.audit_trail import RequestAudit
from gateway.consent import ConsentConfig, open_consent_store
from gateway.consent_gate import ConsentGate
from gateway.principal import Principal

log = logging.getLogger("panorama.audit")

#: Who a request refused before it showed a valid credential is, in the audit log.
UNAUTHENTICATED = "unauthenticated"


class Privacy:
    """The audit log and the consent store of one gateway (not opened until :meth:`open`)."""

    def __init__(self, audit: AuditConfig, consent: ConsentConfig) -> None:
        self.audit_config = audit
        self.consent_config = consent
        self.log = open_configured_audit_log(audit)
        self.consent = open_consent_store(consent.store, consent.base_dir)
        #: The policy's purposes, once the app knows them.
        self.purposes: Collection[str] = ()
        #: Those of them no objection applies to (the policy's ``objectable: false``).
        self.not_objectable: Collection[str] = ()

    async def open(self) -> None:
        await self.log.open()
        try:
            await self.consent.open()
        except BaseException:
            await self.log.aclose()
            raise

    async def aclose(self) -> None:
        try:
            await self.log.aclose()
        finally:
            await self.consent.aclose()

    def bound(self, policy: Any) -> Privacy:
        """This audit log and consent store under ``policy`` (a gateway.policy.Policy): its
        purposes, and which of them objections apply to. Each config version has its own."""
        view = copy.copy(self)
        view.purposes = frozenset(policy.purposes)
        view.not_objectable = policy.not_objectable
        return view

    def attach(self, context: Any) -> None:
        """Give a request's context (gateway.schema.Context) its audit and its consent gate."""
        context.privacy = self
        context.audit = self.request_audit(context.principal)
        context.resolver.consent = self.gate(context.principal)

    def request_audit(self, principal: Principal | None) -> RequestAudit | None:
        """The audit of one request (None without a principal: nothing runs then)."""
        return RequestAudit(self.log, principal) if principal is not None else None

    def gate(self, principal: Principal | None) -> ConsentGate:
        """The consent gate of a request made for the principal's purpose."""
        purpose = principal.purpose if principal else None
        return ConsentGate(self.consent, purpose, self.consent_config.rules,
                           objectable=self.objectable(purpose))

    def objectable(self, purpose: str | None) -> bool:
        """Whether objections to ``purpose`` are honoured (every purpose, but those the policy
        makes not objectable)."""
        return purpose is not None and purpose not in self.not_objectable

    async def _record(self, event: AuditEvent) -> None:
        # The request is refused either way; a log that cannot record it is logged, not fatal.
        try:
            await self.log.append(event)
        except AuditError:
            log.exception("audit log: could not record a refused request (%s)",
                          event.details.get("code"))

    async def refused(self, exc: Any, path: str) -> None:
        """A request the auth gate refused (401, or 403/400 for its purpose header)."""
        await self._record(AuditEvent("denied", UNAUTHENTICATED, (), None, (), (),
                                      {"code": exc.code, "status": exc.status, "path": path}))

    async def denied(self, principal: Principal, exc: Any, path: str = "/graphql") -> None:
        """A request the policy refused before GraphQL (no purpose, a purpose not allowed...)."""
        await self._record(AuditEvent.of(principal, "denied", (), (), code=exc.code,
                                         status=exc.status, path=path))
