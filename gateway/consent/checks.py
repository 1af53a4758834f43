"""Checking decisions and correction requests on their way into the store, and reading rows.

Both backends write through these, so every backend refuses the same things. A refused value
is never echoed: it may be personal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from gateway.audit.events import CUSTOMER_ID, NAME, PATH
from gateway.audit.storage import parse_stamp
from gateway.consent.errors import InvalidConsentRecord
from gateway.consent.types import CORRECTION_STATUSES, ConsentDecision, CorrectionRequest

#: A purpose: ``marketing``, ``profiling``, ``support``.
PURPOSE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
#: A source's name, as in the config's ``sources:``.
SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
MAX_REQUESTED = 2_000
MAX_MESSAGE = 4_000

DECISION_COLUMNS = "id, customer, purpose, objected, actor, source, at"
CORRECTION_COLUMNS = ("id, customer, field, source, record, requested, message, requested_by,"
                      " status, routed_to, created_at, updated_at, updated_by")


def _who(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 256 and value.isprintable()


def actor(value: object, what: str) -> str:
    """``value`` if it can name who did something, else InvalidConsentRecord about ``what``."""
    if not _who(value):
        raise InvalidConsentRecord(f"refused, nothing written: {what} needs its actor (who), printable"
                                   " text of at most 256 characters")
    return str(value)


def customer_id(value: object, what: str = "customer") -> str:
    if not (isinstance(value, str) and CUSTOMER_ID.fullmatch(value)):
        raise InvalidConsentRecord(f"refused, nothing written: the {what} must be a global id"
                                   " (letters, digits, _ . : = ~ -)")
    return value


def purpose(value: object) -> str:
    if not (isinstance(value, str) and PURPOSE.fullmatch(value)):
        raise InvalidConsentRecord("refused, nothing written: a purpose is a lower-case name"
                                   " (letters, digits, _ -), e.g. marketing")
    return value


def decision(value: ConsentDecision) -> ConsentDecision:
    """``value`` checked; InvalidConsentRecord naming the rule it breaks."""
    if not isinstance(value, ConsentDecision):
        raise InvalidConsentRecord(f"expected a ConsentDecision, got {type(value).__name__}")
    customer_id(value.customer)
    purpose(value.purpose)
    if not isinstance(value.objected, bool):
        raise InvalidConsentRecord("refused, nothing written: objected must be true or false")
    actor(value.actor, "a decision")
    if not (isinstance(value.source, str) and NAME.fullmatch(value.source)):
        raise InvalidConsentRecord("refused, nothing written: a decision needs its source, a name"
                                   " such as self-service, support or merge")
    return value


def _text(value: object, most: int, what: str, required: bool) -> str:
    if not isinstance(value, str) or len(value) > most or "\x00" in value or (
            required and not value.strip()):
        need = "non-empty " if required else ""
        raise InvalidConsentRecord(f"refused, nothing written: {what} must be {need}text of at most"
                                   f" {most} characters")
    return value


def correction(value: CorrectionRequest) -> CorrectionRequest:
    """``value`` checked; InvalidConsentRecord naming the rule it breaks."""
    if not isinstance(value, CorrectionRequest):
        raise InvalidConsentRecord(f"expected a CorrectionRequest, got {type(value).__name__}")
    customer_id(value.customer)
    if not (isinstance(value.field, str) and PATH.fullmatch(value.field)):
        raise InvalidConsentRecord("refused, nothing written: the field must be a field path,"
                                   " e.g. addresses or emails")
    if not (isinstance(value.source, str) and SOURCE.fullmatch(value.source)):
        raise InvalidConsentRecord("refused, nothing written: the source must be a source's name"
                                   " as in the config")
    if value.record is not None and not _who(value.record):
        raise InvalidConsentRecord("refused, nothing written: the record must be the source's"
                                   " local key (printable text, at most 256 characters) or None")
    actor(value.requested_by, "a correction request (requested_by)")
    _text(value.requested, MAX_REQUESTED, "requested (what the value should be)", True)
    _text(value.message, MAX_MESSAGE, "the message", False)
    return value


def status(value: object) -> str:
    if value not in CORRECTION_STATUSES:
        raise InvalidConsentRecord(f"unknown correction status {value!r}; known:"
                                   f" {', '.join(CORRECTION_STATUSES)}")
    return str(value)


def decision_from_row(row: Sequence[Any]) -> ConsentDecision:
    ident, customer, name, objected, actor, source, at = row
    return ConsentDecision(customer, name, bool(objected), actor, source, ident, parse_stamp(at))


def correction_from_row(row: Sequence[Any]) -> CorrectionRequest:
    (ident, customer, field, source, record, requested, message, requested_by, state, routed_to,
     created_at, updated_at, updated_by) = row
    return CorrectionRequest(customer, field, source, requested, requested_by, message, record,
                             ident, state, routed_to, parse_stamp(created_at),
                             parse_stamp(updated_at), updated_by)


def json_list(values: Iterable[str]) -> str:
    """A list of ids as one JSON parameter (SQLite's ``json_each``)."""
    return orjson.dumps(list(values)).decode()


def history_parts(customer: str, purpose: str | None) -> list[tuple[str, Any]]:
    """Conditions of :meth:`ConsentStore.history`, for ``newest_first``."""
    return [("customer = {}", customer), ("purpose = {}", purpose)]


def corrections_parts(status: str | None, customer: str | None, source: str | None,
                      before: int | None) -> list[tuple[str, Any]]:
    """Conditions of :meth:`ConsentStore.corrections`, for ``newest_first``."""
    return [("status = {}", status), ("customer = {}", customer), ("source = {}", source),
            ("id < {}", before)]


def correction_values(request: CorrectionRequest) -> tuple[Any, ...]:
    """The request's own columns, in ``CORRECTION_COLUMNS`` order (``customer`` to ``requested_by``)."""
    return (request.customer, request.field, request.source, request.record, request.requested,
            request.message, request.requested_by)
