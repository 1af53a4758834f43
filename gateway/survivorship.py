"""Survivorship: which record's value becomes a customer's golden value, and why.

The ``survivorship:`` section of ``panorama.yaml`` names a rule per field (and a default);
:func:`parse_survivorship` turns it into a frozen :class:`Survivorship` once, at load.
:func:`pick_value` applies a field's rule to one cluster's records in a linear pass and says
why its value won (``"most_frequent (3 of 4 records)"``).

Without the section every field is ``source_priority`` over config order: the first source
that gives a value wins, which is how the gateway has always merged.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.records import CustomerRecord
from gateway.transforms import fold

CUSTOMER_KINDS = ("PERSON", "ORGANIZATION")
DEFAULT_RULE = "source_priority"
TIE = "; tie broken by source priority"


def _text_key(text: str | None) -> str:
    """Case-, accent- and spacing-insensitive form of a text."""
    return " ".join(fold(text).split()) if text else ""


def _name(record: CustomerRecord) -> tuple[str | None, str | None, str | None] | None:
    parts = (record.given_name, record.family_name, record.full_name)
    return parts if any(parts) else None


@dataclass(frozen=True)
class Attribute:
    """How the rules see one golden field of a record."""

    read: Callable[[CustomerRecord], Any]
    """The record's value, or None when it gives none."""
    key: Callable[[Any], Hashable] = lambda value: value
    """Values with one key are one value (most_frequent counts them together)."""
    parts: Callable[[Any], int] = lambda value: 1
    """How complete a value is (most_complete)."""
    unit: str = "part"
    """What ``parts`` counts, for the reason."""
    preferred: Callable[[Any], bool] = lambda value: True
    """source_priority takes a preferred value before any other."""
    preferred_label: str = "a value"


# The golden single-valued fields of a Customer. Lists (names, emails, phones, addresses,
# loyalty cards) keep every source's values and take no rule.
ATTRIBUTES: dict[str, Attribute] = {
    # A name with given and family names beats a partial one under source_priority: the
    # gateway always preferred it, and a configless gateway must answer as before.
    "name": Attribute(
        read=_name,
        key=lambda parts: tuple(_text_key(p) for p in parts),
        parts=lambda parts: sum(1 for p in parts if p),
        preferred=lambda parts: bool(parts[0] and parts[1]),
        preferred_label="given and family names"),
    "legal_name": Attribute(read=lambda r: r.legal_name or None, key=_text_key,
                            parts=lambda text: len(text.split()), unit="word"),
    "birth_date": Attribute(read=lambda r: r.birth_date),
    # Every record has a kind: an unmapped one reads as PERSON, the documented default.
    "kind": Attribute(read=lambda r: r.kind if r.kind in CUSTOMER_KINDS else "PERSON"),
}
FIELDS = tuple(ATTRIBUTES)
LIST_FIELDS = ("names", "emails", "phones", "addresses", "loyalty_cards")


