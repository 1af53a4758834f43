"""Entity maps onto HubSpot objects: which fields a query may name, which properties to ask
for, rows out of results, and values written the way HubSpot filters and sorts them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from connectors.errors import Unsupported
from connectors.query import EntityMap, Expr, Query, fields_of

ID = "hs_object_id"
ASSOCIATION = "associations."
#: Object types ``associations.<type>`` may name; the first five are introspected.
OBJECT_TYPES = ("contacts", "notes", "calls", "emails", "meetings", "companies", "deals",
                "tickets", "tasks")


def filter_text(value: Any) -> str:
    """A condition value as HubSpot filters take it; datetimes as epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if isinstance(value, datetime):
        return str(int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1000))
    return str(value).strip()


def sort_key(value: Any) -> tuple[int, Any]:
    """Numeric texts (HubSpot ids) in number order, then other texts, then missing values."""
    text = "" if value is None else str(value)
    return (0, int(text)) if text.isdigit() else (1 if value is not None else 2, text)


def keyset_id(source: str, after: Any) -> str:
    """``after`` as the HubSpot id it must be."""
    text = filter_text(after)
    if not text.isdigit():
        raise Unsupported(source, f"after must be a key this source returned, not {after!r}")
    return text


def query_fields(source: str, entity: EntityMap, query: Query) -> list[str]:
    """The fields to return (key and parent first), once the query is known to fit the map."""
    wanted = [entity.key, *([entity.parent] if entity.parent else []), *query.fields]
    unknown = [f for f in (*wanted, *sorted(fields_of(query.where))) if f not in entity.fields]
    if unknown:
        raise Unsupported(source, f"entity '{entity.name}' has no field '{unknown[0]}' "
                                  f"(fields: {', '.join(entity.fields)})")
    if entity.parent and not entity.fields[entity.parent].startswith(ASSOCIATION):
        raise Unsupported(source, f"entity '{entity.name}': parent field '{entity.parent}' "
                                  f"must map to {ASSOCIATION}<object type>")
    for f in wanted:
        if f != entity.parent and entity.fields[f].startswith(ASSOCIATION):
            raise Unsupported(source, f"entity '{entity.name}': field '{f}' maps to an "
                                      "association; only a child's parent field may")
    return list(dict.fromkeys(wanted))


def properties_for(entity: EntityMap, fields: list[str], where: Expr | None) -> list[str]:
    """Properties to ask for: the fields', and those the exact re-checks read."""
    refs = [entity.fields[f] for f in (*fields, *sorted(fields_of(where)))]
    return list(dict.fromkeys(r for r in refs if not r.startswith(ASSOCIATION)))


def row_of(entity: EntityMap, fields: list[str], result: dict[str, Any]) -> dict[str, Any]:
    """One result as a row of logical fields; association fields are filled by the caller."""
    props = result.get("properties") or {}
    row = {}
    for f in fields:
        ref = entity.fields[f]
        if not ref.startswith(ASSOCIATION):
            row[f] = str(result["id"]) if ref == ID else props.get(ref)
    return row
