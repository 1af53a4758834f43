"""The audit log's value types: what callers append, what the log returns."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: What an entry records: a read of personal data, a refused attempt, a data steward's or an
#: admin's change, a consent decision, a correction request (or a change of its status).
KINDS = ("read", "denied", "steward", "admin", "consent", "correction")
#: Who the subject is: a person (``user``: staff, or the customer), or an application
#: (``service``: an API key, the admin token), as ``gateway.principal.Principal.kind`` says.
SUBJECT_KINDS = ("user", "service")


@dataclass(frozen=True)
class FieldAccess:
    """A field path that was read (or refused), and whether its value went out masked."""

    path: str
    masked: bool = False


@dataclass(frozen=True)
class AuditEvent:
    """What a caller appends: one per request, however many customers and fields it touched.

    ``fields`` also takes ``(path, masked)`` pairs or bare paths (not masked). ``details`` is
    JSON made of ids, names and codes (``{"operation": "customers", "outcome": "ok"}``);
    strings with spaces, ``@`` or ``+`` are refused, so that no e-mail, phone or name slips in.
    """

    kind: str
    subject: str
    roles: Sequence[str] = ()
    purpose: str | None = None
    customers: Sequence[str] = ()
    fields: Sequence[FieldAccess | tuple[str, bool] | str] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    subject_kind: str = "user"

    @classmethod
    def of(cls, principal: Any, kind: str, customers: Sequence[str] = (),
           fields: Sequence[FieldAccess | tuple[str, bool] | str] = (), **details: Any) -> AuditEvent:
        """The event of a request by ``principal`` (a ``gateway.principal.Principal``: its
        subject, roles, purpose and kind)."""
        return cls(kind, principal.subject, tuple(principal.roles), principal.purpose, customers,
                   fields, details, principal.kind)


@dataclass(frozen=True)
class AuditEntry:
    """An entry as stored: its place in the chain (``id``, ``prev_hash``, ``hash``) and time."""

    id: int
    at: datetime
    kind: str
    subject: str
    roles: tuple[str, ...]
    purpose: str | None
    customers: tuple[str, ...]
    fields: tuple[FieldAccess, ...]
    details: dict[str, Any]
    subject_kind: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list, newest first; every given part must hold.

    ``customers``: entries that touched any of these ids. ``since`` is inclusive, ``until``
    exclusive. Page with ``before``: the ``next_before`` of the previous page.
    """

    customers: Sequence[str] = ()
    subject: str | None = None
    kinds: Sequence[str] = ()
    purpose: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as ``AuditFilter.before`` for the next page; None at the end


@dataclass(frozen=True)
class CustomerAccess:
    """One read of a customer's data, as the customer sees it (``AuditLog.accesses``).

    ``subject`` is None for a person (staff) unless the log is configured to show them, and
    shown for an application (a ``service`` subject) and for the customer themselves
    (``by_you``); ``roles`` always say what kind of staff or application it was.
    """

    id: int
    at: datetime
    purpose: str | None
    roles: tuple[str, ...]
    fields: tuple[str, ...]
    subject: str | None
    by_you: bool


@dataclass(frozen=True)
class AccessPage:
    accesses: list[CustomerAccess]
    next_before: int | None


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`AuditLog.verify` found: the entries it walked, the head, the first break."""

    entries: int
    head_id: int
    head_hash: str
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def __str__(self) -> str:
        if self.problem is None:
            return (f"{self.entries} entries, chain intact; head: entry {self.head_id},"
                    f" hash {self.head_hash}")
        return self.problem


@dataclass
class Snapshot:
    """A consistent view for a walk: the head, and every entry's row in id order.

    A row is ``(id, at, kind, subject, roles, purpose, customers, fields, details, subject_kind,
    prev_hash, hash, indexed)``: JSON columns as text or decoded, ``indexed`` the customer ids of the
    backend's search index for the entry (None where the backend has none apart).
    """

    head: tuple[int, str]
    rows: AsyncGenerator[Sequence[Any], None]
