"""Meta-tests for what drifts: the published schema, settings docs, import direction."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway.schema import sdl
from gateway.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_is_the_served_schema():
    published = (ROOT / "schema.graphql").read_text()
    assert published == sdl(), "schema.graphql is stale: run `make schema` and commit it"


def test_every_setting_is_documented():
    docs = (ROOT / "docs" / "settings.md").read_text()
    for setting in SETTINGS:
        assert f"PANORAMA_{setting.name.upper()}" in docs, setting.name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_connectors_never_import_gateway():
    for path in (ROOT / "connectors").rglob("*.py"):
        bad = {n for n in _imports(path) if n == "gateway" or n.startswith("gateway.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}: connectors are the lower layer"


def test_third_party_libraries_stay_in_their_modules():
    homes = {"sqlglot": {"connectors/sql.py", "connectors/sql_statements.py",
                         "connectors/sql_drivers.py"},
             # The config store LISTENs on a connection of its own (gateway.stores does not).
             "asyncpg": {"connectors/sql.py", "connectors/sql_drivers.py",
                         "gateway/stores/postgres.py", "gateway/admin/store_postgres.py"},
             "asyncmy": {"connectors/sql.py", "connectors/sql_drivers.py"},
             "aiosqlite": {"connectors/sql.py", "connectors/sql_drivers.py",
                           "gateway/stores/sqlite.py"}}
    for path in [*(ROOT / "connectors").rglob("*.py"), *(ROOT / "gateway").rglob("*.py")]:
        rel = str(path.relative_to(ROOT))
        for module in _imports(path):
            lib = module.split(".")[0]
            if lib in homes:
                assert rel in homes[lib], f"{rel} imports {lib}; keep it in {sorted(homes[lib])}"
