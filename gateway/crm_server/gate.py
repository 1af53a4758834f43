"""What stands in front of every ``/crm/`` route: injected faults, bearer auth, rate limit.

Written as plain ASGI middleware, ``Gate(app, token=..., ...)``, so that a fault or a refusal
never reaches a handler. ``/healthz`` passes untouched.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.crm_server.errors import HubSpotError, JSONResponse, error_body


@dataclass(frozen=True, slots=True)
class Fault:
    """The answer to one upcoming request, queued on ``app.state.faults`` by a test.

    ``Fault(500)``: a server error; ``Fault(429, retry_after=0.2)``: rate limited, with a
    ``Retry-After`` header; ``Fault(None, delay=2)``: answer normally, two seconds late;
    ``Fault(200, body=b"<html>")``: a raw, non-JSON body.
    """

    status: int | None = 500
    delay: float = 0.0
    retry_after: float | None = None
    body: bytes | None = None


#: HubSpot's category for each status a fault may answer with.
FAULT_CATEGORIES = {429: "RATE_LIMITS", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                    404: "OBJECT_NOT_FOUND", 400: "VALIDATION_ERROR"}


@dataclass(slots=True)
class GateState:
    """Mutable state shared with tests: faults to answer and every request seen."""

    faults: deque[Fault] = field(default_factory=deque)
    #: One dict per ``/crm/`` request: method, path, query and (once parsed) body.
    requests: list[dict[str, Any]] = field(default_factory=list)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class RateWindow:
    """At most ``limit`` requests in any ``window`` seconds (thread-safe)."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit, self.window = limit, window
        self.stamps: deque[float] = deque()
        self.lock = threading.Lock()

    def wait_needed(self) -> float:
        """Zero if this request may pass (and count it), else seconds until one may."""
        now = time.monotonic()
        with self.lock:
            while self.stamps and now - self.stamps[0] >= self.window:
                self.stamps.popleft()
            if len(self.stamps) < self.limit:
                self.stamps.append(now)
                return 0.0
            return self.window - (now - self.stamps[0])


class Gate:
    """Faults first, then ``Authorization: Bearer``, then the rate limit."""

    def __init__(self, app: ASGIApp, *, token: str | None, state: GateState,
                 rate: RateWindow | None = None) -> None:
        self.app, self.token, self.state, self.rate = app, token, state, rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/crm/"):
            await self.app(scope, receive, send)
            return
        record = {"method": scope["method"], "path": scope["path"],
                  "query": scope.get("query_string", b"").decode("latin-1"), "body": None}
        self.state.requests.append(record)
        scope.setdefault("state", {})["record"] = record
        refusal = await self._fault() or self._auth(scope) or self._rate_limited()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _fault(self) -> Response | None:
        try:
            fault = self.state.faults.popleft()
        except IndexError:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return None
        headers = {} if fault.retry_after is None else {"Retry-After": _seconds(fault.retry_after)}
        if fault.body is not None:
            return Response(fault.body, fault.status, headers, media_type="application/json")
        category = FAULT_CATEGORIES.get(fault.status, "INTERNAL_ERROR")
        return JSONResponse(error_body(category, f"injected fault ({fault.status})"),
                            status_code=fault.status, headers=headers)

    def _auth(self, scope: Scope) -> JSONResponse | None:
        if self.token is None:
            return None
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
                given.strip().encode(), self.token.encode()):
            return None
        return HubSpotError(
            401, "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and private app access tokens, sent as 'Authorization: Bearer <token>'.").response()

    def _rate_limited(self) -> JSONResponse | None:
        if self.rate is None:
            return None
        wait = self.rate.wait_needed()
        if not wait:
            return None
        return HubSpotError(
            429, "RATE_LIMITS", f"You have reached your secondly limit of {self.rate.limit} "
            f"requests per {self.rate.window:g}s.", headers={"Retry-After": str(math.ceil(wait))},
            errorType="RATE_LIMIT", policyName="SECONDLY").response()
