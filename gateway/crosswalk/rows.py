"""Checking values on their way into the store, and turning them into table rows and back.

Both backends write through these, row by row as they stream a run, so a bad value stops the
run where it is met (and the transaction rolls back) and every backend refuses the same things.
The checks that guard privacy matter most: a key hash must look like one, and evidence names
attributes, never values.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from gateway.crosswalk.base import (
    STEWARD_ACTIONS,
    Evidence,
    KeyHashes,
    Member,
    Ref,
    StewardAction,
)
from gateway.crosswalk.errors import InvalidIndexRun, InvalidStewardAction

T = TypeVar("T")

#: Rows per statement or per batch of parameters: large runs are written in pieces of this
#: size inside their one transaction, so memory stays bounded.
BATCH = 5_000

#: An attribute or rule name: short, no spaces, no ``@`` or ``+``, so no e-mail, phone number
#: or full name fits by accident.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
#: What :class:`gateway.crosswalk.hashing.KeyHasher` produces: lower-case hex, 32 to 64 chars.
HASH = re.compile(r"[0-9a-f]{32,64}")

MemberRow = tuple[str, str, str, str | None, float | None, tuple[str, ...] | None,
                  str | None, str | None]


def chunks(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size``."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def ref(value: object, error: type[Exception] = InvalidIndexRun) -> Ref:
    """A (source, local key) pair of non-empty strings, or ``error``."""
    if isinstance(value, tuple) and len(value) == 2 and _text(value[0]) and _text(value[1]):
        return value[0], value[1]
    raise error(f"{value!r} is not a ref: expected (source, local key), two non-empty strings")


def member_row(member: Member, removed: set[Ref]) -> MemberRow:
    """The ``members`` row of ``member``; InvalidIndexRun if it breaks a rule."""
    source, key = ref(member.ref)
    if not _text(member.global_id):
        raise InvalidIndexRun(f"member {member.ref!r}: the global id must be a non-empty string")
    if member.ref in removed:
        raise InvalidIndexRun(f"member {member.ref!r} is also listed as removed")
    evidence = member.evidence
    if evidence is None:
        return source, key, member.global_id, None, None, None, None, None
    if not isinstance(evidence, Evidence):
        raise InvalidIndexRun(f"member {member.ref!r}: evidence must be an Evidence or None")
    score = evidence.score
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidIndexRun(f"member {member.ref!r}: the evidence score must be a finite number")
    names = (evidence.rule, *evidence.agreed)
    if not all(isinstance(n, str) and NAME.fullmatch(n) for n in names):
        raise InvalidIndexRun(
            f"member {member.ref!r}: evidence holds rule and attribute *names* (letters, digits,"
            " _ . : -, at most 64), never values")
    linked = None if evidence.linked_to is None else ref(evidence.linked_to)
    return (source, key, member.global_id, evidence.rule, float(score), tuple(evidence.agreed),
            *(linked or (None, None)))


def member_from_row(row: Any, agreed: Iterable[str] | None) -> Member:
    """A :class:`Member` from ``(source, local_key, global_id, rule, score, _, linked_source,
    linked_key)``, with ``agreed`` already decoded by the backend."""
    source, key, global_id, rule, score = row[0], row[1], row[2], row[3], row[4]
    if rule is None:
        return Member((source, key), global_id, None)
    linked = (row[6], row[7]) if row[6] is not None else None
    return Member((source, key), global_id, Evidence(rule, score, tuple(agreed or ()), linked))


def hash_items(key_hashes: KeyHashes) -> Iterable[tuple[Ref, Iterable[str]]]:
    """``(ref, hashes)`` pairs of an :attr:`IndexRun.key_hashes`, mapping or stream."""
    return key_hashes.items() if isinstance(key_hashes, Mapping) else key_hashes


def hash_rows(items: Iterable[tuple[Ref, Iterable[str]]]) -> Iterator[tuple[str, str, str]]:
    """``(source, local_key, hash)`` rows; InvalidIndexRun for anything not shaped like a hash."""
    for owner, hashes in items:
        source, key = ref(owner)
        if isinstance(hashes, str):
            raise InvalidIndexRun(f"key hashes of {owner!r} must be a set of hashes, not a string")
        for value in set(hashes):
            if not (isinstance(value, str) and HASH.fullmatch(value)):
                # The value is not echoed: it may be the clear key that should have been hashed.
                raise InvalidIndexRun(
                    f"a key hash of {owner!r} is not a hex HMAC digest (KeyHasher.hash):"
                    " clear values are never stored")
            yield source, key, value


def redirect_rows(redirects: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """``(old_id, new_id)`` rows; InvalidIndexRun for an empty or self-pointing redirect."""
    for old, new in redirects.items():
        if not (_text(old) and _text(new)):
            raise InvalidIndexRun(f"redirect {old!r} -> {new!r}: both ids must be non-empty strings")
        if old == new:
            raise InvalidIndexRun(f"redirect {old!r} -> {new!r}: an id cannot redirect to itself")
        yield old, new


def watermark_rows(watermarks: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """``(source, value)`` rows; InvalidIndexRun for a non-text source or value."""
    for source, value in watermarks.items():
        if not (_text(source) and isinstance(value, str)):
            raise InvalidIndexRun(f"watermark of {source!r}: source and value must be strings")
        yield source, value


def pair(value: object) -> tuple[str, str, str, str]:
    """An unordered pair of distinct refs as an ordered ``(a_source, a_key, b_source, b_key)``."""
    if not (isinstance(value, tuple) and len(value) == 2):
        raise InvalidStewardAction(f"{value!r} is not a pair of refs")
    a, b = sorted(ref(r, InvalidStewardAction) for r in value)
    if a == b:
        raise InvalidStewardAction(f"pair {value!r} joins a ref to itself")
    return (*a, *b)


def pair_from_row(row: Any) -> tuple[Ref, Ref]:
    return (row[0], row[1]), (row[2], row[3])


def pairs(values: Iterable[tuple[Ref, Ref]]) -> list[tuple[str, str, str, str]]:
    return list(dict.fromkeys(pair(v) for v in values))


def action_fields(action: StewardAction) -> tuple[str, str, str, datetime, str]:
    """``(action, actor, reason, at in UTC, payload as JSON)``; InvalidStewardAction if wrong."""
    if action.action not in STEWARD_ACTIONS:
        raise InvalidStewardAction(
            f"unknown steward action {action.action!r}; known: {', '.join(STEWARD_ACTIONS)}")
    if not (_text(action.actor) and isinstance(action.reason, str) and action.reason.strip()):
        raise InvalidStewardAction("a steward action needs an actor (who) and a reason (why)")
    if not isinstance(action.at, datetime) or action.at.utcoffset() is None:
        raise InvalidStewardAction(
            "a steward action's time must be a timezone-aware datetime, e.g. datetime.now(UTC)")
    try:
        payload = json.dumps(action.payload, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidStewardAction(f"a steward action's payload must be JSON-able: {exc}") from None
    if not isinstance(action.payload, dict):
        raise InvalidStewardAction("a steward action's payload must be a dict")
    return action.action, action.actor, action.reason, action.at.astimezone(UTC), payload


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a whole number >= 0, not {limit!r}")


def action_from_row(row: Any) -> StewardAction:
    """A :class:`StewardAction` from ``(id, action, actor, reason, at, payload)``."""
    ident, name, actor, reason, at, payload = row
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if isinstance(payload, str):
        payload = json.loads(payload)
    return StewardAction(ident, name, actor, reason, at.astimezone(UTC), payload)


PairRow = tuple[str, str, str, str]


def constraint_changes(
    must_link: Iterable[tuple[Ref, Ref]], cannot_link: Iterable[tuple[Ref, Ref]],
    drop_must_link: Iterable[tuple[Ref, Ref]], drop_cannot_link: Iterable[tuple[Ref, Ref]],
) -> list[tuple[str, list[PairRow], list[PairRow]]]:
    """``(table, pairs to add, pairs to drop)`` for ``must_links`` and ``cannot_links``.

    A new decision about a pair replaces the opposite one; one action cannot say two things
    about the same pair.
    """
    must, cannot = pairs(must_link), pairs(cannot_link)
    drop_must, drop_cannot = pairs(drop_must_link), pairs(drop_cannot_link)
    for first, second, says in ((must, cannot, "must-link and cannot-link"),
                                (must, drop_must, "must-link and drop the must-link"),
                                (cannot, drop_cannot, "cannot-link and drop the cannot-link")):
        both = set(first) & set(second)
        if both:
            a_source, a_key, b_source, b_key = min(both)
            raise InvalidStewardAction(
                f"one action cannot both {says} {(a_source, a_key)!r} and {(b_source, b_key)!r}")
    return [("must_links", must, list(dict.fromkeys(drop_must + cannot))),
            ("cannot_links", cannot, list(dict.fromkeys(drop_cannot + must)))]
