"""The access policy on the request path: which role schema and which rows a request gets.

:class:`Access` takes the decisions of one policy: the config's ``policy:`` file, or, without
one, the built-in policy in which only the ``admin`` role reads anything (deny by default).
:class:`PolicyGate` stands behind the auth gate: it turns the request's principal into an
:class:`Admission` (the role view and the row scope) before GraphQL sees the request, or answers
403 with the refusal's ``extensions.code``, like the auth gate answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.http import SCOPE_KEY, error_response
from gateway.config import Config
from gateway.policy import (
    AccessDenied,
    Catalog,
    Decider,
    Policy,
    RoleSchemas,
    RoleView,
    RowScope,
    UnknownRole,
    parse_policy,
    source_facts,
)
from gateway.policy.rows import SourceFacts, SourceTest
from gateway.principal import ADMIN_PURPOSE, ADMIN_ROLE, Principal

ADMISSION_KEY = "panorama.admission"
log = logging.getLogger("panorama.policy")

#: Without a `policy:` file: the admin role reads everything, for administration; any other
#: role is refused. Deny by default, so that an upgraded gateway shows no one anything new.
BUILTIN_POLICY = {
    "version": 1,
    "purposes": {ADMIN_PURPOSE: {"description": "Running the gateway.", "categories": "*",
                                 "objectable": False}},
    "roles": {ADMIN_ROLE: {"description": "Everything, unclassified fields included.",
                           "purposes": [ADMIN_PURPOSE], "introspection": True,
                           "all_fields": True}},
}

#: Rows of a request that has no admission: no source passes, no customer is admitted.
NO_ROWS = RowScope(sources=((SourceTest("name", frozenset()),),), customer_ids=frozenset())


@dataclass(frozen=True)
class Admission:
    """What one request may see: its role view (fields, masks) and its rows."""

    view: RoleView
    scope: RowScope


class Access:
    """The policy's decisions, role schemas and source facts for one gateway."""

    def __init__(self, policy: Policy, schema: Any, facts: SourceFacts, *,
                 mask_key: bytes | None = None, builtin: bool = False, where: str = "") -> None:
        """``schema``: the strawberry Schema requests execute against (its role copies)."""
        self.policy = policy
        self.decider = Decider(policy, Catalog.of(schema))
        self.schemas = RoleSchemas(schema, mask_key=mask_key)
        self.facts = facts
        self.builtin = builtin
        self.where = where

    @classmethod
    def of(cls, config: Config, schema: Any) -> Access:
        """The config's policy, or the built-in admin-only one when it names none."""
        policy, builtin = config.policy, config.policy is None
        if policy is None:
            policy = parse_policy(BUILTIN_POLICY, "(built-in: admin only)", Catalog.of(schema))
        return cls(policy, schema, source_facts(config), mask_key=_mask_key(config),
                   builtin=builtin, where=config.path)

    def admit(self, principal: Principal) -> Admission:
        """The principal's view and rows; AccessDenied (403, with a code) saying why not."""
        try:
            view = self.decider.view_for(principal)
        except UnknownRole as exc:
            if not self.builtin:
                raise
            raise UnknownRole(f"{self.where} has no `policy:`, so only the admin role may read "
                              f"(deny by default); add a policy file that gives role(s) "
                              f"{', '.join(principal.roles) or '(none)'} a view (docs/policies.md)"
                              ) from exc
        return Admission(view, self.decider.rows_for(view, principal))

    def schema_for(self, view: RoleView) -> Any:
        """The strawberry schema a request with this view executes against."""
        return self.schemas.strawberry_for(view)


def _mask_key(config: Config) -> bytes | None:
    """A key for the `hash` mask that stays the same across restarts and replicas: derived from
    the identity secret (never the secret itself); None (a random key per process) without."""
    if config.identity is None:
        return None
    return hmac.new(config.identity.secret.encode(), b"panorama policy hash mask",
                    hashlib.sha256).digest()


Denied = Callable[[Principal, AccessDenied], Awaitable[None]]


class PolicyGate:
    """ASGI middleware behind AuthGate: put the request's Admission in the scope, or answer 403.

    ``on_denied`` is told of every refusal (the audit log records denied attempts).
    """

    def __init__(self, app: ASGIApp, access_of: Callable[[Scope], Access], *,
                 on_denied: Denied | None = None) -> None:
        """``access_of(scope)``: the policy of the config version the request runs on."""
        self.app = app
        self.access_of = access_of
        self.on_denied = on_denied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal | None = scope.get(SCOPE_KEY)
        if scope["type"] != "http" or principal is None:
            # The GraphiQL page: nothing executes without an admission (see gateway.app).
            await self.app(scope, receive, send)
            return
        try:
            scope[ADMISSION_KEY] = self.access_of(scope).admit(principal)
        except AccessDenied as exc:
            log.info("refused %s (roles %s, purpose %s): %s", exc.code,
                     ",".join(principal.roles), principal.purpose, exc)
            if self.on_denied is not None:
                await self.on_denied(principal, exc)
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def admission_of(request: Any) -> Admission | None:
    """The request's admission, as the gate left it (None for the GraphiQL page)."""
    return request.scope.get(ADMISSION_KEY)
