"""The admin API on the demo world: safe changes, versions, reloads, secrets, hostile input.

Every test runs the real gateway in-process on a copy of the demo world's config (three SQLite
shops and a CRM on loopback) and changes it through ``/admin/api`` as an admin would.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
import yaml

from gateway import secrets
from gateway.admin.store import read_document
from gateway.audit import AuditFilter
from gateway.config import load_config
from gateway.principal import Principal
from tests.admin_world import CHINOOK, CRM_TOKEN, ENV
from tests.gateway_client import gateway_client, token_for
from tests.servers import demo_world_fixtures

KEY = secrets.new_key()
ENVIRON = {**ENV, secrets.KEY_VARIABLE: KEY}
SECRET = "Sup3r-Secret-Pa55word"  # a value no response, error, log or audit entry may contain
CHINOOK_CONNECTOR = {"kind": "sqlite", "shop": "Chinook Music", "region": "eu",
                     "connection": {"path": "chinook.db"},
                     "defaults": {"country": "US", "currency": "USD"}}
CHINOOK_MAPPING = {"customer": {"table": "Customer", "key": "CustomerId", "fields": {
    "given_name": "FirstName", "family_name": "LastName",
    "emails": [{"column": "Email", "type": "PERSONAL", "transform": "email"}],
    "addresses": [{"type": "HOME", "line1": "Address", "postcode": "PostalCode",
                   "city": "City", "country": "Country"}]}}}
LUIS = '{ customerByEmail(email: "luisg@embraer.com.br") { id name { full } sourceRecords { source } } }'


def add_chinook(reason: str = "add the Chinook shop") -> dict:
    return {"reason": reason, "changes": [
        {"op": "put", "kind": "connector", "name": "chinook", "item": CHINOOK_CONNECTOR},
        {"op": "put", "kind": "mapping", "name": "chinook", "item": CHINOOK_MAPPING}]}


world, crm, _demo_config = demo_world_fixtures(customers=160, token=CRM_TOKEN)


@pytest.fixture
def config(_demo_config: Path) -> Path:
    """The demo config, with the Chinook sample database copied next to it."""
    shutil.copyfile(CHINOOK, _demo_config.parent / "chinook.db")
    return _demo_config


def admin(config: Path, **settings):
    return gateway_client(config, environ=ENVIRON, **settings)


def etag(response) -> str:
    return response.headers["etag"]


async def head(client) -> str:
    response = await client.get("/admin/api/status")
    assert response.status_code == 200, response.text
    return etag(response)


async def ask(client, query: str) -> tuple[dict, str]:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    return response.json(), response.headers["panorama-config-version"]


async def test_a_new_shop_is_served_without_restart_and_rolled_back(config):
    async with admin(config) as client:
        before = await head(client)
        assert (await ask(client, LUIS))[0]["data"]["customerByEmail"] is None
        applied = await client.post("/admin/api/changes", json=add_chinook(),
                                    headers={"if-match": before})
        assert applied.status_code == 200, applied.text
        assert applied.json() == {"version": 2, "applied": 2} and etag(applied) == '"2"'
        body, version = await ask(client, LUIS)
        luis = body["data"]["customerByEmail"]
        assert version == "2" and luis["name"]["full"] == "Luís Gonçalves"
        assert luis["sourceRecords"] == [{"source": "chinook"}]
        # The files say so too (a team keeps them in git), with a history entry.
        assert "chinook" in read_document(config).sources
        history = (await client.get("/admin/api/history")).json()["items"]
        assert [(h["version"], h["author"], h["reason"]) for h in history] == [
            (2, "test-admin", "add the Chinook shop"), (1, "file", "the config files as found")]
        assert history[0]["summary"] == "connector chinook added, mapping chinook added"
        entry = (await client.get("/admin/api/history/2")).json()["entry"]
        assert "+    chinook:" in entry["diff"] and "+        table: Customer" in entry["diff"]

        restored = await client.post("/admin/api/history/1/restore", json={"reason": "undo"},
                                     headers={"if-match": '"2"'})
        assert restored.status_code == 200 and restored.json() == {"version": 3, "restored": 1}
        body, version = await ask(client, LUIS)
        assert version == "3" and body["data"]["customerByEmail"] is None
        assert "chinook" not in read_document(config).sources
        assert (await client.get("/admin/api/connectors/chinook")).status_code == 404


async def test_an_invalid_change_applies_nothing_and_lists_every_problem(config):
    files = config.read_text()
    async with admin(config) as client:
        version = await head(client)
        names = ["paris", "london", "berlin", "crm"]
        items = {n: (await client.get(f"/admin/api/connectors/{n}")).json()["item"]
                 for n in names}
        changes = [{"op": "put", "kind": "connector", "name": n,
                    "item": {**items[n], "shop": f"{n} renamed"}} for n in names]
        bad = {**CHINOOK_CONNECTOR, "pool_size": -3, "kind": "sqlite"}
        changes.append({"op": "put", "kind": "connector", "name": "chinook", "item": bad})
        changes.append({"op": "put", "kind": "mapping", "name": "chinook", "item": {
            "customer": {"table": "Customer", "key": "CustomerId",
                         "fields": {"given_name": "FirstName", "shoe_size": "Fax"}}}})
        refused = await client.post("/admin/api/changes", headers={"if-match": version},
                                    json={"reason": "five at once", "changes": changes})
        assert refused.status_code == 422, refused.text
        problems = refused.json()["error"]["problems"]
        by_field = {(p["kind"], p["name"], p["field"]) for p in problems}
        assert ("connector", "chinook", "pool_size") in by_field
        assert any(p["name"] == "chinook" and "shoe_size" in (p["field"] or "")
                   for p in problems), problems
        # Nothing applied: same version, same connectors, same files, same answers.
        assert await head(client) == version
        for name in names:
            assert (await client.get(f"/admin/api/connectors/{name}")).json()["item"] == items[name]
        assert config.read_text() == files
        sources, served = await ask(client, "{ sources { name shop } }")
        assert served == version.strip('"')
        assert all("renamed" not in (s["shop"] or "") for s in sources["data"]["sources"])


async def test_two_writers_one_wins_and_the_other_gets_409(config):
    async with admin(config) as client:
        version = await head(client)
        first, second = await asyncio.gather(*(
            client.put("/admin/api/connectors/paris", headers={"if-match": version}, json={
                "reason": f"writer {i}", "item": {**CHINOOK_CONNECTOR, "kind": "sqlite",
                                                  "connection": {"path": "paris.db"},
                                                  "shop": f"Paris {i}"}})
            for i in (1, 2)))
        assert sorted([first.status_code, second.status_code]) == [200, 409]
        loser = first if first.status_code == 409 else second
        assert loser.json()["error"]["code"] == "CONFLICT" and loser.json()["error"]["version"] == 2
        assert await head(client) == '"2"'
        missing = await client.put("/admin/api/connectors/paris", json={
            "reason": "no version", "item": {"kind": "sqlite", "connection": {"path": "paris.db"}}})
        assert missing.status_code == 428
        assert missing.json()["error"]["code"] == "PRECONDITION_REQUIRED"


async def test_requests_under_reload_each_see_one_version_and_none_fails(config):
    """Every shop label carries the version that wrote it: a request that mixed two versions
    would show two markers; its header names the version its labels must carry."""
    async with admin(config) as client:
        names = ["paris", "london", "berlin"]
        items = {n: (await client.get(f"/admin/api/connectors/{n}")).json()["item"]
                 for n in names}
        answers: list[tuple[dict, str]] = []
        done = asyncio.Event()

        async def reader() -> None:
            while not done.is_set():
                answers.append(await ask(client, "{ sources { name shop } customers(first: 5) "
                                                 "{ edges { node { id sourceRecords { shop } } } } }"))

        async def writer() -> None:
            for round_ in range(6):
                version = await head(client)
                changes = [{"op": "put", "kind": "connector", "name": n, "item": {
                    **items[n], "shop": f"{n} @{int(version.strip(chr(34))) + 1}"}}
                    for n in names]
                applied = await client.post("/admin/api/changes", headers={"if-match": version},
                                            json={"reason": f"round {round_}", "changes": changes,
                                                  "live": False})
                assert applied.status_code == 200, applied.text
                await asyncio.sleep(0.02)
            done.set()

        await asyncio.gather(writer(), *(reader() for _ in range(6)))
        assert len(answers) > 20
        seen = set()
        for body, version in answers:
            assert "errors" not in body, body["errors"]
            markers = {s["shop"].rpartition("@")[2] for s in body["data"]["sources"]
                       if s["name"] in names}
            if version == "1":
                assert all("@" not in s["shop"] for s in body["data"]["sources"] if s["shop"])
            else:
                assert markers == {version}, (markers, version)
            seen.add(version)
        assert len(seen) >= 3, seen  # requests did run across several versions


async def test_secrets_are_write_only_and_never_echoed(config, caplog):
    caplog.set_level(logging.DEBUG)
    async with admin(config) as client:
        version = await head(client)
        item = {"kind": "postgres", "shop": "Pagila", "connection": {
            "host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres",
            "password": {"value": SECRET}}}
        written = await client.put("/admin/api/connectors/pagila", headers={"if-match": version},
                                   json={"item": item, "reason": "a shop with a password"})
        # No mapping yet: refused, and the refusal does not echo the secret either.
        assert written.status_code == 422 and SECRET not in written.text
        changes = [{"op": "put", "kind": "connector", "name": "pagila", "item": item},
                   {"op": "put", "kind": "mapping", "name": "pagila", "item": {"customer": {
                       "table": "pg_catalog.pg_roles", "key": "oid",
                       "fields": {"full_name": "rolname"}}}}]
        applied = await client.post("/admin/api/changes", headers={"if-match": version},
                                    json={"changes": changes, "reason": "pagila with password"})
        assert applied.status_code == 200, applied.text
        read = (await client.get("/admin/api/connectors/pagila")).json()["item"]
        assert read["connection"]["password"] == {"secret": True, "set": True, "ref": None,
                                                  "encrypted": True}
        stored = yaml.safe_load(config.read_text())["sources"]["pagila"]["connection"]["password"]
        assert stored.startswith("${enc:") and SECRET not in config.read_text()
        assert secrets.resolve(stored, ENVIRON, config.parent) == SECRET
        # Written back as read: the secret is kept, byte for byte.
        kept = await client.put("/admin/api/connectors/pagila", headers={"if-match": '"2"'},
                                json={"item": {**read, "shop": "Pagila renamed"},
                                      "reason": "rename"})
        assert kept.status_code == 200, kept.text
        assert yaml.safe_load(config.read_text())["sources"]["pagila"]["connection"][
            "password"] == stored
        texts = [read and str(read), written.text, applied.text, kept.text]
        for path in ("/admin/api/connectors", "/admin/api/history", "/admin/api/history/2",
                     "/admin/api/history/3", "/admin/api/status"):
            texts.append((await client.get(path)).text)
        texts.append((await client.post("/admin/api/validate", json={"changes": changes})).text)
        page = await client.app.state.privacy.log.query(AuditFilter(kinds=["admin"], limit=500))
        assert {e.details["action"] for e in page.entries} >= {"connector", "change", "history"}
        texts += [str(e) for e in page.entries]
        texts += [r.getMessage() for r in caplog.records]
        for text in texts:
            assert SECRET not in text
        # An inline secret string is refused without being repeated.
        inline = await client.put("/admin/api/connectors/pagila", headers={"if-match": '"3"'},
                                  json={"item": {**read, "connection": {**read["connection"],
                                                                        "password": SECRET}},
                                        "reason": "inline"})
        assert inline.status_code == 422 and SECRET not in inline.text
        assert "written inline" in inline.text


async def test_hostile_input_is_refused_whole(config):
    async with admin(config, admin_max_body_bytes=4096) as client:
        version = await head(client)
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n" \
               "c: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
        cases = {
            "yaml bomb": dict(content=bomb, headers={"content-type": "application/yaml"}),
            "huge body": dict(content=b'{"reason": "' + b"x" * 10_000 + b'"}',
                              headers={"content-type": "application/json"}),
            "deep nesting": dict(content=b'{"changes": ' + b"[" * 60 + b"]" * 60 + b"}",
                                 headers={"content-type": "application/json"}),
            "unknown key": dict(json={"reason": "x", "changes": [], "sudo": True}),
            "text body": dict(content=b"reason=x", headers={"content-type": "text/plain"}),
            "not an object": dict(json=["changes"]),
        }
        expected = {"yaml bomb": 400, "huge body": 413, "deep nesting": 400, "unknown key": 400,
                    "text body": 415, "not an object": 400}
        for name, kwargs in cases.items():
            headers = {"if-match": version, **kwargs.pop("headers", {})}
            response = await client.post("/admin/api/changes", headers=headers, **kwargs)
            assert response.status_code == expected[name], (name, response.text)
            assert response.json()["error"]["message"], name
        assert "aliases are not accepted" in (await client.post(
            "/admin/api/changes", content=bomb,
            headers={"if-match": version, "content-type": "application/yaml"})).text
        escapes = [{"op": "put", "kind": "connector", "name": "crm", "item": {
            "kind": "crm", "connection": {"base_url": "http://127.0.0.1:1",
                                          "token": "${file:../../../../etc/passwd}"}}}]
        refused = await client.post("/admin/api/changes", headers={"if-match": version},
                                    json={"reason": "escape", "changes": escapes})
        assert refused.status_code == 422 and "must name a file inside" in refused.text
        assert "root:" not in refused.text
        unknown_field = await client.post("/admin/api/changes", headers={"if-match": version},
                                          json={"reason": "typo", "changes": [{
                                              "op": "put", "kind": "connector", "name": "paris",
                                              "item": {"kind": "sqlite", "conection": {}}}]})
        assert unknown_field.status_code == 422
        assert "did you mean 'connection'" in unknown_field.text
        bad_name = await client.post("/admin/api/changes", headers={"if-match": version}, json={
            "reason": "x", "changes": [{"op": "put", "kind": "connector", "name": "../etc",
                                        "item": {}}]})
        assert bad_name.status_code == 400
        assert await head(client) == version  # none of it applied


async def test_only_admins_reach_the_api_and_every_action_is_audited(config):
    finance = Principal("fin-1", ("finance",), purpose="billing")
    async with admin(config) as client:
        refused = await client.get("/admin/api/connectors",
                                   headers={"authorization": "Bearer " + token_for(
                                       finance, load_config(config, ENVIRON).auth)})
        assert refused.status_code == 403
        anonymous = await client.get("/admin/api/connectors", headers={"authorization": ""})
        assert anonymous.status_code == 401
        await client.post("/admin/api/changes", json=add_chinook())  # 428
        page = await client.app.state.privacy.log.query(AuditFilter(kinds=["admin"]))
        outcomes = {(e.subject, e.details["action"], e.details["outcome"],
                     e.details.get("code")) for e in page.entries}
        assert ("fin-1", "admin_api", "refused", "FORBIDDEN") in outcomes
        assert ("test-admin", "change", "refused", "PRECONDITION_REQUIRED") in outcomes


async def test_validate_checks_the_live_source_and_points_at_the_field(config):
    async with admin(config) as client:
        wrong = {**CHINOOK_MAPPING, "customer": {**CHINOOK_MAPPING["customer"], "fields": {
            "given_name": "FirstNam", "family_name": "LastName"}}}
        changes = [{"op": "put", "kind": "connector", "name": "chinook", "item": CHINOOK_CONNECTOR},
                   {"op": "put", "kind": "mapping", "name": "chinook", "item": wrong}]
        live = (await client.post("/admin/api/validate", json={"changes": changes})).json()
        assert live["valid"] is False
        assert any("FirstNam" in p["message"] and p["name"] == "chinook" for p in live["problems"])
        # Structure alone cannot know the column: valid without the live check.
        offline = await client.post("/admin/api/validate", json={"changes": changes, "live": False})
        assert offline.json()["valid"] is True
        right = [changes[0], {**changes[1], "item": CHINOOK_MAPPING}]
        fine = (await client.post("/admin/api/validate", json={"changes": right})).json()
        assert fine["valid"] is True, fine
        assert fine["sources"]["chinook"]["Customer"]["FirstName"] == "NVARCHAR(40)"
        missing = [{"op": "put", "kind": "connector", "name": "chinook",
                    "item": {**CHINOOK_CONNECTOR, "connection": {"path": "nowhere.db"}}},
                   changes[1]]
        found = (await client.post("/admin/api/validate", json={"changes": missing})).json()
        assert any(p["field"] == "connection" for p in found["problems"]), found


async def test_test_and_introspect_reach_real_databases(config):
    async with admin(config) as client:
        ok = (await client.post("/admin/api/test", json={"item": {
            "kind": "postgres", "connection": {"host": "127.0.0.1", "port": 5432,
                                               "user": "postgres", "database": "postgres"}}})).json()
        assert ok["ok"] is True and ok["latencyMs"] >= 0
        maria = (await client.post("/admin/api/test", json={"item": {
            "kind": "mariadb", "connection": {"host": "127.0.0.1", "port": 3306, "user": "root",
                                              "database": "no_such_db_panorama"}}})).json()
        assert maria["ok"] is False and maria["error"]
        tables = (await client.post("/admin/api/introspect", json={"item": CHINOOK_CONNECTOR})).json()
        assert tables["tables"]["Customer"]["CustomerId"] == "INTEGER"
        crm = (await client.post("/admin/api/introspect", json={"name": "crm"})).json()
        assert "email" in crm["tables"]["contacts"]


async def test_connections_outside_the_allow_list_are_refused_unseen(config):
    async with admin(config, admin_allowed_hosts="127.0.0.1,*.shops.example") as client:
        far = {"kind": "postgres", "connection": {"host": "10.9.8.7", "user": "x",
                                                  "database": "y"}}
        probe = await client.post("/admin/api/test", json={"item": far})
        assert probe.status_code == 422 and "admin_allowed_hosts" in probe.text
        refused = await client.post("/admin/api/changes", headers={"if-match": await head(client)},
                                    json={"reason": "far away", "changes": [
                                        {"op": "put", "kind": "connector", "name": "far",
                                         "item": far},
                                        {"op": "put", "kind": "mapping", "name": "far",
                                         "item": CHINOOK_MAPPING}]})
        assert refused.status_code == 422
        assert any(p["field"] == "connection" and "10.9.8.7" in p["message"]
                   for p in refused.json()["error"]["problems"])


async def test_preview_shows_a_role_before_and_after_a_policy_change(config):
    async with admin(config) as client:
        role = (await client.get("/admin/api/policies/finance")).json()["item"]
        stricter = {**role, "rules": {**role["rules"], "Customer.addresses": "deny"}}
        query = '{ customerByEmail(email: "camille.martin@example.fr") { id addresses { city } } }'
        preview = (await client.post("/admin/api/preview", json={
            "role": "finance", "purpose": "billing", "query": query,
            "changes": [{"op": "put", "kind": "policy", "name": "finance", "item": stricter}]})).json()
        assert preview["current"]["data"]["customerByEmail"]["addresses"]
        assert preview["proposed"]["data"] is None
        assert "addresses" in preview["proposed"]["errors"][0]["message"]
        assert await head(client) == '"1"'  # a preview applies nothing


async def test_replicas_sharing_postgresql_serve_a_change_within_a_second(config):
    """Two gateways on one PostgreSQL config store: a change through one is served by the
    other within a second, with the same answers."""
    import time
    import uuid

    import asyncpg

    schema = f"panorama_admin_{uuid.uuid4().hex[:10]}"
    url = f"postgresql://postgres@127.0.0.1:5432/postgres?schema={schema}"
    try:
        async with admin(config, config_store=url) as one, admin(config, config_store=url) as two:
            version = await head(one)
            assert await head(two) == version
            applied = await one.post("/admin/api/changes", json=add_chinook(),
                                     headers={"if-match": version})
            assert applied.status_code == 200, applied.text
            started = time.monotonic()
            while True:
                body, served = await ask(two, LUIS)
                if served == "2" or time.monotonic() - started > 1.0:
                    break
                await asyncio.sleep(0.02)
            assert served == "2", f"the second replica still serves {served} after 1 s"
            assert body == (await ask(one, LUIS))[0]
            assert body["data"]["customerByEmail"]["sourceRecords"] == [{"source": "chinook"}]
            # The second replica's own write now needs the version the first one made.
            stale = await two.post("/admin/api/history/1/restore", json={"reason": "undo"},
                                   headers={"if-match": version})
            assert stale.status_code == 409
    finally:
        connection = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await connection.close()


async def test_a_mapping_with_yaml_booleans_reads_as_json_and_writes_back_unchanged(config):
    """Paris joins its addresses `on:` a condition, which YAML 1.1 reads as the key `true`."""
    async with admin(config) as client:
        read = await client.get("/admin/api/mappings/paris")
        assert read.status_code == 200, read.text
        joins = read.json()["item"]["customer"]["joins"]
        assert joins[0]["on"] == "domicile.id = clients.adresse_id"
        written = await client.put("/admin/api/mappings/paris", headers={"if-match": etag(read)},
                                   json={"item": read.json()["item"], "reason": "round trip"})
        assert written.status_code == 200, written.text
        assert written.json()["item"] == read.json()["item"]
        body, version = await ask(client, '{ customerByEmail(email: "camille.martin@example.fr") '
                                          '{ addresses { city } } }')
        assert version == "2" and body["data"]["customerByEmail"]["addresses"]
