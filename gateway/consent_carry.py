"""Consent decisions follow customers when identity changes: merges, splits, index runs.

Decisions are recorded under global ids. When records move to another id (customers merged by
a steward or by ``panorama index``, records split off into a customer of their own),
:meth:`ConsentStore.carry_over` gives the id they now belong to the decisions of the one they
left, the latest decision winning. What moved is found by comparing where records were before
and after the change, so merges and splits are handled alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.consent import ConsentStore
from gateway.crosswalk import Crosswalk
from gateway.identity import decode_id

Ref = tuple[str, str]


async def placed(crosswalk: Crosswalk, refs: Iterable[Ref]) -> dict[Ref, str]:
    """Where these records are now: record -> global id."""
    return await crosswalk.members_of_refs(refs)


async def placed_with_decisions(crosswalk: Crosswalk, store: ConsentStore) -> dict[Ref, str]:
    """Where the records of every customer with a consent decision are (before an index run).

    A customer the index does not hold yet was known by the id of its first record: that
    record stands for it, so the decision follows it into the customer the run puts it in.
    """
    decided = await store.decided()
    members = await crosswalk.members(decided)
    found = {m.ref: global_id for global_id, listed in members.items() for m in listed}
    for global_id in sorted(decided - members.keys()):
        ref = decode_id(global_id)
        if ref is not None:
            found.setdefault(ref, global_id)
    return found


async def carry_consent(store: ConsentStore, crosswalk: Crosswalk, before: Mapping[Ref, str],
                        actor: str) -> int:
    """Carry decisions along the records that changed id since ``before``; how many were copied."""
    after = await crosswalk.members_of_refs(before)
    moves = sorted({(old, after[ref]) for ref, old in before.items()
                    if after.get(ref) not in (None, old)})
    copied = 0
    while moves:  # carry_over takes one new id per old one: a split in three takes two rounds
        batch: dict[str, str] = {}
        rest = []
        for old, new in moves:
            if old in batch:
                rest.append((old, new))
            else:
                batch[old] = new
        copied += len(await store.carry_over(batch, actor))
        moves = rest
    return copied
