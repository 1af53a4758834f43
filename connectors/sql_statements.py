"""Statements of the SQL connector: one query shape becomes one sqlglot SELECT, rendered once.

Every statement is built from sqlglot expressions and rendered for the source's dialect with
every identifier quoted; values never enter the SQL text, they become driver parameters in
the placeholder style of the driver (``$1`` asyncpg, ``%s`` asyncmy, ``?`` aiosqlite). The
rendered text is cached per *shape* (entity, fields, filter tree with its number of values,
paging), so a repeated query only rebuilds its parameter list. Typing the values and running
the statements is the connector's part, in :mod:`connectors.sql`.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from cachetools import LRUCache
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError
from sqlglot.generator import Generator

from connectors.errors import SourceConfigError
from connectors.query import PHONE_TAIL_DIGITS, Aggregate, AnyOf, Cond, EntityMap, Expr, Join

if TYPE_CHECKING:
    from connectors.sql import SQLConnector

    Build = Callable[[SQLConnector, exp.Expr, list[exp.Expr]], exp.Expr]
    Normalize = Callable[[SQLConnector, exp.Expr], exp.Expr]

#: A filter that no row satisfies: an empty OR (an empty AND, or no filter, lets every row in).
NOTHING = AnyOf(())
#: Escape character of LIKE patterns, declared with ESCAPE so that all three engines agree.
LIKE_ESCAPE = "!"


# --- operators and normalizers, as tables --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operator:
    """How one condition operator (``query.OPS``) becomes SQL."""

    build: Build
    #: The value is a collection of values (``in``).
    many: bool = False
    #: Values take the column's type; False: compared as text (after LOWER, TRIM...).
    typed: bool = True
    #: A value that cannot have the column's type is an error, not simply "no match".
    ordered: bool = False
    #: The driver parameters for the (coerced) values.
    params: Callable[[list[Any]], list[Any]] = list


def _compare(node: type[exp.Binary]) -> Build:
    return lambda sql, column, ph: node(this=column, expression=ph[0])


def _in(sql: SQLConnector, column: exp.Expr, ph: list[exp.Expr]) -> exp.Expr:
    # Chunked: some engines cap an IN list, and a caller may hand more than max_in_values.
    size = sql.max_in_values
    return exp.or_(*(column.copy().isin(*ph[i:i + size]) for i in range(0, len(ph), size)))


def _padded(values: list[Any]) -> list[Any]:
    """IN values padded (repeating the last) to a power of two or a multiple of 64, whichever
    is nearer: about twenty shapes up to 1000 values, so few statements to build and cache."""
    n = len(values)
    return values + values[-1:] * (min(1 << (n - 1).bit_length(), -(-n // 64) * 64) - n)


def _lower_trim(column: exp.Expr) -> exp.Expr:
    return exp.Lower(this=exp.Trim(this=column))


def _like_pattern(values: list[Any]) -> list[Any]:
    text = str(values[0])
    for char in (LIKE_ESCAPE, "%", "_"):  # the escape character itself first
        text = text.replace(char, LIKE_ESCAPE + char)
    return [f"%{text}%"]


def _contains(sql: SQLConnector, column: exp.Expr, ph: list[exp.Expr]) -> exp.Expr:
    like = exp.Like(this=exp.Lower(this=column), expression=ph[0])
    return exp.Escape(this=like, expression=exp.Literal.string(LIKE_ESCAPE))


FILTERS: Mapping[str, Operator] = {
    "eq": Operator(_compare(exp.EQ)),
    "in": Operator(_in, many=True, params=_padded),
    "ieq": Operator(lambda sql, column, ph: _lower_trim(column).eq(ph[0]), typed=False),
    "contains": Operator(_contains, typed=False, params=_like_pattern),
    "gt": Operator(_compare(exp.GT), ordered=True),
    "gte": Operator(_compare(exp.GTE), ordered=True),
    "lt": Operator(_compare(exp.LT), ordered=True),
    "lte": Operator(_compare(exp.LTE), ordered=True),
}


def _replace(column: exp.Expr, *chars: str) -> exp.Expr:
    for char in chars:
        column = exp.func("REPLACE", column, exp.Literal.string(char), exp.Literal.string(""))
    return column


NORMALIZERS: Mapping[str, Normalize] = {
    "email": lambda sql, column: _lower_trim(column),
    "phone_tail": lambda sql, column: sql.tail(
        _replace(column, " ", ".", "-", "(", ")", "+", "/"), PHONE_TAIL_DIGITS),
    "card": lambda sql, column: exp.Upper(this=_replace(column, " ", "-")),
}


# --- rendering -----------------------------------------------------------------------------


@functools.cache
def _generator(dialect: str, placeholder: str) -> type[Generator]:
    """The dialect's generator, writing placeholders in the driver's style, in text order."""
    base = Dialect.get_or_raise(dialect).generator_class

    class ParameterGenerator(base):  # type: ignore[valid-type,misc]
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.slots: list[int] = []

        def placeholder_sql(self, expression: exp.Placeholder) -> str:
            self.slots.append(int(expression.name))
            return placeholder.format(n=len(self.slots))

    return ParameterGenerator


def to_sql(statement: exp.Expr, dialect: str,
           placeholder: str) -> tuple[str, tuple[int, ...]]:
    """SQL text with every identifier quoted, and which value each placeholder takes."""
    generator: Any = _generator(dialect, placeholder)(
        dialect=dialect, identify=True, unsupported_level=ErrorLevel.RAISE)
    return generator.generate(statement), tuple(generator.slots)


@dataclass(frozen=True, slots=True)
class Rendered:
    """The SQL of one query shape: text, the value behind each placeholder, result names."""

    sql: str
    slots: tuple[int, ...]
    names: tuple[str, ...]


#: What a statement depends on: entity, result names, filter shape, whether after and limit,
#: the field each parent's rows are ranked by (Query.latest).
#: An aggregate's key holds ("aggregate", its plan) in the last place.
StatementKey = tuple[str, tuple[str, ...], Hashable | None, bool, bool, Hashable | None]


class StatementCache:
    """Rendered statements by query shape, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._rendered: LRUCache[StatementKey, Rendered] = LRUCache(size)

    def __len__(self) -> int:
        return len(self._rendered)

    def get_or_build(self, key: StatementKey, build: Callable[[], Rendered]) -> Rendered:
        """The statement of ``key``, built on its first use."""
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = build()
        return rendered


