"""SQL connector: entity maps read from PostgreSQL, MariaDB or SQLite, one SELECT per query.

A query's values are first typed after the columns they meet (declared types are read once from
the source's catalog), so that a value no row can match is decided without the source. The
SELECT itself is built and rendered once per query shape by :mod:`connectors.sql_statements`;
values never enter the SQL text. Drivers, pools and the translation of driver errors live in
:mod:`connectors.sql_drivers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlglot import exp

from connectors.base import Connector
from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
    UpstreamError,
)
from connectors.query import Aggregate, AllOf, AnyOf, Cond, EntityMap, Expr, Page, Query, fields_of
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
from connectors.sql_statements import (
    FILTERS,
    NORMALIZERS,
    NOTHING,
    Layout,
    Operator,
    Rendered,
    StatementCache,
    build_aggregate,
    build_statement,
    filter_shape,
    resolve_layout,
    to_sql,
)

if TYPE_CHECKING:
    from connectors.sql_statements import Normalize

T = TypeVar("T")

#: Messages for translated driver errors; they never carry a host, DSN, SQL text or value.
ERROR_HINTS: Mapping[type[ConnectorError], str] = {
    SourceUnavailable: "cannot reach the source, or it refused us; check that it is running "
                       "and the connection settings",
    SourceTimeout: "no answer within {timeout} s; the source is slow or overloaded",
    SourceConfigError: "the source has no such table or column; run verify to compare "
                       "the mapping with the source",
    UpstreamError: "the source answered with an error",
}


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
    column_normalizers: ClassVar[Mapping[str, Normalize]] = NORMALIZERS
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
        self.statements = StatementCache(self.statement_cache_size)
        self._layouts: dict[str, Layout] = {}
        self._coercers: dict[str, dict[str, Coercer]] = {}
        self._sortable: dict[str, frozenset[str]] = {}  # fields whose type sorts in time order
        self._types: dict[str, dict[str, str]] = {}  # entity -> field -> declared type

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

    async def can_aggregate(self, query: Query) -> bool:
        """Whether the source can summarize ``query.aggregate`` exactly: sums only over exact
        number columns (an INTEGER or NUMERIC, never a float), and every range comparison on an
        exact number or a real date or time column (where a date parameter means the same
        instant as in the gateway)."""
        summary = query.aggregate
        if summary is None:
            return False
        entity = self.entity(query.entity)
        self._names(entity, replace(query, fields=summary.fields))
        await self._guarded(self._load_coercers(entity))
        types = self._types[entity.name]
        ordered = {c.field for c in _conds(query.where) if self.filters[c.op].ordered} \
            if query.where is not None else set()
        return (all(self.driver.exact(types[f]) for f in summary.sums)
                and all(self.driver.temporal(types[f]) or self.driver.exact(types[f])
                        for f in ordered))

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

    async def introspect(self) -> dict[str, dict[str, str]]:
        return await self._guarded(self.driver.tables(None))

    async def aclose(self) -> None:
        await self.driver.aclose()

    # -- fetching --

    async def _fetch(self, query: Query) -> Page:
        entity = self.entity(query.entity)
        self._names(entity, query)  # refuse unknown fields before any I/O
        await self._load_coercers(entity)
        if query.aggregate is not None and not await self.can_aggregate(query):
            raise Unsupported(self.name, f"entity '{entity.name}' cannot be summarized exactly "
                                         f"here; read its rows (ask can_aggregate first)")
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
        shape = filter_shape(where, self.filters, values) if where is not None else None
        if query.aggregate is not None:
            return self._render_aggregate(entity, layout, query.aggregate, shape, values)
        if query.after is not None:
            values.append(self._typed_after(entity, query.after))
        if query.limit is not None:
            values.append(self._checked_limit(query.limit))
        latest = self._latest(entity, query)
        if latest is not None and query.latest is not None:
            values.append(query.latest.count)
        key = (entity.name, names, shape, query.after is not None, query.limit is not None,
               latest)
        rendered = self.statements.get_or_build(key, lambda: self._build(entity, layout, *key[1:]))
        return rendered, [values[i] for i in rendered.slots]

    def _render_aggregate(self, entity: EntityMap, layout: Layout, summary: Aggregate,
                          shape: Hashable | None, values: list[Any]) -> tuple[Rendered, list[Any]]:
        key = (entity.name, summary.names, shape, False, False, ("aggregate", summary))
        rendered = self.statements.get_or_build(
            key, lambda: build_aggregate(self, layout, summary, shape))
        return rendered, [values[i] for i in rendered.slots]

    def _latest(self, entity: EntityMap, query: Query) -> str | None:
        """The field to rank each parent's rows by, when ``query.latest`` can be pushed down:
        a child entity, no paging, and a column whose type sorts in time order (a date, a
        timestamp, epoch seconds); a date kept as text may not, so it is not pushed down."""
        latest = query.latest
        if latest is None or entity.parent is None or query.after is not None \
                or query.limit is not None:
            return None
        if latest.field not in self._sortable.get(entity.name, ()):
            return None
        if not isinstance(latest.count, int) or isinstance(latest.count, bool) \
                or latest.count < 1:
            raise Unsupported(self.name, "latest.count must be a whole number of at least 1")
        return latest.field

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
               shape: Hashable | None, has_after: bool, has_limit: bool,
               latest: str | None) -> Rendered:
        """The statement of one shape; the cache asks for it once."""
        ranked = (entity.parent, latest) if latest is not None and entity.parent else None
        return build_statement(self, layout, entity.key, names, shape, has_after, has_limit,
                               ranked)

    def _layout(self, entity: EntityMap) -> Layout:
        """The entity's FROM clause and columns, checked once per entity."""
        layout = self._layouts.get(entity.name)
        if layout is None:
            layout = self._layouts[entity.name] = resolve_layout(self.name, entity, self.dialect)
        return layout

    # -- the live source's catalog --

    async def _load_coercers(self, entity: EntityMap) -> None:
        """Learn the declared types of the entity's columns once, to type parameters."""
        if entity.name in self._coercers:
            return
        problems, types = await self._inspect(entity)
        if problems:
            raise SourceConfigError(self.name, "; ".join(problems))
        self._types[entity.name] = types
        self._coercers[entity.name] = {f: self.driver.coercer(t) for f, t in types.items()}
        self._sortable[entity.name] = frozenset(
            f for f, t in types.items() if self.driver.chronological(t))

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


def _conds(expr: Expr) -> list[Cond]:
    """Every condition of a filter tree."""
    if isinstance(expr, Cond):
        return [expr]
    assert isinstance(expr, AllOf | AnyOf)
    return [c for part in expr.parts for c in _conds(part)]


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
