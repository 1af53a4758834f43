"""The HTTP side of authentication: a gate in front of the GraphQL endpoint.

A request without a valid credential never reaches GraphQL: it gets a GraphQL-shaped JSON error
(``extensions.code``: UNAUTHENTICATED, FORBIDDEN, ...) with ``WWW-Authenticate: Bearer`` on 401.
The GraphiQL page itself (GET, no query) stays open: the queries it sends need a token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.authenticator import Authenticator
from gateway.auth.errors import AuthError
from gateway.principal import Principal

SCOPE_KEY = "panorama.principal"
log = logging.getLogger("panorama.auth")


class Refusal(Protocol):
    """A refused request: an AuthError, or a policy's AccessDenied (gateway.access)."""

    status: int
    code: str


def error_response(exc: Refusal) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="panorama"'} if exc.status == 401 else None
    body = {"errors": [{"message": str(exc), "extensions": {"code": exc.code}}]}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _wants_ide(connection: HTTPConnection) -> bool:
    # The same test strawberry makes before it renders GraphiQL instead of running a query.
    accept = connection.headers.get("accept", "")
    return (connection.scope.get("method") == "GET" and "query" not in connection.query_params
            and ("text/html" in accept or "*/*" in accept))


class AuthGate:
    """ASGI middleware: authenticate, put the Principal in the scope, or answer the error."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator, *, ide: bool = True,
                 on_refused: Callable[[AuthError, str], Awaitable[None]] | None = None) -> None:
        """``on_refused(error, path)`` is told of every refusal (the audit log records them)."""
        self.app = app
        self.authenticator = authenticator
        self.ide = ide
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if self.ide and _wants_ide(connection):
            await self.app(scope, receive, send)
            return
        try:
            scope[SCOPE_KEY] = await self.authenticator.authenticate(connection.headers)
        except AuthError as exc:
            # The message names the problem, never the credential: safe to log.
            log.info("refused %s %s: %s", scope.get("method"), scope.get("path"), exc)
            if self.on_refused is not None:
                await self.on_refused(exc, str(scope.get("path", "")))
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def principal_of(request: Any) -> Principal | None:
    """The request's principal, as the gate left it (None for the GraphiQL page)."""
    return request.scope.get(SCOPE_KEY)