@dataclass(frozen=True)
class Survivorship:
    """The parsed ``survivorship:`` section; the defaults are the configless behaviour."""

    default: str = DEFAULT_RULE
    """The rule of every field not in ``fields``."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """Field name -> rule name."""
    priority: tuple[str, ...] = ()
    """Every source in priority order, when ``source_priority`` is configured; empty means
    config order (a cluster's records already come in it)."""
    rank: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank", {name: i for i, name in enumerate(self.priority)})

    def rule(self, name: str) -> str:
        return self.fields.get(name, self.default)


@dataclass(frozen=True, slots=True)
class Choice:
    """The winning value of a field, the record it comes from, and why it won."""

    record: CustomerRecord
    value: Any
    reason: str


Candidate = tuple[tuple, CustomerRecord, Any]  # (priority order, record, value)
Rule = Callable[[Attribute, Sequence[CustomerRecord], Survivorship], Choice | None]


def _candidates(attribute: Attribute, records: Sequence[CustomerRecord],
                rules: Survivorship) -> Iterable[Candidate]:
    """Records that give a value, with their place in the priority order (then cluster order)."""
    last = len(rules.rank)
    for index, record in enumerate(records):
        value = attribute.read(record)
        if value is not None:
            yield (rules.rank.get(record.source, last), index), record, value


def _best_by(attribute: Attribute, candidates: Iterable[Candidate],
             score: Callable[[CustomerRecord, Any], Any]) -> tuple[Candidate, Any, bool] | None:
    """The candidate with the lowest score, then highest priority; and whether a different
    value had the same score (a tie the priority broke)."""
    best: Candidate | None = None
    best_score: Any = None
    top_keys: set[Hashable] = set()
    for candidate in candidates:
        order, record, value = candidate
        mark = score(record, value)
        if best is None or mark < best_score:
            best, best_score, top_keys = candidate, mark, {attribute.key(value)}
        elif mark == best_score:
            top_keys.add(attribute.key(value))
            if order < best[0]:
                best = candidate
    return None if best is None else (best, best_score, len(top_keys) > 1)


def source_priority(attribute: Attribute, records: Sequence[CustomerRecord],
                    rules: Survivorship) -> Choice | None:
    """The first source in the priority order that gives a (preferred) value."""
    found = _best_by(attribute, _candidates(attribute, records, rules),
                     lambda _, value: not attribute.preferred(value))
    if found is None:
        return None
    (_, record, value), _, _ = found
    if not rules.priority:
        return Choice(record, value, "source_priority")
    if record.source == rules.priority[0]:
        return Choice(record, value, f"source_priority ({record.source} first)")
    label = attribute.preferred_label if attribute.preferred(value) else "a value"
    return Choice(record, value, f"source_priority ({record.source} first with {label})")


def _epoch(stamp: datetime) -> float:
    # Sources without a time zone are read as UTC (the datetime transform does the same).
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def most_recent(attribute: Attribute, records: Sequence[CustomerRecord],
                rules: Survivorship) -> Choice | None:
    """The value of the record updated last; records without updated_at come after."""
    found = _best_by(attribute, _candidates(attribute, records, rules),
                     lambda record, _: (0, -_epoch(record.updated_at)) if record.updated_at
                     else (1, 0.0))
    if found is None:
        return None
    (_, record, value), _, tied = found
    if record.updated_at is None:
        return Choice(record, value, "most_recent (no updated_at; source priority)")
    return Choice(record, value, f"most_recent (updated {record.updated_at.isoformat()}"
                                 f"{TIE if tied else ''})")


def most_complete(attribute: Attribute, records: Sequence[CustomerRecord],
                  rules: Survivorship) -> Choice | None:
    """The value with the most non-empty parts."""
    found = _best_by(attribute, _candidates(attribute, records, rules),
                     lambda _, value: -attribute.parts(value))
    if found is None:
        return None
    (_, record, value), score, tied = found
    count = -score
    unit = attribute.unit if count == 1 else attribute.unit + "s"
    return Choice(record, value, f"most_complete ({count} {unit}{TIE if tied else ''})")


def most_frequent(attribute: Attribute, records: Sequence[CustomerRecord],
                  rules: Survivorship) -> Choice | None:
    """The value the most records give, compared case- and accent-insensitively."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, Candidate] = {}
    for candidate in _candidates(attribute, records, rules):
        key = attribute.key(candidate[2])
        counts[key] = counts.get(key, 0) + 1
        if key not in first or candidate[0] < first[key][0]:
            first[key] = candidate
    found = _best_by(attribute, first.values(),
                     lambda _, value: -counts[attribute.key(value)])
    if found is None:
        return None
    (_, record, value), score, tied = found
    total = sum(counts.values())
    noun = "record" if total == 1 else "records"
    return Choice(record, value, f"most_frequent ({-score} of {total} {noun}{TIE if tied else ''})")


RULES: dict[str, Rule] = {
    "source_priority": source_priority,
    "most_recent": most_recent,
    "most_complete": most_complete,
    "most_frequent": most_frequent,
}


def pick_value(rules: Survivorship, name: str, records: Sequence[CustomerRecord]) -> Choice | None:
    """The golden value of field ``name`` among one customer's records (in cluster order)."""
    return RULES[rules.rule(name)](ATTRIBUTES[name], records, rules)


SECTION_KEYS = ("default", "source_priority", "fields")


def parse_survivorship(doc: Any, sources: Sequence[str], location: str = "survivorship"
                       ) -> tuple[Survivorship, list[tuple[str, str]]]:
    """The rules of a ``survivorship`` section and its problems as ``(location, message)``.

    ``sources`` are the configured source names, in config order. With problems the
    configless rules are returned (the loader refuses the config anyway).
    """
    problems: list[tuple[str, str]] = []

    def problem(loc: str, message: str) -> None:
        problems.append((loc, message))

    def rule(value: Any, loc: str) -> str | None:
        if isinstance(value, str) and value in RULES:
            return value
        problem(loc, f"unknown rule {value!r}; {_hint(value, RULES)}allowed: {', '.join(RULES)}")
        return None

    if doc is None:
        return Survivorship(), problems
    if not isinstance(doc, Mapping):
        problem(location, f"expected a mapping with keys {', '.join(SECTION_KEYS)}, "
                          f"got {type(doc).__name__}")
        return Survivorship(), problems
    for key in doc:
        if key not in SECTION_KEYS:
            problem(f"{location}.{key}",
                    f"unknown key; {_hint(key, SECTION_KEYS)}allowed: {', '.join(SECTION_KEYS)}")
    default = rule(doc["default"], f"{location}.default") if "default" in doc else DEFAULT_RULE
    fields: dict[str, str] = {}
    fields_doc = doc.get("fields") or {}
    if not isinstance(fields_doc, Mapping):
        problem(f"{location}.fields", f"expected a mapping of field to rule (fields: "
                                      f"{', '.join(FIELDS)}), got {type(fields_doc).__name__}")
        fields_doc = {}
    for name, value in fields_doc.items():
        loc = f"{location}.fields.{name}"
        if name in LIST_FIELDS:
            problem(loc, f"a list keeps every source's values and takes no rule; rules apply to: "
                         f"{', '.join(FIELDS)}")
        elif name not in ATTRIBUTES:
            problem(loc, f"unknown field; {_hint(name, FIELDS)}allowed: {', '.join(FIELDS)}")
        elif (chosen := rule(value, loc)) is not None:
            fields[name] = chosen
    priority = _priority(doc.get("source_priority"), sources, f"{location}.source_priority",
                         problem) if "source_priority" in doc else ()
    if problems or default is None:
        return Survivorship(), problems
    return Survivorship(default, fields, priority), problems


def _priority(value: Any, sources: Sequence[str], loc: str,
              problem: Callable[[str, str], None]) -> tuple[str, ...]:
    """Every source in priority order: the listed ones, then the others in config order."""
    known = ", ".join(sources)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problem(loc, f"expected a list of source names (configured: {known}), "
                     f"got {type(value).__name__}")
        return ()
    listed: list[str] = []
    for i, name in enumerate(value):
        if name not in sources:
            problem(f"{loc}[{i}]", f"unknown source {name!r}; {_hint(name, sources)}"
                                   f"configured sources: {known}")
        elif name in listed:
            problem(f"{loc}[{i}]", f"source {name!r} is listed twice; list each source once")
        else:
            listed.append(name)
    return (*listed, *(s for s in sources if s not in listed))


def _hint(value: Any, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f"did you mean '{close[0]}'? " if close else ""
