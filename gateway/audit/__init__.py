"""The audit log: who read or changed what about which customers, for which purpose.

Append-only and hash-chained, in SQLite (the default) or PostgreSQL (for replicas sharing
one log); see ``base`` for the contract and docs/audit.md for what is recorded::

    log = open_audit_log("sqlite:///panorama-audit.db", base_dir=config_dir, key=None)
    async with log:
        await log.append(AuditEvent("read", "app:till-paris", ("till",), "support",
                                    customers=[customer_id], fields=[FieldAccess("Customer.emails")]))
        report = await log.verify()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway.audit.base import AuditLog
from gateway.audit.chain import GENESIS, Chain
from gateway.audit.config import (
    DEFAULT_URL,
    AuditConfig,
    audit_location,
    load_audit_config,
    parse_audit_section,
)
from gateway.audit.errors import AuditConfigError, AuditError, AuditUnavailable, InvalidAuditEvent
from gateway.audit.postgres import DEFAULT_SCHEMA, PostgresAuditLog
from gateway.audit.sqlite import SQLiteAuditLog
from gateway.audit.types import (
    KINDS,
    SUBJECT_KINDS,
    AccessPage,
    AuditEntry,
    AuditEvent,
    AuditFilter,
    AuditPage,
    CustomerAccess,
    FieldAccess,
    VerifyReport,
)
from gateway.stores.location import StoreLocation

#: Backend name -> how to build a log at a location with a chain.
BACKENDS: dict[str, Callable[[StoreLocation, Chain], AuditLog]] = {
    "sqlite": lambda at, chain: SQLiteAuditLog(at.path or "", chain),
    "postgresql": lambda at, chain: PostgresAuditLog(at.dsn or "", schema=at.schema or DEFAULT_SCHEMA,
                                                     chain=chain),
}


def open_audit_log(url: str, base_dir: Path | str | None = None, *,
                   key: bytes | str | None = None) -> AuditLog:
    """The log a URL names, not yet opened (``await log.open()`` or ``async with log``).

    ``sqlite:///path`` is relative to ``base_dir`` (the config file's directory; default: the
    working directory), ``sqlite:////path`` absolute; ``postgresql://user@host:port/db`` keeps
    its tables in the schema ``panorama_audit`` (``?schema=name`` for another). With ``key``,
    entries are sealed with HMAC-SHA256 instead of plain SHA-256.
    """
    location = audit_location(url, base_dir)
    return BACKENDS[location.backend](location, Chain(key))


def open_configured_audit_log(config: AuditConfig) -> AuditLog:
    """The log an ``audit:`` section describes, not yet opened."""
    return open_audit_log(config.store, config.base_dir, key=config.key)


__all__ = [
    "BACKENDS",
    "DEFAULT_URL",
    "GENESIS",
    "KINDS",
    "SUBJECT_KINDS",
    "AccessPage",
    "AuditConfig",
    "AuditConfigError",
    "AuditEntry",
    "AuditError",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "AuditUnavailable",
    "Chain",
    "CustomerAccess",
    "FieldAccess",
    "InvalidAuditEvent",
    "PostgresAuditLog",
    "SQLiteAuditLog",
    "VerifyReport",
    "audit_location",
    "load_audit_config",
    "open_audit_log",
    "open_configured_audit_log",
    "parse_audit_section",
]
