"""Consent the sources hold: turning their opt-out fields into objections, per purpose.

A CRM contact's ``hs_email_optout`` or ``marketing_opt_out`` property, a shop's
``newsletter`` column: each source may have fields whose value says that the customer objects
to some purposes. The ``consent.sources`` section of the config names them::

    consent:
      sources:
        crm:
          - field: marketing_opt_out     # true (the default objects_when) = objects
            purposes: [marketing]
        paris:
          field: newsletter              # one rule may be written without the list
          objects_when: [0, null]        # newsletter = 0, or not set = objects
          purposes: [marketing]

Values are compared as flags: ``true/yes/y/on/t/1`` and booleans true are ``true``,
``false/no/n/off/f/0`` are ``false``, ``null`` is a missing value; other text is compared
lower-cased. The read is live, with the records of the request: no cache to go stale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from gateway.consent.checks import PURPOSE

Owner = str | tuple[str, str]
"""Whose record it is: the customer's global id, or the record's (source, local key)."""

TRUE, FALSE, NULL = "true", "false", "null"
_WORDS = {"true": TRUE, "yes": TRUE, "y": TRUE, "on": TRUE, "t": TRUE, "1": TRUE,
          "false": FALSE, "no": FALSE, "n": FALSE, "off": FALSE, "f": FALSE, "0": FALSE}
#: A source column or CRM property name.
FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
RULE_KEYS = ("field", "purposes", "objects_when")


class SourceValues(NamedTuple):
    """What one source record says: its owner, its source, its opt-out fields' values."""

    owner: Owner
    source: str
    values: Mapping[str, object]


def flag(value: object) -> str:
    """A source value as a comparable flag: ``true``, ``false``, ``null`` or lower-case text."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return TRUE if value == 1 else FALSE
    text = str(value).strip().lower()
    return _WORDS.get(text, text)


@dataclass(frozen=True)
class OptOutRule:
    """A source field whose value, when it is one of ``objects_when``, objects to ``purposes``."""

    field: str
    purposes: tuple[str, ...]
    objects_when: frozenset[str] = frozenset({TRUE})

    def objects(self, value: object) -> bool:
        return flag(value) in self.objects_when


def objections_from_records(records: Iterable[SourceValues | tuple[Owner, str, Mapping[str, object]]],
                            rules: Mapping[str, Sequence[OptOutRule]]) -> set[tuple[Owner, str]]:
    """``(owner, purpose)`` for every objection the records' opt-out fields express.

    A field missing from a record's values counts as ``null``. Sources without rules say
    nothing about consent.
    """
    found: set[tuple[Owner, str]] = set()
    for owner, source, values in records:
        for rule in rules.get(source, ()):
            if rule.objects(values.get(rule.field)):
                found.update((owner, purpose) for purpose in rule.purposes)
    return found


def parse_rules(doc: Any, sources: Sequence[str] | None, location: str = "consent.sources"
                ) -> tuple[dict[str, tuple[OptOutRule, ...]], list[tuple[str, str]]]:
    """The rules of ``consent.sources`` and their problems as ``(location, message)``.

    ``sources`` are the configured source names (None: not checked).
    """
    problems: list[tuple[str, str]] = []
    rules: dict[str, tuple[OptOutRule, ...]] = {}
    if doc is None:
        return rules, problems
    if not isinstance(doc, Mapping):
        return rules, [(location, "expected a mapping of source name to opt-out rules")]
    for source, spec in doc.items():
        where = f"{location}.{source}"
        if sources is not None and source not in sources:
            problems.append((where, f"unknown source; configured: {', '.join(sources) or 'none'}"))
            continue
        items = spec if isinstance(spec, list) else [spec]
        parsed = [_rule(item, f"{where}[{i}]" if isinstance(spec, list) else where, problems)
                  for i, item in enumerate(items)]
        rules[str(source)] = tuple(r for r in parsed if r is not None)
    return rules, problems


def _rule(doc: Any, where: str, problems: list[tuple[str, str]]) -> OptOutRule | None:
    if not isinstance(doc, Mapping):
        problems.append((where, "expected a rule: {field: NAME, purposes: [PURPOSE, ...]}"))
        return None
    before = len(problems)
    for key in doc:
        if key not in RULE_KEYS:
            problems.append((f"{where}.{key}", f"unknown key; allowed: {', '.join(RULE_KEYS)}"))
    field = doc.get("field")
    if not (isinstance(field, str) and FIELD.fullmatch(field)):
        problems.append((f"{where}.field", "the source's column or CRM property that holds the"
                                           " opt-out, e.g. marketing_opt_out"))
    purposes = doc.get("purposes")
    if (not isinstance(purposes, list) or not purposes
            or not all(isinstance(p, str) and PURPOSE.fullmatch(p) for p in purposes)):
        problems.append((f"{where}.purposes", "a list of purposes (lower-case names), e.g."
                                              " [marketing]"))
    when = doc.get("objects_when", [True])
    if not isinstance(when, list) or not when or not all(
            v is None or isinstance(v, str | int | bool) for v in when):
        problems.append((f"{where}.objects_when", "a list of the values that mean the customer"
                                                  " objects, e.g. [true] or [0, null]"))
    if len(problems) > before:
        return None
    return OptOutRule(str(field), tuple(dict.fromkeys(map(str, purposes or ()))),
                      frozenset(flag(v) for v in when))
