"""create_app(settings): the one place that wires config, sources, schema and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from cross_web import HTTPException  # what strawberry's view turns into a 4xx response
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, request_response
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.access import NO_ROWS, Admission, PolicyGate, admission_of
from gateway.admin.api import AdminApi, AdminOnly
from gateway.admin.checks import parse_host_rules
from gateway.admin.service import AdminService
from gateway.admin.store import open_config_store, read_document
from gateway.admin.web import console_routes
from gateway.auth import Authenticator
from gateway.auth.http import AuthGate, principal_of
from gateway.config import Config, load_config
from gateway.crosswalk import KeyHasher, open_crosswalk
from gateway.faults import BreakerState
from gateway.finance.export_http import AccountsExportEndpoint
from gateway.hardening import parse_body, refuse_request
from gateway.linking import Linker
from gateway.logs import RequestIdMiddleware
from gateway.matching import Matcher
from gateway.me_export import ExportEndpoint
from gateway.metrics import Metrics, MetricsMiddleware, metrics_endpoint
from gateway.policy import AccessDenied
from gateway.principal import Principal
from gateway.privacy import Privacy
from gateway.resolver import Resolver
from gateway.runtime import ConfigScope, Live, Runtime, Shared, runtime_of
from gateway.schema import Context, build_schema
from gateway.settings import Settings
from gateway.source_cache import SourceCache

log = logging.getLogger("panorama.app")


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class GraphQLView(GraphQL):
    """strawberry's ASGI view, with a per-request Resolver and source failures as errors.

    ``self.schema`` is the full schema (GraphiQL's page, schema.graphql); every operation runs
    against the request's role schema, which PolicyGate chose (see execute_single).
    """

    def __init__(self, shared: Shared) -> None:
        # No HTTP streaming transports: strawberry would run those on self.schema, the full one.
        super().__init__(shared.schema, graphql_ide="graphiql" if shared.settings.graphiql else None,
                         subscription_protocols=())
        self.shared = shared
        self.settings = shared.settings
        self.cache: SourceCache | None = None

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        # The config version this whole request runs on, as ConfigScope pinned it.
        context = self.context_for(runtime_of(request), principal_of(request),
                                   admission_of(request), request)
        request.state.panorama = context
        return context

    def context_for(self, runtime: Runtime, principal: Principal | None,
                    admission: Admission | None, request: Any = None) -> Context:
        resolver = Resolver(runtime.sources, self.settings, self.shared.linker,
                            admission.scope if admission else NO_ROWS, runtime.access.facts)
        resolver.start_deadline()  # the deadline counts from the request's arrival
        resolver.cache = self.cache
        context = Context(resolver, self.settings, runtime.sources, request=request,
                          steward=runtime.steward, principal=principal,
                          view=admission.view if admission else None,
                          scope=admission.scope if admission else None)
        runtime.privacy.attach(context)  # the request's audit entry, its consent gate
        return context

    async def execute_as(self, runtime: Runtime, principal: Principal, query: str,
                         variables: Mapping[str, Any] | None) -> dict[str, Any]:
        """``query`` as ``principal`` would run it on ``runtime`` (the admin API's preview):
        the same admission, schema, masks, rows and audit as a request of theirs."""
        try:
            admission = runtime.access.admit(principal)
        except AccessDenied as exc:
            return {"data": None, "errors": [{"message": str(exc),
                                              "extensions": {"code": exc.code}}]}
        context = self.context_for(runtime, principal, admission)
        result = await runtime.access.schema_for(admission.view).execute(
            query, variable_values=dict(variables or {}), context_value=context,
            allowed_operation_types={OperationType.QUERY})
        errors = [e.formatted for e in result.errors or []]
        errors += [{"message": f"source '{f.source}' could not answer: {f.message}",
                    "extensions": {"code": f.code, "source": f.source}}
                   for f in context.resolver.failures]
        return {"data": result.data, "errors": errors}

    async def execute_single(self, request: Any, request_adapter: Any, sub_response: Any,  # type: ignore[override]
                             context: Context, root_value: Any, request_data: Any) -> ExecutionResult:
        """strawberry's execute_single, on the role schema instead of self.schema."""
        if context.view is None:  # deny by default: no admission, nothing runs
            return ExecutionResult(data=None, errors=[GraphQLError(
                "no access decision for this request", extensions={"code": "FORBIDDEN"})])
        context.explain = bool((request_data.extensions or {}).get("explain"))
        if context.explain and (context.principal is None or not context.principal.is_admin):
            return ExecutionResult(data=None, errors=[GraphQLError(
                "extensions.explain: the plan of a query is for the admin role; send the query "
                "without `explain`", extensions={"code": "FORBIDDEN"})])
        allowed = OperationType.from_http(request_adapter.method)
        if not self.allow_queries_via_get and request_adapter.method == "GET":
            allowed = allowed - {OperationType.QUERY}
        try:
            return await runtime_of(request).access.schema_for(context.view).execute(
                request_data.query, root_value=root_value, variable_values=request_data.variables,
                context_value=context, operation_name=request_data.operation_name,
                allowed_operation_types=allowed, operation_extensions=request_data.extensions)
        except CannotGetOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason()) from e
        except InvalidOperationTypeError as e:
            raise HTTPException(400, e.as_http_error_reason(request_adapter.method)) from e
        except MissingQueryError as e:
            raise HTTPException(400, "No GraphQL query found in the request") from e

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        data = await super().process_result(request, result)
        context: Context | None = getattr(request.state, "panorama", None)
        if context is not None and context.resolver.failures:
            # Partial data: the other sources answered; say which one did not, by name only.
            errors = list(data.get("errors") or [])
            errors.extend({"message": f"source '{f.source}' could not answer: {f.message}",
                           "extensions": {"code": f.code, "source": f.source}}
                          for f in context.resolver.failures)
            data["errors"] = errors
        if context is not None and context.resolver.trace.calls:
            # How fresh each source's data is; the whole plan when an admin asked for it.
            extensions: dict[str, object] = dict(data.get("extensions") or {})
            resolver = context.resolver
            extensions["freshness"] = resolver.trace.freshness(
                s.name for s in resolver.sources if s.name in resolver.readable)
            if context.explain:
                extensions["explain"] = context.resolver.trace.explain()
            data["extensions"] = extensions
        return data

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Content type (415), body size (413) and batches (400) before anything else."""
        if isinstance(request, Request):
            refused = await refuse_request(request, self.settings.max_body_bytes)
            if refused is not None:
                return refused
        return await super().run(request, *args, **kwargs)

    async def parse_http_body(self, request: Any) -> Any:
        """strawberry's, plus application/graphql (the query text) and the other JSON type."""
        return await parse_body(request, super().parse_http_body)


async def forget_changed_sources(cache: SourceCache, old: Runtime, new: Runtime) -> None:
    """A source whose config changed (or that went) may answer differently: drop its cached
    results, on every replica sharing the cache."""
    for source in old.sources:
        if new.config.sources.get(source.name) != source.config:
            await cache.invalidate(source.name)


def build_linker(config: Config) -> Linker:
    """Deterministic keys only, or the index's crosswalk and rules when `identity:` is set."""
    if config.identity is None:
        return Linker()
    return Linker(Matcher(config.identity.rules),
                  open_crosswalk(config.identity.store, base_dir=config.identity.base_dir),
                  KeyHasher(config.identity.secret))


def create_app(settings: Settings, config: Config | None = None,
               environ: Mapping[str, str] | None = None) -> Starlette:
    """The gateway as an ASGI app. Raises ConfigError when the config has problems."""
    environ = os.environ if environ is None else environ
    if config is None:
        config = load_config(settings.config, environ)
    linker = build_linker(config)
    privacy = Privacy(config.audit, config.consent)  # the audit log and the consent store
    authenticator = Authenticator(config.auth, settings.admin_token, config.path)
    if authenticator.open:
        log.warning("auth mode open: every caller without credentials is an admin; "
                    "for local development only (docs/security.md)")
    shared = Shared(settings, build_schema(), linker, privacy)
    # Version 0 until the config store is open (lifespan): then the store's head number.
    live = Live(Runtime.build(0, config, shared))
    if live.current.access.builtin:
        log.warning("%s has no `policy:`: only the admin role may read (docs/policies.md)",
                    config.path)
    view = GraphQLView(shared)
    # Raw source results, shared by every request (policies apply after it); sources whose
    # cache_ttl_seconds is 0 never touch it.
    cache = SourceCache(settings.cache_max_entries, settings.cache_redis_url or None)
    view.cache = cache
    live.listeners.append(lambda old, new: forget_changed_sources(cache, old, new))
    admin = AdminService(
        open_config_store(settings.config_store, Path(config.path)), live, shared,
        config_path=Path(config.path), environ=environ,
        secrets_dir=Path(settings.admin_secrets_dir or Path(config.path).parent),
        allowed_hosts=parse_host_rules(settings.admin_allowed_hosts))
    admin.execute = view.execute_as

    async def healthz(request: Request) -> Response:
        return ORJSONResponse({"status": "ok"})

    def state(source: Any) -> str:
        if source.breaker.state is BreakerState.OPEN:  # answering with partial data meanwhile
            return "breaker-open"
        return "ready" if source.answered else (source.last_error or "waiting")

    async def readyz(request: Request) -> Response:
        # Ready once every source has answered once; a source that falls sick later costs its
        # part of answers, not the gateway's readiness (its breaker's state says so here).
        sources = runtime_of(request).sources
        body = {"ready": sources.ready, "sources": {s.name: state(s) for s in sources}}
        return ORJSONResponse(body, status_code=200 if sources.ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def probe_until_ready() -> None:
            while True:  # the current version's sources, whichever version that is
                sources = live.current.sources
                if not sources.ready:
                    await sources.probe()
                await asyncio.sleep(settings.ready_retry_seconds if not live.current.sources.ready
                                    else min(settings.ready_retry_seconds, 1))

        if linker.crosswalk is not None:
            await linker.crosswalk.open()
        await privacy.open()
        await admin.start(read_document(Path(config.path)))
        task = asyncio.create_task(probe_until_ready())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await admin.store.aclose()
            await live.aclose()
            await privacy.aclose()
            await cache.aclose()
            if linker.crosswalk is not None:
                await linker.crosswalk.aclose()

    def gated(endpoint: Any, ide: bool) -> ConfigScope:
        """The request's config version, authentication, then the policy; every refusal goes
        to the audit log."""
        policy = PolicyGate(endpoint, lambda scope: runtime_of(scope).access,
                            on_denied=privacy.denied)
        return ConfigScope(AuthGate(policy, authenticator, ide=ide,
                                    on_refused=privacy.refused), live)

    admin_api = AdminApi(admin, settings.admin_max_body_bytes)
    app = Starlette(
        routes=[
            Route("/graphql", gated(view, settings.graphiql), methods=["GET", "POST"]),
            Route("/me/export", gated(ExportEndpoint(view), False), methods=["GET"]),
            Route("/export/accounts", gated(AccountsExportEndpoint(), False), methods=["GET"]),
            Mount("/admin/api", ConfigScope(AuthGate(AdminOnly(admin_api.router, admin),
                                                     authenticator, ide=False,
                                                     on_refused=privacy.refused), live)),
            *console_routes(),
            Route("/healthz", healthz),
            Route("/readyz", ConfigScope(request_response(readyz), live)),
            Route("/metrics", metrics_endpoint, methods=["GET"]),  # 404 unless metrics_enabled
        ],
        lifespan=lifespan,
    )
    app.state.live = live
    app.state.settings = settings
    app.state.privacy = privacy
    app.state.cache = cache
    app.state.admin = admin
    # Metrics and traces (docs/observability.md), with a registry of this app's own; the
    # middleware added last runs first, so the request id is set before anything else logs.
    app.state.metrics = Metrics(live, cache, view.schema) if settings.metrics_enabled else None
    if settings.metrics_enabled or settings.tracing_enabled:
        app.add_middleware(MetricsMiddleware, metrics=app.state.metrics,
                           tracing=settings.tracing_enabled)
    app.add_middleware(RequestIdMiddleware, access_log=settings.log_format == "json")
    return app