def filter_shape(expr: Expr, filters: Mapping[str, Operator], values: list[Any]) -> Hashable:
    """Append the parameters of ``expr`` to ``values``; return its shape."""
    if isinstance(expr, Cond):
        op = filters[expr.op]
        params = op.params(list(expr.value) if op.many else [expr.value])
        values.extend(params)
        return ("cond", expr.field, expr.op, expr.normalize, len(params))
    return (type(expr).__name__, tuple(filter_shape(part, filters, values) for part in expr.parts))


# --- the entity's tables and joins ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """An entity map resolved for SQL: FROM and LEFT JOINs, and the column of each field."""

    tables: dict[str, str]  # alias -> table as mapped; the base table first
    columns: dict[str, tuple[str, str]]  # logical field -> (alias, column)
    join_columns: tuple[tuple[str, str], ...]  # (alias, column) the join conditions compare
    source: exp.Select  # FROM ... LEFT JOIN ..., without a select list
    #: Each joined alias -> its LEFT JOIN and the other aliases its condition compares.
    joins: dict[str, tuple[exp.Table, exp.Expr, frozenset[str]]] = dataclasses.field(
        default_factory=dict)

    def source_for(self, fields: Iterable[str]) -> exp.Select:
        """FROM with only the joins that ``fields`` read (and the joins those depend on): a
        LEFT JOIN nobody reads is left out."""
        needed = {self.columns[f][0] for f in fields}
        for alias in reversed(list(self.joins)):  # a join depends on earlier ones only
            if alias in needed:
                needed |= self.joins[alias][2]
        if needed >= set(self.joins):
            return self.source.copy()
        base = next(iter(self.tables))
        select = exp.select().from_(_table(self.tables[base], base))
        for alias, (table, on, _) in self.joins.items():
            if alias in needed:
                select = select.join(table.copy(), on=on.copy(), join_type="left", copy=False)
        return select

    def column(self, field: str) -> exp.Column:
        alias, column = self.columns[field]
        return exp.column(column, table=alias, quoted=True)


