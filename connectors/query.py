"""Value types shared by the planner and every connector.

A :class:`Query` names an entity map of one source, the logical fields it wants, a filter
tree and keyset paging. Logical field names are the mapping's own (``email_0``,
``address_0_city``...); the connector translates them to columns or CRM properties through
the :class:`EntityMap` it was configured with. Values in conditions are always data: a
connector passes them as driver parameters or JSON values, never as query text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

#: Condition operators, with the meaning every connector must honour.
OPS: Mapping[str, str] = {
    "eq": "column equals value",
    "in": "column equals one of the values (value is a tuple)",
    "ieq": "trimmed column equals value, case-insensitively (value is lower-case)",
    "contains": "column contains value as a substring, case-insensitively (value is lower-case)",
    "gt": "column is greater than value (keyset paging, date ranges)",
    "gte": "column is greater than or equal to value",
    "lt": "column is less than value",
    "lte": "column is less than or equal to value",
}

#: Normalizations a condition may ask to be applied to the column before comparing. The
#: caller normalizes the values the same way, so a connector compares like with like.
NORMALIZERS: Mapping[str, str] = {
    "email": "trimmed and lower-cased",
    "phone_tail": f"digits only, last {9} digits (a blocking key; the gateway re-checks E.164)",
    "card": "spaces and dashes removed, upper-cased",
}

#: How many trailing digits of a phone number the ``phone_tail`` normalizer keeps.
PHONE_TAIL_DIGITS = 9


@dataclass(frozen=True, slots=True)
class Cond:
    """One comparison on one logical field: ``field op value``."""

    field: str
    op: str
    value: Any
    normalize: str | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part must hold (AND)."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part must hold (OR)."""

    parts: tuple[Expr, ...]


Expr = Union[Cond, AllOf, AnyOf]  # noqa: UP007 (a runtime alias; `|` needs 3.10 objects)

# Short aliases read well in planner code: All(...), Any_(...).
All = AllOf
Any_ = AnyOf


@dataclass(frozen=True, slots=True)
class Join:
    """A table joined to an entity's base table, e.g. Sakila customer -> address."""

    table: str
    alias: str
    on: str  # boolean SQL over aliases, e.g. "a.address_id = customer.address_id"; parsed by sqlglot


@dataclass(frozen=True, slots=True)
class EntityMap:
    """How one entity (customers, one kind of transaction...) is read from one source.

    ``fields`` maps logical field names to source references: ``column`` or
    ``alias.column`` for SQL (the base table's alias is its own name), a property
    name for the CRM. ``key`` and ``parent`` are logical field names present in ``fields``.
    """

    name: str
    table: str
    key: str
    fields: Mapping[str, str]
    joins: tuple[Join, ...] = ()
    parent: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Latest:
    """Of each parent's rows, only the ``count`` with the greatest ``field`` are needed (the
    newest transactions of each customer). A hint, like a filter the source cannot evaluate: a
    connector may return more rows, never fewer; the caller sorts and cuts."""

    field: str
    count: int


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Summarize the matching rows per group instead of returning them (``Query.aggregate``).

    Rows are grouped by the raw values of the ``by`` fields. Each group comes back as one row
    holding those values, ``count`` (its rows) and ``sum:<f>`` for each field of ``sums``. A
    connector answers an aggregate only after ``can_aggregate`` said it can sum exactly;
    otherwise the caller reads the rows and summarizes them itself.
    """

    by: tuple[str, ...]
    sums: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The fields of each result row, in order."""
        return (*self.by, "count", *(f"sum:{f}" for f in self.sums))

    @property
    def fields(self) -> tuple[str, ...]:
        """Every logical field the aggregate reads."""
        return tuple(dict.fromkeys((*self.by, *self.sums)))


@dataclass(frozen=True, slots=True)
class Query:
    """Read rows of one entity map.

    ``fields`` are the logical fields to return (the key, and the parent for child entities,
    are always returned too). With ``limit`` or ``after`` rows come ordered by key,
    ascending, and ``after`` keeps only rows whose key is greater than it (keyset paging).
    ``latest`` (child entities only) says how many rows per parent are needed. ``aggregate``
    asks for per-group summaries instead of rows (see :class:`Aggregate`).
    """

    entity: str
    fields: tuple[str, ...]
    where: Expr | None = None
    after: Any = None
    limit: int | None = None
    latest: Latest | None = None
    aggregate: Aggregate | None = None


@dataclass(slots=True)
class Page:
    """Rows keyed by logical field name; raw source values (no transforms applied)."""

    rows: list[dict[str, Any]]


def fields_of(expr: Expr | None) -> set[str]:
    """Every logical field a filter tree mentions."""
    if expr is None:
        return set()
    if isinstance(expr, Cond):
        return {expr.field}
    return set().union(*(fields_of(p) for p in expr.parts))
