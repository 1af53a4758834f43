"""How the source cache writes what it holds: canonical query keys and Redis values.

Values go to Redis as orjson with a small tagged encoding: JSON scalars stay as they are, any
other type becomes ``[tag, payload]`` and comes back as the same type (Decimal stays Decimal,
an aware datetime keeps its zone, bytes and UUIDs survive). Never pickle: whoever can write to
Redis must not be able to run code in the gateway. A query's key is the same encoding of its
entity, fields, filter tree, paging, ``latest`` and ``aggregate``.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.query import AllOf, AnyOf, Cond, Page, Query


class Uncacheable(Exception):
    """A value the encoding has no tag for."""


# -- tagged values: JSON scalars stay as they are, anything else is [tag, payload] -----------------

_INT64 = range(-(2**63), 2**63)


def _dt_out(v: datetime) -> list[Any]:
    zone = v.tzinfo.key if isinstance(v.tzinfo, ZoneInfo) else None
    return ["dt", [v.isoformat(), zone, v.fold]]


def _dt_in(p: list[Any]) -> datetime:
    text, zone, fold = p
    value = datetime.fromisoformat(text)
    if zone is not None:  # keep the named zone, not just the offset isoformat() leaves
        value = value.astimezone(ZoneInfo(zone))
    return value.replace(fold=fold)


_ENCODE: dict[type, Callable[[Any], Any]] = {
    str: lambda v: v,
    bool: lambda v: v,
    type(None): lambda v: v,
    int: lambda v: v if v in _INT64 else ["int", str(v)],  # orjson stops at 64 bits
    float: lambda v: v if math.isfinite(v) else ["float", repr(v)],  # orjson writes nan as null
    Decimal: lambda v: ["dec", str(v)],  # str keeps the exponent: 1.10 stays 1.10
    datetime: _dt_out,
    date: lambda v: ["date", v.isoformat()],
    time_of_day: lambda v: ["time", [v.isoformat(), v.fold]],
    timedelta: lambda v: ["td", [v.days, v.seconds, v.microseconds]],
    bytes: lambda v: ["bytes", base64.b64encode(v).decode("ascii")],
    uuid.UUID: lambda v: ["uuid", str(v)],
    list: lambda v: ["list", [_encode(x) for x in v]],
    tuple: lambda v: ["tuple", [_encode(x) for x in v]],
    dict: lambda v: ["map", [[_encode(k), _encode(x)] for k, x in v.items()]],
}

_DECODE: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "dec": Decimal,
    "dt": _dt_in,
    "date": date.fromisoformat,
    "time": lambda p: time_of_day.fromisoformat(p[0]).replace(fold=p[1]),
    "td": lambda p: timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "bytes": lambda p: base64.b64decode(p, validate=True),
    "uuid": uuid.UUID,
    "list": lambda p: [_decode(x) for x in p],
    "tuple": lambda p: tuple(_decode(x) for x in p),
    "map": lambda p: {_decode(k): _decode(x) for k, x in p},
}


def _encode(value: Any) -> Any:
    # The MRO walk serves driver subclasses (asyncpg's UUID) and keeps bool ahead of int.
    for cls in type(value).__mro__:
        encode = _ENCODE.get(cls)
        if encode is not None:
            return encode(value)
    raise Uncacheable(type(value).__name__)


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        tag, payload = data
        return _DECODE[tag](payload)
    return data


def _key_value(value: Any) -> Any:
    """A value of a condition, tagged; lists and tuples are one thing here (``in`` takes either)."""
    if isinstance(value, list | tuple):
        return ["seq", [_key_value(x) for x in value]]
    if isinstance(value, set | frozenset):
        return ["set", sorted((_key_value(x) for x in value), key=orjson.dumps)]
    return _encode(value)


_EXPR: dict[type, Callable[[Any], Any]] = {
    Cond: lambda c: ["cond", c.field, c.op, _key_value(c.value), c.normalize],
    AllOf: lambda e: ["all", [_expr(p) for p in e.parts]],
    AnyOf: lambda e: ["any", [_expr(p) for p in e.parts]],
    type(None): lambda e: None,
}


def _expr(expr: Any) -> Any:
    shape = _EXPR.get(type(expr))
    if shape is None:
        raise Uncacheable(type(expr).__name__)
    return shape(expr)


def query_key(query: Query) -> bytes | None:
    """The canonical form of a query (exact types, lists = tuples), or None when it has none."""
    try:
        latest = None if query.latest is None else [query.latest.field, query.latest.count]
        summary = query.aggregate
        aggregate = None if summary is None else [
            list(summary.by), list(summary.sums)]
        return orjson.dumps([query.entity, list(query.fields), _expr(query.where),
                             _key_value(query.after), query.limit, latest, aggregate])
    except (Uncacheable, orjson.JSONEncodeError, TypeError):
        return None


# A field added to Query must join the key above, or two different queries would share an entry.
assert [f.name for f in dataclasses.fields(Query)] == [
    "entity", "fields", "where", "after", "limit", "latest", "aggregate"], "query_key misses a Query field"


def encode_page(page: Page, stored_at: float) -> bytes:
    """The Redis value of a page; raises Uncacheable for a value it cannot tag."""
    return orjson.dumps([1, stored_at, [{k: _encode(v) for k, v in row.items()} for row in page.rows]])


def decode_page(data: bytes | str) -> tuple[float, list[dict[str, Any]]]:
    """The stored_at and rows of a Redis value; raises on anything not written by encode_page."""
    version, stored_at, rows = orjson.loads(data)
    if version != 1 or not isinstance(stored_at, float | int):
        raise ValueError("unknown cache entry format")
    return float(stored_at), [{k: _decode(v) for k, v in row.items()} for row in rows]
