"""Structured logs: a JSON formatter and a request id on every record of a request.

:class:`RequestIdMiddleware` takes the caller's ``X-Request-Id`` when it is a safe token (at
most 64 characters of ``A-Z a-z 0-9 . _ -``), else makes one, keeps it in a context variable
for the request's duration and returns it in the ``X-Request-Id`` response header. Every log
record created meanwhile carries it as ``record.request_id`` (a record factory sets it), in the
text format's records as well as the JSON one's.

With the setting ``log_format: json`` (:func:`configure_logging`), each line is one JSON object
with fixed keys only (``ts``, ``level``, ``logger``, ``message``, ``request_id``, and
``exception`` when there is one): arguments a caller passes in ``extra`` never reach the output,
so nothing but the message Panorama wrote does. Messages name sources, codes and paths, never
query text, variables or personal values (tests/test_metrics.py checks an e-mail).
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
#: A double-quoted literal in a message: graphql-core quotes the values it rejects in them
#: ("Int cannot represent non-integer value: \"a@b.c\""), and strawberry logs those errors.
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
#: Loggers whose messages may echo a request's values; JSON lines blank their quoted literals.
ECHOING = ("strawberry", "graphql")
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The request id of the request the running task serves; None outside requests.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("panorama_request_id",
                                                                        default=None)
access_log = logging.getLogger("panorama.http")

_factory_installed = False


def install_record_factory() -> None:
    """Give every log record a ``request_id`` attribute (None outside a request); idempotent."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, keys fixed (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.name.startswith(ECHOING):
        message = QUOTED.sub('"…"', message)
    return message


class ScrubEchoes(logging.Filter):
    """Blank the quoted literals of strawberry's and graphql-core's records (message and
    traceback alike): they may quote a value a caller sent, an e-mail say, in either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(ECHOING):
            record.msg, record.args = _message(record), None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_info, record.exc_text = None, QUOTED.sub('"…"', text)
        return True


def configure_logging(log_format: str) -> None:
    """``json``: the root logger writes JSON lines to stderr. ``text``: logging as it was.
    Either way, values a caller sent never reach a log line through strawberry's errors."""
    install_record_factory()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not any(isinstance(f, ScrubEchoes) for f in handler.filters):
            handler.addFilter(ScrubEchoes())
    if log_format != "json":
        return
    # httpx logs every request's full URL at info (a CRM query string, a host): warnings only.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.getLogger(name).level, logging.WARNING))
    for handler in root.handlers:  # every line JSON, never a text line beside it
        handler.setFormatter(JsonFormatter())


def log_format(text: Any) -> str:
    """The setting's parser: ``text`` or ``json``."""
    value = str(text).strip().lower()
    if value not in ("text", "json"):
        raise ValueError("expected text or json")
    return value


def incoming_id(scope: Scope) -> str | None:
    """The caller's X-Request-Id when it is a safe token, else None."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            text = value.decode("latin-1")
            return text if SAFE_ID.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """ASGI middleware, outermost: the request's id in a context variable and the response.

    With ``access_log`` it also writes one line per request (method, path without its query
    string, status, milliseconds, the GraphQL operation label when there is one).
    """

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        install_record_factory()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or secrets.token_hex(16)
        token = request_id.set(rid)
        scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = dict(message)
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                operation = scope["state"].get("panorama_operation")
                access_log.info("%s %s %d %.1fms%s", scope.get("method"), scope.get("path"),
                                status, (time.perf_counter() - started) * 1000,
                                f" operation={operation}" if operation else "")
            request_id.reset(token)
