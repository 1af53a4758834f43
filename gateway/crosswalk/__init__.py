"""The identity crosswalk: what Panorama keeps about who is who, and nothing more.

Links, match evidence (attribute names, never values), keyed hashes of match keys, redirects,
steward decisions and watermarks, in SQLite or PostgreSQL (see ``base`` for the contract)::

    crosswalk = open_crosswalk("sqlite:///panorama-crosswalk.db", base_dir=config_dir)
    async with crosswalk:
        await crosswalk.apply_index(run)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.crosswalk.base import (
    Crosswalk,
    Evidence,
    IndexRun,
    IndexStats,
    Member,
    Ref,
    StewardAction,
)
from gateway.crosswalk.errors import (
    CrosswalkConfigError,
    CrosswalkError,
    CrosswalkUnavailable,
    InvalidIndexRun,
    InvalidStewardAction,
)
from gateway.crosswalk.hashing import KeyHasher
from gateway.crosswalk.postgres import PostgresCrosswalk
from gateway.crosswalk.sqlite import SQLiteCrosswalk
from gateway.stores.location import sqlite_file, store_scheme

#: The URL the gateway uses when the config does not name one, relative to the config file.
DEFAULT_URL = "sqlite:///panorama-crosswalk.db"

#: URL scheme -> how to build a store from ``(url, base_dir)``.
BACKENDS: dict[str, Callable[[str, Path], Crosswalk]] = {
    "sqlite": lambda url, base_dir: SQLiteCrosswalk(sqlite_path(url, base_dir)),
    "postgresql": lambda url, base_dir: PostgresCrosswalk.from_url(url),
    "postgres": lambda url, base_dir: PostgresCrosswalk.from_url(url),
}


def open_crosswalk(url: str, base_dir: Path | str | None = None) -> Crosswalk:
    """The store a URL names, not yet opened (``await store.open()`` or ``async with store``).

    ``sqlite:///path`` is relative to ``base_dir`` (the config file's directory; default: the
    working directory), ``sqlite:////path`` absolute. ``postgresql://user@host:port/db``
    keeps its tables in the schema ``panorama`` (``?schema=name`` to choose another).
    """
    factory = BACKENDS[store_scheme(url, BACKENDS, what="crosswalk", error=CrosswalkConfigError)]
    return factory(url, Path(base_dir) if base_dir is not None else Path.cwd())


def sqlite_path(url: str, base_dir: Path) -> Path:
    """The file a ``sqlite:///`` URL names: relative to ``base_dir`` unless absolute."""
    return sqlite_file(url, base_dir, what="crosswalk", error=CrosswalkConfigError)


__all__ = [
    "BACKENDS",
    "DEFAULT_URL",
    "Crosswalk",
    "CrosswalkConfigError",
    "CrosswalkError",
    "CrosswalkUnavailable",
    "Evidence",
    "IndexRun",
    "IndexStats",
    "InvalidIndexRun",
    "InvalidStewardAction",
    "KeyHasher",
    "Member",
    "PostgresCrosswalk",
    "Ref",
    "SQLiteCrosswalk",
    "StewardAction",
    "open_crosswalk",
]
