"""Prometheus metrics at ``GET /metrics``: requests, source calls, breakers, cache, pools.

Every app has a registry of its own (never prometheus_client's global one), so that several
apps in one process (tests) do not clash. What is measured::

    panorama_request_seconds{operation,status}       histogram, one per GraphQL request
    panorama_source_call_seconds{source,step}        histogram, one per call that reached a source
    panorama_source_errors_total{source,code}        counter, calls that failed (code: SOURCE_*)
    panorama_circuit_state{source}                   gauge at scrape time: 0 closed, 1 half-open, 2 open
    panorama_cache_hits_total{source}                counter at scrape time (SourceCache.stats())
    panorama_cache_misses_total{source}              counter at scrape time
    panorama_cache_entries{source}                   gauge at scrape time: entries held locally
    panorama_pool_connections{source}                gauge at scrape time: SQL connections open
    panorama_pool_max_connections{source}            gauge at scrape time: the pool's bound
    panorama_config_version                          gauge at scrape time: the version serving

Labels never carry personal data: ``operation`` is the operation's name, else its root field
names (schema names only, sorted and joined with ``,``), never argument values or query text;
it is ``anonymous`` when there is neither (or the query does not parse) and ``other`` once
:data:`MAX_OPERATIONS` distinct names have been seen, so a client cannot grow the label set
without bound. Sources and steps come from the config and the resolver; codes are error codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

import orjson
from cachetools import LRUCache
from graphql import FieldNode, GraphQLError, InlineFragmentNode, OperationDefinitionNode, parse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.faults import BreakerState
from gateway.request_trace import RequestTrace
from gateway.tracing import SpanEmitter

log = logging.getLogger("panorama.metrics")

#: Distinct ``operation`` label values kept; later new names count as ``other``.
MAX_OPERATIONS = 100
#: Longest operation label kept (a longer name counts as ``other``).
MAX_OPERATION_LENGTH = 100
#: Largest request body read for the operation's name; a larger one counts as ``anonymous``.
MAX_BODY_BYTES = 1_048_576
#: A longer document is not parsed for its name (``anonymous``); strawberry still runs it.
MAX_TOKENS = 10_000
ANONYMOUS, OTHER = "anonymous", "other"
BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
INTROSPECTION = frozenset({"__schema", "__type", "__typename"})
#: Seconds: GraphQL requests span a cache hit to the request deadline (10 s by default).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SOURCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GRAPHQL_PATH = "/graphql"
TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})


class OperationNames:
    """The ``operation`` label: bounded to ``limit`` distinct values, then ``other``."""

    def __init__(self, root_fields: dict[str, frozenset[str]] | None = None,
                 limit: int = MAX_OPERATIONS) -> None:
        #: Operation type ("query", "mutation") -> field names of its root type; None: any.
        self.root_fields = root_fields
        self.limit = limit
        self.seen: set[str] = set()
        # Query text -> name: a client's few query shapes are parsed once, not per request.
        self._names: LRUCache[tuple[str, str | None], str] = LRUCache(512)

    def of(self, query: str | None, operation_name: str | None = None) -> str:
        """The label for one request's query text (never stored, never part of the label)."""
        if not query or not isinstance(query, str):
            return ANONYMOUS
        key = (query, operation_name)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self._name(query, operation_name)
        if name == ANONYMOUS or name in self.seen:
            return name
        if len(self.seen) >= self.limit or len(name) > MAX_OPERATION_LENGTH:
            return OTHER
        self.seen.add(name)
        return name

    def _name(self, query: str, operation_name: str | None) -> str:
        try:
            document = parse(query, no_location=True, max_tokens=MAX_TOKENS)
        except (GraphQLError, RecursionError):
            return ANONYMOUS
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if isinstance(operation_name, str) and operation_name:
            operations = [o for o in operations if o.name is not None
                          and o.name.value == operation_name]
        if len(operations) != 1:
            return ANONYMOUS
        operation = operations[0]
        if operation.name is not None:
            return operation.name.value  # a GraphQL Name: [_A-Za-z][_0-9A-Za-z]*
        known = (self.root_fields or {}).get(operation.operation.value) \
            if self.root_fields is not None else None
        fields = {f for f in _root_fields(operation.selection_set.selections)
                  if f in INTROSPECTION or known is None or f in known}
        return ",".join(sorted(fields)) if fields else ANONYMOUS


def _root_fields(selections: Iterable[Any]) -> Iterator[str]:
    for selection in selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value  # the schema's field, not the client's alias
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set.selections)


def root_fields_of(schema: Any) -> dict[str, frozenset[str]] | None:
    """Root field names per operation type of a strawberry (or graphql-core) schema."""
    graphql_schema = getattr(schema, "_schema", schema)
    out: dict[str, frozenset[str]] = {}
    for kind in ("query", "mutation", "subscription"):
        root = getattr(graphql_schema, f"{kind}_type", None)
        if root is not None:
            out[kind] = frozenset(root.fields)
    return out or None


