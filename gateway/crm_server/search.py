"""``POST /crm/v3/objects/{objectType}/search``: filters, sorts, paging and HubSpot's limits.

filterGroups are OR-ed, the filters inside a group AND-ed. Strings compare case-insensitively
on trimmed values, numbers (``hs_object_id`` among them) numerically, datetimes as instants
(ISO 8601 or epoch milliseconds, naive meaning UTC), like HubSpot.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.crm_server.errors import invalid
from gateway.crm_server.store import CRMObject, Store


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """HubSpot's search limits; a request past one is answered 400."""

    filter_groups: int = 5
    filters_per_group: int = 6
    filters: int = 18
    page_size: int = 200
    in_values: int = 100
    #: Results reachable by paging one search (``after`` past it is refused).
    window: int = 10_000


Match = Callable[[list[Any]], bool]

# -- comparing values ------------------------------------------------------------------------


def _instant(text: str) -> Decimal | None:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return Decimal(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Decimal(int(moment.timestamp() * 1000))


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        return None


#: How a property type's text values become comparable; None when the text does not parse.
COERCE: dict[str, Callable[[str], Any]] = {
    "number": _number,
    "datetime": _instant,
}


def _text(value: str) -> str:
    return value.strip().casefold()


def _token_match(pattern: str) -> Callable[[str], bool]:
    """CONTAINS_TOKEN: ``*`` is a wildcard; without one, a whole word must match."""
    pattern = pattern.strip().casefold()
    if "*" in pattern:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
        return lambda value: regex.fullmatch(value.strip().casefold()) is not None
    return lambda value: pattern in re.split(r"[\s\W_]+", value.casefold()) or (
        _text(value) == pattern)


# Positive operators; each NOT_ form is the negation of one of these.
def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any], Match]:
    return lambda target: lambda values: any(v is not None and test(v, target) for v in values)


OPERATORS: dict[str, tuple[str, Callable[..., Match]]] = {
    # operator: (arguments it takes, builder of a match over an object's coerced values)
    "EQ": ("value", _compare(lambda v, t: v == t)),
    "LT": ("value", _compare(lambda v, t: v < t)),
    "LTE": ("value", _compare(lambda v, t: v <= t)),
    "GT": ("value", _compare(lambda v, t: v > t)),
    "GTE": ("value", _compare(lambda v, t: v >= t)),
    "BETWEEN": ("range", lambda low, high: lambda values: any(
        v is not None and low <= v <= high for v in values)),
    "IN": ("values", lambda targets: lambda values: any(v in targets for v in values)),
    "HAS_PROPERTY": ("none", lambda: lambda values: bool(values)),
    "CONTAINS_TOKEN": ("raw", lambda match: lambda values: any(match(v) for v in values)),
}
NEGATIONS = {"NEQ": "EQ", "NOT_IN": "IN", "NOT_HAS_PROPERTY": "HAS_PROPERTY",
             "NOT_CONTAINS_TOKEN": "CONTAINS_TOKEN"}
KNOWN_OPERATORS = sorted([*OPERATORS, *NEGATIONS])


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """One filter ready to test objects."""

    prop: str
    coerce: Callable[[str], Any]
    raw: bool
    match: Match
    negate: bool
    #: The values an EQ or IN filter accepts (coerced), so that an index can answer it.
    targets: frozenset[Any] | None = None

    def __call__(self, store: Store, object_type: str, obj: CRMObject) -> bool:
        values = store.values(object_type, obj, self.prop)
        hit = self.match(values if self.raw else [self.coerce(v) for v in values])
        return hit != self.negate


