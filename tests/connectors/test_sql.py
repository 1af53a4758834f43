"""The SQL connectors: the contract on three real engines, and what is particular to SQL."""

from __future__ import annotations

import asyncio
import inspect
import re
import sqlite3
import time
from contextlib import closing
from datetime import datetime
from typing import Any, ClassVar

import asyncmy.errors
import asyncpg.exceptions
import pytest

from connectors import registry
from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
)
from connectors.query import Aggregate, AllOf, AnyOf, Cond, EntityMap, Join, Latest, Query
from connectors.sql import MariaDBConnector, PostgresConnector, SQLConnector, SQLiteConnector
from connectors.sql_drivers import MariaDBDriver, PostgresDriver, SQLiteDriver
from tests.connectors.contract import ConnectorContract, keys
from tests.connectors.dataset import PAYMENTS, PEOPLE

SOURCE = "shop-test"
CONNECTORS = [PostgresConnector, MariaDBConnector, SQLiteConnector]


def contract_entities(email_column: str = "email") -> dict[str, EntityMap]:
    customer = EntityMap("customer", "contract_people", "id", {
        "id": "id", "given_name": "given_name", "family_name": "family_name",
        "email_0": email_column, "phone_0": "phone", "address_0_city": "city", "card_0": "card"})
    note = EntityMap("note", "contract_notes", "id", {
        "id": "id", "customer_key": "person_id", "text": "note", "date": "created_at"},
        parent="customer_key")
    return {"customer": customer, "note": note}


#: Money paid: exact (NUMERIC, INTEGER cents) and float (fee) columns, a timestamp.
PAYMENT = EntityMap("payment", "contract_payments", "id", {
    "id": "id", "customer_key": "person_id", "status": "status", "amount": "amount",
    "cents": "cents", "fee": "fee", "date": "paid_at"}, parent="customer_key")


def summed(by: tuple[str, ...], sums: tuple[str, ...], where: Any = None) -> Query:
    return Query("payment", (), where or Cond("customer_key", "in", (1, 2)),
                 aggregate=Aggregate(by, sums))


#: Chinook-style CamelCase tables: Customer -> Address (a) -> City (c), all LEFT JOINed.
CAMEL = EntityMap("buyer", "Customer", "id", {
    "id": "CustomerId", "given_name": "FirstName", "street": "a.Street", "city": "c.Name"},
    joins=(Join("Address", "a", 'a.AddressId = Customer.AddressId'),
           Join("City", "c", "c.CityId = a.CityId")))
#: One slow row that says which server connection read it.
SLOW = EntityMap("slow", "slow_backend", "id", {"id": "id", "backend": "backend"})
#: One row that takes seconds.
SLEEPY = EntityMap("sleepy", "sleepy", "id", {"id": "id"})


#: What introspection reports, per engine, for the contract tables' INTEGER, VARCHAR(n),
#: TIMESTAMP, NUMERIC(10, 2) and DOUBLE PRECISION columns, as ``conftest.ddl`` transpiles
#: them: information_schema.columns.data_type, or SQLite's type exactly as declared.
INTROSPECTED_TYPES = {
    "postgres": ("integer", "character varying", "timestamp without time zone", "numeric",
                 "double precision"),
    "mariadb": ("int", "varchar", "datetime", "decimal", "double"),
    "sqlite": ("INTEGER", "TEXT({})", "TIMESTAMP", "REAL(10, 2)", "REAL"),
}


