"""Which customer columns an operation needs, read from its selection.

Identity always needs the columns that carry keys (e-mails, phones, card numbers, VAT number,
kind, ``updated_at``) and any column the consent rules read, whatever is selected. The others
are read only when a selected field shows them: names for ``name``/``names``/``displayName``/
``legalName``, the birth date for ``birthDate``, addresses (and their joined tables) for
``addresses``, card points for ``loyaltyCards``. The whole operation is read once, fragments
included, so that every root field of a request shares one set of columns (records are shared
by the request's identity work).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ObjectValueNode,
    SelectionSetNode,
    ValueNode,
)

from gateway.mapping import CustomerMapping

#: Column groups a customer mapping may leave unread, and the fields (GraphQL names, or filter
#: parts) that need each. Any field not named here needs no optional group.
OPTIONAL_GROUPS: Mapping[str, frozenset[str]] = {
    "names": frozenset({"name", "names", "displayName", "legalName", "filter.name"}),
    "birth_date": frozenset({"birthDate"}),
    "addresses": frozenset({"addresses", "filter.city"}),
    "points": frozenset({"loyaltyCards"}),
}
#: Operations that read a customer whole (a customer's own export of their data).
WHOLE: frozenset[str] = frozenset({"me"})


def selected_names(info: Any) -> frozenset[str]:
    """Every field name the operation selects, at any depth (fragments followed); a field
    with a ``filter`` argument adds the filter's parts that are re-checked on columns."""
    names: set[str] = set()
    fragments = info._raw_info.fragments  # graphql-core's, by name

    def walk(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> None:
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                names.add(node.name.value)
                for argument in node.arguments or ():
                    if argument.name.value == "filter":
                        names.update(_filter_parts(argument.value))
                walk(node.selection_set, seen)
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set, seen)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, seen | {node.name.value})

    walk(info.operation.selection_set, frozenset())
    return frozenset(names)


def _filter_parts(value: ValueNode) -> set[str]:
    """``filter.<part>`` for each part a literal filter gives; every part for a variable."""
    if isinstance(value, ObjectValueNode):
        return {f"filter.{f.name.value}" for f in value.fields}
    return {"filter.name", "filter.city"}  # the parts re-checked on optional columns


def groups_for(names: Iterable[str]) -> frozenset[str] | None:
    """The optional column groups ``names`` need; None: every column."""
    names = frozenset(names)
    if names & WHOLE:
        return None
    return frozenset(group for group, needs in OPTIONAL_GROUPS.items() if names & needs)


def customer_columns(mapping: CustomerMapping, groups: frozenset[str] | None,
                     keys: bool = True) -> tuple[str, ...]:
    """The logical fields of ``mapping`` to read for ``groups`` (None: all of them). ``keys``
    False leaves out e-mails, phones and cards too: for a reader that takes customers from the
    index alone and shows none of them (an export), they would be parsed for nothing."""
    every = tuple(mapping.entity.fields)
    if groups is None:
        return every
    skipped: set[str] = set()
    if not keys:
        skipped.update((*mapping.email_fields, *mapping.phone_fields, *mapping.card_fields))
        skipped.update(c.points.logical for c in mapping.cards if c.points and c.points.logical)
    if "names" not in groups:
        skipped.update(mapping.name_fields)
    if "birth_date" not in groups and (spec := mapping.scalars.get("birth_date")) and spec.logical:
        skipped.add(spec.logical)
    if "addresses" not in groups:
        skipped.update(p.logical for a in mapping.addresses for p in a.parts.values() if p.logical)
    if "points" not in groups:
        skipped.update(c.points.logical for c in mapping.cards if c.points and c.points.logical)
    return tuple(f for f in every if f not in skipped)
