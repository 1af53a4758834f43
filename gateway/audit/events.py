"""Checking events on their way into the log, and turning entries into rows and back.

Both backends write through these, so every backend refuses the same things. The checks guard
privacy: customers are named by id, fields by path, details by ids, names and codes; a value
that looks like anything else is refused and never echoed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from gateway.audit.errors import InvalidAuditEvent
from gateway.audit.types import KINDS, SUBJECT_KINDS, AuditEntry, AuditEvent, AuditFilter, FieldAccess

#: A role, a purpose, a key of the details: short, no spaces, no ``@`` or ``+``.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
#: A field path: ``Customer.emails.address``, ``customers.edges.node.name``.
PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]*-]{0,255}")
#: A customer's global id (``cus_...``, ``cus_...~2`` when the index made it unique) or
#: another opaque id.
CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.:=~-]{1,256}")
#: A string of the details: an id, a name, a code; no spaces, ``@`` or ``+``.
TOKEN = re.compile(r"[A-Za-z0-9_.:/#=,-]{0,256}")

MAX_CUSTOMERS = 10_000  # per entry: an export appends one entry per chunk of customers
MAX_FIELDS = 1_000
MAX_DETAILS = 16_384  # bytes of JSON
MAX_PAGE = 1_000
_DEPTH = 4
_SAFE_INT = 2 ** 53


def _refuse(event: AuditEvent, problem: str) -> InvalidAuditEvent:
    kind = event.kind if isinstance(event.kind, str) and event.kind in KINDS else "?"
    return InvalidAuditEvent(f"audit event ({kind}) refused, nothing appended: {problem}")


def _names(event: AuditEvent, values: object, what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _refuse(event, f"{what} must be a list of names")
    if not all(isinstance(v, str) and NAME.fullmatch(v) for v in values):
        raise _refuse(event, f"every one of {what} must be a name (letters, digits, _ . : -, at most 64)")
    return tuple(dict.fromkeys(values))


def _customers(event: AuditEvent) -> tuple[str, ...]:
    values = event.customers
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _refuse(event, "customers must be a list of global ids")
    for number, value in enumerate(values, start=1):
        if not (isinstance(value, str) and CUSTOMER_ID.fullmatch(value)):
            # Not echoed: it may be the e-mail address that was looked up.
            raise _refuse(event, f"customer #{number} is not a global id (letters, digits,"
                                 " _ . : = ~ -); customers are named by id, never by a personal value")
    unique = tuple(dict.fromkeys(values))
    if len(unique) > MAX_CUSTOMERS:
        raise _refuse(event, f"{len(unique)} customers in one entry; at most {MAX_CUSTOMERS}:"
                             " append one entry per chunk of an export")
    return unique


def _fields(event: AuditEvent) -> tuple[FieldAccess, ...]:
    values = event.fields
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise _refuse(event, "fields must be a list of field paths")
    masked: dict[str, bool] = {}
    for number, value in enumerate(values, start=1):
        if isinstance(value, str):
            value = FieldAccess(value)
        elif isinstance(value, tuple) and len(value) == 2:
            value = FieldAccess(*value)
        if not (isinstance(value, FieldAccess) and isinstance(value.path, str)
                and PATH.fullmatch(value.path) and isinstance(value.masked, bool)):
            raise _refuse(event, f"field #{number} is not a field path with a masked flag"
                                 " (FieldAccess('Customer.emails', masked=True))")
        # The same path read twice: it went out in clear if it did so once.
        masked[value.path] = masked.get(value.path, True) and value.masked
    if len(masked) > MAX_FIELDS:
        raise _refuse(event, f"{len(masked)} fields in one entry; at most {MAX_FIELDS}")
    return tuple(FieldAccess(path, flag) for path, flag in masked.items())


def _detail(event: AuditEvent, value: Any, where: str, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) >= _SAFE_INT:
            raise _refuse(event, f"details {where}: a number beyond 2**53")
        return value
    if isinstance(value, str):
        if not TOKEN.fullmatch(value):
            raise _refuse(event, f"details {where}: a string with spaces, @, + or other characters"
                                 " an id, a name or a code does not have (it is not shown: it may be"
                                 " a personal value); details hold ids, names and codes only")
        return value
    if depth >= _DEPTH:
        raise _refuse(event, f"details {where}: nested deeper than {_DEPTH}")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not (isinstance(key, str) and NAME.fullmatch(key)):
                raise _refuse(event, f"details {where}: every key must be a name (letters, digits,"
                                     " _ . : -)")
            out[key] = _detail(event, item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_detail(event, item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise _refuse(event, f"details {where}: a {type(value).__name__}; details hold JSON strings,"
                         " whole numbers, booleans, null, lists and objects (no floats or dates)")


def check(event: AuditEvent) -> AuditEvent:
    """``event`` normalized (tuples, unique ids and paths); InvalidAuditEvent if it breaks a rule."""
    if not isinstance(event, AuditEvent):
        raise InvalidAuditEvent(f"expected an AuditEvent, got {type(event).__name__}")
    if event.kind not in KINDS:
        raise _refuse(event, f"unknown kind {event.kind!r}; known: {', '.join(KINDS)}")
    subject = event.subject
    if not (isinstance(subject, str) and subject.strip() and len(subject) <= 256
            and subject.isprintable()):
        raise _refuse(event, "the principal's subject must be printable text of 1 to 256 characters")
    if event.subject_kind not in SUBJECT_KINDS:
        raise _refuse(event, f"subject_kind must be one of {', '.join(SUBJECT_KINDS)}")
    purpose = event.purpose
    if purpose is not None and not (isinstance(purpose, str) and NAME.fullmatch(purpose)):
        raise _refuse(event, "the purpose must be a name (letters, digits, _ . : -) or None")
    if not isinstance(event.details, Mapping):
        raise _refuse(event, "details must be a mapping")
    details = _detail(event, event.details, "", 0)
    if len(orjson.dumps(details)) > MAX_DETAILS:
        raise _refuse(event, f"details larger than {MAX_DETAILS} bytes of JSON")
    return AuditEvent(event.kind, subject, _names(event, event.roles, "roles"), purpose,
                      _customers(event), _fields(event), details, event.subject_kind)


def entry(event: AuditEvent, ident: int, at: datetime, prev_hash: str) -> AuditEntry:
    """A checked event at its place in the chain, not yet sealed (empty hash)."""
    fields = tuple(f for f in event.fields if isinstance(f, FieldAccess))  # all, once checked
    return AuditEntry(ident, at, event.kind, event.subject, tuple(event.roles), event.purpose,
                      tuple(event.customers), fields, dict(event.details), event.subject_kind,
                      prev_hash, "")


def with_hash(entry: AuditEntry, value: str) -> AuditEntry:
    return dataclasses.replace(entry, hash=value)


def json_text(value: Any) -> str:
    """Compact JSON text of a column (lists, field pairs, details)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def fields_json(entry: AuditEntry) -> str:
    return json_text([[f.path, f.masked] for f in entry.fields])


