"""The CRMConnector: capabilities and limits as class attributes, and the wiring of fetch,
verify and introspect onto the search, children and http modules."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from connectors.base import Connector
from connectors.crm.children import batch_read, fetch_children
from connectors.crm.http import CRMClient
from connectors.crm.mapping import (
    ASSOCIATION,
    ID,
    OBJECT_TYPES,
    filter_text,
    keyset_id,
    properties_for,
    query_fields,
    row_of,
)
from connectors.crm.search import OPERATORS, SEARCH_PROPERTY, search
from connectors.errors import ConnectorError, SourceConfigError, Unsupported
from connectors.query import Cond, EntityMap, Expr, Page, Query


class CRMConnector(Connector):
    """A HubSpot-compatible CRM; connection keys ``base_url`` and ``token`` (bearer)."""

    kind = "crm"
    #: All evaluated by HubSpot's search; eq, in and contains re-checked exactly on the rows.
    filter_ops = frozenset(OPERATORS)
    #: See the package docstring for the portal properties each one relies on.
    normalizers = frozenset(SEARCH_PROPERTY)
    #: Up to five OR-ed filterGroups per search, more through several searches.
    supports_or = True
    #: HubSpot's limit on the values of one IN filter.
    max_in_values = 100
    #: Five search pages; HubSpot allows only a few searches per second.
    max_page_size = 1_000

    #: Results per search page (HubSpot's maximum).
    search_page_size: ClassVar[int] = 200
    #: Results one search pages through before HubSpot refuses ``after``; then keyset again.
    search_window: ClassVar[int] = 10_000
    max_filter_groups: ClassVar[int] = 5
    max_group_filters: ClassVar[int] = 6
    max_filters: ClassVar[int] = 18
    #: Searches one fetch may send before the filter is judged too wide.
    max_searches: ClassVar[int] = 20
    #: DNF groups beyond which a filter tree is refused rather than expanded.
    max_groups: ClassVar[int] = 100
    batch_read_size: ClassVar[int] = 100
    association_batch_size: ClassVar[int] = 1_000
    #: Retries of a 429 (after Retry-After) and of a 5xx (after a short jittered backoff).
    rate_limit_retries: ClassVar[int] = 3
    error_retries: ClassVar[int] = 2
    #: Wait for a 429 without Retry-After (HubSpot's windows are one and ten seconds).
    default_retry_after: ClassVar[float] = 1.0

    def __init__(self, name: str, connection: Any, entities: Any, *,
                 timeout: float | None = None, pool_size: int = 5) -> None:
        super().__init__(name, connection, entities, timeout=timeout, pool_size=pool_size)
        if not self.connection.get("base_url"):
            raise SourceConfigError(name, "connection needs 'base_url' "
                                          "(e.g. https://api.hubapi.com)")
        #: The requests of this source; the search and children modules send theirs through it.
        self.client = CRMClient(
            name, self.connection, timeout=self.timeout, pool_size=self.pool_size,
            rate_limit_retries=self.rate_limit_retries, error_retries=self.error_retries,
            default_retry_after=self.default_retry_after)

    # -- reading ---------------------------------------------------------------------------

    async def fetch(self, query: Query) -> Page:
        """Rows of one entity: search, batch read, or associations for child entities."""
        entity = self.entity(query.entity)
        fields = query_fields(self.name, entity, query)
        if query.limit is not None and query.limit > self.max_page_size:
            raise Unsupported(self.name, f"limit {query.limit} is above max_page_size "
                                         f"{self.max_page_size}; page with after")
        if query.limit == 0:
            return Page([])
        async with self.client.budget():
            if entity.parent is not None:
                return Page(await fetch_children(self, entity, query, fields))
            props = properties_for(entity, fields, query.where)
            ids = self._key_ids(entity, query.where)
            if ids is None:
                results = await search(self, entity, query.where, props, query.after,
                                       query.limit)
            else:
                results = self._keyset(await batch_read(self, entity.table, ids, props),
                                       query.after, query.limit)
            return Page([row_of(entity, fields, r) for r in results])

    def _key_ids(self, entity: EntityMap, where: Expr | None) -> list[str] | None:
        """Ids to batch-read when the filter is only ``key in (...)``; None otherwise."""
        if not (isinstance(where, Cond) and where.field == entity.key and where.op in ("eq", "in")
                and where.normalize is None and entity.fields[entity.key] == ID):
            return None
        values = where.value if where.op == "in" else (where.value,)
        # HubSpot ids are numbers: any other value cannot match.
        return list(dict.fromkeys(t for t in map(filter_text, values) if t.isdigit()))

    def _keyset(self, results: list[dict[str, Any]], after: Any,
                limit: int | None) -> list[dict[str, Any]]:
        results = sorted(results, key=lambda r: int(r["id"]))
        if after is not None:
            results = [r for r in results if int(r["id"]) > int(keyset_id(self.name, after))]
        return results if limit is None else results[:limit]

    # -- mapping checks --------------------------------------------------------------------

    async def verify(self) -> list[str]:
        """Every mapped property exists on its object; association refs name known objects."""
        problems: list[str] = []
        async with self.client.budget():
            for entity in self.entities.values():
                properties = await self._properties(entity.table)
                if properties is None:
                    problems.append(f"entity '{entity.name}': object type '{entity.table}' not "
                                    f"found in the CRM (standard: {', '.join(OBJECT_TYPES)})")
                    continue
                names = list(properties)
                for logical, ref in entity.fields.items():
                    problem = self._check_ref(entity, logical, ref, names)
                    if problem:
                        problems.append(problem)
        return problems

    def _check_ref(self, entity: EntityMap, logical: str, ref: str, names: list[str]) -> str | None:
        where = f"entity '{entity.name}' field '{logical}'"
        if ref.startswith(ASSOCIATION):
            target = ref.removeprefix(ASSOCIATION)
            if logical != entity.parent:
                return f"{where}: '{ref}' is an association; only the parent field may map to one"
            if target not in OBJECT_TYPES:
                return (f"{where}: '{ref}' names no known object type "
                        f"(known: {', '.join(OBJECT_TYPES)})")
            return None
        if ref in names:
            return None
        close = difflib.get_close_matches(ref, names, n=3)
        ordered = list(dict.fromkeys([*close, *sorted(names, key=lambda n: (n.startswith("hs_"),
                                                                            n))]))
        shown = ", ".join(ordered[:40]) + (f" and {len(ordered) - 40} more"
                                          if len(ordered) > 40 else "")
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return (f"{where}: property '{ref}' not found on object '{entity.table}' "
                f"({hint}properties: {shown})")

    async def introspect(self) -> dict[str, dict[str, str]]:
        """Properties (name -> CRM type, by name) of the engagement and contact objects, and of
        every mapped one."""
        tables: dict[str, dict[str, str]] = {}
        async with self.client.budget():
            for table in dict.fromkeys([*OBJECT_TYPES[:5],
                                        *(e.table for e in self.entities.values())]):
                properties = await self._properties(table)
                if properties is not None:
                    tables[table] = dict(sorted(properties.items()))
        return tables

    async def _properties(self, table: str) -> dict[str, str] | None:
        """Property name -> type (HubSpot's ``string``, ``number``, ``datetime``,
        ``enumeration``, ``bool``...; ``""`` if the CRM gives none) of an object type, in the
        CRM's order; None if the object type does not exist."""
        what = f"read {table} properties"
        data = await self.client.exchange("GET", f"/crm/v3/properties/{table}", what,
                                          missing_ok=True)
        if data is None:
            return None
        with self.client.shape(what):
            return {str(p["name"]): str(p.get("type") or "") for p in data["results"]}

    # -- HTTP ------------------------------------------------------------------------------

    def _translate(self, exc: Exception, what: str) -> ConnectorError:
        """The ConnectorError for an httpx exception, as the client maps it (``HTTPX_ERRORS``)."""
        return self.client.translate(exc, what)

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        await self.client.aclose()
