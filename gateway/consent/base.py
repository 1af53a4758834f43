"""The consent store's contract: the abstract :class:`ConsentStore`.

What Panorama itself was told about consent: per customer (global id) and purpose, every
decision (objection or withdrawal) with who made it, how and when; the latest one wins. Also
the customers' correction requests, routed to the contact of the source that holds the value.
Consent the sources hold (a CRM's opt-out property) is read live with the records and turned
into objections by ``gateway.consent.rules``; nothing here caches: every lookup asks the
database, so the next request sees a change.

One implementation per backend (``sqlite``, ``postgres``), same contract; the contract suite in
``tests/test_consent.py`` runs against each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

from gateway.audit.storage import check_limit
from gateway.consent import checks
from gateway.consent.errors import CorrectionNotFound
from gateway.consent.routing import route_correction
from gateway.consent.types import ConsentDecision, CorrectionRequest


class ConsentStore(ABC):
    """Consent decisions and correction requests, in SQLite or PostgreSQL.

    Create with :func:`gateway.consent.open_consent_store`, then ``await open()`` (or ``async
    with``); every method is a coroutine and safe to call concurrently.
    """

    async def open(self) -> None:
        """Connect, and create or migrate the tables (idempotent)."""
        await self._open_store()

    async def aclose(self) -> None:
        """Close every connection (idempotent)."""
        await self._close_store()

    @abstractmethod
    async def _open_store(self) -> None:
        """Connect, and create or migrate the tables (idempotent)."""

    @abstractmethod
    async def _close_store(self) -> None:
        """Close every connection (idempotent)."""

    async def __aenter__(self) -> ConsentStore:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # --- consent ------------------------------------------------------------------------

    async def record(self, decision: ConsentDecision) -> ConsentDecision:
        """Record one decision; returns it as stored (``id``, ``at`` in UTC)."""
        return (await self.record_many([decision]))[0]

    async def record_many(self, decisions: Sequence[ConsentDecision]) -> list[ConsentDecision]:
        """Record several decisions in one transaction, in order: all or (on error) none."""
        checked = [checks.decision(d) for d in decisions]
        return await self._insert_decisions(checked) if checked else []

    async def objections_for(self, customers: Iterable[str], purpose: str) -> set[str]:
        """The customers among ``customers`` whose latest decision for ``purpose`` is an objection.

        One query for a page of customers (batches of 5,000 beyond); never cached.
        """
        unique = list(dict.fromkeys(c for c in customers if isinstance(c, str)))
        return await self._objections(unique, checks.purpose(purpose)) if unique else set()

    @abstractmethod
    async def objectors(self, purpose: str) -> set[str]:
        """Every customer whose latest decision for ``purpose`` is an objection (for exports)."""

    @abstractmethod
    async def decided(self) -> set[str]:
        """Every customer with a decision (what an index run may move to another id)."""

    async def current(self, customer: str) -> dict[str, ConsentDecision]:
        """Purpose -> the customer's latest decision about it (objections and withdrawals)."""
        return (await self.latest([customer])).get(customer, {})

    @abstractmethod
    async def latest(self, customers: Iterable[str]) -> dict[str, dict[str, ConsentDecision]]:
        """Customer -> purpose -> latest decision, for the customers that have any."""

    @abstractmethod
    async def history(self, customer: str, purpose: str | None = None,
                      limit: int = 100) -> list[ConsentDecision]:
        """The customer's decisions (about ``purpose``, or all), newest first."""

    async def carry_over(self, redirects: Mapping[str, str], actor: str) -> list[ConsentDecision]:
        """After customers merged (retired id -> surviving id), let the latest decision win.

        For each purpose, a decision of the retired id that is newer than the surviving id's
        latest, and says otherwise, is recorded again for the surviving id (source ``merge``).
        Safe to call again with the same redirects. For a split, pass ``{kept id: new id}``:
        the split-off customer keeps the decisions made before.
        """
        if not redirects:
            return []
        found = await self.latest([*redirects, *redirects.values()])
        copies = []
        for old, new in redirects.items():
            theirs = found.get(new, {})
            for name, decision in found.get(old, {}).items():
                current = theirs.get(name)
                newer = current is None or (current.id or 0) < (decision.id or 0)
                if newer and decision.objected != (current is not None and current.objected):
                    copies.append(ConsentDecision(new, name, decision.objected, actor, "merge"))
        return await self.record_many(copies)

    @abstractmethod
    async def _insert_decisions(self, decisions: list[ConsentDecision]) -> list[ConsentDecision]:
        """Insert checked decisions in one transaction; as stored."""

    @abstractmethod
    async def _objections(self, customers: list[str], purpose: str) -> set[str]:
        """:meth:`objections_for` on unique ids and a checked purpose."""

    # --- correction requests ------------------------------------------------------------

    async def add_correction(self, request: CorrectionRequest,
                             contacts: Mapping[str, str]) -> CorrectionRequest:
        """Record a request, routed to the contact ``contacts`` gives for its source.

        Status ``routed`` with ``routed_to`` set, or ``unrouted`` if no contact is configured
        (neither for the source nor as ``default``). Sending is not done here: the routed
        requests are an outbox (``corrections(status="routed")``) that people or a job work off.
        """
        checked = checks.correction(request)
        contact = route_correction(checked.source, contacts)
        return await self._insert_correction(checked, "routed" if contact else "unrouted", contact)

    @abstractmethod
    async def correction(self, ident: int) -> CorrectionRequest | None:
        """The request with this id, if any."""

    async def corrections(self, *, status: str | None = None, customer: str | None = None,
                          source: str | None = None, before: int | None = None,
                          limit: int = 100) -> list[CorrectionRequest]:
        """Requests matching every given part, newest first; page with ``before`` (an id)."""
        if status is not None:
            checks.status(status)
        check_limit(limit)
        return await self._corrections(status, customer, source, before, limit)

    async def set_correction_status(self, ident: int, status: str, actor: str) -> CorrectionRequest:
        """Move a request to ``status`` (e.g. ``done`` once the source was corrected)."""
        checks.status(status)
        checks.actor(actor, "a status change")
        changed = await self._update_correction(ident, status, actor)
        if changed is None:
            raise CorrectionNotFound(f"no correction request has id {ident!r}")
        return changed

    @abstractmethod
    async def _insert_correction(self, request: CorrectionRequest, status: str,
                                 routed_to: str | None) -> CorrectionRequest:
        """Insert a checked request; as stored."""

    @abstractmethod
    async def _corrections(self, status: str | None, customer: str | None, source: str | None,
                           before: int | None, limit: int) -> list[CorrectionRequest]:
        """:meth:`corrections` with checked arguments."""

    @abstractmethod
    async def _update_correction(self, ident: int, status: str,
                                 actor: str) -> CorrectionRequest | None:
        """Set the status (and who, when); the request as stored, None if no such id."""