def _decoded(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _strings(value: Any) -> tuple[str, ...]:
    items = _decoded(value)
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise ValueError("expected a list of strings")
    return tuple(items)


def entry_from_row(row: Sequence[Any]) -> AuditEntry:
    """An entry from ``(id, at, kind, subject, roles, purpose, customers, fields, details,
    subject_kind, prev_hash, hash)``, JSON columns as text or decoded; ValueError/TypeError if
    unreadable."""
    (ident, at, kind, subject, roles, purpose, customers, fields, details, subject_kind, prev,
     digest) = row[:12]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if not (isinstance(ident, int) and isinstance(at, datetime) and at.utcoffset() is not None):
        raise ValueError("id or time unreadable")
    if not all(isinstance(v, str) for v in (kind, subject, subject_kind, prev, digest)):
        raise TypeError("kind, subject and hashes are text")
    pairs = _decoded(fields)
    details = _decoded(details)
    if not isinstance(details, dict) or not isinstance(pairs, list):
        raise TypeError("fields and details are JSON")
    return AuditEntry(ident, at, kind, subject, _strings(roles), purpose, _strings(customers),
                      tuple(FieldAccess(path, masked) for path, masked in pairs), details,
                      subject_kind, prev, digest)


def check_filter(where: AuditFilter) -> AuditFilter:
    """``where`` with tuples; ValueError naming the part that is wrong."""
    customers = (where.customers,) if isinstance(where.customers, str) else tuple(where.customers)
    kinds = (where.kinds,) if isinstance(where.kinds, str) else tuple(where.kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown audit kind {unknown[0]!r}; known: {', '.join(KINDS)}")
    for name in ("since", "until"):
        value = getattr(where, name)
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise ValueError(f"{name} must be a timezone-aware datetime, e.g. datetime.now(UTC)")
    before, limit = where.before, where.limit
    if before is not None and (isinstance(before, bool) or not isinstance(before, int) or before < 1):
        raise ValueError(f"before must be an entry id (a whole number >= 1), not {before!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_PAGE}, not {limit!r}")
    return dataclasses.replace(where, customers=customers, kinds=kinds)


def filter_parts(where: AuditFilter, table: Sequence[tuple[str, str, Any]]) -> list[tuple[str, Any]]:
    """``(condition, parameter)`` for each attribute of a checked filter that is set, by a
    backend's table of ``(attribute, condition, convert)``."""
    parts = []
    for name, condition, convert in table:
        value = getattr(where, name)
        if value is not None and value != ():
            parts.append((condition, convert(value)))
    return parts
