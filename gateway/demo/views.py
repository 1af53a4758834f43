"""The same customer as each role sees it: what `panorama demo` prints, and the tests check.

Every role is asked the same question about one customer, with the fields below, narrowed to
what its view may select: a field its view hides would fail validation (naming the field), so
it is left out and listed as hidden instead. Masks show in the values. Staff ask
``customer(id:)``; a role that may not (the customer, bound to themselves) asks ``me``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.policy import Catalog, RoleView

Tree = Mapping[str, "Tree | None"]

#: The question, as a selection on Customer: field (with arguments) -> sub-selection.
QUESTION: Tree = {
    "displayName": None,
    "emails": {"address": None},
    "phones": {"number": None},
    "addresses": {"line1": None, "city": None},
    "birthDate": {"value": None},
    "loyaltyCards": {"number": None},
    "transactions(first: 2)": {"amount": {"amount": None, "currency": None}, "reference": None},
    "interactions(first: 1)": {"channel": None, "summary": None},
    "matchEvidence": {"rule": None},
}


def _render(tree: Tree) -> str:
    return " ".join(f"{name} {{ {_render(sub)} }}" if sub else name for name, sub in tree.items())




def narrowed(view: RoleView, catalog: Catalog, type_name: str = "Customer",
             tree: Tree = QUESTION) -> tuple[dict[str, Any], list[str]]:
    """The part of ``tree`` the view may select, and the coordinates it hides."""
    kept: dict[str, Any] = {}
    hidden: list[str] = []
    for key, sub in tree.items():
        coordinate = f"{type_name}.{key.partition('(')[0]}"
        if not view.can_read(coordinate):
            hidden.append(coordinate)
            continue
        if sub is None:
            kept[key] = None
            continue
        inner, more = narrowed(view, catalog, catalog.fields[coordinate].type_name, sub)
        hidden += more
        if inner:
            kept[key] = inner
    return kept, hidden


#: Ways to the customer: (root fields that must be visible, document around the selection,
#: path of the customer in the answer); the first the view allows is asked.
ENTRIES = (
    (("Query.customer",), 'customer(id: "{id}") {{ {selection} }}', ("customer",)),
    (("Query.me", "Me.customer"), "me {{ customer {{ {selection} }} }}", ("me", "customer")),
)


def _entry(view: RoleView) -> tuple[str, tuple[str, ...]]:
    for needs, template, path in ENTRIES:
        if all(view.can_read(c) for c in needs):
            return template, path
    raise ValueError(f"{view.describe()} has no way to a customer")


def role_query(view: RoleView, catalog: Catalog,
               customer_id: str) -> tuple[str, list[str], tuple[str, ...]]:
    """The question narrowed to the view, as a document; what it leaves out; where the customer
    is in the answer."""
    kept, hidden = narrowed(view, catalog)
    template, path = _entry(view)
    return f"{{ {template.format(id=customer_id, selection=_render(kept))} }}", hidden, path


def full_query(view: RoleView, customer_id: str) -> str:
    """The whole question: a role that may not read part of it is refused at validation."""
    template, _ = _entry(view)
    return f"{{ {template.format(id=customer_id, selection=_render(QUESTION))} }}"


def customer_in(data: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The customer at ``path`` of an answer's data (None where a step is null)."""
    value: Any = data
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    """Values of one field: the parts of an item side by side, items apart."""
    if isinstance(value, list):
        return "; ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return " ".join(_text(item) for item in value.values() if item is not None)
    return str(value)


def summary(customer: Mapping[str, Any] | None, hidden: list[str], width: int = 100) -> list[str]:
    """A few lines: each field's values (masked ones as the role sees them), then what is hidden."""
    if customer is None:
        return ["  (no such customer, as far as this role can tell)"]
    lines = []
    for field, value in customer.items():
        text = _text(value) if value not in (None, []) else "-"
        lines.append(f"  {field:<13} {text if len(text) <= width else text[:width - 3] + '...'}")
    if hidden:
        lines.append(f"  {'hidden':<13} {', '.join(hidden)}")
    return lines
