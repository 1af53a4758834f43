"""HubSpot's search endpoint: a filter tree becomes filterGroups in disjunctive normal form,
``in`` lists become IN chunks, groups are packed into as few searches as HubSpot's limits
allow, and answers it evaluates loosely are re-checked exactly.

The limits are the connector's class attributes, so a subclass adjusts them by overriding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from connectors.crm.http import next_after
from connectors.crm.mapping import ASSOCIATION, ID, filter_text, keyset_id, sort_key
from connectors.errors import Unsupported
from connectors.query import AllOf, Cond, EntityMap, Expr

if TYPE_CHECKING:
    from connectors.crm.connector import CRMConnector

PHONE_SEARCH_PROPERTY = "hs_searchable_calculated_phone_number"

#: Query operator -> HubSpot search operator.
OPERATORS: dict[str, str] = {"eq": "EQ", "in": "IN", "ieq": "EQ", "contains": "CONTAINS_TOKEN",
                             "gt": "GT", "gte": "GTE", "lt": "LT", "lte": "LTE"}

#: Normalizer -> the property searched instead of the mapped one (None: cannot be searched).
SEARCH_PROPERTY: dict[str, Callable[[str], str | None]] = {
    # HubSpot's EQ and IN ignore case and surrounding spaces already.
    "email": lambda prop: prop,
    "phone_tail": lambda prop: PHONE_SEARCH_PROPERTY if prop in ("phone", "mobilephone") else None,
    "card": lambda prop: f"{prop}_normalized",
}

#: Exact re-checks of answers HubSpot gives loosely: (stored value, condition value) -> verdict,
#: None when the value is not text (then HubSpot's answer stands).
RECHECKS: dict[str, Callable[[Any, Any], bool | None]] = {
    "eq": lambda stored, value: stored == value if isinstance(value, str) else None,
    "in": lambda stored, values: (stored in values
                                  if all(isinstance(v, str) for v in values) else None),
    "contains": lambda stored, value: stored is not None and str(value) in stored.lower(),
}

Filter = dict[str, Any]
#: AND-ed filters; a search ORs up to ``max_filter_groups`` of them.
Group = list[Filter]


def chunks(values: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """``values`` in consecutive lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


async def search(crm: CRMConnector, entity: EntityMap, where: Expr | None, props: list[str],
                 after: Any, limit: int | None) -> list[dict[str, Any]]:
    """Results matching ``where``, sorted by the key, past ``after``, at most ``limit``."""
    key_prop = entity.fields[entity.key]
    groups = filter_groups(crm, entity, where)
    if not groups:
        return []
    keyset = None if after is None else (keyset_id(crm.name, after) if key_prop == ID
                                         else filter_text(after))
    merged: dict[str, dict[str, Any]] = {}
    for request in pack(crm, groups, extra=int(keyset is not None)):
        for result in await _search_pages(crm, entity, request, props, keyset, limit, where):
            merged.setdefault(str(result["id"]), result)
    rows = sorted(merged.values(), key=lambda r: sort_key(_key_of(r, key_prop)))
    return rows if limit is None else rows[:limit]


async def _search_pages(crm: CRMConnector, entity: EntityMap, groups: list[Group],
                        props: list[str], keyset: str | None, limit: int | None,
                        where: Expr | None) -> list[dict[str, Any]]:
    """One search followed page by page, until ``limit`` rows pass the re-check."""
    key_prop = entity.fields[entity.key]
    size = crm.search_page_size if limit is None else min(limit, crm.search_page_size)
    what = f"search {entity.table}"
    rows: list[dict[str, Any]] = []
    offset: str | None = None
    while True:
        extra = [] if keyset is None else [
            {"propertyName": key_prop, "operator": "GT", "value": keyset}]
        body: dict[str, Any] = {
            "filterGroups": [{"filters": g + extra} for g in groups if g or extra],
            "sorts": [{"propertyName": key_prop, "direction": "ASCENDING"}],
            "properties": props, "limit": size}
        if offset is not None:
            body["after"] = offset
        data = await crm.client.call("POST", f"/crm/v3/objects/{entity.table}/search", what, body)
        results = crm.client.results(data, what)
        rows.extend(r for r in results if recheck(entity, where, r))
        offset = next_after(data)
        if (limit is not None and len(rows) >= limit) or offset is None or not results:
            return rows
        if offset.isdigit() and int(offset) + size > crm.search_window:
            # HubSpot pages one search through 10,000 results at most: go on past the
            # last key instead (results are sorted by it, so nothing is skipped).
            pack(crm, groups, extra=1)
            keyset, offset = str(_key_of(results[-1], key_prop)), None


def filter_groups(crm: CRMConnector, entity: EntityMap, where: Expr | None) -> list[Group]:
    """HubSpot filterGroups for the tree: [] matches nothing, [[]] everything."""
    groups: list[Group] = []
    for conds in _dnf(crm, where):
        choices = [_filters(crm, entity, c) for c in conds]
        groups.extend(list(combo) for combo in itertools.product(*choices))
        if len(groups) > crm.max_groups:
            raise Unsupported(crm.name, f"the filter expands to more than {crm.max_groups} "
                                        "HubSpot filter groups; narrow it")
    if any(not g for g in groups):
        return [[]]
    # Identical groups are common (phone_tail on phone and on mobilephone searches the
    # same calculated property): send each once.
    unique = {orjson.dumps(g, option=orjson.OPT_SORT_KEYS): g for g in groups}
    return list(unique.values())


