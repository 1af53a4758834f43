"""The config stores: versions in files next to the config, or in PostgreSQL for replicas.

Every behaviour of the protocol is checked on both stores; PostgreSQL also for replicas seeing
each other's commits (LISTEN/NOTIFY), through a lost listening connection too. The PostgreSQL
tests use a throwaway database, created for this module and dropped after it.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from gateway.admin.document import ConfigDocument
from gateway.admin.store import (
    FILE_AUTHOR,
    ConfigStore,
    FileStore,
    StaleVersion,
    StoreError,
    open_config_store,
    read_document,
)
from gateway.admin.store_postgres import TABLE, PostgresStore

ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}

CONFIG = {
    "policy": "policies.yaml",
    "sources": {"crm": {"kind": "crm", "connection": {"url": "http://crm.local"},
                        "customer": {"id": "id", "email": "email"}}},
}
POLICY = {"version": 1, "roles": {"support": {"allow": ["customer.email"]}}}
RATES = {"finance": {"rates": {datetime.date(2024, 1, 1): {"GBP": "1.15"}}}}


def write_files(directory: Path) -> Path:
    config = directory / "panorama.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    (directory / "policies.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    return config


def with_rates() -> ConfigDocument:
    return ConfigDocument({**CONFIG, **RATES}, POLICY)


# --- the database --------------------------------------------------------------------------

async def _create_database(name: str) -> None:
    admin = await asyncpg.connect(**ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(**ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on a loop of its own (a test's loop may be running in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    name = f"panorama_test_config_{uuid.uuid4().hex[:12]}"
    _run_apart(_create_database(name))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _run_apart(_drop_database(name))


# --- both stores ---------------------------------------------------------------------------

class Backing:
    """One store's place (a config directory, or a schema of the test database): ``store()``
    is another instance on it (a restart, or another replica)."""

    def __init__(self, kind: str, config_path: Path, make: Callable[[], ConfigStore]) -> None:
        self.kind = kind
        self.config_path = config_path
        self._make = make
        self.opened: list[ConfigStore] = []

    def store(self) -> ConfigStore:
        store = self._make()
        self.opened.append(store)
        return store

    def initial(self) -> ConfigDocument:
        return read_document(self.config_path)


@pytest.fixture(params=["file", "postgres"])
async def backing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backing]:
    config_path = write_files(tmp_path)
    if request.param == "file":
        backing = Backing("file", config_path, lambda: FileStore(config_path))
    else:
        # A fresh schema of the module's database per test: an empty store.
        url = f"{request.getfixturevalue('pg_url')}?schema=config_{uuid.uuid4().hex[:12]}"
        backing = Backing("postgres", config_path, lambda: open_config_store(url, config_path))
    try:
        yield backing
    finally:
        for store in backing.opened:
            await store.aclose()


async def test_an_empty_store_starts_at_the_files_and_reopens_at_its_head(backing):
    initial = backing.initial()
    first = await backing.store().open(initial)
    assert (first.number, first.author, first.reason) == (1, FILE_AUTHOR,
                                                          "the config files as found")
    assert first.summary == "initial version"
    assert first.document == initial == ConfigDocument(CONFIG, POLICY)
    assert first.at.tzinfo is not None
    assert first.meta()["at"].endswith("Z")

    again = backing.store()
    assert await again.open(initial) == first
    assert await again.head() == first
    assert await again.history(10) == [first]


async def test_the_file_store_makes_a_hand_edit_a_version_by_file(tmp_path):
    config_path = write_files(tmp_path)
    await FileStore(config_path).open(read_document(config_path))
    config_path.write_text(yaml.safe_dump({**CONFIG, "server": {"port": 9000}}))
    edited = await FileStore(config_path).open(read_document(config_path))
    assert (edited.number, edited.author) == (2, FILE_AUTHOR)
    assert edited.reason == "the config files were edited outside Panorama"
    assert edited.summary == "config other sections changed"
    assert edited.document.config["server"] == {"port": 9000}


async def test_postgres_is_the_truth_not_the_files(pg_url, tmp_path):
    """Replicas share the table: a replica opening with other files gets the table's head."""
    url = f"{pg_url}?schema=truth_{uuid.uuid4().hex[:8]}"
    first, second = PostgresStore(url), PostgresStore(url)
    try:
        await first.open(ConfigDocument(CONFIG, POLICY))
        head = await second.open(ConfigDocument({**CONFIG, "server": {"port": 1}}, None))
        assert head.number == 1 and head.document == ConfigDocument(CONFIG, POLICY)
    finally:
        await first.aclose()
        await second.aclose()


