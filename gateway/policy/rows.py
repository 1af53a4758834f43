"""Row filters: which customers, and which sources' records, a principal may read.

A role's ``rows:`` are templates (``shop: $principal.shop``); :func:`scope_for` fills them in
with the principal's attributes and gives a :class:`RowScope`. The planner pushes a scope down
(sources it may not read are never asked; a listing starts only from sources a customer must
be known in) and re-checks every customer with :meth:`RowScope.admits`, the way filters are
pushed down as a superset and re-checked in the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.policy.errors import PrincipalIncomplete
from gateway.policy.model import Match, RowRule
from gateway.principal import Principal

#: source name -> its attributes (name, shop, label, kind, region); see :func:`source_facts`.
SourceFacts = Mapping[str, Mapping[str, str | None]]


@dataclass(frozen=True)
class SourceTest:
    """A source passes when its ``attribute`` is one of ``values``."""

    attribute: str
    values: frozenset[str]

    def passes(self, facts: Mapping[str, str | None]) -> bool:
        return facts.get(self.attribute) in self.values


Term = tuple[SourceTest, ...]  # a source passes a term when it passes every test of it


@dataclass(frozen=True)
class RowScope:
    """The rows one request may read; the empty scope reads everything."""

    known_in: tuple[Term, ...] = ()  # the customer has a record in a source passing each term
    sources: tuple[Term, ...] = ()  # only sources passing every term are read
    customer_ids: frozenset[str] | None = None  # only these customers (a data subject: one)

    @property
    def unrestricted(self) -> bool:
        return not self.known_in and not self.sources and self.customer_ids is None

    def readable_sources(self, facts: SourceFacts) -> frozenset[str]:
        """Sources that may be read at all; the others are never asked."""
        return frozenset(name for name, attrs in facts.items()
                         if all(_passes(term, attrs) for term in self.sources))

    def listing_sources(self, facts: SourceFacts) -> frozenset[str]:
        """Sources a page of customers may start from: a superset, re-check with admits()."""
        readable = self.readable_sources(facts)
        if not self.known_in:
            return readable
        candidates = [frozenset(n for n in readable if _passes(term, facts[n]))
                      for term in self.known_in]
        return min(candidates, key=len)

    def admits(self, customer_id: str, record_sources: Iterable[str], facts: SourceFacts) -> bool:
        """Whether a customer (its id, the sources of its records) is in scope."""
        if self.customer_ids is not None and customer_id not in self.customer_ids:
            return False
        readable = self.readable_sources(facts)
        present = [s for s in record_sources if s in readable]
        if not present:
            return False
        return all(any(_passes(term, facts[s]) for s in present) for term in self.known_in)


def _passes(term: Term, attrs: Mapping[str, str | None]) -> bool:
    return all(test.passes(attrs) for test in term)


def scope_for(rows: Sequence[RowRule], principal: Principal) -> RowScope:
    """Fill the rules in with the principal's attributes; every rule applies (AND)."""
    known_in: list[Term] = []
    sources: list[Term] = []
    ids: frozenset[str] | None = None
    for rule in rows:
        term = tuple(SourceTest(m.attribute, _values(m, rule, principal)) for m in rule.matches)
        if rule.kind == "known_in":
            known_in.append(term)
        elif rule.kind == "sources":
            sources.append(term)
        else:
            own = frozenset(v for t in term for v in t.values)
            ids = own if ids is None else ids & own
    return RowScope(tuple(known_in), tuple(sources), ids)


def _values(match: Match, rule: RowRule, principal: Principal) -> frozenset[str]:
    if match.principal is None:
        return frozenset(match.values)
    value = getattr(principal, match.principal, None)
    if value is None or value == "":
        raise PrincipalIncomplete(
            f"role '{rule.role}' reads only rows matching the principal's {match.principal}, and "
            f"this principal has none; issue the token with a {match.principal} (e.g. "
            f"`panorama token --role {rule.role} --{match.principal.replace('_', '-')} VALUE`)")
    return frozenset({str(value)})


def source_facts(config: Any) -> dict[str, dict[str, str | None]]:
    """The attributes row filters test, for every source of a gateway.config.Config."""
    facts: dict[str, dict[str, str | None]] = {}
    for name, source in config.sources.items():
        facts[name] = {"name": name, "shop": name if source.shop else None, "label": source.shop,
                       "kind": source.kind, "region": getattr(source, "region", None)}
    return facts
