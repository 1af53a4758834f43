"""Child entities and reads by id: a child's parent field maps to ``associations.<type>``, so
``parent in (...)`` is answered by the v4 associations batch read, then the children are read
by id (batch read) or searched when other conditions, ``after`` or ``limit`` apply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.crm.http import next_after
from connectors.crm.mapping import (
    ASSOCIATION,
    ID,
    filter_text,
    properties_for,
    row_of,
    sort_key,
)
from connectors.crm.search import chunks, search
from connectors.errors import Unsupported
from connectors.query import AllOf, Cond, EntityMap, Expr, Query, fields_of

if TYPE_CHECKING:
    from connectors.crm.connector import CRMConnector


async def fetch_children(crm: CRMConnector, entity: EntityMap, query: Query,
                         fields: list[str]) -> list[dict[str, Any]]:
    """Rows of a child entity, one per (child, parent) pair."""
    parent = entity.parent
    assert parent is not None
    parent_type = entity.fields[parent].removeprefix(ASSOCIATION)
    parent_cond, rest = _split_parent(crm, entity, query.where)
    props = properties_for(entity, fields, rest)
    paged = query.after is not None or query.limit is not None
    if parent_cond is None:
        results = await search(crm, entity, rest, props, query.after, query.limit)
        parents_of = await associations(crm, entity.table, parent_type,
                                        [str(r["id"]) for r in results])
    else:
        values = parent_cond.value if parent_cond.op == "in" else (parent_cond.value,)
        parent_ids = list(dict.fromkeys(filter_text(v) for v in values
                                        if filter_text(v).isdigit()))
        children = await associations(crm, parent_type, entity.table, parent_ids)
        parents_of = {}
        for parent_id in parent_ids:
            for child_id in children.get(parent_id, []):
                parents_of.setdefault(child_id, []).append(parent_id)
        if not parents_of:
            return []
        if rest is None and not paged:
            results = await batch_read(crm, entity.table, list(parents_of), props)
        else:
            if entity.fields[entity.key] != ID:
                raise Unsupported(crm.name, f"entity '{entity.name}': filtering children "
                                            f"needs the key mapped to {ID}")
            by_id = Cond(entity.key, "in", tuple(parents_of))
            where = by_id if rest is None else AllOf((by_id, rest))
            results = await search(crm, entity, where, props, query.after, query.limit)
    rows: list[dict[str, Any]] = []
    for result in results:
        row = row_of(entity, fields, result)
        # Every row of the last child is kept, so keyset paging never splits a child.
        rows.extend({**row, parent: p} for p in parents_of.get(str(result["id"]), [None]))
    if paged:
        rows.sort(key=lambda r: (sort_key(r[entity.key]), sort_key(r[parent])))
    return rows


def _conjuncts(expr: Expr | None) -> list[Expr]:
    if expr is None:
        return []
    if isinstance(expr, AllOf):
        return [c for part in expr.parts for c in _conjuncts(part)]
    return [expr]


def _split_parent(crm: CRMConnector, entity: EntityMap,
                  where: Expr | None) -> tuple[Cond | None, Expr | None]:
    """The ``parent in (...)`` condition, and the rest of a top-level AND."""
    parts = _conjuncts(where)
    mine = [p for p in parts if isinstance(p, Cond) and p.field == entity.parent]
    rest = [p for p in parts if p not in mine]
    if len(mine) > 1 or any(entity.parent in fields_of(p) for p in rest) or any(
            c.op not in ("eq", "in") or c.normalize for c in mine):
        raise Unsupported(crm.name, f"entity '{entity.name}': '{entity.parent}' can only be "
                                    "filtered once, with eq or in, at the top level")
    return (mine[0] if mine else None), (
        None if not rest else rest[0] if len(rest) == 1 else AllOf(tuple(rest)))


async def batch_read(crm: CRMConnector, table: str, ids: list[str],
                     props: list[str]) -> list[dict[str, Any]]:
    """The objects of ``ids`` that exist, in batches of ``batch_read_size``."""
    what = f"batch read {table}"
    results = []
    for chunk in chunks(ids, crm.batch_read_size):
        body = {"inputs": [{"id": i} for i in chunk], "properties": props}
        data = await crm.client.call("POST", f"/crm/v3/objects/{table}/batch/read", what, body)
        results.extend(crm.client.results(data, what))  # missing ids are left out (HTTP 207)
    return results


async def associations(crm: CRMConnector, from_type: str, to_type: str,
                       ids: list[str]) -> dict[str, list[str]]:
    """Associated ids of each of ``ids``, following each one's paging."""
    what = f"read {from_type} to {to_type} associations"
    links: dict[str, list[str]] = {}
    pending: list[dict[str, str]] = [{"id": i} for i in ids]
    while pending:
        batch, pending = (pending[:crm.association_batch_size],
                          pending[crm.association_batch_size:])
        data = await crm.client.call("POST", f"/crm/v4/associations/{from_type}/{to_type}"
                                     "/batch/read", what, {"inputs": batch})
        with crm.client.shape(what):
            for result in data.get("results") or []:
                from_id = str(result["from"]["id"])
                links.setdefault(from_id, []).extend(
                    str(to["toObjectId"]) for to in result.get("to") or [])
                if (after := next_after(result)) is not None:
                    pending.append({"id": from_id, "after": after})
    return links
