"""`panorama index` and stewards: stable ids through merges and splits, redirects, constraints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import load_config
from gateway.crosswalk import KeyHasher, open_crosswalk
from gateway.identity import encode_id
from gateway.indexer import Indexer, IndexFailed
from gateway.matching import Matcher
from gateway.principal import Principal
from gateway.sources import SourceSet
from tests.gateway_client import gateway_client, graphql

SECRET = "an-index-test-secret-of-enough-length"
ENV = {"IDX_SECRET": SECRET, "PANORAMA_ADMIN_TOKEN": "stew-token"}
CUSTOMER = {"table": "c", "key": "id", "fields": {
    "full_name": "name", "birth_date": "born", "updated_at": "changed",
    "emails": ["email"], "phones": [{"column": "phone"}]}}


class Shops:
    """Two tiny SQLite shops and a config with an identity section, in a temp folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for shop in ("one", "two"):
            db = sqlite3.connect(folder / f"{shop}.db")
            db.execute("create table c (id integer primary key, name text, email text, "
                       "phone text, born text, changed text)")
            db.commit()
            db.close()
        config = {
            "identity": {"secret": "${env:IDX_SECRET}", "store": "sqlite:///crosswalk.db"},
            "sources": {shop: {"kind": "sqlite", "shop": shop.title(), "connection": {
                "path": f"{shop}.db"}, "customer": CUSTOMER} for shop in ("one", "two")}}
        self.config_path = folder / "panorama.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.tick = 0

    def put(self, shop: str, id_: int, name: str, email: str | None = None,
            phone: str | None = None, born: str | None = None) -> None:
        self.tick += 1
        db = sqlite3.connect(self.folder / f"{shop}.db")
        db.execute("insert or replace into c values (?, ?, ?, ?, ?, ?)",
                   (id_, name, email, phone, born, f"2026-01-01T00:00:{self.tick:02d}"))
        db.commit()
        db.close()

    def delete(self, shop: str, id_: int) -> None:
        db = sqlite3.connect(self.folder / f"{shop}.db")
        db.execute("delete from c where id = ?", (id_,))
        db.commit()
        db.close()

    async def index(self, full: bool = True):
        config = load_config(self.config_path, ENV)
        sources = SourceSet.from_config(config)
        try:
            async with open_crosswalk(config.identity.store, base_dir=self.folder) as crosswalk:
                report = await Indexer(sources, crosswalk, Matcher(config.identity.rules),
                                       KeyHasher(SECRET)).run(full=full)
                ids = {m.ref: m.global_id async for m in crosswalk.all_members()}
        finally:
            await sources.aclose()
        return report, ids


@pytest.fixture
def shops(tmp_path):
    return Shops(tmp_path)


def cid(shop, key):
    return encode_id(shop, str(key))