def resolve_layout(source: str, entity: EntityMap, dialect: str) -> Layout:
    """The entity's FROM clause and columns, checked; a bad mapping names the fix."""
    def mistake(message: str) -> SourceConfigError:
        return SourceConfigError(source, f"entity '{entity.name}': {message}")

    base = entity.table.rpartition(".")[2]
    tables = {base: entity.table}
    for join in entity.joins:
        if join.alias in tables:
            raise mistake(f"alias '{join.alias}' is used twice")
        tables[join.alias] = join.table
    columns: dict[str, tuple[str, str]] = {}
    for field, ref in entity.fields.items():
        alias, _, column = ref.rpartition(".")
        if (alias or base) not in tables:
            raise mistake(f"field '{field}' reads '{ref}', but '{alias}' is not "
                          f"a table alias (aliases: {', '.join(tables)})")
        columns[field] = (alias or base, column)
    for role, name in (("key", entity.key), ("parent", entity.parent)):
        if name is not None and name not in columns:
            raise mistake(f"{role} '{name}' is not a mapped field "
                          f"(mapped: {', '.join(columns)})")
    select = exp.select().from_(_table(entity.table, base))
    join_columns: list[tuple[str, str]] = []
    joins: dict[str, tuple[exp.Table, exp.Expr, frozenset[str]]] = {}
    for join in entity.joins:
        before = len(join_columns)
        on = _join_condition(source, entity, join, tables, join_columns, dialect)
        table = _table(join.table, join.alias)
        joins[join.alias] = (table, on, frozenset(a for a, _ in join_columns[before:]) - {
            join.alias})
        select = select.join(table.copy(), on=on.copy(), join_type="left", copy=False)
    return Layout(tables, columns, tuple(join_columns), select, joins)


def _table(name: str, alias: str) -> exp.Table:
    """``schema.table`` or ``table``, aliased; every part quoted as written."""
    schema, _, table = name.rpartition(".")
    return exp.table_(table, db=schema or None, quoted=True, alias=alias)


_JOIN_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _join_condition(source: str, entity: EntityMap, join: Join, aliases: Mapping[str, str],
                    seen: list[tuple[str, str]], dialect: str) -> exp.Expr:
    """``on`` as AND-ed comparisons between alias.column pairs; anything else is refused."""
    problem = SourceConfigError(source, (
        f"entity '{entity.name}': join '{join.alias}' ({join.table}) needs AND-ed "
        f"comparisons between alias.column pairs, e.g. '{join.alias}.id = "
        f"{entity.table.rpartition('.')[2]}.{join.alias}_id' (aliases: {', '.join(aliases)})"))
    try:
        tree = sqlglot.parse_one(join.on, dialect=dialect)
    except ParseError:
        raise problem from None
    parts = []
    for part in _conjuncts(tree):
        sides = [side.unnest() for side in (part.this, part.expression)] if isinstance(
            part, _JOIN_COMPARISONS) else []
        if not sides or not all(isinstance(s, exp.Column) and s.table in aliases
                                and not s.args.get("db") for s in sides):
            raise problem
        seen += [(s.table, s.name) for s in sides]
        parts.append(type(part)(this=sides[0].copy(), expression=sides[1].copy()))
    return exp.and_(*parts)


def _conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    node = node.unnest()
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node



# --- building (once per shape) -------------------------------------------------------------


