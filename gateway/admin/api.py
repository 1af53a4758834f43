"""``/admin/api``: the admin API over HTTP (JSON in and out; admin role only).

Every answer carries the config version it is about (``ETag: "7"`` and ``"version": 7``). A
write must send ``If-Match`` with the version it was prepared against: 428 without one, 409 when
someone else changed the config since. Bodies are JSON (or YAML without anchors and aliases), at
most ``admin_max_body_bytes``; unknown keys are errors. Every action, accepted or refused, is
audited (kind ``admin``). docs/admin.md describes each endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.admin.changes import BadRequest, Change, parse_changes
from gateway.admin.checks import located
from gateway.admin.document import ConfigDocument, diff, json_ready
from gateway.admin.service import MAX_REASON, AdminService, Invalid
from gateway.admin.store import StaleVersion, StoreError
from gateway.auth.http import SCOPE_KEY, error_response
from gateway.config import Problem
from gateway.faults import BreakerState
from gateway.principal import Principal

log = logging.getLogger("panorama.admin")

#: Deeper JSON than this is refused: no legitimate config nests so far.
MAX_DEPTH = 32
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.problems = status, code, problems or []


def _json(body: Any, status: int = 200, version: int | None = None) -> Response:
    headers = {"etag": f'"{version}"', "cache-control": "no-store"} if version is not None \
        else {"cache-control": "no-store"}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _error(exc: ApiError, version: int | None = None) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    if exc.problems:
        body["problems"] = [located(p) for p in exc.problems]
    if version is not None:
        body["version"] = version
    return _json({"error": body}, exc.status)


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors or aliases: a "billion laughs" document cannot expand."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError("YAML aliases are not accepted", event.start_mark)
        node = super().compose_node(parent, index)
        if getattr(node, "anchor", None):
            raise yaml.MarkedYAMLError("YAML anchors are not accepted", node.start_mark)
        return node


def _depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


async def read_body(request: Request, limit: int, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The request's body as an object with only ``allowed`` keys, or an ApiError."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "BODY_TOO_LARGE", f"the body is larger than {limit} bytes "
                                              f"(setting admin_max_body_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "BODY_TOO_LARGE", f"the body is larger than {limit} bytes "
                                                  f"(setting admin_max_body_bytes)")
        chunks.append(chunk)
    raw = b"".join(chunks)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/json":
            value = orjson.loads(raw or b"{}")
        elif kind in ("application/yaml", "application/x-yaml", "text/yaml"):
            value = yaml.load(raw.decode() or "{}", Loader=_NoAliases)  # noqa: S506 (safe subclass)
        else:
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send Content-Type: application/json "
                                                          "(or application/yaml)")
    except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BAD_REQUEST", f"the body is not valid JSON ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ApiError(400, "BAD_REQUEST", f"the body is not acceptable YAML{where}: "
                                           f"{getattr(exc, 'problem', None) or exc}") from None
    except RecursionError:
        raise ApiError(400, "BAD_REQUEST", f"the body nests deeper than {MAX_DEPTH}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "BAD_REQUEST", "the body must be an object")
    if not _depth(value):
        raise ApiError(400, "BAD_REQUEST", f"the body nests deeper than {MAX_DEPTH}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ApiError(400, "BAD_REQUEST", f"unknown key(s) {', '.join(unknown)}; allowed: "
                                           f"{', '.join(allowed) or 'none'}")
    return value


def _reason(body: Mapping[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ApiError(400, "REASON_REQUIRED", "say why: every change needs a `reason` (it is "
                                               "kept in the history)")
    if len(reason) > MAX_REASON:
        raise ApiError(400, "BAD_REQUEST", f"`reason` is longer than {MAX_REASON} characters")
    return reason.strip()


def _expected(request: Request) -> int:
    value = request.headers.get("if-match")
    if value is None:
        raise ApiError(428, "PRECONDITION_REQUIRED",
                       'send If-Match: "<version>" with the version your change was prepared '
                       'against (the ETag of what you read)')
    match = _ETAG.match(value.strip())
    if not match:
        raise ApiError(400, "BAD_REQUEST", 'If-Match: expected a version such as "7"')
    return int(match.group(1))


Handler = Callable[[Request], Awaitable[Response]]


class AdminApi:
    """The routes; each handler audits its action with its outcome."""

    def __init__(self, service: AdminService, max_body: int) -> None:
        self.service = service
        self.max_body = max_body
        self.router = Router(routes=[
            Route("/status", self._action("status", self.status), methods=["GET"]),
            Route("/connectors", self._action("list_connectors", self.list_kind("connector")),
                  methods=["GET"]),
            Route("/mappings", self._action("list_mappings", self.list_kind("mapping")),
                  methods=["GET"]),
            Route("/policies", self._action("list_policies", self.list_kind("policy")),
                  methods=["GET"]),
            *(Route(f"/{plural}/{{name}}", self._action(f"{kind}", self.resource(kind)),
                    methods=["GET", "PUT", "DELETE"])
              for plural, kind in (("connectors", "connector"), ("mappings", "mapping"),
                                   ("policies", "policy"))),
            Route("/policy", self._action("policy_document", self.policy_document),
                  methods=["GET", "PUT"]),
            Route("/changes", self._action("change", self.changes), methods=["POST"]),
            Route("/validate", self._action("validate", self.validate), methods=["POST"]),
            Route("/test", self._action("test", self.probe(False)), methods=["POST"]),
            Route("/introspect", self._action("introspect", self.probe(True)), methods=["POST"]),
            Route("/preview", self._action("preview", self.preview), methods=["POST"]),
            Route("/history", self._action("history", self.history), methods=["GET"]),
            Route("/history/{number:int}", self._action("history_entry", self.history_entry),
                  methods=["GET"]),
            Route("/history/{number:int}/restore", self._action("restore", self.restore),
                  methods=["POST"]),
        ])

    # -- the audited wrapper --------------------------------------------------------------

    def _action(self, action: str, handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            principal: Principal | None = request.scope.get(SCOPE_KEY)
            method = request.method.lower()
            name = request.path_params.get("name")
            details: dict[str, Any] = {"method": method}
            if name is not None:
                details["target"] = str(name)
            try:
                response = await handler(request)
            except ApiError as exc:
                await self.service.audit(principal, action, "refused", code=exc.code, **details)
                return _error(exc, self.service.live.version if exc.status == 409 else None)
            except StaleVersion as exc:
                await self.service.audit(principal, action, "refused", code="CONFLICT",
                                         **details)
                return _error(ApiError(409, "CONFLICT", str(exc)), exc.head)
            except Invalid as exc:
                await self.service.audit(principal, action, "refused", code="INVALID_CONFIG",
                                         problems=len(exc.problems), **details)
                return _error(ApiError(422, "INVALID_CONFIG", str(exc), exc.problems))
            except BadRequest as exc:
                await self.service.audit(principal, action, "refused", code="BAD_REQUEST",
                                         **details)
                return _error(ApiError(400, "BAD_REQUEST", "the request is malformed",
                                       exc.problems))
            except LookupError as exc:
                await self.service.audit(principal, action, "refused", code="NOT_FOUND",
                                         **details)
                return _error(ApiError(404, "NOT_FOUND", str(exc.args[0])))
            except StoreError as exc:
                log.error("config store: %s", exc)
                await self.service.audit(principal, action, "failed", code="STORE_UNAVAILABLE",
                                         **details)
                return _error(ApiError(503, "STORE_UNAVAILABLE", str(exc)))
            version = response.headers.get("etag", "").strip('"')
            await self.service.audit(principal, action, "ok",
                                     version=int(version) if version.isdigit() else None,
                                     **details)
            return response

        return run

    # -- reading --------------------------------------------------------------------------

    async def _head(self) -> tuple[int, ConfigDocument]:
        head = await self.service.store.head()
        return head.number, head.document

    async def status(self, request: Request) -> Response:
        runtime = self.service.live.current

        async def one(source: Any) -> dict[str, Any]:
            started = time.perf_counter()
            error = None
            try:
                await asyncio.wait_for(source.connector.ping(), 5.0)
                source.answered, source.last_error = True, None
            except TimeoutError:
                error = "SOURCE_TIMEOUT"
            except Exception as exc:  # noqa: BLE001 (a status page reports, never raises)
                error = getattr(exc, "code", "SOURCE_ERROR")
            latency = round((time.perf_counter() - started) * 1000, 1)
            state = ("breaker-open" if source.breaker.state is BreakerState.OPEN
                     else "ready" if error is None else "error")
            config = source.config
            return {"name": source.name, "kind": config.kind, "shop": config.shop,
                    "region": config.region, "state": state,
                    "latencyMs": latency if error is None else None, "lastError": error}

        found = await asyncio.gather(*(one(s) for s in runtime.sources))
        return _json({"version": runtime.version, "sources": found}, version=runtime.version)

    def list_kind(self, kind: str) -> Handler:
        async def handler(request: Request) -> Response:
            version, document = await self._head()
            names = document.roles() if kind == "policy" else document.sources
            items = [_read(document, kind, str(n)) for n in names]
            if kind == "policy":
                items = [{"name": str(n), "item": item} for n, item in zip(names, items,
                                                                            strict=True)]
            return _json({"version": version, "items": items}, version=version)

        return handler

    def resource(self, kind: str) -> Handler:
        async def handler(request: Request) -> Response:
            name = str(request.path_params["name"])
            if request.method == "GET":
                version, document = await self._head()
                item = _read(document, kind, name)
                if item is None:
                    raise LookupError(f"no {kind} '{name}'")
                return _json({"version": version, "name": name, "item": item}, version=version)
            if request.method == "PUT":
                body = await read_body(request, self.max_body, ("item", "reason", "live"))
                change = {"op": "put", "kind": kind, "name": name, "item": body.get("item")}
            else:
                body = await read_body(request, self.max_body, ("reason",))
                change = {"op": "delete", "kind": kind, "name": name}
            version = await self._apply(request, parse_changes([change]), body)
            _, document = await self._head()
            return _json({"version": version, "name": name,
                          "item": _read(document, kind, name)}, version=version)

        return handler

    async def policy_document(self, request: Request) -> Response:
        if request.method == "GET":
            version, document = await self._head()
            if document.policy is None:
                raise LookupError("the config names no policy file (`policy:`)")
            return _json({"version": version, "item": json_ready(document.policy)},
                         version=version)
        body = await read_body(request, self.max_body, ("item", "reason"))
        changes = parse_changes([{"op": "put", "kind": "policy-document", "name": "policy",
                                  "item": body.get("item")}])
        version = await self._apply(request, changes, body)
        return _json({"version": version}, version=version)

    # -- writing --------------------------------------------------------------------------

    async def _apply(self, request: Request, changes: list[Change], body: Mapping[str, Any]
                     ) -> int:
        expected = _expected(request)
        reason = _reason(body)
        principal: Principal = request.scope[SCOPE_KEY]
        live = body.get("live", True)
        if not isinstance(live, bool):
            raise ApiError(400, "BAD_REQUEST", "`live` is true (check the changed sources "
                                               "against the live systems) or false")
        version = await self.service.apply(changes, expected, principal.subject, reason, live)
        return version.number

    async def changes(self, request: Request) -> Response:
        body = await read_body(request, self.max_body, ("changes", "reason", "live"))
        changes = parse_changes(body.get("changes"))
        version = await self._apply(request, changes, body)
        return _json({"version": version, "applied": len(changes)}, version=version)

    async def restore(self, request: Request) -> Response:
        body = await read_body(request, self.max_body, ("reason",))
        expected, reason = _expected(request), _reason(body)
        principal: Principal = request.scope[SCOPE_KEY]
        number = int(request.path_params["number"])
        version = await self.service.restore(number, expected, principal.subject, reason)
        return _json({"version": version.number, "restored": number}, version=version.number)

    # -- looking before applying ----------------------------------------------------------

    async def validate(self, request: Request) -> Response:
        body = await read_body(request, self.max_body, ("changes", "live"))
        changes = parse_changes(body.get("changes"))
        version, _ = await self._head()
        try:
            proposal = await self.service.propose(changes, live=body.get("live", True) is True)
        except Invalid as exc:
            return _json({"version": version, "valid": False,
                          "problems": [located(p) for p in exc.problems]}, version=version)
        return _json({"version": version, "valid": True, "problems": [],
                      "sources": proposal.described}, version=version)

    def probe(self, introspect: bool) -> Handler:
        async def handler(request: Request) -> Response:
            body = await read_body(request, self.max_body, ("name", "item"))
            name, item = body.get("name"), body.get("item")
            if (name is None) == (item is None) and item is None:
                raise ApiError(400, "BAD_REQUEST", "give `name` (a configured connector) or "
                                                   "`item` (a connector as proposed)")
            if item is not None and not isinstance(item, dict):
                raise ApiError(400, "BAD_REQUEST", "`item` must be a connector object")
            result = await self.service.probe(str(name) if name is not None else None, item,
                                              introspect)
            version = self.service.live.version
            return _json({"version": version, **result}, version=version)

        return handler

    async def preview(self, request: Request) -> Response:
        body = await read_body(request, self.max_body, ("changes", "query", "variables", "role",
                                                        "purpose", "shop", "region"))
        query, role = body.get("query"), body.get("role")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "BAD_REQUEST", "`query`: the GraphQL query to preview")
        if not isinstance(role, str) or not role:
            raise ApiError(400, "BAD_REQUEST", "`role`: whose view to preview")
        variables = body.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise ApiError(400, "BAD_REQUEST", "`variables` must be an object")
        admin: Principal = request.scope[SCOPE_KEY]
        as_role = Principal(admin.subject, (role,), _text(body, "shop"), _text(body, "region"),
                            _text(body, "purpose"), kind=admin.kind)
        changes = parse_changes(body["changes"]) if body.get("changes") else []
        result = await self.service.preview(changes, as_role, query, variables)
        version = self.service.live.version
        return _json({"version": version, **result}, version=version)

    # -- history --------------------------------------------------------------------------

    async def history(self, request: Request) -> Response:
        first = _int_param(request, "first", 50, 1, 500)
        before = _int_param(request, "before", None, 1, None)
        versions = await self.service.store.history(first, before)
        head = self.service.live.version
        return _json({"version": head, "items": [v.meta() for v in versions]}, version=head)

    async def history_entry(self, request: Request) -> Response:
        number = int(request.path_params["number"])
        version = await self.service.store.get(number)
        if version is None:
            raise LookupError(f"no version {number}")
        previous = await self.service.store.get(number - 1) if number > 1 else None
        entry = {**version.meta(), "diff": diff(previous.document if previous else None,
                                                version.document, f"version {number}")}
        head = self.service.live.version
        return _json({"version": head, "entry": entry}, version=head)


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "BAD_REQUEST", f"`{key}` must be text")
    return value or None


def _int_param(request: Request, name: str, default: int | None, low: int,
               high: int | None) -> Any:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise ApiError(400, "BAD_REQUEST", f"`{name}`: expected a whole number from {low}"
                                           f"{f' to {high}' if high else ''}")
    return int(text)


def _read(document: ConfigDocument, kind: str, name: str) -> Any:
    if kind == "connector":
        return document.connector(name)
    if kind == "mapping":
        return document.mapping(name)
    return document.role(name)


class AdminOnly:
    """Behind the auth gate: only the admin role passes; others get 403 (and are audited)."""

    def __init__(self, app: ASGIApp, service: AdminService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal | None = scope.get(SCOPE_KEY)
        if scope["type"] == "http" and (principal is None or not principal.is_admin):
            await self.service.audit(principal, "admin_api", "refused", code="FORBIDDEN",
                                     path=str(scope.get("path", "")).replace("/", "_"))
            await error_response(_Forbidden())(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Forbidden(Exception):
    status, code = 403, "FORBIDDEN"

    def __str__(self) -> str:
        return "the admin API is for the admin role only"