async def test_commits_are_numbered_and_kept_whole(backing):
    store = backing.store()
    await store.open(backing.initial())
    document = with_rates()
    second = await store.commit(document, 1, "alice", "GBP rate")
    assert (second.number, second.author, second.reason) == (2, "alice", "GBP rate")
    assert second.summary == "config other sections changed"
    third = await store.commit(ConfigDocument(CONFIG, {**POLICY, "roles": {}}), 2, "bob",
                               "no roles")
    assert third.summary == "policy support removed, config other sections changed"

    assert [v.number for v in await store.history(10)] == [3, 2, 1]
    assert [v.number for v in await store.history(2)] == [3, 2]
    assert [v.number for v in await store.history(10, before=3)] == [2, 1]
    assert [v.number for v in await store.history(1, before=3)] == [2]
    assert await store.history(0) == []
    assert (await store.head()).number == 3

    # Read back by another instance (a restart, or another replica): the exact document.
    other = backing.store()
    if backing.kind == "postgres":
        await other.open(backing.initial())
    got = await other.get(2)
    assert got is not None
    assert got.document == document
    assert got.meta() == second.meta()
    rates = got.document.config["finance"]["rates"]
    assert list(rates) == [datetime.date(2024, 1, 1)] and rates[datetime.date(2024, 1, 1)] == {
        "GBP": "1.15"}
    assert await other.get(99) is None

    with pytest.raises(StaleVersion) as stale:
        await other.commit(document, 2, "carol", "late")
    assert (stale.value.expected, stale.value.head) == (2, 3)
    assert (await store.head()).number == 3


async def test_of_two_commits_on_one_head_exactly_one_wins(backing):
    first, second = backing.store(), backing.store()
    await first.open(backing.initial())
    if backing.kind == "postgres":
        await second.open(backing.initial())
    for store_b in (first, second):  # the same instance twice, then two instances (replicas)
        head = (await first.head()).number
        results = await asyncio.gather(
            first.commit(with_rates(), head, "alice", "a"),
            store_b.commit(ConfigDocument(CONFIG, None), head, "bob", "b"),
            return_exceptions=True)
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and won[0].number == head + 1
        assert len(lost) == 1 and isinstance(lost[0], StaleVersion)
        assert (lost[0].expected, lost[0].head) == (head, head + 1)
        assert (await second.head()).number == head + 1
        assert (await first.get(head + 1)) == won[0]


async def test_the_file_store_rewrites_the_live_files(tmp_path):
    config_path = write_files(tmp_path)
    store = FileStore(config_path)
    await store.open(read_document(config_path))
    document = ConfigDocument({**CONFIG, **RATES}, {**POLICY, "roles": {"ops": {"allow": []}}})
    await store.commit(document, 1, "alice", "rates and ops")
    assert read_document(config_path) == document
    assert (tmp_path / "policies.yaml").read_text().startswith("# Written by Panorama")
    assert sorted(p.name for p in (tmp_path / "panorama.history").glob("*.yaml")) == [
        "000001.yaml", "000002.yaml"]
    # The rewritten files are not a hand edit.
    assert (await FileStore(config_path).open(read_document(config_path))).number == 2


# --- PostgreSQL: replicas ------------------------------------------------------------------

async def test_a_replica_sees_another_replicas_commit_within_a_second(pg_url):
    url = f"{pg_url}?schema=replicas_{uuid.uuid4().hex[:8]}"
    initial = ConfigDocument(CONFIG, POLICY)
    a, b = PostgresStore(url), PostgresStore(url)
    seen: dict[str, list[int]] = {"a": [], "b": []}
    arrived = asyncio.Event()

    def recorder(name: str):
        async def notify(number: int) -> None:
            seen[name].append(number)
            if name == "b":
                arrived.set()

        return notify

    async def b_sees(number: int, within: float) -> None:
        async def wait() -> None:
            while number not in seen["b"]:
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(wait(), within)

    async def kill_b_listener() -> int:
        pid = b._listener.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        return pid

    admin = await asyncpg.connect(url.partition("?")[0])
    try:
        await a.open(initial)
        await b.open(initial)
        await a.watch(recorder("a"))
        await b.watch(recorder("b"))

        await a.commit(with_rates(), 1, "alice", "rates")
        await b_sees(2, within=1.0)
        assert seen["b"] == [2]
        await asyncio.sleep(0.2)
        assert seen["a"] == []  # its own commit is not news to A

        # B's listening connection is killed, A commits at once: the commit still reaches B,
        # by its notification or by the head B reports once it listens again.
        await kill_b_listener()
        await a.commit(initial, 2, "alice", "back")
        await b_sees(3, within=5.0)
        await asyncio.sleep(0.2)  # B may hear of 3 twice: by notification and by the head

        # Killed with no commit meanwhile: B reports the head once it listens again.
        seen["b"].clear()
        pid = await kill_b_listener()
        await b_sees(3, within=5.0)
        assert b._listener is not None and b._listener.get_server_pid() != pid

        # And the next commit arrives within a second again, once.
        seen["b"].clear()
        await a.commit(with_rates(), 3, "alice", "rates again")
        await b_sees(4, within=1.0)
        await asyncio.sleep(0.2)
        assert seen["b"] == [4]
        assert seen["a"] == []
    finally:
        await admin.close()
        await a.aclose()
        await b.aclose()
    assert b._listener is None and not b._tasks