def _scalar(raw: Mapping[str, Any], key: str, prop: str) -> str:
    value = raw.get(key)
    if value is None or isinstance(value, (dict, list)):
        raise invalid(f"filter on '{prop}' with operator {raw.get('operator')} needs a '{key}'")
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def compile_filter(store: Store, object_type: str, raw: Any,
                   limits: SearchLimits) -> CompiledFilter:
    """Check one filter of a request and build its test; 400 on anything malformed."""
    if not isinstance(raw, Mapping):
        raise invalid("each filter must be an object with propertyName and operator")
    prop = raw.get("propertyName")
    operator = str(raw.get("operator", "EQ")).upper()
    if not isinstance(prop, str) or not prop:
        raise invalid("filter is missing propertyName")
    definition = store.property(object_type, prop)
    if definition is None:
        raise invalid(f"Property '{prop}' does not exist on object type '{object_type}'")
    negate = operator in NEGATIONS
    positive = NEGATIONS.get(operator, operator)
    if positive not in OPERATORS:
        raise invalid(f"Unknown operator '{operator}'; known: {', '.join(KNOWN_OPERATORS)}")
    takes, build = OPERATORS[positive]
    coerce_type = COERCE.get(definition.type, _text)

    def coerce_arg(text: str) -> Any:
        value = coerce_type(text)
        if value is None:
            raise invalid(f"'{text}' is not a valid {definition.type} for property '{prop}'")
        return value

    targets: frozenset[Any] | None = None
    if takes == "none":
        match = build()
    elif takes == "raw":
        match = build(_token_match(_scalar(raw, "value", prop)))
    elif takes == "range":
        match = build(coerce_arg(_scalar(raw, "value", prop)),
                      coerce_arg(_scalar(raw, "highValue", prop)))
    elif takes == "values":
        values = raw.get("values")
        if not isinstance(values, list) or not values:
            raise invalid(f"operator {operator} on '{prop}' needs a non-empty 'values' list")
        if len(values) > limits.in_values:
            raise invalid(f"operator {operator} on '{prop}' takes at most {limits.in_values} "
                          f"values; got {len(values)}")
        accepted = {coerce_arg(_scalar({"v": v}, "v", prop)) for v in values}
        match, targets = build(accepted), frozenset(accepted)
    else:
        target = coerce_arg(_scalar(raw, "value", prop))
        match = build(target)
        targets = frozenset({target}) if positive == "EQ" else None
    return CompiledFilter(prop, coerce_type, takes == "raw", match, negate,
                          None if negate or takes not in ("values", "value") else targets)


def compile_groups(store: Store, object_type: str, groups: Any,
                   limits: SearchLimits) -> list[list[CompiledFilter]]:
    """Check filterGroups against HubSpot's limits and compile them."""
    if groups is None:
        return []
    if not isinstance(groups, list):
        raise invalid("filterGroups must be a list")
    if len(groups) > limits.filter_groups:
        raise invalid(f"Too many filterGroups: {len(groups)}; the maximum is "
                      f"{limits.filter_groups}")
    compiled, total = [], 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise invalid("each filterGroup must be an object with a 'filters' list")
        if len(filters) > limits.filters_per_group:
            raise invalid(f"Too many filters in a filterGroup: {len(filters)}; the maximum is "
                          f"{limits.filters_per_group}")
        total += len(filters)
        compiled.append([compile_filter(store, object_type, f, limits) for f in filters])
    if total > limits.filters:
        raise invalid(f"Too many filters: {total}; the maximum across all filterGroups is "
                      f"{limits.filters}")
    return compiled


# -- sorting and paging --------------------------------------------------------------------


def _sort_specs(store: Store, object_type: str, sorts: Any) -> list[tuple[str, bool]]:
    if sorts is None:
        return []
    if not isinstance(sorts, list):
        raise invalid("sorts must be a list")
    specs = []
    for sort in sorts:
        if isinstance(sort, str):
            prop, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, Mapping) and isinstance(sort.get("propertyName"), str):
            direction = str(sort.get("direction", "ASCENDING")).upper()
            if direction not in ("ASCENDING", "DESCENDING"):
                raise invalid(f"sort direction must be ASCENDING or DESCENDING, not '{direction}'")
            prop, descending = sort["propertyName"], direction == "DESCENDING"
        else:
            raise invalid("each sort must be a property name or {propertyName, direction}")
        if store.property(object_type, prop) is None:
            raise invalid(f"Property '{prop}' does not exist on object type '{object_type}'")
        specs.append((prop, descending))
    return specs


def sort_objects(store: Store, object_type: str, objects: list[CRMObject],
                 specs: list[tuple[str, bool]]) -> list[CRMObject]:
    """Stable multi-key sort; objects without a value come last in either direction."""
    for prop, descending in reversed(specs):
        coerce = COERCE.get(store.properties[object_type][prop].type, _text)
        present: list[tuple[Any, CRMObject]] = []
        absent: list[CRMObject] = []
        for obj in objects:
            values = store.values(object_type, obj, prop)
            value = coerce(values[0]) if values else None
            if value is None:
                absent.append(obj)
            else:
                present.append((value, obj))
        present.sort(key=lambda kv: kv[0], reverse=descending)
        objects = [obj for _, obj in present] + absent
    return objects


