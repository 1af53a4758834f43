"""The ``audit:`` section of ``panorama.yaml``::

    audit:
      store: sqlite:///panorama-audit.db      # the default; or postgresql://user@host/db
      key: ${env:PANORAMA_AUDIT_KEY}           # optional: seal entries with HMAC-SHA256
      show_subjects_to_customers: false        # a customer sees staff roles, not their names

The section is optional: without it, the log is the SQLite file next to the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import secrets
from gateway.audit.chain import Chain
from gateway.audit.errors import AuditConfigError
from gateway.audit.postgres import DEFAULT_SCHEMA
from gateway.stores.location import (
    StoreLocation,
    parse_store_url,
    problems_error,
    read_config_file,
    section_doc,
    section_store,
)

#: The URL the gateway uses when the config does not name one, relative to the config file.
DEFAULT_URL = "sqlite:///panorama-audit.db"
SECTION_KEYS = ("store", "key", "show_subjects_to_customers")


@dataclass(frozen=True)
class AuditConfig:
    """Where the audit log lives, its optional HMAC key, what customers see of staff."""

    store: str = DEFAULT_URL
    base_dir: Path = field(default_factory=Path.cwd)
    key: str | None = field(default=None, repr=False)
    show_subjects_to_customers: bool = False


def audit_location(url: str, base_dir: Path | str | None = None) -> StoreLocation:
    """Where ``url`` keeps the log; AuditConfigError naming the supported forms if nowhere."""
    return parse_store_url(url, base_dir, what="audit log", default_schema=DEFAULT_SCHEMA,
                           error=AuditConfigError)


def parse_audit_section(doc: Any, base_dir: Path, environ: Mapping[str, str],
                        location: str = "audit") -> tuple[AuditConfig, list[tuple[str, str]]]:
    """The ``audit:`` section and its problems as ``(location, message)``.

    ``doc`` None (no section) gives the defaults. With problems, the defaults are returned
    for what was wrong (the loader refuses the config anyway).
    """
    problems: list[tuple[str, str]] = []

    def problem(where: str, message: str) -> None:
        problems.append((where, message))

    doc = section_doc(doc, location, SECTION_KEYS, problem)
    if doc is None:
        return AuditConfig(base_dir=base_dir), problems
    store = section_store(doc, location, DEFAULT_URL, base_dir, environ,
                          lambda url: audit_location(url, base_dir), problem)
    key = None
    if doc.get("key") is not None:
        reference = doc["key"]
        if not isinstance(reference, str) or not secrets.REFERENCE.search(reference):
            problem(f"{location}.key", "written inline; keep the HMAC key in an environment"
                                       " variable or a file and write ${env:NAME} or ${file:PATH}")
        else:
            try:
                key = secrets.resolve(reference, environ, base_dir)
                Chain(key)
            except (secrets.UnresolvedReference, AuditConfigError) as exc:
                problem(f"{location}.key", str(exc).removeprefix("audit.key "))
                key = None
    show = doc.get("show_subjects_to_customers", False)
    if not isinstance(show, bool):
        problem(f"{location}.show_subjects_to_customers", f"expected true or false, got {show!r}")
        show = False
    return AuditConfig(store, base_dir, key, show), problems


def load_audit_config(path: Path | str, environ: Mapping[str, str]) -> AuditConfig:
    """The ``audit:`` section of a config file alone; AuditConfigError listing its problems."""
    top = read_config_file(path, AuditConfigError)
    config, problems = parse_audit_section(top.get("audit"), Path(path).parent, environ)
    if problems:
        raise problems_error(path, problems, AuditConfigError)
    return config
