"""Where a store of Panorama's own lives (a store URL), and reading the config section that
says so.

``sqlite:///path`` is relative to the config file's directory, ``sqlite:////path`` absolute;
``postgresql://user@host:port/db`` keeps the tables in a schema of their own (``?schema=name``
to choose it). The crosswalk, the audit log and the consent store read their URLs through here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import yaml

from gateway import secrets

#: URL scheme -> backend name.
SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
EXAMPLES = "sqlite:///relative/path.db, sqlite:////absolute/path.db, postgresql://user@host:5432/db"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``: safe for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:  # unparseable (a bad port, a bracket): show no part of it
        return "<unparseable URL>"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store URL: a SQLite file, or a PostgreSQL DSN and schema."""

    backend: str
    path: Path | None = None
    dsn: str | None = None
    schema: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"{redact_url(self.dsn or '')} (schema {self.schema})"


def store_scheme(url: Any, known: Collection[str], *, what: str, error: type[Exception]) -> str:
    """The scheme of ``url`` (lower-case), one of ``known``; ``error`` with the supported forms if not."""
    scheme, sep, _ = url.partition("://") if isinstance(url, str) else ("", "", "")
    if not sep:
        # Not echoed: it may be a libpq "key=value" string with a password in it.
        raise error(f"the {what} URL is not a URL (scheme://...); write one of: {EXAMPLES}")
    if scheme.lower() not in known:
        raise error(f"unknown {what} URL scheme {scheme!r}; known: {', '.join(sorted(known))}"
                    f" (e.g. {EXAMPLES})")
    return scheme.lower()


def sqlite_file(url: str, base_dir: Path | str | None, *, what: str, error: type[Exception]) -> Path:
    """The file a ``sqlite:///`` URL names: relative to ``base_dir`` (default: cwd) unless absolute."""
    rest = url.partition("://")[2]
    if not rest.startswith("/") or rest == "/":
        raise error(f"{what} URL {redact_url(url)!r}: a SQLite URL names a file and no host:"
                    " sqlite:///relative/path.db or sqlite:////absolute/path.db")
    text = unquote(rest[1:].partition("?")[0])
    if text in ("", ":memory:"):
        raise error(f"{what} URL {url!r}: the {what} must outlive the process; name a file")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (Path(base_dir) if base_dir is not None else Path.cwd()) / path
    return path


def check_schema(schema: str, *, what: str, error: type[Exception]) -> str:
    """``schema`` if it is a plain lower-case PostgreSQL name, else ``error``."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise error(f"{what} schema {schema!r}: use lower-case letters, digits and _")
    return schema


def postgres_dsn(url: str, default_schema: str, *, what: str, error: type[Exception]
                 ) -> tuple[str, str]:
    """``(dsn, schema)`` of a ``postgresql://...[?schema=name]`` URL, the schema checked."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), default_schema)
    check_schema(schema, what=what, error=error)
    dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    return dsn, schema


def parse_store_url(url: Any, base_dir: Path | str | None, *, what: str, default_schema: str,
                    error: type[Exception]) -> StoreLocation:
    """The location ``url`` names; ``error`` with the supported forms if it names none."""
    backend = SCHEMES[store_scheme(url, SCHEMES, what=what, error=error)]
    if backend == "postgresql":
        dsn, schema = postgres_dsn(url, default_schema, what=what, error=error)
        return StoreLocation("postgresql", dsn=dsn, schema=schema)
    return StoreLocation("sqlite", path=sqlite_file(url, base_dir, what=what, error=error))


def section_store(doc: Mapping[str, Any], location: str, default: str, base_dir: Path,
                  environ: Mapping[str, str], check: Callable[[str], object],
                  problem: Callable[[str, str], None]) -> str:
    """The ``store`` URL of a config section, references resolved and checked by ``check``."""
    value = doc.get("store", default)
    if not isinstance(value, str) or not value:
        problem(f"{location}.store", f"expected a store URL ({EXAMPLES})")
        return default
    try:
        store = secrets.resolve(value, environ, base_dir)
        check(store)
    except (secrets.UnresolvedReference, ValueError) as exc:
        problem(f"{location}.store", str(exc))
        return default
    return store


def read_config_file(path: Path | str, error: type[Exception]) -> dict[str, Any]:
    """The top level of a config file, for a command that needs only a section of it."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: file not found; pass --config FILE or set PANORAMA_CONFIG") from None
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot be read as YAML ({type(exc).__name__}); fix it, then"
                    " `panorama check --config FILE`") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return document


def problems_error(path: Path | str, problems: list[tuple[str, str]], error: type[Exception]
                   ) -> Exception:
    """``error`` listing every problem of a section, as ``panorama check`` would."""
    lines = "\n".join(f"  - {where}: {message}" for where, message in problems)
    return error(f"{path}: {len(problems)} problem(s):\n{lines}")


def section_doc(doc: Any, location: str, keys: tuple[str, ...],
                problem: Callable[[str, str], None]) -> Mapping[str, Any] | None:
    """A section as a mapping, its unknown keys reported; None if absent or not a mapping."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        problem(location, f"expected a mapping with keys {', '.join(keys)}, got {type(doc).__name__}")
        return None
    for name in doc:
        if name not in keys:
            problem(f"{location}.{name}", f"unknown key; allowed: {', '.join(keys)}")
    return doc
