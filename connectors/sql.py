"""SQL connector: a Query becomes one sqlglot SELECT, rendered once per query shape.

Every statement is built from sqlglot expressions and rendered for the source's dialect with
every identifier quoted; values never enter the SQL text, they become driver parameters in
the placeholder style of the driver (``$1`` asyncpg, ``%s`` asyncmy, ``?`` aiosqlite). The
rendered text is cached per *shape* (entity, fields, filter tree with its number of values,
paging), so a repeated query only rebuilds its parameter list. Drivers, pools and the
translation of driver errors live in :mod:`connectors.sql_drivers`.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable, Coroutine, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlglot
from cachetools import LRUCache
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError
from sqlglot.generator import Generator

from connectors.base import Connector
from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
    UpstreamError,
)
from connectors.query import (
    PHONE_TAIL_DIGITS,
    AllOf,
    AnyOf,
    Cond,
    EntityMap,
    Expr,
    Join,
    Page,
    Query,
    fields_of,
)
from connectors.sql_drivers import (
    NO_MATCH,
    Coercer,
    Driver,
    MariaDBDriver,
    PostgresDriver,
    SQLiteDriver,
    as_is,
    to_text,
)

T = TypeVar("T")
if TYPE_CHECKING:
    Build = Callable[["SQLConnector", exp.Expr, list[exp.Expr]], exp.Expr]

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


NORMALIZERS: Mapping[str, Callable[[SQLConnector, exp.Expr], exp.Expr]] = {
    "email": lambda sql, column: _lower_trim(column),
    "phone_tail": lambda sql, column: sql.tail(
        _replace(column, " ", ".", "-", "(", ")", "+", "/"), PHONE_TAIL_DIGITS),
    "card": lambda sql, column: exp.Upper(this=_replace(column, " ", "-")),
}

#: Messages for translated driver errors; they never carry a host, DSN, SQL text or value.
ERROR_HINTS: Mapping[type[ConnectorError], str] = {
    SourceUnavailable: "cannot reach the source, or it refused us; check that it is running "
                       "and the connection settings",
    SourceTimeout: "no answer within {timeout} s; the source is slow or overloaded",
    SourceConfigError: "the source has no such table or column; run verify to compare "
                       "the mapping with the source",
    UpstreamError: "the source answered with an error",
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


@dataclass(frozen=True, slots=True)
class Layout:
    """An entity map resolved for SQL: FROM and LEFT JOINs, and the column of each field."""

    tables: dict[str, str]  # alias -> table as mapped; the base table first
    columns: dict[str, tuple[str, str]]  # logical field -> (alias, column)
    join_columns: tuple[tuple[str, str], ...]  # (alias, column) the join conditions compare
    source: exp.Select  # FROM ... LEFT JOIN ..., without a select list

    def column(self, field: str) -> exp.Column:
        alias, column = self.columns[field]
        return exp.column(column, table=alias, quoted=True)


def _table(name: str, alias: str) -> exp.Table:
    """``schema.table`` or ``table``, aliased; every part quoted as written."""
    schema, _, table = name.rpartition(".")
    return exp.table_(table, db=schema or None, quoted=True, alias=alias)


def _conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    node = node.unnest()
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


_JOIN_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _listing(names: list[str], most: int = 40) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "") or "none"


# --- the connector ---------------------------------------------------------------------------


class SQLConnector(Connector):
    """Reads entity maps from one SQL database; subclasses name their driver and dialect."""

    #: The driver class: pool, parameters, catalog and errors of the engine.
    driver_class: ClassVar[type[Driver]] = Driver
    #: Operator -> how it becomes SQL (see :class:`Operator`).
    filters: ClassVar[Mapping[str, Operator]] = FILTERS
    #: Normalizer -> the SQL expression applied to the column.
    column_normalizers: ClassVar[Mapping[str, Callable[[SQLConnector, exp.Expr],
                                                       exp.Expr]]] = NORMALIZERS
    filter_ops = frozenset(FILTERS)
    normalizers = frozenset(NORMALIZERS)
    #: Rendered statements kept per connector, by query shape.
    statement_cache_size: ClassVar[int] = 512

    def __init__(self, name: str, connection: Mapping[str, Any],
                 entities: Mapping[str, EntityMap], **options: Any) -> None:
        super().__init__(name, connection, entities, **options)
        keys, given = self.driver_class.connection_keys, set(self.connection)
        wrong = [f"unknown key '{k}'" for k in sorted(given - keys)] + [
            f"missing key '{k}'" for k in sorted(self.driver_class.required_keys - given)]
        if wrong:
            known = ", ".join(sorted(keys))
            raise SourceConfigError(name, f"connection: {', '.join(wrong)} "
                                          f"(keys for kind '{self.kind}': {known})")
        self.driver = self.driver_class(self.connection, self.pool_size)
        self.statements: LRUCache[Hashable, Rendered] = LRUCache(self.statement_cache_size)
        self._layouts: dict[str, Layout] = {}
        self._coercers: dict[str, dict[str, Coercer]] = {}

    @property
    def dialect(self) -> str:
        return self.driver_class.dialect

    @staticmethod
    def tail(text: exp.Expr, digits: int) -> exp.Expr:
        """The last ``digits`` characters of ``text``."""
        return exp.Right(this=text, expression=exp.Literal.number(digits))

    # -- the Connector interface --

    async def fetch(self, query: Query) -> Page:
        return await self._guarded(self._fetch(query))

    async def ping(self) -> None:
        sql, _ = to_sql(exp.select(exp.Literal.number(1)), self.dialect, "?")
        await self._guarded(self.driver.rows(sql, ()))

    async def verify(self) -> list[str]:
        async def problems() -> list[str]:
            found: list[str] = []
            for entity in self.entities.values():
                found += (await self._inspect(entity))[0]
            return found

        return await self._guarded(problems())

    async def introspect(self) -> dict[str, list[str]]:
        return await self._guarded(self.driver.tables(None))

    async def aclose(self) -> None:
        await self.driver.aclose()

    # -- fetching --

    async def _fetch(self, query: Query) -> Page:
        entity = self.entity(query.entity)
        self._names(entity, query)  # refuse unknown fields before any I/O
        await self._load_coercers(entity)
        statement = self.render(query)
        if statement is None:
            return Page([])
        rendered, params = statement
        rows = await self.driver.rows(rendered.sql, params)
        return Page([dict(zip(rendered.names, row, strict=True)) for row in rows])

    def render(self, query: Query) -> tuple[Rendered, list[Any]] | None:
        """The SQL of ``query`` (built once per shape) and its parameters; None: no row matches."""
        entity = self.entity(query.entity)
        layout = self._layout(entity)
        names = self._names(entity, query)
        where = self._prepare(entity, query.where) if query.where is not None else None
        if where == NOTHING:
            return None
        values: list[Any] = []
        shape = self._collect(where, values) if where is not None else None
        if query.after is not None:
            values.append(self._typed_after(entity, query.after))
        if query.limit is not None:
            values.append(self._checked_limit(query.limit))
        key = (entity.name, names, shape, query.after is not None, query.limit is not None)
        rendered = self.statements.get(key)
        if rendered is None:
            rendered = self.statements[key] = self._build(entity, layout, *key[1:])
        return rendered, [values[i] for i in rendered.slots]

    def _names(self, entity: EntityMap, query: Query) -> tuple[str, ...]:
        """Result fields: the key, the parent, then those asked for; all must be mapped."""
        names = tuple(dict.fromkeys(
            n for n in (entity.key, entity.parent, *query.fields) if n is not None))
        for name in (*names, *sorted(fields_of(query.where))):
            if name not in entity.fields:
                raise SourceConfigError(self.name, f"entity '{entity.name}' has no field '{name}' "
                                                   f"(mapped: {', '.join(entity.fields)})")
        return names

    def _prepare(self, entity: EntityMap, expr: Expr) -> Expr | None:
        """Values in their columns' types; parts decided without the source folded away."""
        if isinstance(expr, Cond):
            return self._prepare_cond(entity, expr)
        parts = [self._prepare(entity, part) for part in expr.parts]
        # AND: one part matching nothing decides it, always-true parts drop out; OR: the reverse.
        decides, drops = (NOTHING, None) if isinstance(expr, AllOf) else (None, NOTHING)
        if decides in parts:
            return decides
        kept = [p for p in parts if p != drops]
        if not kept:
            return drops
        return kept[0] if len(kept) == 1 else type(expr)(tuple(kept))  # type: ignore[arg-type]

    def _prepare_cond(self, entity: EntityMap, cond: Cond) -> Expr:
        op = self._operator(cond)
        if op.typed and cond.normalize is None:
            coerce = self._coercers.get(entity.name, {}).get(cond.field, as_is)
        else:
            coerce = to_text
        if op.many:
            if not isinstance(cond.value, tuple | list | set | frozenset):
                raise Unsupported(self.name, f"'{cond.op}' on field '{cond.field}' needs a tuple "
                                             f"of values, not a {type(cond.value).__name__}")
            kept = [v for v in map(_no_none(coerce), cond.value) if v is not NO_MATCH]
            return replace(cond, value=tuple(dict.fromkeys(kept))) if kept else NOTHING
        value = _no_none(coerce)(cond.value)
        if value is NO_MATCH and op.ordered:
            raise Unsupported(self.name, f"field '{cond.field}' of entity '{entity.name}' cannot "
                                         f"be compared with a {type(cond.value).__name__} by "
                                         f"'{cond.op}': the value does not fit the column's type")
        return NOTHING if value is NO_MATCH else replace(cond, value=value)

    def _operator(self, cond: Cond) -> Operator:
        op = self.filters.get(cond.op)
        if op is None:
            raise Unsupported(self.name, f"operator '{cond.op}' is not supported "
                                         f"(supported: {', '.join(self.filters)})")
        if cond.normalize is not None and cond.normalize not in self.column_normalizers:
            raise Unsupported(self.name, f"normalizer '{cond.normalize}' is not supported "
                                         f"(supported: {', '.join(self.column_normalizers)})")
        return op

    def _collect(self, expr: Expr, values: list[Any]) -> Hashable:
        """Append the parameters of ``expr`` to ``values``; return its shape."""
        if isinstance(expr, Cond):
            op = self.filters[expr.op]
            params = op.params(list(expr.value) if op.many else [expr.value])
            values.extend(params)
            return ("cond", expr.field, expr.op, expr.normalize, len(params))
        return (type(expr).__name__, tuple(self._collect(part, values) for part in expr.parts))

    def _typed_after(self, entity: EntityMap, after: Any) -> Any:
        coerce = self._coercers.get(entity.name, {}).get(entity.key, as_is)
        value = _no_none(coerce)(after)
        if value is NO_MATCH:
            raise Unsupported(self.name, f"'after' does not fit the type of the key "
                                         f"'{entity.key}' of entity '{entity.name}'")
        return value

    def _checked_limit(self, limit: Any) -> int:
        if not isinstance(limit, int) or isinstance(limit, bool) or not (
                0 <= limit <= self.max_page_size):
            raise Unsupported(self.name, f"limit must be an integer from 0 to "
                                         f"{self.max_page_size}")
        return limit

    # -- building (once per shape) --

    def _build(self, entity: EntityMap, layout: Layout, names: tuple[str, ...],
               shape: Hashable | None, has_after: bool, has_limit: bool) -> Rendered:
        slots = itertools.count()

        def placeholders(count: int) -> list[exp.Expr]:
            return [exp.Placeholder(this=str(next(slots))) for _ in range(count)]

        select = layout.source.copy().select(
            *(exp.alias_(layout.column(n), n, quoted=True) for n in names), copy=False)
        conditions = [self._predicate(shape, layout, placeholders)] if shape is not None else []
        key = layout.column(entity.key)
        if has_after:
            conditions.append(exp.GT(this=key.copy(), expression=placeholders(1)[0]))
        if conditions:
            select = select.where(exp.and_(*conditions), copy=False)
        if has_after or has_limit:
            # The dialect's own NULL ordering: sqlglot would otherwise emulate one in MySQL
            # with a CASE that defeats the key's index.
            natural = Dialect.get_or_raise(self.dialect).NULL_ORDERING == "nulls_are_small"
            select = select.order_by(exp.Ordered(this=key, desc=False, nulls_first=natural),
                                     copy=False)
        if has_limit:
            select = select.limit(placeholders(1)[0], copy=False)
        sql, order = to_sql(select, self.dialect, self.driver_class.placeholder)
        return Rendered(sql, order, names)

    def _predicate(self, shape: Any, layout: Layout,
                   placeholders: Callable[[int], list[exp.Expr]]) -> exp.Expr:
        if shape[0] == "cond":
            _, field, op, normalize, count = shape
            column: exp.Expr = layout.column(field)
            if normalize is not None:
                column = self.column_normalizers[normalize](self, column)
            return self.filters[op].build(self, column, placeholders(count))
        combine = {"AllOf": exp.and_, "AnyOf": exp.or_}[shape[0]]
        return combine(*(self._predicate(part, layout, placeholders) for part in shape[1]))

    def _layout(self, entity: EntityMap) -> Layout:
        """The entity's FROM clause and columns, checked once; a bad mapping names the fix."""
        layout = self._layouts.get(entity.name)
        if layout is not None:
            return layout
        base = entity.table.rpartition(".")[2]
        tables = {base: entity.table}
        for join in entity.joins:
            if join.alias in tables:
                raise self._config(entity, f"alias '{join.alias}' is used twice")
            tables[join.alias] = join.table
        columns: dict[str, tuple[str, str]] = {}
        for field, ref in entity.fields.items():
            alias, _, column = ref.rpartition(".")
            if (alias or base) not in tables:
                raise self._config(entity, f"field '{field}' reads '{ref}', but '{alias}' is not "
                                           f"a table alias (aliases: {', '.join(tables)})")
            columns[field] = (alias or base, column)
        for role, name in (("key", entity.key), ("parent", entity.parent)):
            if name is not None and name not in columns:
                raise self._config(entity, f"{role} '{name}' is not a mapped field "
                                           f"(mapped: {', '.join(columns)})")
        source = exp.select().from_(_table(entity.table, base))
        join_columns: list[tuple[str, str]] = []
        for join in entity.joins:
            on = self._join_condition(entity, join, tables, join_columns)
            source = source.join(_table(join.table, join.alias), on=on, join_type="left",
                                 copy=False)
        layout = Layout(tables, columns, tuple(join_columns), source)
        self._layouts[entity.name] = layout
        return layout

    def _join_condition(self, entity: EntityMap, join: Join, aliases: Mapping[str, str],
                        seen: list[tuple[str, str]]) -> exp.Expr:
        """``on`` as AND-ed comparisons between alias.column pairs; anything else is refused."""
        problem = SourceConfigError(self.name, (
            f"entity '{entity.name}': join '{join.alias}' ({join.table}) needs AND-ed "
            f"comparisons between alias.column pairs, e.g. '{join.alias}.id = "
            f"{entity.table.rpartition('.')[2]}.{join.alias}_id' (aliases: {', '.join(aliases)})"))
        try:
            tree = sqlglot.parse_one(join.on, dialect=self.dialect)
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

    def _config(self, entity: EntityMap, message: str) -> SourceConfigError:
        return SourceConfigError(self.name, f"entity '{entity.name}': {message}")

    # -- the live source's catalog --

    async def _load_coercers(self, entity: EntityMap) -> None:
        """Learn the declared types of the entity's columns once, to type parameters."""
        if entity.name in self._coercers:
            return
        problems, types = await self._inspect(entity)
        if problems:
            raise SourceConfigError(self.name, "; ".join(problems))
        self._coercers[entity.name] = {f: self.driver.coercer(t) for f, t in types.items()}

    async def _inspect(self, entity: EntityMap) -> tuple[list[str], dict[str, str]]:
        """Problems between one entity map and the source, and each field's declared type."""
        try:
            layout = self._layout(entity)
        except SourceConfigError as exc:
            return [exc.detail], {}
        problems: list[str] = []
        found: dict[str, dict[str, str]] = {}
        for alias, table in layout.tables.items():
            schema, _, name = table.rpartition(".")
            found[alias] = await self.driver.columns(schema or None, name)
            if not found[alias]:
                there = list(await self.driver.tables(schema or None))
                problems.append(f"entity '{entity.name}': table '{table}' not found "
                                f"(tables: {_listing(there)})")
        types: dict[str, str] = {}
        refs = [(f, alias, column) for f, (alias, column) in layout.columns.items()]
        for field, alias, column in refs + [(None, a, c) for a, c in layout.join_columns]:
            columns = found[alias]
            if column in columns and field is not None:
                types[field] = columns[column]
            elif columns and column not in columns:
                problems.append(f"entity '{entity.name}': column '{column}' not found in table "
                                f"'{layout.tables[alias]}' (columns: {_listing(list(columns))})")
        return list(dict.fromkeys(problems)), types

    # -- the error boundary --

    async def _guarded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` within the timeout; driver exceptions become connector errors, once."""
        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except ConnectorError:
            raise
        except Exception as exc:
            error = self.driver.translate(exc)
            if error is None:
                raise
            code = self.driver.error_code(exc)
            hint = ERROR_HINTS[error].format(timeout=self.timeout)
            cause = type(exc).__name__ + (f" {code}" if code is not None else "")
            raise error(self.name, f"{hint} ({cause})") from exc


def _no_none(coerce: Coercer) -> Coercer:
    """NULL equals nothing in SQL: a None value matches no row."""
    return lambda value: NO_MATCH if value is None else coerce(value)


class PostgresConnector(SQLConnector):
    """PostgreSQL through asyncpg."""

    kind = "postgres"
    driver_class = PostgresDriver


class MariaDBConnector(SQLConnector):
    """MariaDB and MySQL through asyncmy."""

    kind = "mariadb"
    driver_class = MariaDBDriver


class SQLiteConnector(SQLConnector):
    """A SQLite file through aiosqlite, read-only."""

    kind = "sqlite"
    driver_class = SQLiteDriver

    @staticmethod
    def tail(text: exp.Expr, digits: int) -> exp.Expr:
        # SQLite has no RIGHT(); SUBSTR with a negative start counts from the end.
        return exp.Anonymous(this="SUBSTR", expressions=[text, exp.Literal.number(-digits)])