class Metrics:
    """The registry of one app and what it measures."""

    def __init__(self, live: Any, cache: Any = None, schema: Any = None) -> None:
        self.registry = CollectorRegistry()
        self.operations = OperationNames(root_fields_of(schema) if schema is not None else None)
        self.requests = Histogram(
            "panorama_request_seconds", "GraphQL requests: seconds from arrival to the last byte.",
            ("operation", "status"), buckets=REQUEST_BUCKETS, registry=self.registry)
        self.source_calls = Histogram(
            "panorama_source_call_seconds",
            "Source calls (cache hits and calls skipped after an earlier failure excluded).",
            ("source", "step"), buckets=SOURCE_BUCKETS, registry=self.registry)
        self.source_errors = Counter(
            "panorama_source_errors", "Source calls that failed, by error code.",
            ("source", "code"), registry=self.registry)
        self.registry.register(RuntimeCollector(live, cache))

    def observe_request(self, operation: str, status: str, seconds: float) -> None:
        self.requests.labels(operation, status).observe(seconds)

    def observe_trace(self, trace: RequestTrace) -> None:
        """Every call of one finished request."""
        for call in trace.calls:
            if call.cached_age is not None or call.error == "SKIPPED":
                continue  # answered by the cache, or never sent: not a source call
            self.source_calls.labels(call.source, call.step).observe(call.ms / 1000)
            if call.error is not None:
                self.source_errors.labels(call.source, call.error).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RuntimeCollector(Collector):
    """Gauges read at scrape time from the runtime serving now and the source cache."""

    def __init__(self, live: Any, cache: Any = None) -> None:
        self.live = live
        self.cache = cache

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration; collect() reads live state

    def collect(self) -> Iterator[Metric]:
        runtime = self.live.current
        yield GaugeMetricFamily("panorama_config_version", "The config version serving requests.",
                                value=runtime.version)
        state = GaugeMetricFamily("panorama_circuit_state",
                                  "Circuit breaker per source: 0 closed, 1 half-open, 2 open.",
                                  labels=("source",))
        connections = GaugeMetricFamily("panorama_pool_connections",
                                        "Connections a SQL source's pool holds open now.",
                                        labels=("source",))
        bound = GaugeMetricFamily("panorama_pool_max_connections",
                                  "Most connections a SQL source's pool may open.",
                                  labels=("source",))
        for source in runtime.sources:
            state.add_metric((source.name,), BREAKER_VALUES.get(source.breaker.state, 0))
            driver = getattr(source.connector, "driver", None)
            if driver is None:
                continue  # not a SQL source: no pool to speak of
            try:
                size = driver.size
            except Exception:  # a driver without a size: nothing to report
                continue
            connections.add_metric((source.name,), size)
            bound.add_metric((source.name,), driver.pool_size)
        yield from (state, connections, bound)
        if self.cache is not None:
            hits = CounterMetricFamily("panorama_cache_hits", "Source cache lookups that hit.",
                                       labels=("source",))
            misses = CounterMetricFamily("panorama_cache_misses", "Source cache lookups that missed.",
                                         labels=("source",))
            entries = GaugeMetricFamily("panorama_cache_entries",
                                        "Source results this replica's local cache layer holds.",
                                        labels=("source",))
            for name, stats in self.cache.stats().items():
                hits.add_metric((name,), stats.hits)
                misses.add_metric((name,), stats.misses)
                entries.add_metric((name,), stats.entries)
            yield from (hits, misses, entries)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the app's registry in Prometheus' text format; 404 when disabled."""
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """ASGI middleware timing every GraphQL request and recording its source calls.

    The operation label comes from the request's own query (the JSON body of a POST, the
    ``query`` parameter of a GET), read as strawberry reads it; the body is passed on untouched.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None, tracing: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        # OpenTelemetry spans when asked for and opentelemetry-api is installed (gateway.tracing)
        self.spans = SpanEmitter.create() if tracing else None
        self.names = OperationNames()  # the labels of spans when metrics are off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        started_ns = time.time_ns()
        scope.setdefault("state", {})  # shared with the request below (request.state.panorama)
        body = bytearray()
        status = 500

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_BODY_BYTES:
                body.extend(message.get("body", b""))
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_keep, send_and_note)
        finally:
            try:
                self._record(scope, body, status, time.perf_counter() - started, started_ns,
                             started)
            except Exception:  # measuring never fails a request
                log.exception("could not record the request's metrics")

    def _record(self, scope: Scope, body: bytearray, status: int, seconds: float,
                started_ns: int, started: float) -> None:
        context = scope["state"].get("panorama")
        resolver = getattr(context, "resolver", None)
        outcome = ("error" if status >= 400 else
                   "partial" if resolver is not None and resolver.failures else "ok")
        operation = (self.metrics.operations if self.metrics is not None
                     else self.names).of(*_query_of(scope, body))
        scope["state"]["panorama_operation"] = operation
        if self.metrics is not None:
            self.metrics.observe_request(operation, outcome, seconds)
            if resolver is not None:
                self.metrics.observe_trace(resolver.trace)
        if self.spans is not None:
            headers = {k.decode("latin-1"): v.decode("latin-1")
                       for k, v in scope.get("headers", ()) if k in TRACE_HEADERS}
            self.spans.emit(operation, outcome, status, started_ns, started, headers,
                            resolver.trace if resolver is not None else None)


def _query_of(scope: Scope, body: bytes | bytearray) -> tuple[str | None, str | None]:
    """The query text and operation name a request sent, or (None, None)."""
    if scope.get("method") == "GET":
        params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        query = params.get("query", [None])[0]
        name = params.get("operationName", [None])[0]
        return query, name
    if not body or len(body) > MAX_BODY_BYTES:
        return None, None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    query, name = data.get("query"), data.get("operationName")
    return (query if isinstance(query, str) else None), (name if isinstance(name, str) else None)