async def test_reindexing_unchanged_data_keeps_every_id(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Ada Lovelace", "ADA@x.org ")
    shops.put("one", 2, "Alan Turing", "alan@x.org")
    _, first = await shops.index()
    report, second = await shops.index()
    assert first == second == {("one", "1"): cid("one", 1), ("two", "10"): cid("one", 1),
                               ("one", "2"): cid("one", 2)}
    assert report.redirects == 0


async def test_a_merge_keeps_one_id_and_the_other_redirects(shops):
    shops.put("one", 2, "Bob Stone", "bob@x.org")
    shops.put("two", 11, "Bobby Stone", "other@x.org")
    _, before = await shops.index()
    assert before[("one", "2")] != before[("two", "11")]
    shops.put("two", 11, "Bobby Stone", "bob@x.org")  # now shares the e-mail
    report, after = await shops.index()
    survivor, loser = sorted([cid("one", 2), cid("two", 11)])  # a tie goes to the smaller id
    assert after == {("one", "2"): survivor, ("two", "11"): survivor}
    assert report.redirects == 1
    async with gateway_client(shops.config_path, environ=ENV) as client:
        body = await graphql(client, "query($id: ID!) { customer(id: $id) { id redirectedFrom "
                                     "sourceRecords { source localId } } }", id=loser)
    customer = body["data"]["customer"]
    assert customer["id"] == survivor and customer["redirectedFrom"] == loser
    assert len(customer["sourceRecords"]) == 2


async def test_a_split_leaves_the_id_with_the_larger_part(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Ada Lovelace", "ada@x.org")
    shops.put("two", 12, "Ada King", "ada@x.org")
    _, before = await shops.index()
    assert set(before.values()) == {cid("one", 1)}
    shops.put("one", 1, "Zed Nobody", "zed@x.org")  # the founding record leaves
    _, after = await shops.index()
    assert after[("two", "10")] == after[("two", "12")] == cid("one", 1)
    assert after[("one", "1")] != cid("one", 1)


async def test_incremental_index_reads_only_what_changed(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Alan Turing", "alan@x.org")
    await shops.index(full=True)
    shops.put("two", 10, "Ada Lovelace", "ada@x.org")  # a newer `changed` stamp
    report, ids = await shops.index(full=False)
    assert report.records == {"one": 0, "two": 1}
    assert ids[("two", "10")] == ids[("one", "1")]


async def test_records_gone_from_their_source_leave_the_crosswalk(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("one", 2, "Alan Turing", "alan@x.org")
    await shops.index()
    shops.delete("one", 2)
    report, ids = await shops.index()
    assert report.removed == 1 and ("one", "2") not in ids


async def test_placeholders_and_shared_values_are_not_evidence(shops):
    shops.put("one", 1, "Ada Lovelace", "noemail@x.org", born="1815-12-10")
    shops.put("two", 10, "Bob Stone", "noemail@x.org", born="1950-01-01")
    shops.put("one", 3, "Carl Weber", phone="+33600000000")
    shops.put("two", 13, "Dora Weber", phone="+33600000000")
    _, ids = await shops.index()
    assert len(set(ids.values())) == 4


async def test_the_crosswalk_keeps_no_personal_value_in_clear(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org", "+33612345678", "1815-12-10")
    shops.put("two", 10, "Ada Lovelace", "ada@x.org")
    await shops.index()
    stored = b"".join(p.read_bytes() for p in shops.folder.glob("crosswalk.db*"))
    for value in (b"ada@x.org", b"Lovelace", b"612345678", b"1815"):
        assert value not in stored


STEWARD = {"authorization": "Bearer stew-token", "panorama-actor": "marie@bakery"}
RECORDS = "id sourceRecords { source localId } matchEvidence { record { source } rule indexed }"


async def mutate(client, query, headers=STEWARD, **variables):
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers=headers)
    assert response.status_code == 200
    return response.json()


async def test_steward_actions_apply_at_once_are_logged_and_survive_a_full_reindex(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "A. Byron", "countess@x.org")       # the same person, nothing shared
    shops.put("one", 2, "Alan Turing", "alan@x.org")
    shops.put("two", 11, "Alan Turing", "alan@x.org")        # wrongly the same: a namesake
    await shops.index()
    link = f"""mutation {{ linkRecords(records: [{{source: "one", localId: "1"}},
               {{source: "two", localId: "10"}}], reason: "same person, maiden name")
               {{ {RECORDS} }} }}"""
    unlink = f"""mutation {{ unlinkRecord(record: {{source: "two", localId: "11"}},
                 reason: "a namesake") {{ {RECORDS} }} }}"""
    async with gateway_client(shops.config_path, environ=ENV,
                              admin_token="stew-token") as client:
        linked = await mutate(client, link)
        unlinked = await mutate(client, unlink)
        log = await mutate(client, "{ stewardLog { action actor reason details } }")
    assert "errors" not in linked, linked
    records = {(r["source"], r["localId"]) for r in linked["data"]["linkRecords"]["sourceRecords"]}
    assert records == {("one", "1"), ("two", "10")}
    assert {e["rule"] for e in linked["data"]["linkRecords"]["matchEvidence"]} == {"steward"}
    assert unlinked["data"]["unlinkRecord"]["sourceRecords"] == [{"source": "two", "localId": "11"}]
    entries = log["data"]["stewardLog"]
    assert [(e["action"], e["actor"]) for e in entries] == [("unlink", "marie@bakery"),
                                                             ("link", "marie@bakery")]
    assert entries[1]["reason"] == "same person, maiden name"
    _, ids = await shops.index(full=True)  # the machine does not undo the stewards
    assert ids[("one", "1")] == ids[("two", "10")]
    assert ids[("one", "2")] != ids[("two", "11")]


async def test_merge_and_split_customers(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Ada Lovelace", "ada@x.org")
    shops.put("one", 2, "A. Lovelace", "al@x.org")
    await shops.index()
    merge = """mutation($ids: [ID!]!) { mergeCustomers(ids: $ids, reason: "one person") {
               id sourceRecords { source localId } } }"""
    split = """mutation($id: ID!) { splitCustomer(id: $id, reason: "two people",
               records: [{source: "two", localId: "10"}]) { id sourceRecords { localId } } }"""
    async with gateway_client(shops.config_path, environ=ENV,
                              admin_token="stew-token") as client:
        merged = await mutate(client, merge, ids=[cid("one", 1), cid("one", 2)])
        merged_id = merged["data"]["mergeCustomers"]["id"]
        assert len(merged["data"]["mergeCustomers"]["sourceRecords"]) == 3
        parts = await mutate(client, split, id=merged_id)
    assert "errors" not in parts, parts
    sizes = sorted(len(p["sourceRecords"]) for p in parts["data"]["splitCustomer"])
    assert sizes == [1, 2]
    larger = max(parts["data"]["splitCustomer"], key=lambda p: len(p["sourceRecords"]))
    assert larger["id"] == merged_id


LINK_STRANGERS = """mutation { linkRecords(records: [{source: "one", localId: "1"},
                    {source: "two", localId: "10"}], reason: "x") { id } }"""


async def index_two_strangers(shops) -> str:
    """Index two unrelated records; return the mutation that links them."""
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Bob Stone", "bob@x.org")
    await shops.index()
    return LINK_STRANGERS


async def test_steward_actions_need_the_admin_role(shops):
    query = await index_two_strangers(shops)
    support = Principal(subject="sam", roles=("support",), purpose="support")
    async with gateway_client(shops.config_path, environ=ENV, principal=support) as client:
        refused = await client.post("/graphql", json={"query": query})
    # Without a `policy:`, only admin is let in at all.
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNKNOWN_ROLE"
    # A policy that shows a non-admin role the mutations still leaves stewardship to admins.
    (shops.folder / "policies.yaml").write_text(yaml.safe_dump({
        "purposes": {"support": {"categories": "*"}},
        "roles": {"support": {"purposes": ["support"], "all_fields": True}}}))
    shops.config_path.write_text(shops.config_path.read_text() + "policy: policies.yaml\n")
    async with gateway_client(shops.config_path, environ=ENV, admin_token="stew-token",
                              principal=support) as client:
        body = await mutate(client, query, headers={})
        log = await mutate(client, "{ stewardLog { action } }", headers={})
        wrong = await client.post("/graphql", json={"query": query},
                                  headers={"authorization": "Bearer wrong"})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "admin role" in body["errors"][0]["message"]
    assert log["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_person_acting_as_steward_is_logged_by_their_token_not_a_header(shops):
    query = await index_two_strangers(shops)
    admin = Principal(subject="ines@bakery", roles=("admin",), purpose="administration")
    async with gateway_client(shops.config_path, environ=ENV, principal=admin) as client:
        await mutate(client, query, headers={"panorama-actor": "someone-else"})
        log = await mutate(client, "{ stewardLog { actor } }", headers={})
    assert log["data"]["stewardLog"] == [{"actor": "ines@bakery"}]


async def test_steward_errors_name_the_problem(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    await shops.index()
    async with gateway_client(shops.config_path, environ=ENV, admin_token="stew-token") as client:
        missing = await mutate(client, """mutation { linkRecords(records: [{source: "one",
            localId: "1"}, {source: "one", localId: "404"}], reason: "x") { id } }""")
        unknown = await mutate(client, """mutation { linkRecords(records: [{source: "one",
            localId: "1"}, {source: "three", localId: "1"}], reason: "x") { id } }""")
        no_reason = await mutate(client, """mutation { linkRecords(records: [{source: "one",
            localId: "1"}, {source: "one", localId: "1"}], reason: " ") { id } }""")
    assert "one/404" in missing["errors"][0]["message"]
    assert "unknown source 'three'" in unknown["errors"][0]["message"]
    assert no_reason["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_index_command_prints_a_report(shops, capsys, monkeypatch):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    shops.put("two", 10, "Ada Lovelace", "ada@x.org")
    monkeypatch.setenv("IDX_SECRET", SECRET)
    assert main(["index", "--config", str(shops.config_path), "--full"]) == 0
    out = capsys.readouterr().out
    assert "records read: one 1 (all), two 1 (all)" in out and "email 1" in out


def test_index_command_needs_an_identity_section(tmp_path, capsys):
    path = tmp_path / "panorama.yaml"
    path.write_text(yaml.safe_dump({"sources": {"one": {"kind": "sqlite", "connection": {
        "path": "one.db"}, "customer": CUSTOMER}}}))
    assert main(["index", "--config", str(path)]) == 1
    assert "no identity: section" in capsys.readouterr().err


async def test_a_changed_secret_requires_a_full_index(shops):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    await shops.index()
    global SECRET
    original, SECRET = SECRET, "another-secret-of-enough-length-0"
    ENV["IDX_SECRET"] = SECRET
    try:
        with pytest.raises(IndexFailed, match="--full"):
            await shops.index(full=False)
        report, ids = await shops.index(full=True)
        assert ids == {("one", "1"): cid("one", 1)}
        await shops.index(full=False)  # and incremental runs work again
    finally:
        SECRET = original
        ENV["IDX_SECRET"] = original


def test_check_connect_opens_the_crosswalk(shops, capsys, monkeypatch):
    shops.put("one", 1, "Ada Lovelace", "ada@x.org")
    monkeypatch.setenv("IDX_SECRET", SECRET)
    assert main(["index", "--config", str(shops.config_path)]) == 0
    assert main(["check", "--config", str(shops.config_path), "--connect"]) == 0
    out = capsys.readouterr().out
    assert "identity.store: ok (1 records of 1 customers indexed)" in out