async def test_a_failing_notify_is_logged_and_watching_goes_on(pg_url, caplog):
    url = f"{pg_url}?schema=failing_{uuid.uuid4().hex[:8]}"
    a, b = PostgresStore(url), PostgresStore(url)
    got: list[int] = []
    arrived = asyncio.Event()

    async def notify(number: int) -> None:
        got.append(number)
        arrived.set()
        if number == 2:
            raise RuntimeError("reload failed")

    try:
        await a.open(ConfigDocument(CONFIG, POLICY))
        await b.open(ConfigDocument(CONFIG, POLICY))
        await b.watch(notify)
        await a.commit(with_rates(), 1, "alice", "rates")
        await asyncio.wait_for(arrived.wait(), 1.0)
        arrived.clear()
        await a.commit(ConfigDocument(CONFIG, POLICY), 2, "alice", "back")
        await asyncio.wait_for(arrived.wait(), 1.0)
        assert got == [2, 3]
        assert any("handling config version 2 failed" in r.getMessage() for r in caplog.records)
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_default_is_a_table_in_the_public_schema(pg_url):
    store = PostgresStore(pg_url)
    try:
        assert (await store.open(ConfigDocument(CONFIG, POLICY))).number == 1
        assert (await store.commit(with_rates(), 1, "alice", "rates")).number == 2
    finally:
        await store.aclose()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM public.{TABLE}") == 2
        text = await conn.fetchval(f"SELECT document FROM public.{TABLE} WHERE version = 2")
        assert "2024-01-01:" in text  # YAML: a date key stays a date
        await conn.execute(f"DROP TABLE public.{TABLE}")
    finally:
        await conn.close()


# --- PostgreSQL: errors --------------------------------------------------------------------

async def test_an_unreachable_database_is_a_store_error_without_the_password(tmp_path):
    store = open_config_store("postgresql://u:sekret@127.0.0.1:1/x", tmp_path / "panorama.yaml")
    assert isinstance(store, PostgresStore)
    with pytest.raises(StoreError) as error:
        await store.open(ConfigDocument(CONFIG, POLICY))
    message = str(error.value)
    assert "sekret" not in message and "sekret" not in repr(error.value.__cause__)
    assert "the config store (PostgreSQL) cannot be used" in message
    assert "check config_store" in message and "PostgreSQL is running" in message
    await store.aclose()


async def test_a_missing_database_and_a_bad_url_are_store_errors(pg_url, tmp_path):
    missing = PostgresStore("postgresql://postgres:sekret@127.0.0.1:5432/panorama_no_such_db")
    with pytest.raises(StoreError, match="does not exist") as error:
        await missing.open(ConfigDocument(CONFIG, POLICY))
    assert "sekret" not in str(error.value)
    await missing.aclose()
    for url in ("postgresql://u:sekret@127.0.0.1:notaport/x", "postgresql://u:sekret@[::1/x"):
        with pytest.raises(StoreError, match="not a valid") as error:
            await PostgresStore(url).open(ConfigDocument(CONFIG, POLICY))
        assert "sekret" not in str(error.value)
    with pytest.raises(StoreError, match="lower-case"):
        PostgresStore(f"{pg_url}?schema=Bad-Name")


async def test_the_store_must_be_opened_first(pg_url):
    store = PostgresStore(pg_url)
    with pytest.raises(StoreError, match="not open"):
        await store.head()
    with pytest.raises(StoreError, match="not open"):
        await store.watch(lambda number: asyncio.sleep(0))
    await store.aclose()
