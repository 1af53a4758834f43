"""The consent store's value types: decisions about purposes, and correction requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Where a correction request stands. ``routed``: handed to the owning source's contact
#: (waiting in the outbox); ``unrouted``: no contact is configured for the source, an admin
#: must route it; ``done`` and ``rejected``: closed by whoever handled it.
CORRECTION_STATUSES = ("routed", "unrouted", "done", "rejected")


@dataclass(frozen=True)
class ConsentDecision:
    """A customer objects to a purpose (``objected``), or withdraws the objection.

    ``actor`` is who decided (the customer's own principal subject, or staff acting on the
    customer's word); ``source`` how the decision came (``self-service``, ``support``,
    ``merge``...). ``id`` and ``at`` are set by the store. The latest decision wins; every one
    is kept.
    """

    customer: str
    purpose: str
    objected: bool
    actor: str
    source: str
    id: int | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class CorrectionRequest:
    """A customer says a value is wrong: which field, held by which source, what it should be.

    ``requested`` and ``message`` are the customer's own words (personal data: they are kept
    here, for whoever corrects the source, and never copied into the audit log). ``record`` is
    the source's local key of the record holding the value, when known. The store sets
    ``id``, ``status``, ``routed_to`` (the source's contact from the config) and the times.
    """

    customer: str
    field: str
    source: str
    requested: str
    requested_by: str
    message: str = ""
    record: str | None = None
    id: int | None = None
    status: str | None = None
    routed_to: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None
