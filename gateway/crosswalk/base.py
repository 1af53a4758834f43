"""The crosswalk store's contract: value types and the abstract :class:`Crosswalk`.

The crosswalk is what Panorama keeps about identity, and it keeps little: **links** (global id,
source, local key), the **match evidence** (rule, score, names of the attributes that agreed,
never their values), **keyed hashes** of match and blocking keys (see ``hashing``),
**redirects** from retired global ids to the surviving ones, **steward decisions** (must-link
and cannot-link pairs, and an audit log), and a **watermark** per source. No e-mail, name or
phone number is ever stored in clear.

One implementation per backend (``sqlite``, ``postgres``), same contract; the contract suite in
``tests/test_crosswalk.py`` runs against each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

Ref = tuple[str, str]
"""A record: (source, local key)."""

KeyHashes = Mapping[Ref, Iterable[str]] | Iterable[tuple[Ref, Iterable[str]]]
"""Each ref's key hashes: a mapping, or a stream of ``(ref, hashes)`` pairs read once."""

#: The steward actions the audit log knows.
STEWARD_ACTIONS = ("link", "unlink", "merge", "split")


@dataclass(frozen=True)
class Evidence:
    """Why a record is in its cluster: a rule, its score, which attributes agreed (names only)."""

    rule: str
    score: float
    agreed: tuple[str, ...]
    linked_to: Ref | None = None


@dataclass(frozen=True)
class Member:
    """One record's assignment to a global id, with the evidence for it (None for a founder)."""

    ref: Ref
    global_id: str
    evidence: Evidence | None = None


@dataclass(frozen=True)
class StewardAction:
    """One entry of the steward audit log: who did what, when and why.

    ``at`` must be timezone-aware; it is stored and read back in UTC. ``payload`` is JSON-able
    and holds refs and ids only (tuples come back as lists).
    """

    id: int | None
    action: str
    actor: str
    reason: str
    at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class IndexRun:
    """Everything one indexing run changes, applied by :meth:`Crosswalk.apply_index` at once.

    - ``members``: the new assignment (and evidence) of every ref the run looked at; refs
      already stored are updated, others inserted. Any iterable: it is read once, in batches,
      so a large run can stream it.
    - ``removed``: refs gone from their source (deleted with their hashes). A ref cannot be
      both removed and a member.
    - ``key_hashes``: for each of these refs, its hashes *replace* the stored ones (an empty
      set clears them). Every ref here must be a member after the run. A mapping, or (to
      stream) an iterable of ``(ref, hashes)`` pairs read once.
    - ``redirects``: retired id -> surviving id. A redirect from an id that still has members
      after the run is dropped: a live customer is never redirected.
    - ``watermarks``: source -> opaque watermark for incremental indexing.
    - ``scope_sources``: None for an incremental run (only the refs named above change);
      a set of sources for a run that re-read those sources whole, in which case every stored
      ref of those sources that is not in ``members`` is removed too, and the stored hashes
      of those sources are all replaced by ``key_hashes``.
    """

    members: Iterable[Member] = field(default_factory=list)
    removed: set[Ref] = field(default_factory=set)
    key_hashes: KeyHashes = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)
    scope_sources: set[str] | None = None


@dataclass(frozen=True)
class IndexStats:
    """What an index run changed."""

    members: int = 0  # members inserted or changed (an unchanged assignment is not rewritten)
    removed: int = 0  # members removed, explicitly or because their source was re-read whole
    key_hashes: int = 0  # hash rows written
    redirects: int = 0
    watermarks: int = 0


class Crosswalk(ABC):
    """The identity crosswalk: links, evidence, key hashes, redirects, steward decisions.

    Create with :func:`gateway.crosswalk.open_crosswalk`, then ``await open()`` (or use
    ``async with``); every method is a coroutine and safe to call concurrently. Lookups of
    many refs, ids or hashes are batched inside, so any iterable size is fine. Lookup results
    leave out what is not stored.
    """

    @abstractmethod
    async def open(self) -> None:
        """Connect, and create or migrate the tables (idempotent)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection (idempotent)."""

    async def __aenter__(self) -> Crosswalk:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    @abstractmethod
    async def members_of_refs(self, refs: Iterable[Ref]) -> dict[Ref, str]:
        """Ref -> global id, for the refs that are indexed."""

    @abstractmethod
    async def members(self, global_ids: Iterable[str]) -> dict[str, list[Member]]:
        """Current members of each id that has any, ordered by ref (redirects not followed)."""

    @abstractmethod
    async def global_ids(self, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` current global ids after ``after`` (None: from the first), in code
        point order: a keyset page, so that a walk over every customer (an export) costs one
        indexed range read per page whatever its position."""

    @abstractmethod
    async def resolve_id(self, global_id: str) -> tuple[str, bool] | None:
        """``(current id, redirected?)`` following redirect chains; None if no customer has it."""

    @abstractmethod
    async def refs_for_hashes(self, hashes: Iterable[str]) -> dict[str, list[Ref]]:
        """Key hash -> the refs carrying it (ordered), for the hashes that are stored."""

    @abstractmethod
    async def hashes_of(self, refs: Iterable[Ref]) -> dict[Ref, set[str]]:
        """Ref -> its key hashes, for the refs that have any."""

    @abstractmethod
    async def apply_index(self, run: IndexRun) -> IndexStats:
        """Apply a whole run in one transaction: all of it, or (on any error) none of it."""

    @abstractmethod
    async def watermark(self, source: str) -> str | None:
        """The watermark last stored for ``source``."""

    @abstractmethod
    def all_members(self) -> AsyncIterator[Member]:
        """Every member, ordered by ref, streamed (memory stays bounded; iterate to the end)."""

    async def must_links(self) -> list[tuple[Ref, Ref]]:
        """Pairs a steward declared the same customer, each pair ordered, sorted."""
        return await self._pairs("must_links")

    async def cannot_links(self) -> list[tuple[Ref, Ref]]:
        """Pairs a steward declared different customers, each pair ordered, sorted."""
        return await self._pairs("cannot_links")

    @abstractmethod
    async def _pairs(self, table: str) -> list[tuple[Ref, Ref]]:
        """Every pair of a constraint table (``must_links`` or ``cannot_links``), sorted."""

    @abstractmethod
    async def record_steward(
        self, action: StewardAction, *,
        must_link: Iterable[tuple[Ref, Ref]] = (), cannot_link: Iterable[tuple[Ref, Ref]] = (),
        drop_must_link: Iterable[tuple[Ref, Ref]] = (),
        drop_cannot_link: Iterable[tuple[Ref, Ref]] = (),
    ) -> StewardAction:
        """Append ``action`` to the log and change the constraints, atomically.

        A new must-link replaces a cannot-link of the same pair and vice versa: the latest
        decision wins. Returns the action as stored (with its id, ``at`` in UTC).
        """

    @abstractmethod
    async def steward_log(self, limit: int = 100) -> list[StewardAction]:
        """The latest ``limit`` steward actions, newest first."""

    @abstractmethod
    async def stats(self) -> dict[str, int]:
        """Counts: records, customers, redirects, steward_actions, key_hashes, must_links,
        cannot_links."""
