"""The identity crosswalk store: one contract suite, run against SQLite and PostgreSQL.

:class:`CrosswalkContract` holds every test of the contract; a backend's class provides a
``store`` fixture (an opened, empty store), ``reopen`` (a second store on the same place) and
``dump`` (the text of every row of every table, for the privacy test).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from gateway.crosswalk import (
    Crosswalk,
    CrosswalkConfigError,
    CrosswalkUnavailable,
    Evidence,
    IndexRun,
    IndexStats,
    InvalidIndexRun,
    InvalidStewardAction,
    KeyHasher,
    Member,
    PostgresCrosswalk,
    SQLiteCrosswalk,
    StewardAction,
    open_crosswalk,
)
from gateway.identity import encode_id

SECRET = b"a-test-secret-of-more-than-16-bytes"
HASHER = KeyHasher(SECRET)
PG_DATABASE = "panorama_test_crosswalk"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"


def h(key: str) -> str:
    return HASHER.hash(key)


def founder(source: str, key: str) -> Member:
    return Member((source, key), encode_id(source, key), None)


def linked(source: str, key: str, to: tuple[str, str], agreed=("email",)) -> Member:
    return Member((source, key), encode_id(*to), Evidence("exact", 1.0, tuple(agreed), to))


def base_run() -> IndexRun:
    """Two customers: paris/1 + crm/7 (shared e-mail), and paris/2 alone."""
    return IndexRun(
        members=[founder("paris", "1"), linked("crm", "7", ("paris", "1")),
                 founder("paris", "2")],
        key_hashes={("paris", "1"): {h("email:a@x.fr"), h("phone:+33612345678")},
                    ("crm", "7"): {h("email:a@x.fr")},
                    ("paris", "2"): {h("email:b@y.fr")}},
        watermarks={"paris": "2024-05-01T00:00:00", "crm": "cursor-17"})


async def snapshot(store: Crosswalk, refs) -> dict:
    """Everything the contract lets one read, for before/after comparisons."""
    members = [m async for m in store.all_members()]
    ids = {m.global_id for m in members}
    return {
        "members": members,
        "by_ref": await store.members_of_refs(refs),
        "by_id": await store.members(ids),
        "hashes": await store.hashes_of(refs),
        "redirects": {g: await store.resolve_id(g) for g in ids},
        "watermarks": {s: await store.watermark(s) for s in ("paris", "crm", "lyon")},
        "stats": await store.stats(),
        "log": await store.steward_log(),
        "must": await store.must_links(),
        "cannot": await store.cannot_links(),
    }


def action(name="link", actor="marie@steward", **payload) -> StewardAction:
    return StewardAction(None, name, actor, "same customer, checked by phone",
                         datetime(2024, 5, 2, 14, 30, tzinfo=timezone(timedelta(hours=2))),
                         payload)


class CrosswalkContract:
    async def dump(self, store: Crosswalk) -> str:
        raise NotImplementedError

    def reopen(self, store: Crosswalk) -> Crosswalk:
        raise NotImplementedError

    # --- indexing and lookups -------------------------------------------------------------

    async def test_apply_index_then_lookups(self, store):
        stats = await store.apply_index(base_run())
        assert (stats.members, stats.removed, stats.key_hashes, stats.watermarks) == (3, 0, 4, 2)
        paris1 = encode_id("paris", "1")
        refs = [("paris", "1"), ("crm", "7"), ("paris", "2"), ("paris", "404")]
        assert await store.members_of_refs(refs) == {
            ("paris", "1"): paris1, ("crm", "7"): paris1, ("paris", "2"): encode_id("paris", "2")}
        found = await store.members([paris1, "cus_unknown"])
        assert list(found) == [paris1]
        assert found[paris1] == [linked("crm", "7", ("paris", "1")), founder("paris", "1")]
        evidence = found[paris1][0].evidence
        assert evidence == Evidence("exact", 1.0, ("email",), ("paris", "1"))
        assert isinstance(evidence.agreed, tuple) and isinstance(evidence.linked_to, tuple)
        assert await store.refs_for_hashes([h("email:a@x.fr"), h("email:nobody@x.fr")]) == {
            h("email:a@x.fr"): [("crm", "7"), ("paris", "1")]}
        assert await store.hashes_of([("paris", "1"), ("paris", "404")]) == {
            ("paris", "1"): {h("email:a@x.fr"), h("phone:+33612345678")}}
        assert [m.ref async for m in store.all_members()] == [
            ("crm", "7"), ("paris", "1"), ("paris", "2")]
        stats = await store.stats()
        assert {k: stats[k] for k in ("records", "customers", "redirects", "steward_actions")} == {
            "records": 3, "customers": 2, "redirects": 0, "steward_actions": 0}
        assert stats["key_hashes"] == 4

    async def test_global_ids_come_in_keyset_pages(self, store):
        await store.apply_index(base_run())
        ids = sorted({encode_id("paris", "1"), encode_id("paris", "2")})
        assert await store.global_ids(None, 10) == ids  # one per customer, however many records
        assert await store.global_ids(None, 1) == ids[:1]
        assert await store.global_ids(ids[0], 1) == ids[1:]
        assert await store.global_ids(ids[1], 5) == []
        assert await store.global_ids("", 0) == []
        with pytest.raises(ValueError, match="limit"):
            await store.global_ids(None, -1)

    async def test_lookups_on_an_empty_store_and_empty_inputs(self, store):
        assert await store.global_ids(None, 10) == []
        assert await store.members_of_refs([]) == {}
        assert await store.members([]) == {}
        assert await store.refs_for_hashes([]) == {}
        assert await store.hashes_of([("paris", "1")]) == {}
        assert await store.resolve_id(encode_id("paris", "1")) is None
        assert await store.resolve_id("") is None
        assert [m async for m in store.all_members()] == []
        assert await store.apply_index(IndexRun()) == IndexStats()

    async def test_refs_and_ids_are_any_text(self, store):
        odd = [("crm-eu", "Zoé/ü 1"), ("crm-eu", "漢字"), ("shop's", 'quote"d, [x]'),
               ("paris", "1")]
        members = [Member(r, encode_id(*odd[0]), Evidence("exact", 0.5, ("email",), odd[0])
                          if r != odd[0] else None) for r in odd]
        await store.apply_index(IndexRun(members=members,
                                         key_hashes={r: {h(repr(r))} for r in odd}))
        assert await store.members_of_refs(odd) == dict.fromkeys(odd, encode_id(*odd[0]))
        assert sorted((await store.members([encode_id(*odd[0])]))[encode_id(*odd[0])],
                      key=lambda m: m.ref) == sorted(members, key=lambda m: m.ref)
        assert await store.hashes_of(odd) == {r: {h(repr(r))} for r in odd}
        assert await store.refs_for_hashes([h(repr(odd[1]))]) == {h(repr(odd[1])): [odd[1]]}
        assert [m.ref async for m in store.all_members()] == sorted(odd)  # code point order
        with pytest.raises(ValueError, match="not a ref"):
            await store.members_of_refs([("paris",)])

    async def test_an_unchanged_assignment_is_not_rewritten(self, store):
        await store.apply_index(base_run())
        assert (await store.apply_index(base_run())).members == 0
        run = base_run()
        run.members[2] = linked("paris", "2", ("paris", "1"), agreed=("phone", "email"))
        assert (await store.apply_index(run)).members == 1
        assert (await store.members_of_refs([("paris", "2")]))[("paris", "2")] == encode_id(
            "paris", "1")

    async def test_evidence_can_be_cleared_and_scores_are_floats(self, store):
        member = Member(("paris", "5"), encode_id("paris", "1"), Evidence("fuzzy", 0.875, (), None))
        await store.apply_index(IndexRun(members=[founder("paris", "1"), member]))
        assert (await store.members([encode_id("paris", "1")]))[encode_id("paris", "1")][1] == member
        await store.apply_index(IndexRun(members=[Member(("paris", "5"), encode_id("paris", "1"))]))
        found = await store.members([encode_id("paris", "1")])
        assert found[encode_id("paris", "1")][1].evidence is None

    async def test_redirects_are_followed_through_chains(self, store):
        a, b, c = (encode_id("paris", k) for k in ("1", "2", "3"))
        await store.apply_index(IndexRun(members=[Member(("paris", "1"), b),
                                                  Member(("paris", "2"), b)], redirects={a: b}))
        assert await store.resolve_id(a) == (b, True)
        assert await store.resolve_id(b) == (b, False)
        await store.apply_index(IndexRun(
            members=[Member(("paris", "1"), c), Member(("paris", "2"), c), founder("paris", "3")],
            redirects={b: c}))
        assert await store.resolve_id(a) == (c, True)  # a -> b -> c
        assert await store.resolve_id(b) == (c, True)
        assert await store.resolve_id(c) == (c, False)
        assert await store.resolve_id("cus_nobody") is None
        assert (await store.stats())["redirects"] == 2

    async def test_a_live_id_is_never_redirected(self, store):
        a, b = encode_id("paris", "1"), encode_id("paris", "2")
        await store.apply_index(IndexRun(members=[Member(("paris", "1"), b), founder("paris", "2")],
                                         redirects={a: b}))
        assert await store.resolve_id(a) == (b, True)
        # paris/1 splits off again and founds its own customer: its id is live again.
        await store.apply_index(IndexRun(members=[founder("paris", "1")]))
        assert await store.resolve_id(a) == (a, False)
        assert (await store.stats())["redirects"] == 0

    async def test_a_redirect_to_a_customer_that_is_gone_resolves_to_nothing(self, store):
        a, b = encode_id("paris", "1"), encode_id("paris", "2")
        await store.apply_index(IndexRun(members=[Member(("paris", "1"), b)], redirects={a: b}))
        await store.apply_index(IndexRun(removed={("paris", "1")}))
        assert await store.resolve_id(a) is None
        assert await store.resolve_id(b) is None

    async def test_hashes_are_replaced_not_accumulated(self, store):
        await store.apply_index(base_run())
        await store.apply_index(IndexRun(key_hashes={("paris", "1"): {h("email:new@x.fr")},
                                                     ("paris", "2"): set()}))
        assert await store.hashes_of([("paris", "1"), ("paris", "2"), ("crm", "7")]) == {
            ("paris", "1"): {h("email:new@x.fr")}, ("crm", "7"): {h("email:a@x.fr")}}
        assert await store.refs_for_hashes([h("phone:+33612345678"), h("email:a@x.fr")]) == {
            h("email:a@x.fr"): [("crm", "7")]}
        # A run that does not name a ref's hashes leaves them alone.
        await store.apply_index(IndexRun(members=[founder("paris", "1")]))
        assert await store.hashes_of([("paris", "1")]) == {("paris", "1"): {h("email:new@x.fr")}}

    async def test_removed_refs_disappear_with_their_hashes(self, store):
        await store.apply_index(base_run())
        stats = await store.apply_index(IndexRun(removed={("crm", "7"), ("crm", "404")}))
        assert stats.removed == 1
        assert await store.members_of_refs([("crm", "7")]) == {}
        assert await store.hashes_of([("crm", "7")]) == {}
        assert await store.refs_for_hashes([h("email:a@x.fr")]) == {
            h("email:a@x.fr"): [("paris", "1")]}
        assert (await store.stats())["records"] == 2

    async def test_a_source_re_read_whole_loses_the_refs_it_did_not_see(self, store):
        await store.apply_index(base_run())
        run = IndexRun(members=[founder("paris", "2")], scope_sources={"paris"})
        assert (await store.apply_index(run)).removed == 1
        assert set(await store.members_of_refs([("paris", "1"), ("paris", "2"), ("crm", "7")])) == {
            ("paris", "2"), ("crm", "7")}  # crm is out of scope: untouched
        assert await store.hashes_of([("paris", "1")]) == {}

    async def test_a_whole_run_streams_members_and_hashes(self, store):
        await store.apply_index(base_run())
        # Generators, read once: every hash of the re-read source is replaced, others kept.
        members = (founder("paris", k) for k in ("1", "2"))
        hashes = ((("paris", k), [h(f"email:{k}@x.fr")]) for k in ("1", "2"))
        await store.apply_index(IndexRun(members=members, key_hashes=hashes,
                                         scope_sources={"paris"}))
        assert await store.hashes_of([("paris", "1"), ("paris", "2"), ("crm", "7")]) == {
            ("paris", "1"): {h("email:1@x.fr")}, ("paris", "2"): {h("email:2@x.fr")},
            ("crm", "7"): {h("email:a@x.fr")}}
        with pytest.raises(InvalidIndexRun, match="scope_sources"):
            await store.apply_index(IndexRun(members=[founder("paris", "1")],
                                             key_hashes=iter([(("paris", "1"), [])])))

    async def test_watermarks(self, store):
        assert await store.watermark("paris") is None
        await store.apply_index(base_run())
        assert await store.watermark("paris") == "2024-05-01T00:00:00"
        await store.apply_index(IndexRun(watermarks={"paris": "2024-06-01T00:00:00"}))
        assert await store.watermark("paris") == "2024-06-01T00:00:00"
        assert await store.watermark("crm") == "cursor-17"
        assert await store.watermark("lyon") is None

    # --- atomicity ------------------------------------------------------------------------

    @pytest.mark.parametrize("failure", ["invalid member", "self redirect", "hash of no member",
                                         "duplicate member", "clear value as hash"])
    async def test_a_run_that_fails_midway_leaves_the_previous_crosswalk(self, store, failure):
        await store.apply_index(base_run())
        await store.record_steward(action(), must_link=[(("paris", "1"), ("crm", "7"))])
        refs = [("paris", "1"), ("crm", "7"), ("paris", "2"), *(("lyon", str(i)) for i in range(12_000))]
        before = await snapshot(store, refs)
        # A run that writes a lot (removal, more than two batches of members, hashes,
        # watermarks) before it meets the bad value, which each case puts at a later step.
        many = [founder("lyon", str(i)) for i in range(12_000)]
        run = IndexRun(members=[*many, founder("crm", "7")], removed={("paris", "2")},
                       key_hashes={("crm", "7"): {h("email:z@z.fr")}},
                       redirects={encode_id("paris", "2"): encode_id("crm", "7")},
                       watermarks={"paris": "later", "lyon": "first"})
        if failure == "invalid member":
            run.members.append(Member(("lyon", "bad"), ""))
        elif failure == "self redirect":
            run.redirects["cus_x"] = "cus_x"
        elif failure == "hash of no member":
            run.key_hashes[("paris", "2")] = {h("email:b@y.fr")}
        elif failure == "duplicate member":
            run.members.append(founder("lyon", "3"))
        else:
            run.key_hashes[("lyon", "9")] = {"b@y.fr".ljust(32, "0")}
        with pytest.raises(InvalidIndexRun) as err:
            await store.apply_index(run)
        assert str(err.value).startswith("index run rejected, nothing applied: ")
        assert await snapshot(store, refs) == before
        # ... and the store still works.
        run.members = [m for m in run.members if m.global_id and m.ref[0] != "lyon"]
        run.redirects, run.key_hashes = {}, {}
        assert (await store.apply_index(run)).removed == 1

    async def test_concurrent_runs_are_serialized(self, store):
        runs = [IndexRun(members=[founder(f"s{i}", str(k)) for k in range(500)]) for i in range(4)]
        await asyncio.gather(*(store.apply_index(r) for r in runs))
        assert (await store.stats())["records"] == 2_000

    async def test_a_large_run_completes_and_streams_back(self, store):
        count = 50_000
        run = IndexRun(
            members=[founder("shop", str(i)) if i % 2 == 0
                     else linked("shop", str(i), ("shop", str(i - 1))) for i in range(count)],
            key_hashes={("shop", str(i)): {h(f"email:{i // 2}@x.fr"), h(f"block:{i % 97}")}
                        for i in range(count)},
            watermarks={"shop": "w1"})
        stats = await store.apply_index(run)
        assert (stats.members, stats.key_hashes) == (count, 2 * count)
        totals = await store.stats()
        assert (totals["records"], totals["customers"]) == (count, count // 2)
        seen, last = 0, ("", "")
        async for member in store.all_members():
            assert member.ref > last  # streamed in ref order
            seen, last = seen + 1, member.ref
        assert seen == count
        sample = [("shop", str(i)) for i in range(0, count, 7)]
        assert len(await store.members_of_refs(sample)) == len(sample)
        assert len((await store.refs_for_hashes([h("block:3")]))[h("block:3")]) > 500
        # The same source re-read whole, one record gone: one statement's worth of work.
        run.members.pop()
        run.key_hashes.pop(("shop", str(count - 1)))
        run.scope_sources = {"shop"}
        stats = await store.apply_index(run)
        assert (stats.members, stats.removed) == (0, 1)

    # --- steward decisions --------------------------------------------------------------

    async def test_steward_log_and_constraints(self, store):
        a, b, c = ("paris", "1"), ("crm", "7"), ("paris", "2")
        first = await store.record_steward(action("link", ids=[encode_id(*a)], refs=[a, b]),
                                           must_link=[(a, b)], cannot_link=[(c, a)])
        assert first.id is not None and first.at == datetime(2024, 5, 2, 12, 30, tzinfo=UTC)
        assert first.payload == {"ids": [encode_id(*a)], "refs": [list(a), list(b)]}
        assert await store.must_links() == [(b, a)]  # each pair ordered
        assert await store.cannot_links() == [(a, c)]
        # The latest decision about a pair wins.
        second = await store.record_steward(action("unlink", actor="paul"), cannot_link=[(a, b)],
                                            drop_cannot_link=[(a, c)])
        assert second.id > first.id
        assert await store.must_links() == []
        assert await store.cannot_links() == [(b, a)]
        await store.record_steward(action("merge"), must_link=[(b, a)])
        assert (await store.must_links(), await store.cannot_links()) == ([(b, a)], [])
        log = await store.steward_log()
        assert [x.action for x in log] == ["merge", "unlink", "link"]  # newest first
        assert log[2] == first and log[1] == second
        assert [x.action for x in await store.steward_log(limit=1)] == ["merge"]
        assert (await store.stats())["steward_actions"] == 3

    @pytest.mark.parametrize("bad, kwargs", [
        (action("delete"), {}),
        (action(actor=""), {}),
        (StewardAction(None, "link", "marie", "", datetime.now(UTC), {}), {}),
        (StewardAction(None, "link", "marie", "why", datetime(2024, 5, 2), {}), {}),
        (action(blob=object()), {}),
        (action(), {"must_link": [(("paris", "1"), ("paris", "1"))]}),
        (action(), {"must_link": [(("paris", "1"), ("crm", "7"))],
                    "cannot_link": [(("crm", "7"), ("paris", "1"))]}),
        (action(), {"must_link": [(("paris", "1"), "crm/7")]}),
    ])
    async def test_a_bad_steward_action_records_nothing(self, store, bad, kwargs):
        await store.record_steward(action(), must_link=[(("paris", "1"), ("paris", "2"))])
        with pytest.raises(InvalidStewardAction):
            await store.record_steward(bad, **kwargs)
        assert len(await store.steward_log()) == 1
        assert await store.must_links() == [(("paris", "1"), ("paris", "2"))]
        assert await store.cannot_links() == []

    # --- privacy --------------------------------------------------------------------------

    async def test_no_clear_personal_value_is_stored(self, store):
        people = {("paris", "1"): ["jean.dupont@example.com", "+33612345678"],
                  ("crm", "7"): ["jean.dupont@example.com", "Dupont"],
                  ("paris", "2"): ["marie.curie@example.org"]}
        await store.apply_index(IndexRun(
            members=[founder("paris", "1"), linked("crm", "7", ("paris", "1")),
                     founder("paris", "2")],
            key_hashes={ref: {h(f"key:{v}") for v in values} for ref, values in people.items()}))
        await store.record_steward(action(refs=[["paris", "1"], ["crm", "7"]]),
                                   must_link=[(("paris", "1"), ("crm", "7"))])
        text = await self.dump(store)
        assert h("key:jean.dupont@example.com") in text  # the dump does see the rows
        for values in people.values():
            for value in values:
                assert value not in text
        assert "example" not in text

    async def test_a_clear_value_is_refused_as_a_hash_and_not_echoed(self, store):
        await store.apply_index(IndexRun(members=[founder("paris", "1")]))
        with pytest.raises(InvalidIndexRun) as err:
            await store.apply_index(IndexRun(key_hashes={("paris", "1"): {"jean@example.com"}}))
        assert "jean@example.com" not in str(err.value) and "KeyHasher" in str(err.value)
        with pytest.raises(InvalidIndexRun, match="names"):
            await store.apply_index(IndexRun(members=[
                Member(("paris", "2"), encode_id("paris", "1"),
                       Evidence("exact", 1.0, ("jean@example.com",), None))]))
        assert (await store.stats())["records"] == 1

    # --- lifecycle ----------------------------------------------------------------------

    async def test_reopening_keeps_everything_and_migrations_are_idempotent(self, store):
        await store.apply_index(base_run())
        await store.open()  # already open: nothing happens
        other = self.reopen(store)
        async with other:
            assert (await other.stats())["records"] == 3
            assert await other.watermark("crm") == "cursor-17"
            await other.apply_index(IndexRun(removed={("paris", "2")}))
        assert (await store.stats())["records"] == 2

    async def test_methods_refuse_before_open(self, store):
        other = self.reopen(store)
        with pytest.raises(Exception, match="await open"):
            await other.stats()
        await other.aclose()  # closing what never opened is fine


# --- SQLite ------------------------------------------------------------------------------

class TestSQLite(CrosswalkContract):
    @pytest.fixture
    async def store(self, tmp_path):
        crosswalk = open_crosswalk("sqlite:///state/crosswalk.db", base_dir=tmp_path)
        async with crosswalk:
            yield crosswalk

    def reopen(self, store):
        return SQLiteCrosswalk(store.path)

    async def dump(self, store):
        import aiosqlite
        parts = []
        async with aiosqlite.connect(store.path) as db:
            tables = [r[0] for r in await db.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            assert {"members", "key_hashes", "redirects", "watermarks", "must_links",
                    "cannot_links", "steward_actions", "schema_version"} <= set(tables)
            for table in tables:
                parts += [repr(tuple(row)) for row in await db.execute_fetchall(
                    f'SELECT * FROM "{table}"')]
        # The bytes on disk too, WAL included: nothing clear was ever written there either.
        for path in store.path.parent.iterdir():
            parts.append(path.read_bytes().decode("latin-1"))
        return "\n".join(parts)

    async def test_the_file_is_created_with_its_directories_in_wal_mode(self, store, tmp_path):
        assert store.path == tmp_path / "state" / "crosswalk.db" and store.path.is_file()
        import aiosqlite
        async with aiosqlite.connect(store.path) as db:
            assert (await db.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
            assert list(await db.execute_fetchall("SELECT version FROM schema_version")) == [(1,)]

    async def test_a_directory_or_an_unwritable_place_is_refused(self, tmp_path):
        with pytest.raises(CrosswalkConfigError, match="is a directory"):
            await SQLiteCrosswalk(tmp_path).open()
        (tmp_path / "file").write_text("")
        with pytest.raises(CrosswalkUnavailable, match="writable"):
            await SQLiteCrosswalk(tmp_path / "file" / "x.db").open()
        (tmp_path / "junk.db").write_text("not a database, clearly" * 100)
        with pytest.raises(CrosswalkUnavailable):
            await SQLiteCrosswalk(tmp_path / "junk.db").open()


# --- PostgreSQL --------------------------------------------------------------------------

async def _create_database() -> None:
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres",
                                  database="postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE):
            await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await admin.close()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> str:
    asyncio.run(_create_database())
    return PG_URL


class TestPostgres(CrosswalkContract):
    @pytest.fixture
    async def store(self, pg_database):
        schema = f"crosswalk_{uuid.uuid4().hex[:12]}"  # a fresh schema per test
        crosswalk = open_crosswalk(f"{pg_database}?schema={schema}")
        try:
            async with crosswalk:
                yield crosswalk
        finally:
            await _drop_schema(schema)

    def reopen(self, store):
        return PostgresCrosswalk(store.dsn, schema=store.schema)

    async def dump(self, store):
        conn = await asyncpg.connect(store.dsn)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                store.schema)]
            assert {"members", "key_hashes", "redirects", "watermarks", "must_links",
                    "cannot_links", "steward_actions", "schema_version"} <= set(tables)
            parts = []
            for table in tables:
                parts += [r[0] for r in await conn.fetch(
                    f'SELECT t::text FROM "{store.schema}"."{table}" AS t')]
            return "\n".join(parts)
        finally:
            await conn.close()

    async def test_tables_live_in_their_schema(self, store):
        conn = await asyncpg.connect(store.dsn)
        try:
            assert await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1"
                " AND table_name = 'members'", store.schema) == 1
            assert await conn.fetchval(
                f'SELECT max(version) FROM "{store.schema}".schema_version') == 1
        finally:
            await conn.close()

    async def test_the_default_schema_is_panorama_created_if_missing(self, pg_database):
        await _drop_schema("panorama")
        store = open_crosswalk(pg_database)
        assert isinstance(store, PostgresCrosswalk) and store.schema == "panorama"
        try:
            async with store:
                await store.apply_index(base_run())
            async with self.reopen(store) as again:
                assert (await again.stats())["records"] == 3
        finally:
            await _drop_schema("panorama")
        with pytest.raises(CrosswalkConfigError, match="schema"):
            open_crosswalk("postgresql://postgres@127.0.0.1:5432/db?schema=Bad-Name")

    async def test_unreachable_database_message_hides_the_password(self):
        store = open_crosswalk("postgresql://postgres:s3cret-pw@127.0.0.1:1/x")
        with pytest.raises(CrosswalkUnavailable) as err:
            await store.open()
        message = str(err.value)
        assert "s3cret-pw" not in message and "postgres:***@127.0.0.1:1/x" in message
        assert "s3cret-pw" not in repr(store)

    async def test_a_missing_database_is_unavailable(self, pg_database):
        store = open_crosswalk(pg_database.replace(PG_DATABASE, "panorama_no_such_db"))
        with pytest.raises(CrosswalkUnavailable, match="panorama_no_such_db"):
            await store.open()


# --- hashing and URLs --------------------------------------------------------------------

@pytest.mark.parametrize("secret", [b"", b"   ", "", b"short-secret", "fifteen-chars!!"])
def test_an_empty_or_short_secret_is_refused_with_the_fix(secret):
    with pytest.raises(CrosswalkConfigError) as err:
        KeyHasher(secret)
    message = str(err.value)
    assert "identity.secret" in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in message


def test_key_hashes_are_keyed_hex_and_stable():
    value = h("email:jean@example.com")
    assert len(value) == 32 and int(value, 16) >= 0 and value == value.lower()
    assert value == KeyHasher(SECRET.decode()).hash("email:jean@example.com")
    assert value != KeyHasher(b"another-secret-of-16-bytes+").hash("email:jean@example.com")
    assert value != h("email:jean@example.org")
    assert SECRET.decode() not in repr(HASHER)


@pytest.mark.parametrize("url, says", [
    ("mysql://root:s3cret-pw@db/crosswalk", "unknown crosswalk URL scheme 'mysql'; known: "
                                            "postgres, postgresql, sqlite"),
    ("host=db password=s3cret-pw", "is not a URL"),
    ("sqlite://me:s3cret-pw@host/x.db", "no host"),
    ("sqlite:///:memory:", "outlive"),
])
def test_url_errors_say_what_is_supported_and_never_show_a_password(url, says):
    with pytest.raises(CrosswalkConfigError) as err:
        open_crosswalk(url)
    assert says in str(err.value)
    assert "s3cret-pw" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_sqlite_urls_are_relative_to_the_config_directory_or_absolute(tmp_path):
    store = open_crosswalk("sqlite:///panorama-crosswalk.db", base_dir=tmp_path / "conf")
    assert isinstance(store, SQLiteCrosswalk)
    assert store.path == tmp_path / "conf" / "panorama-crosswalk.db"
    store = open_crosswalk(f"sqlite:///{tmp_path}/abs.db", base_dir="/elsewhere")
    assert isinstance(store, SQLiteCrosswalk) and store.path == tmp_path / "abs.db"
    assert open_crosswalk("sqlite:///x%20y.db", base_dir=tmp_path).path == tmp_path / "x y.db"
    assert open_crosswalk("sqlite:///x.db").path == Path.cwd() / "x.db"
