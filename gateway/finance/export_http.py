"""``GET /export/accounts``: the accounts export, streamed to an authorized caller.

Behind the same auth and policy gates as ``/graphql``: the request's principal, role view, row
scope and purpose decide the columns, masks and customers, exactly as for the CLI. Query
parameters: ``format`` (ndjson, the default, or csv), ``asOf``, ``currency``, ``cursor`` and
``filter`` (repeatable ``KEY=VALUE``). A bad parameter, or a failure before the first row, is
a JSON error with a status; a source that fails once rows are flowing ends an NDJSON stream
with an ``{"error": ...}`` line and aborts the response (a truncated body, never a complete-
looking one). Rows are in customer id order: a client resumes with ``cursor`` = the last
``customer_id`` it received.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.access import admission_of
from gateway.auth.http import principal_of
from gateway.finance.export import AccountExport, SourceFailed, export_request
from gateway.finance.export_rows import ExportError
from gateway.me_export import json_error
from gateway.runtime import runtime_of

log = logging.getLogger("panorama.export")
MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


class ExportAborted(Exception):
    """Ends a response that has started: the server drops the connection mid-body."""


class AccountsExportEndpoint:
    """``GET /export/accounts``, on the config version the request runs on."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.answer(Request(scope, receive))
        await response(scope, receive, send)

    async def answer(self, request: Request) -> Response:
        admission, principal = admission_of(request), principal_of(request)
        if admission is None or principal is None:
            return json_error("no access decision for this request", "FORBIDDEN", 403)
        params = request.query_params
        unknown = sorted(set(params) - {"format", "asOf", "currency", "cursor", "filter"})
        if unknown:
            return json_error(f"unknown parameter(s) {', '.join(unknown)}: use format, asOf, "
                          f"currency, cursor, filter", "BAD_USER_INPUT", 400)
        try:
            env = runtime_of(request).export_env
            export = AccountExport(env, principal, admission, export_request(
                env, params.get("format"), params.get("asOf"), params.get("currency"),
                params.getlist("filter"), params.get("cursor")))
            walk = export.blocks()
            # The first chunk before the status line: a source down at once is a clean 503.
            first = await anext(walk, None)
        except ExportError as exc:
            return json_error(str(exc), exc.code, exc.status)
        fmt = export.request.format
        label = export.request.as_of.label

        async def body() -> AsyncIterator[bytes]:
            yield export.format.header_bytes()
            try:
                if first is not None and first.data:
                    yield first.data
                async for block in walk:
                    if block.data:
                        yield block.data
            except ExportError as exc:
                log.warning("export for %s stopped after %d rows: %s", principal.subject,
                            export.written, exc)
                if fmt == "ndjson":
                    yield orjson.dumps({"error": _described(exc, export.cursor)}) + b"\n"
                raise ExportAborted(str(exc)) from None
            finally:
                await walk.aclose()

        stamp = label.replace(":", "")
        return StreamingResponse(body(), media_type=MEDIA[fmt], headers={
            "content-disposition": f'attachment; filename="accounts-{stamp}.{fmt}"',
            "panorama-export-as-of": label, "cache-control": "no-store"})


def _described(exc: ExportError, cursor: str | None) -> dict[str, object]:
    out: dict[str, object] = {"code": exc.code, "message": str(exc), "cursor": cursor}
    if isinstance(exc, SourceFailed):
        out["sources"] = [f.source for f in exc.failures]
    return out

