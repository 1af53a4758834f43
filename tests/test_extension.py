"""A third party's connector, registered by kind, used by the gateway like a built-in one."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from connectors import registry
from connectors.base import Connector
from connectors.query import AllOf, AnyOf, Page, Query
from gateway.transforms import normalize_email
from tests.gateway_client import gateway_client, graphql


class JSONFileConnector(Connector):
    """Customers in a JSON file; evaluates `in` (plain or on normalized e-mails) and nothing else."""

    kind = "jsonfile"
    filter_ops = frozenset({"in"})
    normalizers = frozenset({"email"})
    calls: list[Query] = []

    async def fetch(self, query: Query) -> Page:
        type(self).calls.append(query)
        entity = self.entity(query.entity)
        with open(self.connection["path"]) as f:
            rows = json.load(f)[entity.table]

        def holds(expr, row):
            if isinstance(expr, AllOf):
                return all(holds(p, row) for p in expr.parts)
            if isinstance(expr, AnyOf):
                return any(holds(p, row) for p in expr.parts)
            value = row.get(entity.fields[expr.field])
            value = normalize_email(value) if expr.normalize == "email" else value
            assert expr.op == "in", f"the planner pushed {expr.op!r}, which I never declared"
            return value in expr.value or str(value) in map(str, expr.value)

        picked = [r for r in rows if query.where is None or holds(query.where, r)]
        picked.sort(key=lambda r: r[entity.fields[entity.key]])
        if query.after is not None:
            picked = [r for r in picked if r[entity.fields[entity.key]] > int(query.after)]
        if query.limit is not None:
            picked = picked[:query.limit]
        wanted = {*query.fields, entity.key}
        return Page([{f: r.get(entity.fields[f]) for f in wanted} for r in picked])


def test_unknown_kinds_fail_with_the_known_ones():
    with pytest.raises(registry.UnknownKind) as err:
        registry.get("postgress")
    message = str(err.value)
    assert message.startswith("unknown connector kind 'postgress'; known: ")
    known = message.split("known: ")[1].split(", ")
    assert known == sorted(known) and {"crm", "mariadb", "mysql", "postgres", "sqlite"} <= set(known)


def test_builtin_kinds_resolve_to_their_classes():
    assert {registry.get(k).kind for k in ("postgres", "mariadb", "sqlite", "crm")} == {
        "postgres", "mariadb", "sqlite", "crm"}
    assert registry.get("mysql") is registry.get("mariadb")


@pytest.fixture
def jsonfile_kind():
    registry.register("jsonfile", JSONFileConnector)
    yield
    registry.unregister("jsonfile")


async def test_a_registered_connector_serves_customers_and_links_with_a_builtin(tmp_path,
                                                                                jsonfile_kind):
    (tmp_path / "club.json").write_text(json.dumps({"members": [
        {"no": 1, "first": "Ada", "last": "Lovelace", "mail": "ADA@example.org"},
        {"no": 2, "first": "Alan", "last": "Turing", "mail": "alan@example.org"}]}))
    db = sqlite3.connect(tmp_path / "shop.db")
    db.execute("create table c (id integer primary key, name text, email text)")
    db.execute("insert into c values (7, 'Ada Lovelace', 'ada@example.org')")
    db.commit()
    db.close()
    config = {"sources": {
        "shop": {"kind": "sqlite", "shop": "The shop", "connection": {"path": "shop.db"},
                 "customer": {"table": "c", "key": "id",
                              "fields": {"full_name": "name", "emails": ["email"]}}},
        "club": {"kind": "jsonfile", "connection": {"path": str(tmp_path / "club.json")},
                 "customer": {"table": "members", "key": "no",
                              "fields": {"given_name": "first", "family_name": "last",
                                         "emails": ["mail"]}}},
    }}
    path = tmp_path / "panorama.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # source order matters
    JSONFileConnector.calls.clear()
    async with gateway_client(path) as client:
        ada = await graphql(client, '{ customerByEmail(email: "ada@example.org") '
                                    '{ displayName sourceRecords { source localId } } }')
        named = await graphql(client, '{ customers(filter: {name: "turing"}) '
                                      '{ edges { node { displayName } } } }')
    assert "errors" not in ada and "errors" not in named
    assert ada["data"]["customerByEmail"] == {"displayName": "Ada Lovelace", "sourceRecords": [
        {"source": "shop", "localId": "7"}, {"source": "club", "localId": "1"}]}
    assert named["data"]["customers"]["edges"] == [{"node": {"displayName": "Alan Turing"}}]
    # `contains` was not declared, so the name filter was evaluated by the gateway instead
    assert all(q.where is None or "contains" not in repr(q.where) for q in JSONFileConnector.calls)