def _dnf(crm: CRMConnector, expr: Expr | None) -> list[tuple[Cond, ...]]:
    if expr is None:
        return [()]
    if isinstance(expr, Cond):
        return [(expr,)]
    if isinstance(expr, AllOf):
        groups: list[tuple[Cond, ...]] = [()]
        for part in expr.parts:
            groups = [g + h for g in groups for h in _dnf(crm, part)]
            if len(groups) > crm.max_groups:
                raise Unsupported(crm.name, f"the filter expands to more than "
                                            f"{crm.max_groups} AND groups; narrow it")
        return groups
    return [g for part in expr.parts for g in _dnf(crm, part)]


def _filters(crm: CRMConnector, entity: EntityMap, cond: Cond) -> list[Filter]:
    """Alternative HubSpot filters for one condition (IN chunks); [] when none can match."""
    if cond.op not in OPERATORS:
        raise Unsupported(crm.name, f"operator '{cond.op}' is not supported "
                                    f"(supported: {', '.join(OPERATORS)})")
    prop = _search_property(crm, entity, cond)
    if cond.op in ("eq", "ieq", "in"):
        values = cond.value if cond.op == "in" else (cond.value,)
        texts = [filter_text(v) for v in values if v is not None]
        texts = list(dict.fromkeys(t for t in texts if t.isdigit() or prop != ID))
        if not texts:
            return []
        if cond.op != "in":
            return [{"propertyName": prop, "operator": "EQ", "value": texts[0]}]
        return [{"propertyName": prop, "operator": "IN", "values": chunk}
                for chunk in chunks(texts, crm.max_in_values)]
    if cond.value is None:
        return []
    text = filter_text(cond.value)
    if cond.op == "contains":
        return [{"propertyName": prop, "operator": "CONTAINS_TOKEN", "value": f"*{text}*"}]
    if prop == ID and not text.isdigit():
        raise Unsupported(crm.name, f"'{cond.field}' compares as a number, not {text!r}")
    return [{"propertyName": prop, "operator": OPERATORS[cond.op], "value": text}]


def _search_property(crm: CRMConnector, entity: EntityMap, cond: Cond) -> str:
    ref = entity.fields[cond.field]
    if ref.startswith(ASSOCIATION):
        raise Unsupported(crm.name, f"entity '{entity.name}': '{cond.field}' is an "
                                    "association; filter it as a child's parent key")
    if cond.normalize is None:
        return ref
    to_search = SEARCH_PROPERTY.get(cond.normalize)
    if to_search is None or cond.op not in ("eq", "in"):
        raise Unsupported(crm.name, f"normalizer '{cond.normalize}' with '{cond.op}' "
                                    f"(supported: {', '.join(SEARCH_PROPERTY)}; eq and in)")
    prop = to_search(ref)
    if prop is None:
        raise Unsupported(crm.name, f"'{cond.field}' (property '{ref}'): HubSpot keeps "
                                    "searchable phone digits for phone and mobilephone only")
    return prop


def pack(crm: CRMConnector, groups: list[Group], extra: int) -> list[list[Group]]:
    """Groups packed into as few searches as HubSpot's limits allow."""
    requests: list[list[Group]] = []
    count = 0
    for group in groups:
        size = len(group) + extra
        if size > crm.max_group_filters:
            raise Unsupported(crm.name, f"{size} conditions AND-ed in one filter group; "
                                        f"HubSpot allows {crm.max_group_filters}")
        if not requests or len(requests[-1]) == crm.max_filter_groups or (
                count + size > crm.max_filters):
            requests.append([])
            count = 0
        requests[-1].append(group)
        count += size
    if len(requests) > crm.max_searches:
        raise Unsupported(crm.name, f"the filter needs {len(requests)} searches; at most "
                                    f"{crm.max_searches} are sent for one fetch")
    return requests


def recheck(entity: EntityMap, expr: Expr | None, result: dict[str, Any]) -> bool:
    """False only if the row certainly fails a condition HubSpot evaluates loosely."""
    if expr is None:
        return True
    if isinstance(expr, Cond):
        ref = entity.fields[expr.field]
        rule = RECHECKS.get(expr.op)
        if rule is None or expr.normalize or ref == ID or ref.startswith(ASSOCIATION):
            return True
        verdict = rule((result.get("properties") or {}).get(ref), expr.value)
        return verdict is not False
    verdicts = (recheck(entity, p, result) for p in expr.parts)
    return all(verdicts) if isinstance(expr, AllOf) else any(verdicts)


def _key_of(result: dict[str, Any], key_prop: str) -> Any:
    return result["id"] if key_prop == ID else (result.get("properties") or {}).get(key_prop)