def build_statement(sql: SQLConnector, layout: Layout, key: str, names: tuple[str, ...],
                    shape: Hashable | None, has_after: bool, has_limit: bool,
                    ranked: tuple[str, str] | None = None) -> Rendered:
    """The SELECT of one query shape, in the connector's dialect and placeholder style.

    ``ranked`` = (parent, field): keep each parent's rows with the greatest ``field`` only, as
    many as the last parameter says (ROW_NUMBER() over a window, in all three engines)."""
    slots = itertools.count()

    def placeholders(count: int) -> list[exp.Expr]:
        return [exp.Placeholder(this=str(next(slots))) for _ in range(count)]

    read = {*names, *_shape_fields(shape), key, *(ranked or ())}
    select = layout.source_for(read).select(
        *(exp.alias_(layout.column(n), n, quoted=True) for n in names), copy=False)
    conditions = [_predicate(sql, shape, layout, placeholders)] if shape is not None else []
    key_column = layout.column(key)
    if has_after:
        conditions.append(exp.GT(this=key_column.copy(), expression=placeholders(1)[0]))
    if conditions:
        select = select.where(exp.and_(*conditions), copy=False)
    if has_after or has_limit:
        # The dialect's own NULL ordering: sqlglot would otherwise emulate one in MySQL
        # with a CASE that defeats the key's index.
        natural = Dialect.get_or_raise(sql.dialect).NULL_ORDERING == "nulls_are_small"
        select = select.order_by(exp.Ordered(this=key_column, desc=False, nulls_first=natural),
                                 copy=False)
    if has_limit:
        select = select.limit(placeholders(1)[0], copy=False)
    if ranked is not None:
        select = _newest_per_parent(select, layout, names, *ranked, placeholders(1)[0])
    text, order = to_sql(select, sql.dialect, sql.driver_class.placeholder)
    return Rendered(text, order, names)


def build_aggregate(sql: SQLConnector, layout: Layout, summary: Aggregate,
                    shape: Hashable | None) -> Rendered:
    """``SELECT by..., COUNT(*), SUM(..) ... GROUP BY by...`` of one aggregate shape (see
    ``connectors.query.Aggregate``)."""
    slots = itertools.count()

    def placeholders(count: int) -> list[exp.Expr]:
        return [exp.Placeholder(this=str(next(slots))) for _ in range(count)]

    by, sums = summary.by, summary.sums
    read = {*summary.fields, *_shape_fields(shape)}
    condition = _predicate(sql, shape, layout, placeholders) if shape is not None else None
    groups: list[exp.Expr] = [exp.alias_(layout.column(f), f, quoted=True) for f in by]
    measures: list[exp.Expr] = [exp.alias_(exp.Count(this=exp.Star()), "count", quoted=True)]
    measures += [exp.alias_(exp.Sum(this=layout.column(f)), f"sum:{f}", quoted=True)
                 for f in sums]
    select = layout.source_for(read).select(*groups, *measures, copy=False)
    if condition is not None:
        select = select.where(condition, copy=False)
    if groups:  # by position: short, and the same in the three engines
        select = select.group_by(*(exp.Literal.number(i + 1) for i in range(len(groups))),
                                 copy=False)
    text, order = to_sql(select, sql.dialect, sql.driver_class.placeholder)
    return Rendered(text, order, summary.names)


def _newest_per_parent(select: exp.Select, layout: Layout, names: tuple[str, ...], parent: str,
                       field: str, count: exp.Expr) -> exp.Select:
    """``select`` cut to the ``count`` rows of each parent with the greatest ``field``; rows
    without a value come last, as the gateway sorts them."""
    newest = exp.Ordered(this=layout.column(field), desc=True, nulls_first=False)
    rank = exp.Window(this=exp.RowNumber(), partition_by=[layout.column(parent)],
                      order=exp.Order(expressions=[newest]))
    inner = select.select(exp.alias_(rank, "_rank", quoted=True), copy=False)
    return exp.select(*(exp.column(n, table="ranked", quoted=True) for n in names)).from_(
        inner.subquery("ranked", copy=False)).where(
        exp.column("_rank", table="ranked", quoted=True) <= count)


def _shape_fields(shape: Any) -> set[str]:
    """The logical fields a filter shape compares."""
    if shape is None:
        return set()
    if shape[0] == "cond":
        return {shape[1]}
    return set().union(*(_shape_fields(part) for part in shape[1]))


def _predicate(sql: SQLConnector, shape: Any, layout: Layout,
               placeholders: Callable[[int], list[exp.Expr]]) -> exp.Expr:
    if shape[0] == "cond":
        _, field, op, normalize, count = shape
        column: exp.Expr = layout.column(field)
        if normalize is not None:
            column = sql.column_normalizers[normalize](sql, column)
        return sql.filters[op].build(sql, column, placeholders(count))
    combine = {"AllOf": exp.and_, "AnyOf": exp.or_}[shape[0]]
    return combine(*(_predicate(sql, part, layout, placeholders) for part in shape[1]))