class SQLContract(ConnectorContract):
    """The contract, plus SQL behaviour every engine must show on a live database."""

    connector_class: ClassVar[type[SQLConnector]]
    source_fixture: ClassVar[str]
    unreachable: ClassVar[dict[str, Any]]

    @pytest.fixture
    def settings(self, request: pytest.FixtureRequest) -> dict:
        return request.getfixturevalue(self.source_fixture)

    @pytest.fixture
    async def make(self, settings: dict):
        """Build connectors over the test database; every one is closed after the test."""
        built: list[SQLConnector] = []

        def make(entities: dict[str, EntityMap] | None = None, connection: dict | None = None,
                 **options: Any) -> SQLConnector:
            entities = entities if entities is not None else contract_entities()
            connector = self.connector_class(SOURCE, connection or settings, entities, **options)
            built.append(connector)
            return connector

        yield make
        for connector in built:
            await connector.aclose()

    @pytest.fixture
    def connector(self, make) -> SQLConnector:
        return make()

    @pytest.fixture
    def broken_connector(self, make) -> SQLConnector:
        return make(contract_entities(email_column="courriel"))

    @pytest.fixture
    def unreachable_connector(self, make, tmp_path) -> SQLConnector:
        return make(connection={k: str(tmp_path / v) if k == "path" else v
                                for k, v in self.unreachable.items()})

    # -- SQL behaviour --

    async def test_three_table_left_join_with_camelcase_identifiers(self, make):
        connector = make({"buyer": CAMEL})
        page = await connector.fetch(Query("buyer", ("given_name", "street", "city")))
        rows = sorted((int(r["id"]), r["given_name"], r["street"], r["city"]) for r in page.rows)
        assert rows == [(1, "Jean", "1 rue de Rivoli", "Paris"),
                        (2, "Marie", "2 quai Saint-Antoine", "Lyon"),
                        (3, "Paul", "nowhere", None),  # address without a city
                        (4, "Zoé", None, None)]  # no address at all: still there (LEFT JOIN)
        page = await connector.fetch(Query("buyer", ("city",),
                                           where=Cond("city", "ieq", "lyon")))
        assert page.rows == [{"id": 2, "city": "Lyon"}]
        assert await connector.verify() == []

    @pytest.mark.parametrize(("where", "want"), [
        (Cond("id", "in", ("3", "10", "x")), [3, 10]),
        (Cond("id", "eq", "4"), [4]),
        (Cond("id", "gt", "10"), [11, 12]),
        (Cond("id", "lte", 2.0), [1, 2]),
        (Cond("id", "in", ("99999999999999999999999", None)), []),
        (Cond("customer_key", "in", ("1", 10)), None),
    ])
    async def test_keys_given_as_text_are_typed_for_the_column(self, make, where, want):
        entity = "note" if where.field == "customer_key" else "customer"
        page = await make().fetch(Query(entity, (), where=where))
        if want is None:
            assert sorted(int(r["customer_key"]) for r in page.rows) == [1, 1, 10]
        else:
            assert sorted(keys(page)) == want

    async def test_latest_is_ranked_in_the_source_on_a_time_column_only(self, connector):
        parents = (1, 2, 10)
        newest = await connector.fetch(Query("note", ("customer_key", "text", "date"),
                                             where=Cond("customer_key", "in", parents),
                                             latest=Latest("date", 1)))
        assert sorted(int(str(r["customer_key"])) for r in newest.rows) == [1, 2, 10]
        assert "Complained about a late delivery" in {r["text"] for r in newest.rows}
        statement = connector.render(Query("note", ("text",), Cond("customer_key", "in", parents),
                                           latest=Latest("date", 1)))
        assert statement is not None and "ROW_NUMBER() OVER (PARTITION BY" in statement[0].sql
        # A text column may hold dates in any order: not ranked in the source, every row comes.
        by_text = await connector.fetch(Query("note", ("customer_key", "text"),
                                              where=Cond("customer_key", "in", parents),
                                              latest=Latest("text", 1)))
        assert len(by_text.rows) == 4

    #: Whether the engine sums a NUMERIC column exactly (SQLite stores its values as floats).
    exact_numeric: ClassVar[bool] = True
    #: Whether the engine compares a TIMESTAMP column with a date parameter as dates.
    temporal: ClassVar[bool] = True

    async def test_sums_run_in_the_source_only_when_they_are_exact(self, make):
        connector = make({"payment": PAYMENT})
        cents = summed(("customer_key", "status"), ("cents",))
        assert await connector.can_aggregate(cents)
        page = await connector.fetch(cents)
        got = {(int(r["customer_key"]), r["status"]): (r["count"], r["sum:cents"])
               for r in page.rows}
        want: dict[tuple[int, str], list[int]] = {}
        for p in PAYMENTS:
            group = want.setdefault((p["person_id"], p["status"]), [0, 0])
            group[0] += 1
            group[1] += p["cents"]
        assert got == {k: tuple(v) for k, v in want.items()}
        statement = connector.render(cents)
        assert statement is not None and "GROUP BY 1, 2" in statement[0].sql
        assert 'SUM(' in statement[0].sql and "COUNT(*)" in statement[0].sql
        amount = summed(("customer_key",), ("amount",))
        assert await connector.can_aggregate(amount) is self.exact_numeric
        if self.exact_numeric:
            sums = {int(r["customer_key"]): r["sum:amount"]
                    for r in (await connector.fetch(amount)).rows}
            assert str(sums[1]) == "100.29" and str(sums[2]) == "1234.57"  # exact, not floats
        # A float column never sums in the source; asking anyway is refused, not approximated.
        fee = summed(("customer_key",), ("fee",))
        assert not await connector.can_aggregate(fee)
        with pytest.raises(Unsupported, match="cannot be summarized exactly"):
            await connector.fetch(fee)

    async def test_a_date_bound_is_pushed_down_only_on_a_date_column(self, make):
        connector = make({"payment": PAYMENT})
        before_july = AllOf((Cond("customer_key", "in", (2,)),
                             Cond("date", "lt", datetime(2026, 7, 1))))
        query = summed(("customer_key",), ("cents",), before_july)
        assert await connector.can_aggregate(query) is self.temporal
        if self.temporal:
            rows = (await connector.fetch(query)).rows
            assert [(r["count"], r["sum:cents"]) for r in rows] == [(1, 123456)]

    async def test_keyset_after_given_as_text(self, connector):
        page = await connector.fetch(Query("customer", (), after="9", limit=10))
        assert keys(page) == [10, 11, 12]  # as numbers: "10" < "9" as text

    async def test_ordering_a_key_with_a_value_of_another_type_is_refused(self, connector):
        with pytest.raises(Unsupported, match="'id'"):
            await connector.fetch(Query("customer", (), where=Cond("id", "gt", "ten")))

    async def test_in_list_longer_than_max_in_values_is_chunked(self, connector):
        ids = tuple(range(1, connector.max_in_values * 2 + 500))
        page = await connector.fetch(Query("customer", (), where=Cond("id", "in", ids)))
        assert sorted(keys(page)) == [p["id"] for p in PEOPLE]

    async def test_contains_escapes_like_wildcards(self, connector):
        for value, want in (("o'b", [6]), ("%", []), ("_", []), ("!", []), ("!%", [])):
            page = await connector.fetch(Query("customer", (),
                                               where=Cond("given_name", "contains", value)))
            assert keys(page) == want, value

    async def test_nested_or_and_with_empty_in_is_folded(self, connector):
        where = AllOf((Cond("id", "lt", 5), AnyOf((Cond("id", "in", ()),
                                                  Cond("family_name", "eq", "Martin")))))
        page = await connector.fetch(Query("customer", (), where=where))
        assert keys(page) == [4]

    async def test_broken_mapping_fetch_names_the_column(self, broken_connector):
        with pytest.raises(SourceConfigError, match="courriel.*columns: id, given_name"):
            await broken_connector.fetch(Query("customer", ("email_0",)))

    async def test_verify_names_a_missing_table_and_the_tables_there(self, make):
        entity = EntityMap("customer", "clientz", "id", {"id": "id"})
        problems = await make({"customer": entity}).verify()
        assert len(problems) == 1
        assert problems[0].startswith("entity 'customer': table 'clientz' not found (tables: ")
        assert "contract_people" in problems[0]

    async def test_verify_checks_join_columns(self, make):
        joins = (Join("Address", "a", "a.Nope = Customer.AddressId"),)
        entity = EntityMap("buyer", "Customer", "id", {"id": "CustomerId"}, joins=joins)
        problems = await make({"buyer": entity}).verify()
        assert problems == ["entity 'buyer': column 'Nope' not found in table 'Address' "
                            "(columns: AddressId, Street, CityId)"]

    async def test_introspect_lists_columns_in_table_order(self, connector):
        tables = await connector.introspect()
        assert list(tables["contract_people"]) == ["id", "given_name", "family_name", "email",
                                                   "phone", "city", "card"]
        assert list(tables["Customer"]) == ["CustomerId", "FirstName", "AddressId"]

    async def test_introspect_gives_the_engines_own_type_names(self, connector):
        integer, text, timestamp, numeric, double = INTROSPECTED_TYPES[self.connector_class.kind]
        tables = await connector.introspect()
        assert tables["contract_people"] == {
            "id": integer, "given_name": text.format(100), "family_name": text.format(100),
            "email": text.format(200), "phone": text.format(50), "city": text.format(100),
            "card": text.format(50)}
        assert tables["contract_payments"]["amount"] == numeric
        assert tables["contract_payments"]["fee"] == double
        assert tables["contract_notes"]["created_at"] == timestamp
        assert tables["Customer"]["CustomerId"] == integer

    async def test_pool_is_bounded(self, make):
        connector = make({"customer": contract_entities()["customer"], "slow": SLOW},
                         pool_size=2)
        entity, field = ("slow", "backend") if self.connector_class.kind != "sqlite" else (
            "customer", "given_name")
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, connector.driver.size)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        pages = await asyncio.gather(*(connector.fetch(Query(entity, (field,)))
                                       for _ in range(5)))
        watcher.cancel()
        assert all(page.rows for page in pages)
        assert peak == 2 and connector.driver.size <= 2
        if entity == "slow":  # the server saw exactly two connections, used side by side
            assert len({page.rows[0]["backend"] for page in pages}) == 2

    async def test_slow_query_times_out_and_the_pool_recovers(self, make):
        connector = make({"sleepy": SLEEPY, **contract_entities()}, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(SourceTimeout) as err:
            await connector.fetch(Query("sleepy", ()))
        assert time.monotonic() - started < 2.5  # the 3 s query was abandoned, not awaited
        assert "0.3 s" in str(err.value) and SOURCE in str(err.value)
        page = await connector.fetch(Query("customer", (), limit=2))
        assert keys(page) == [1, 2]

    async def test_unreachable_message_says_what_to_check_and_nothing_secret(
            self, unreachable_connector, tmp_path):
        with pytest.raises(SourceUnavailable) as err:
            await unreachable_connector.ping()
        message = str(err.value)
        assert message.startswith(f"source '{SOURCE}': cannot reach the source")
        assert "connection settings" in message
        assert not [leak for leak in ("127.0.0.1", "s3cret", str(tmp_path), "root", "port")
                    if leak in message], message

    async def test_aclose_releases_every_connection(self, make):
        connector = make()
        await connector.fetch(Query("customer", ()))
        assert connector.driver.size >= 1
        await connector.aclose()
        assert connector.driver.size == 0


class TestPostgres(SQLContract):
    connector_class = PostgresConnector
    source_fixture = "postgres_source"
    unreachable = {"host": "127.0.0.1", "port": 1, "user": "postgres", "database": "x"}

    async def test_schema_qualified_table(self, make):
        entity = EntityMap("customer", "panorama_sales.customer", "id",
                           {"id": "customer.id", "email_0": "email"})
        connector = make({"customer": entity})
        page = await connector.fetch(Query("customer", ("email_0",), where=Cond("id", "eq", "7")))
        assert page.rows == [{"id": 7, "email_0": "sales@example.com"}]
        assert await connector.verify() == []
        missing = EntityMap("customer", "panorama_sales.clients", "id", {"id": "id"})
        problems = await make({"customer": missing}).verify()
        assert problems == ["entity 'customer': table 'panorama_sales.clients' not found "
                            "(tables: panorama_sales.customer)"]

    async def test_a_dsn_with_a_password_never_shows(self, make):
        connector = make(connection={"dsn": "postgresql://postgres:s3cret@127.0.0.1:1/x"})
        with pytest.raises(SourceUnavailable) as err:
            await connector.fetch(Query("customer", ()))
        assert "s3cret" not in str(err.value) and "127.0.0.1" not in str(err.value)


class TestMariaDB(SQLContract):
    connector_class = MariaDBConnector
    source_fixture = "mariadb_source"
    unreachable = {"host": "127.0.0.1", "port": 1, "user": "root", "password": "s3cret"}

    async def test_database_qualified_table(self, make):
        entity = EntityMap("customer", "panorama_test.contract_people", "id",
                           {"id": "id", "given_name": "contract_people.given_name"})
        connector = make({"customer": entity})
        page = await connector.fetch(Query("customer", ("given_name",), where=Cond("id", "eq", 2)))
        assert page.rows == [{"id": 2, "given_name": "Marie"}]
        assert await connector.verify() == []

    def test_registered_as_mysql_too(self):
        assert registry.get("mysql") is registry.get("mariadb") is MariaDBConnector


class TestSQLite(SQLContract):
    connector_class = SQLiteConnector
    source_fixture = "sqlite_source"
    unreachable = {"path": "missing/panorama.db"}
    exact_numeric = False
    temporal = False

    async def test_a_missing_file_is_not_created(self, make, tmp_path):
        connector = make(connection={"path": str(tmp_path / "absent.db")})
        with pytest.raises(SourceUnavailable, match="FileNotFoundError"):
            await connector.ping()
        assert not (tmp_path / "absent.db").exists()

    async def test_introspect_gives_an_untyped_column_an_empty_type(self, make, tmp_path):
        path = tmp_path / "untyped.db"
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript("CREATE TABLE loose (id INTEGER PRIMARY KEY, anything, note TEXT);"
                               " CREATE VIEW loose_view AS SELECT id, anything || '' AS joined"
                               " FROM loose;")
        tables = await make(connection={"path": str(path)}).introspect()
        assert tables == {"loose": {"id": "INTEGER", "anything": "", "note": "TEXT"},
                          "loose_view": {"id": "INTEGER", "joined": ""}}

    async def test_the_file_is_opened_read_only(self, connector):
        await connector.ping()
        conn = next(iter(connector.driver._pool.open))
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await conn.execute("DELETE FROM contract_people")


# --- statements, without a database -------------------------------------------------------

def offline(cls: type[SQLConnector], entities: dict[str, EntityMap] | None = None,
            **options: Any) -> SQLConnector:
    """A connector that is never connected: rendering needs no source."""
    connection = {"path": "unused.db"} if cls is SQLiteConnector else {}
    return cls(SOURCE, connection, entities or {**contract_entities(), "buyer": CAMEL}, **options)


GOLDEN = {
    PostgresConnector: (
        'SELECT "Customer"."CustomerId" AS "id", "c"."Name" AS "city" FROM "Customer" AS'
        ' "Customer" LEFT JOIN "Address" AS "a" ON "a"."AddressId" = "Customer"."AddressId"'
        ' LEFT JOIN "City" AS "c" ON "c"."CityId" = "a"."CityId" WHERE'
        ' LOWER(TRIM("c"."Name")) = $1 AND "Customer"."CustomerId" > $2'
        ' ORDER BY "Customer"."CustomerId" ASC LIMIT $3'),
    MariaDBConnector: (
        'SELECT `Customer`.`CustomerId` AS `id`, `c`.`Name` AS `city` FROM `Customer` AS'
        ' `Customer` LEFT JOIN `Address` AS `a` ON `a`.`AddressId` = `Customer`.`AddressId`'
        ' LEFT JOIN `City` AS `c` ON `c`.`CityId` = `a`.`CityId` WHERE'
        ' LOWER(TRIM(`c`.`Name`)) = %s AND `Customer`.`CustomerId` > %s'
        ' ORDER BY `Customer`.`CustomerId` ASC LIMIT %s'),
    SQLiteConnector: (
        'SELECT "Customer"."CustomerId" AS "id", "c"."Name" AS "city" FROM "Customer" AS'
        ' "Customer" LEFT JOIN "Address" AS "a" ON "a"."AddressId" = "Customer"."AddressId"'
        ' LEFT JOIN "City" AS "c" ON "c"."CityId" = "a"."CityId" WHERE'
        ' LOWER(TRIM("c"."Name")) = ? AND "Customer"."CustomerId" > ?'
        ' ORDER BY "Customer"."CustomerId" ASC LIMIT ?'),
}


@pytest.mark.parametrize("cls", CONNECTORS)
def test_join_and_camelcase_render_quoted_in_each_dialect(cls):
    rendered, params = offline(cls).render(
        Query("buyer", ("city",), where=Cond("city", "ieq", "lyon"), after=2, limit=10))
    assert rendered.sql == GOLDEN[cls]
    assert params == ["lyon", 2, 10]


MARKS = {PostgresConnector: r"\$(\d+)", MariaDBConnector: r"%s", SQLiteConnector: r"\?"}


@pytest.mark.parametrize("cls", CONNECTORS)
def test_values_become_driver_parameters_never_sql_text(cls):
    values = ["Zq'1", 'Zq"2', "Zq;3", "zq%4", "zq_5", "Zq6", "Zq-7 8", "Zq9"]
    where = AnyOf((
        Cond("given_name", "eq", values[0]),
        Cond("family_name", "in", (values[1], values[2])),
        AllOf((Cond("email_0", "ieq", values[3]), Cond("card_0", "contains", values[4]))),
        Cond("phone_0", "eq", values[5], "phone_tail"),
        Cond("card_0", "in", (values[6],), "card"),
    ))
    rendered, params = offline(cls).render(
        Query("customer", ("email_0",), where=where, after=values[7], limit=10))
    assert "zq" not in rendered.sql.lower()
    marks = re.findall(MARKS[cls], rendered.sql)
    assert len(marks) == len(params) == 9
    if cls is PostgresConnector:
        assert marks == [str(n) for n in range(1, 10)]
    # in text order; the contains value escaped for LIKE and wrapped in wildcards
    assert params == [*values[:4], "%zq!_5%", *values[5:], 10]


@pytest.mark.parametrize(("cls", "tail"), [
    (PostgresConnector, ", 9) = $"), (MariaDBConnector, ", 9) = %s"),
    (SQLiteConnector, ", -9) = ?"),
])
def test_phone_tail_keeps_the_last_digits_in_each_dialect(cls, tail):
    rendered, params = offline(cls).render(
        Query("customer", (), where=Cond("phone_0", "eq", "655443322", "phone_tail")))
    assert tail in rendered.sql and ("SUBSTR(" in rendered.sql) == (cls is SQLiteConnector)
    assert params == ["655443322"]


def test_sql_is_built_once_per_shape(monkeypatch):
    connector = offline(PostgresConnector)
    builds = []
    build = connector._build
    monkeypatch.setattr(connector, "_build", lambda *a: builds.append(a) or build(*a))

    def render(ids: tuple, limit: int = 5):
        return connector.render(Query("customer", ("email_0",), where=Cond("id", "in", ids),
                                      limit=limit))

    first, params = render((1, 2, 3))
    again, other_params = render((7, 8, 9, 10), limit=50)  # 3 and 4 values: one padded shape
    assert again is first and len(builds) == 1
    assert params == [1, 2, 3, 3, 5] and other_params == [7, 8, 9, 10, 50]
    assert render((1, 2, 3, 4, 5))[0] is not first and len(builds) == 2
    assert connector.render(Query("customer", ("email_0",)))[0].sql.endswith(
        'FROM "contract_people" AS "contract_people"')
    assert len(connector.statements) == 3


def test_an_in_list_longer_than_max_in_values_is_split_into_ors():
    rendered, params = offline(MariaDBConnector).render(
        Query("customer", (), where=Cond("id", "in", tuple(range(2500)))))
    lists = re.findall(r"IN \(([^)]*)\)", rendered.sql)
    assert [part.count("%s") for part in lists] == [1000, 1000, 560]
    assert len(params) == 2560 and params[:2500] == list(range(2500))


def test_an_empty_in_is_decided_without_the_source():
    connector = offline(SQLiteConnector)
    assert connector.render(Query("customer", (), where=Cond("id", "in", ()))) is None
    rendered, _ = connector.render(Query("customer", (), where=AnyOf((
        Cond("id", "in", ()), Cond("id", "eq", 1)))))
    assert rendered.sql.endswith('WHERE "contract_people"."id" = ?')


def test_schema_qualified_table_is_aliased_by_its_name():
    entity = EntityMap("customer", "public.customer", "id",
                       {"id": "customer.customer_id", "email": "email"})
    rendered, _ = offline(PostgresConnector, {"customer": entity}).render(
        Query("customer", ("email",)))
    assert rendered.sql == ('SELECT "customer"."customer_id" AS "id", "customer"."email" AS'
                            ' "email" FROM "public"."customer" AS "customer"')


@pytest.mark.parametrize("on", [
    "a.AddressId = 1", "a.AddressId = Customer.AddressId OR a.x = Customer.y",
    "a.AddressId = LOWER(Customer.AddressId)", "a.AddressId = Customer.AddressId; DROP TABLE x",
    "((", "b.AddressId = Customer.AddressId", "AddressId = Customer.AddressId",
    "a.AddressId = Customer.AddressId AND 1 = 1", "a.AddressId IN (SELECT 1)",
])
async def test_join_conditions_other_than_column_comparisons_are_refused(on):
    entity = EntityMap("buyer", "Customer", "id", {"id": "CustomerId"},
                       joins=(Join("Address", "a", on),))
    connector = offline(SQLiteConnector, {"buyer": entity})
    with pytest.raises(SourceConfigError, match="entity 'buyer': join 'a' \\(Address\\)"):
        connector.render(Query("buyer", ()))
    problems = await connector.verify()  # reported, not raised; no I/O needed to see it
    assert len(problems) == 1 and "join 'a'" in problems[0]


def test_mapping_mistakes_name_the_fix():
    connector = offline(SQLiteConnector)
    with pytest.raises(SourceConfigError, match="no field 'shoe_size' .mapped: id, given_name"):
        connector.render(Query("customer", ("given_name",), where=Cond("shoe_size", "eq", 4)))
    with pytest.raises(Unsupported, match="operator 'like' .*supported: eq, in, ieq, contains"):
        connector.render(Query("customer", (), where=Cond("id", "like", 4)))
    with pytest.raises(Unsupported, match="normalizer 'soundex' .*supported: email, phone_tail"):
        connector.render(Query("customer", (), where=Cond("id", "eq", 4, "soundex")))
    with pytest.raises(Unsupported, match="needs a tuple"):
        connector.render(Query("customer", (), where=Cond("id", "in", "123")))
    with pytest.raises(Unsupported, match="limit must be an integer from 0 to 10000"):
        connector.render(Query("customer", (), limit=10_001))
    bad_alias = EntityMap("x", "t", "id", {"id": "id", "city": "zz.city"})
    with pytest.raises(SourceConfigError, match="'zz' is not a table alias .aliases: t"):
        offline(SQLiteConnector, {"x": bad_alias}).render(Query("x", ("city",)))
    no_key = EntityMap("x", "t", "id", {"name": "name"})
    with pytest.raises(SourceConfigError, match="key 'id' is not a mapped field"):
        offline(SQLiteConnector, {"x": no_key}).render(Query("x", ("name",)))


def test_connection_keys_are_checked_when_the_connector_is_built():
    with pytest.raises(SourceConfigError, match="unknown key 'pasword' .keys for kind 'mariadb':"
                                                " database, host, password, port, user"):
        MariaDBConnector(SOURCE, {"host": "db", "pasword": "x"}, {})
    with pytest.raises(SourceConfigError, match="missing key 'path'"):
        SQLiteConnector(SOURCE, {}, {})


def test_capabilities_are_declared():
    for cls in CONNECTORS:
        assert cls.filter_ops == set(cls.filters) == {"eq", "in", "ieq", "contains", "gt", "gte",
                                                      "lt", "lte"}
        assert cls.normalizers == {"email", "phone_tail", "card"}
        assert registry.get(cls.kind) is cls


# --- driver errors: every one is translated, once, with a clean message --------------------

LIBRARIES = {PostgresDriver: asyncpg.exceptions, MariaDBDriver: asyncmy.errors,
             SQLiteDriver: sqlite3}
CONNECTOR_OF = {c.driver_class: c for c in CONNECTORS}
#: What a driver exception may say that a connector error must not.
LEAKS = ("10.9.8.7", "s3cret", "SELECT", "alice@example.com")
LEAKY = "connect to 10.9.8.7 as admin:s3cret failed: SELECT * FROM t WHERE x = 'alice@example.com'"


def library_exceptions(module) -> list[type[Exception]]:
    return [c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, Exception)
            and not issubclass(c, Warning)]


