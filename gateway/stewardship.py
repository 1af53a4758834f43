"""Data stewards correct the machine: link, unlink, merge and split customers.

Each action is a constraint the index honours from then on (must-link or cannot-link pairs
of records), recorded with who, when and why, and applied at once by re-resolving the
customers it touches. A later ``panorama index --full`` keeps it: the matcher takes the
constraints as given.

Steward actions need a principal with the admin role (an admin's token, or the static
``admin_token``); the log names the token's subject, or for a service credential the person the
``Panorama-Actor`` header names. Consent decisions follow the records: a merged customer keeps
the latest decision of either id, a split-off customer the decisions made before the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.consent import ConsentStore
from gateway.consent_carry import carry_consent, placed
from gateway.crosswalk import Crosswalk, KeyHasher, StewardAction
from gateway.indexer import Indexer, fetch_refs
from gateway.matching import Matcher
from gateway.principal import Principal
from gateway.sources import SourceSet

Ref = tuple[str, str]


class StewardError(ValueError):
    """A steward request that cannot be carried out; the message says why and what to do."""

    code = "BAD_USER_INPUT"


class NotAuthorized(StewardError):
    code = "FORBIDDEN"


@dataclass(frozen=True)
class Outcome:
    """A steward action done: the records to show, the action as logged, the customers it
    touched (their ids before and after)."""

    anchors: tuple[Ref, ...]
    action: StewardAction
    customers: tuple[str, ...] = field(default=())


@dataclass
class Steward:
    """Carries out steward actions against the crosswalk (one per app)."""

    sources: SourceSet
    crosswalk: Crosswalk
    matcher: Matcher
    hasher: KeyHasher
    consent: ConsentStore | None = None  # decisions carried along merges and splits

    def authorize(self, principal: Principal | None, headers: Any) -> str:
        """The actor's name for the log, if the principal is an admin."""
        if principal is None or not principal.is_admin:
            roles = ", ".join(principal.roles) if principal else "none"
            raise NotAuthorized(f"steward actions need the admin role (this credential has: "
                                f"{roles}); send an admin's token as `Authorization: Bearer "
                                f"<token>`")
        if principal.kind == "user":
            return principal.subject  # a person's token names them; a header may not rename them
        named = (headers.get("panorama-actor") or "").strip()[:200]
        return named or principal.subject

    async def _existing(self, refs: Iterable[Ref]) -> list[Ref]:
        refs = list(dict.fromkeys(refs))
        for source, _ in refs:
            if self.sources.get(source) is None:
                raise StewardError(f"unknown source {source!r}; sources: "
                                   f"{', '.join(self.sources.names)}")
        found = {r.ref for r in await fetch_refs(self.sources, refs)}
        missing = [f"{s}/{k}" for s, k in refs if (s, k) not in found]
        if missing:
            raise StewardError(f"no such record: {', '.join(missing)}; give records as "
                               f"{{source, localId}} of existing records")
        return refs

    async def _members(self, global_id: str) -> tuple[str, list[Ref]]:
        current = await self.crosswalk.resolve_id(global_id)
        if current is None:
            raise StewardError(f"customer {global_id!r} is not in the index; run `panorama index` "
                               f"or link its records by reference")
        members = (await self.crosswalk.members([current[0]])).get(current[0], [])
        return current[0], [m.ref for m in members]

    async def _apply(self, action: str, actor: str, reason: str, touched: Iterable[Ref],
                     payload: dict[str, Any], anchors: tuple[Ref, ...],
                     **constraints: Any) -> Outcome:
        if not reason or not reason.strip():
            raise StewardError("reason: say why, for the audit log")
        touched = list(touched)
        before = await placed(self.crosswalk, touched)
        stored = await self.crosswalk.record_steward(
            StewardAction(None, action, actor, reason.strip(), datetime.now(UTC), payload),
            **constraints)
        indexer = Indexer(self.sources, self.crosswalk, self.matcher, self.hasher)
        await indexer.reindex(touched)
        if self.consent is not None:
            await carry_consent(self.consent, self.crosswalk, before, actor)
        after = await placed(self.crosswalk, touched)
        customers = tuple(sorted({*before.values(), *after.values()}))
        return Outcome(anchors, stored, customers)

    async def link(self, refs: list[Ref], actor: str, reason: str) -> Outcome:
        if len(refs) < 2:
            raise StewardError("records: give at least two records to link")
        refs = await self._existing(refs)
        pairs = [(refs[0], other) for other in refs[1:]]
        return await self._apply("link", actor, reason, refs, {"records": refs}, (refs[0],),
                                 must_link=pairs)

    async def unlink(self, ref: Ref, actor: str, reason: str) -> Outcome:
        (ref,) = await self._existing([ref])
        global_id = (await self.crosswalk.members_of_refs([ref])).get(ref)
        others = [] if global_id is None else [r for r in (await self._members(global_id))[1]
                                                if r != ref]
        if not others:
            raise StewardError(f"record {ref[0]}/{ref[1]} is not linked to any other record")
        pairs = [(ref, other) for other in others]
        return await self._apply("unlink", actor, reason, [ref, *others],
                                 {"record": ref, "from": global_id}, (ref,), cannot_link=pairs,
                                 drop_must_link=pairs)

    async def merge(self, global_ids: list[str], actor: str, reason: str) -> Outcome:
        if len(set(global_ids)) < 2:
            raise StewardError("ids: give at least two customers to merge")
        groups = [await self._members(g) for g in dict.fromkeys(global_ids)]
        anchors = [refs[0] for _, refs in groups if refs]
        pairs = [(anchors[0], other) for other in anchors[1:]]
        touched = [r for _, refs in groups for r in refs]
        return await self._apply("merge", actor, reason, touched,
                                 {"customers": [g for g, _ in groups]}, (anchors[0],),
                                 must_link=pairs)

    async def split(self, global_id: str, refs: list[Ref], actor: str, reason: str) -> Outcome:
        current, members = await self._members(global_id)
        refs = list(dict.fromkeys(refs))
        strangers = [f"{s}/{k}" for s, k in refs if (s, k) not in members]
        if strangers:
            raise StewardError(f"records {', '.join(strangers)} do not belong to customer "
                               f"{current}")
        rest = [r for r in members if r not in refs]
        if not refs or not rest:
            raise StewardError("records: give some, not all, of the customer's records to split "
                               "off")
        apart = [(a, b) for a in refs for b in rest]
        together = [(refs[0], other) for other in refs[1:]]
        return await self._apply("split", actor, reason, members,
                                 {"customer": current, "records": refs}, (refs[0], rest[0]),
                                 cannot_link=apart, drop_must_link=apart, must_link=together)
