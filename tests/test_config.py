"""Config loading: every problem reported with its location, secrets never inline."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
DOC_EXAMPLE = yaml.safe_load(
    (ROOT / "docs" / "config.md").read_text().split("```yaml", 1)[1].split("```", 1)[0])


def parse(doc, environ=None, base=Path(".")):
    return parse_config(doc, "panorama.yaml", base, environ or {})


def problems(doc, environ=None):
    with pytest.raises(ConfigError) as err:
        parse(doc, environ)
    return [str(p) for p in err.value.problems]


def test_the_documented_example_is_valid():
    config = parse(DOC_EXAMPLE)
    lyon = config.sources["lyon"]
    assert lyon.shop == "Boulangerie de Lyon"
    customer = lyon.customer.entity
    assert customer.fields["email_0"] == "courriel"
    assert customer.fields["address_0_city"] == "a.ville"
    assert customer.joins[0].on == "a.client_id = clients.id"  # a bare YAML `on:` key still works
    (sales,) = lyon.transactions
    assert sales.entity.parent == "customer_key" and sales.entity.fields["customer_key"] == "client_id"


def test_every_problem_is_reported_at_once_with_its_location():
    doc = copy.deepcopy(DOC_EXAMPLE)
    lyon = doc["sources"]["lyon"]
    lyon["kind"] = "postgress"
    lyon["customer"]["fields"]["emails"][0]["transform"] = "emial"
    lyon["customer"]["fields"]["nmae"] = "nom"
    lyon["transactions"][0]["fields"]["status"]["map"]["payee"] = "PAID"
    found = problems(doc)
    assert len(found) == 4
    assert any(p.startswith("sources.lyon.kind:") and "known: crm, mariadb" in p for p in found)
    assert any("sources.lyon.customer.fields.emails[0].transform" in p and "email" in p for p in found)
    assert any("fields.nmae" in p for p in found)
    assert any("status.map.payee" in p and "COMPLETED" in p for p in found)


def test_inline_secrets_are_refused_without_echoing_them():
    doc = copy.deepcopy(DOC_EXAMPLE)
    doc["sources"]["lyon"]["connection"] = {"dsn": "postgresql://shop:s3cret@db/shop"}
    doc["sources"]["lyon"]["kind"] = "postgres"
    found = problems(doc)
    assert any("connection.dsn" in p and "${env:" in p for p in found)
    assert not any("s3cret" in p for p in found)


def test_secret_references_resolve_from_the_environment_and_files(tmp_path):
    (tmp_path / "pw.txt").write_text("from-file\n")
    doc = copy.deepcopy(DOC_EXAMPLE)
    doc["sources"]["lyon"]["kind"] = "postgres"
    doc["sources"]["lyon"]["connection"] = {
        "host": "${env:DB_HOST:-127.0.0.1}", "password": "${file:pw.txt}",
        "user": "${env:DB_USER}"}
    config = parse_config(doc, "x", tmp_path, {"DB_USER": "shop"})
    assert dict(config.sources["lyon"].connection) == {
        "host": "127.0.0.1", "password": "from-file", "user": "shop"}


def test_a_missing_environment_variable_is_named():
    doc = copy.deepcopy(DOC_EXAMPLE)
    doc["sources"]["lyon"]["connection"] = {"path": "${env:LYON_DB}"}
    (found,) = problems(doc)
    assert "sources.lyon.connection.path" in found and "LYON_DB is not set" in found


def test_sqlite_paths_are_relative_to_the_config_file(tmp_path):
    path = tmp_path / "conf" / "panorama.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(DOC_EXAMPLE))
    config = load_config(path, {})
    assert config.sources["lyon"].connection["path"] == str(path.parent / "data" / "lyon.db")


def test_yaml_syntax_errors_give_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  lyon:\n    kind: [sqlite\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, {})
    assert "line" in str(err.value) and "column" in str(err.value)


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml", {})
    assert "--config" in str(err.value)


def test_joins_must_use_known_aliases():
    doc = copy.deepcopy(DOC_EXAMPLE)
    doc["sources"]["lyon"]["customer"]["fields"]["addresses"][0]["city"] = "b.ville"
    (found,) = problems(doc)
    assert "'b' is not a table alias" in found and "aliases: a, clients" in found


def test_child_entities_need_their_customer_column_and_core_fields():
    doc = copy.deepcopy(DOC_EXAMPLE)
    sale = doc["sources"]["lyon"]["transactions"][0]
    del sale["customer"]
    del sale["fields"]["amount"]
    found = problems(doc)
    assert any("transactions[0].customer" in p for p in found)
    assert any("'amount' is not mapped" in p for p in found)


def test_unknown_key_suggests_the_closest():
    doc = copy.deepcopy(DOC_EXAMPLE)
    doc["sources"]["lyon"]["conection"] = doc["sources"]["lyon"].pop("connection")
    found = problems(doc)
    assert any("did you mean 'connection'" in p for p in found)


def test_empty_config_asks_for_a_source():
    assert problems({}) == ["sources: no sources configured; add at least one source"]