_BOUNDS = {"GT": (bisect_right, 0), "GTE": (bisect_left, 0),
           "LT": (bisect_left, 1), "LTE": (bisect_right, 1), "EQ": (None, 2)}


def id_range(store: Store, object_type: str, groups: Any,
             specs: list[tuple[str, bool]]) -> range | None:
    """Positions (in id order) of a search that only bounds ``hs_object_id`` and sorts by it.

    That is how a client pages through every object (``hs_object_id GT last``); bisecting the
    ids answers it without testing each object. None for any other search. The body was
    already validated by ``compile_groups``.
    """
    if specs not in ([], [("hs_object_id", False)]) or len(groups or ()) > 1:
        return None
    ids = store.ids[object_type]
    lo, hi = 0, len(ids)
    for f in groups[0]["filters"] if groups else ():
        bound = _BOUNDS.get(str(f.get("operator", "EQ")).upper())
        value = str(f.get("value", ""))
        if f.get("propertyName") != "hs_object_id" or bound is None or not value.isdigit():
            return None
        find, side = bound
        if find is None:
            lo, hi = max(lo, bisect_left(ids, int(value))), min(hi, bisect_right(ids, int(value)))
        elif side == 0:
            lo = max(lo, find(ids, int(value)))
        else:
            hi = min(hi, find(ids, int(value)))
    return range(lo, max(lo, hi))


def candidates(store: Store, object_type: str,
               groups: list[list[CompiledFilter]]) -> list[CRMObject]:
    """The objects a search must test, in store order: when every group has an EQ or IN
    filter, only the objects the property index gives for its values (as HubSpot answers such
    searches from an index); otherwise every object."""
    everything = store.ordered[object_type]
    if not groups:
        return everything
    found: set[str] = set()
    for group in groups:
        keyed = next((f for f in group if f.targets is not None), None)
        if keyed is None:
            return everything
        index = store.index(object_type, keyed.prop, keyed.coerce)
        found.update(obj.id for value in keyed.targets or () for obj in index.get(value, ()))
    position = store.position[object_type]
    return [everything[i] for i in sorted(position[i] for i in found)]


def _int_arg(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(f"'{name}' must be an integer, not '{value}'") from None
    if number < 0:
        raise invalid(f"'{name}' must not be negative")
    return number


def _properties_arg(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid("properties must be a list of property names")
    return value


def search(store: Store, object_type: str, body: Mapping[str, Any], *, page_limit: int,
           limits: SearchLimits) -> dict[str, Any]:
    """Answer one search request body."""
    groups = compile_groups(store, object_type, body.get("filterGroups"), limits)
    specs = _sort_specs(store, object_type, body.get("sorts"))
    requested = _properties_arg(body.get("properties"))
    limit = _int_arg(body.get("limit"), "limit", 10)
    if limit > limits.page_size:
        raise invalid(f"limit must be at most {limits.page_size}; got {limit}")
    offset = _int_arg(body.get("after"), "after", 0)
    if offset >= limits.window:
        raise invalid(f"the search API pages through at most {limits.window} results; "
                      f"narrow the filters (after={offset})")
    matched: list[CRMObject] | range
    if (span := id_range(store, object_type, body.get("filterGroups"), specs)) is not None:
        matched = span  # positions in the id order: paging by id costs a page, not the store
    else:
        matched = [obj for obj in candidates(store, object_type, groups)
                   if not groups or any(all(f(store, object_type, obj) for f in group)
                                        for group in groups)]
        matched = sort_objects(store, object_type, matched, specs)
    size = min(limit, page_limit)
    page = matched[offset:offset + size]
    if isinstance(page, range):
        page = [store.ordered[object_type][i] for i in page]
    answer: dict[str, Any] = {"total": len(matched),
                              "results": [store.view(object_type, o, requested) for o in page]}
    if offset + size < len(matched) and size:
        answer["paging"] = {"next": {"after": str(offset + size)}}
    return answer
