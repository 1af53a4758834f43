"""OpenTelemetry spans, optional: one per GraphQL request and one per source call in it.

Off by default (setting ``tracing_enabled``) and never a dependency: with the setting on and
``opentelemetry-api`` importable, spans go to whatever tracer provider the process configured
(the OpenTelemetry SDK and its exporter, e.g. through ``OTEL_*`` environment variables); with
the API alone they are no-ops, and without it a warning says so once and nothing is traced.

Spans are recorded when the request ends, from its :class:`~gateway.request_trace.RequestTrace`
(start times and durations as measured), so the resolver's hot path does not change. A
``traceparent`` header the caller sent becomes the request span's parent. Attributes name the
operation label, sources, steps, entities, counts and error codes, never query text, variables,
SQL or values.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gateway.request_trace import RequestTrace

log = logging.getLogger("panorama.tracing")


class SpanEmitter:
    """Turns one finished request into spans through an OpenTelemetry tracer."""

    def __init__(self, trace_api: Any, propagate: Any) -> None:
        self.trace = trace_api
        self.propagate = propagate
        self.tracer = trace_api.get_tracer("panorama")

    @classmethod
    def create(cls) -> SpanEmitter | None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            log.warning("tracing_enabled is set but opentelemetry-api is not installed: "
                        "no spans (pip install opentelemetry-api opentelemetry-sdk)")
            return None
        return cls(trace, propagate)

    def emit(self, operation: str, outcome: str, status: int, started_ns: int,
             started_perf: float, headers: dict[str, str], trace: RequestTrace | None) -> None:
        try:
            self._emit(operation, outcome, status, started_ns, started_perf, headers, trace)
        except Exception:  # tracing never fails a request
            log.exception("could not record the request's spans")

    def _emit(self, operation: str, outcome: str, status: int, started_ns: int,
              started_perf: float, headers: dict[str, str], trace: RequestTrace | None) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        parent = self.propagate.extract(headers)
        request = self.tracer.start_span(
            f"graphql {operation}", context=parent, kind=SpanKind.SERVER, start_time=started_ns,
            attributes={"graphql.operation.name": operation, "panorama.outcome": outcome,
                        "http.response.status_code": status})
        if outcome == "error":
            request.set_status(Status(StatusCode.ERROR))
        inside = self.trace.set_span_in_context(request)
        if trace is not None:
            origin_ns = started_ns + int((trace.origin - started_perf) * 1e9)
            for call in trace.calls:
                start = origin_ns + int(call.started_ms * 1e6)
                span = self.tracer.start_span(
                    f"source {call.source} {call.step}", context=inside, kind=SpanKind.CLIENT,
                    start_time=start, attributes={
                        "panorama.source": call.source, "panorama.step": call.step,
                        "panorama.entity": call.entity, "panorama.rows": call.rows,
                        "panorama.round_trips": len(call.statements),
                        "panorama.cached": call.cached_age is not None})
                if call.error is not None:
                    span.set_attribute("panorama.error_code", call.error)
                    span.set_status(Status(StatusCode.ERROR, call.error))
                span.end(end_time=start + int(call.ms * 1e6))
        request.end(end_time=time.time_ns())
