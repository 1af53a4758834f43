"""The policy model: categories of fields, purposes, roles with rules, masks and row filters.

Everything here is a frozen value made by :mod:`gateway.policy.loader` from the policy file;
decisions are taken by :mod:`gateway.policy.decide`. Fields are named by schema coordinate
(``Customer.emails``), see :mod:`gateway.policy.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from gateway.policy.masks import Mask

#: Attributes of a principal that a row filter may name as ``$principal.<name>``.
PRINCIPAL_ATTRIBUTES = ("subject", "shop", "region", "customer_id", "kind")
#: Attributes of a source that a row filter may test: its logical name; for a shop's source,
#: ``shop`` is that same name (the way the API names shops) and ``label`` the shop's label;
#: the connector ``kind``; the ``region`` its data lives in.
SOURCE_ATTRIBUTES = ("name", "shop", "label", "kind", "region")
ROW_KINDS = ("known_in", "sources", "subject")


@dataclass(frozen=True)
class Rule:
    """What a role may do with a category or a field: allow, deny, or read it masked."""

    effect: str  # "allow" | "deny" | "mask"
    mask: Mask | None = None

    def __str__(self) -> str:
        return f"mask {self.mask}" if self.mask else self.effect


ALLOW = Rule("allow")
DENY = Rule("deny")


@dataclass(frozen=True)
class Match:
    """A source attribute must equal one of ``values``, or the principal's ``principal`` attribute."""

    attribute: str
    values: tuple[str, ...] = ()
    principal: str | None = None


@dataclass(frozen=True)
class RowRule:
    """Which customers (``known_in``, ``subject``) or sources (``sources``) a role may read.

    ``known_in``: the customer has a record in a source passing every match.
    ``sources``: only sources passing every match are read at all.
    ``subject``: only the customer whose global id is the principal's ``customer_id``.
    """

    kind: str
    matches: tuple[Match, ...]
    role: str


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Purpose:
    """Why a request reads data. ``objectable``: whether a customer's objection to it (GDPR art.
    21: legitimate interest, direct marketing) is honoured; a legal obligation (billing) or the
    performance of a contract is not objectable, and no objection hides anyone from it."""

    name: str
    description: str
    categories: frozenset[str]
    objectable: bool = True


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    inherits: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    introspection: bool | None = None  # None: as the parents say (no parent: not allowed)
    all_fields: bool | None = None  # sees fields no category names (deny by default)
    rules: Mapping[str, Rule] = field(default_factory=dict)  # category or coordinate -> rule
    rows: tuple[RowRule, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy file."""

    categories: Mapping[str, Category]
    purposes: Mapping[str, Purpose]
    roles: Mapping[str, Role]
    path: str = "<policy>"
    digest: str = ""  # of the file's content: views of different policies never share a cache
    warnings: tuple[str, ...] = ()

    @cached_property
    def category_of(self) -> dict[str, str]:
        return {c: cat.name for cat in self.categories.values() for c in cat.fields}

    def ancestry(self, role: str) -> tuple[Role, ...]:
        """The role, then its parents in the order listed, depth first, each once."""
        seen: dict[str, Role] = {}

        def walk(name: str) -> None:
            if name in seen:
                return
            seen[name] = self.roles[name]
            for parent in self.roles[name].inherits:
                walk(parent)

        walk(role)
        return tuple(seen.values())

    @cached_property
    def not_objectable(self) -> frozenset[str]:
        """The purposes no objection applies to (``objectable: false``)."""
        return frozenset(p.name for p in self.purposes.values() if not p.objectable)

    def purposes_of(self, role: str) -> frozenset[str]:
        return frozenset(p for r in self.ancestry(role) for p in r.purposes)

    def introspection_of(self, role: str) -> bool:
        return next((r.introspection for r in self.ancestry(role)
                     if r.introspection is not None), False)

    def all_fields_of(self, role: str) -> bool:
        return next((r.all_fields for r in self.ancestry(role) if r.all_fields is not None), False)

    def rows_of(self, role: str) -> tuple[RowRule, ...]:
        """Inherited row filters all apply: a child role may narrow its parent's, never widen."""
        return tuple(rule for r in self.ancestry(role) for rule in r.rows)
