"""How a request's records become customers: the index's decisions plus live keys.

Without an ``identity:`` section there is no crosswalk, and records are linked at query time
by deterministic keys (e-mail, phone, card). With one, the crosswalk written by
``panorama index`` is authoritative for the records it holds (fuzzy links and stewards'
corrections included), and live keys only attach records that are not indexed yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.identity import Ref, match_keys
from gateway.records import CustomerRecord

if TYPE_CHECKING:
    from gateway.crosswalk import Crosswalk, KeyHasher, Member
    from gateway.matching import Matcher


class Linker:
    """Shared by every request of an app: the matching keys and the crosswalk, if any."""

    def __init__(self, matcher: Matcher | None = None, crosswalk: Crosswalk | None = None,
                 hasher: KeyHasher | None = None) -> None:
        self.matcher = matcher
        self.crosswalk = crosswalk
        self.hasher = hasher  # the index's keyed hashes: find a key's customers in the crosswalk

    @property
    def indexed(self) -> bool:
        return self.crosswalk is not None

    def keys(self, record: CustomerRecord) -> frozenset[str]:
        """Deterministic keys; with rules, placeholders and the record's kind are honoured."""
        return frozenset(self.matcher.keys(record)) if self.matcher else match_keys(record)

    async def placed(self, refs: Iterable[Ref]) -> dict[Ref, str]:
        """Global ids of the records the index holds."""
        return await self.crosswalk.members_of_refs(refs) if self.crosswalk else {}

    async def customers_with_key(self, key: str) -> set[str]:
        """Global ids of the indexed customers whose records carried ``key`` when indexed."""
        if self.crosswalk is None or self.hasher is None:
            return set()
        refs = [ref for found in (await self.crosswalk.refs_for_hashes(
            [self.hasher.hash(key)])).values() for ref in found]
        return set((await self.crosswalk.members_of_refs(refs)).values()) if refs else set()

    async def members(self, global_ids: Iterable[str]) -> dict[str, list[Member]]:
        return await self.crosswalk.members(global_ids) if self.crosswalk else {}

    async def resolve_id(self, global_id: str) -> tuple[str, bool] | None:
        """The current id of a customer (following merges), and whether it was redirected."""
        return await self.crosswalk.resolve_id(global_id) if self.crosswalk else None
