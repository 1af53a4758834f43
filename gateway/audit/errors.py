"""One exception tree for the audit log.

Library exceptions (aiosqlite/sqlite3, asyncpg, OSError) are translated once, in the database
layer (``gateway.stores.sqlite``, ``gateway.stores.postgres``), so callers only ever see these::

    AuditError             code               meaning
    ├── AuditConfigError   AUDIT_CONFIG       bad store URL, schema name or HMAC key
    ├── AuditUnavailable   AUDIT_UNAVAILABLE  the store cannot be opened or reached
    └── InvalidAuditEvent  AUDIT_EVENT        an event breaks a rule: nothing of it appended

Messages name kinds, field paths and rules; they never echo a value that was refused (it may
be the personal value that should not have been there).
"""

from __future__ import annotations

from gateway.stores.types import ErrorKinds


class AuditError(Exception):
    """Base of every error the audit log raises."""

    code = "AUDIT_ERROR"


class AuditConfigError(AuditError, ValueError):
    """The audit log is configured with something it cannot use."""

    code = "AUDIT_CONFIG"


class AuditUnavailable(AuditError):
    """The audit log's database cannot be opened or reached."""

    code = "AUDIT_UNAVAILABLE"


class InvalidAuditEvent(AuditError, ValueError):
    """An event breaks a rule of the log; nothing of it was appended."""

    code = "AUDIT_EVENT"


#: The audit log's errors and rules, for the database layer.
ERRORS = ErrorKinds("audit log", AuditError, AuditConfigError, AuditUnavailable, InvalidAuditEvent,
                    {"audit_kind_known": "an entry's kind is one of the known kinds"})
