"""Connector kinds by name.

Built-in kinds are registered exactly as a third party's would be: through the
``panorama.connectors`` entry-point group (see pyproject.toml), or ``register()`` at run time.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from connectors.base import Connector

# Built-ins, by import path so that importing the registry does not import every driver.
_BUILTIN: dict[str, str] = {
    "postgres": "connectors.sql:PostgresConnector",
    "mariadb": "connectors.sql:MariaDBConnector",
    "mysql": "connectors.sql:MariaDBConnector",
    "sqlite": "connectors.sql:SQLiteConnector",
    "crm": "connectors.crm:CRMConnector",
}
_registered: dict[str, type[Connector] | str] = dict(_BUILTIN)
_plugins_loaded = False


class UnknownKind(LookupError):
    """No connector is registered under that kind."""


def register(kind: str, connector: type[Connector] | str) -> None:
    """Make ``kind`` build ``connector`` (a class or a ``module:Class`` path)."""
    _registered[kind] = connector


def unregister(kind: str) -> None:
    """Forget ``kind`` (tests, or a plugin that withdraws a kind)."""
    _registered.pop(kind, None)


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="panorama.connectors"):
        _registered.setdefault(ep.name, ep.value)


def kinds() -> list[str]:
    """Every registered kind, sorted."""
    _load_plugins()
    return sorted(_registered)


def get(kind: str) -> type[Connector]:
    """The connector class registered as ``kind``; fails with the list of known kinds."""
    _load_plugins()
    target = _registered.get(kind)
    if target is None:
        raise UnknownKind(f"unknown connector kind '{kind}'; known: {', '.join(kinds())}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(import_module(module), attr)
        _registered[kind] = target
    return target