@pytest.mark.parametrize("driver", list(LIBRARIES), ids=lambda d: d.__name__)
def test_every_exception_of_the_driver_library_is_mapped(driver):
    exceptions = library_exceptions(LIBRARIES[driver])
    assert len(exceptions) > 5
    unmapped = [c.__name__ for c in exceptions if driver.translate(c.__new__(c)) is None]
    assert unmapped == []


def _exception_with(driver: type, key: object) -> BaseException:
    """An exception the driver maps through ``key`` (a class or an engine code)."""
    if isinstance(key, type):
        return key(LEAKY)
    if isinstance(key, int):
        return asyncmy.errors.OperationalError(key, LEAKY)
    if key.startswith("SQLITE_"):
        exc = sqlite3.OperationalError(LEAKY)
        exc.sqlite_errorname = key
        return exc
    return sqlite3.OperationalError(f"{key}: {LEAKY}")


MAPPINGS = [(driver, key, error) for driver in LIBRARIES
            for key, error in (*driver.errors.items(), *driver.error_codes.items())]


@pytest.mark.parametrize(("driver", "key", "error"), MAPPINGS,
                         ids=[f"{d.__name__}-{getattr(k, '__name__', k)}" for d, k, _ in MAPPINGS])
async def test_each_mapped_exception_becomes_its_connector_error_with_a_clean_message(
        driver, key, error):
    connector = offline(CONNECTOR_OF[driver])
    exc = _exception_with(driver, key)

    async def failing() -> None:
        raise exc

    with pytest.raises(ConnectorError) as err:
        await connector._guarded(failing())
    assert type(err.value) is error and err.value.__cause__ is exc
    message = str(err.value)
    assert message.startswith(f"source '{SOURCE}': ")
    assert not [leak for leak in LEAKS if leak in message], message


async def test_an_exception_that_is_not_a_driver_error_is_left_alone():
    async def buggy() -> None:
        raise KeyError("a bug of ours must not pass for a source failure")

    with pytest.raises(KeyError):
        await offline(SQLiteConnector)._guarded(buggy())
