"""The CRM connector: HubSpot's CRM API (v3 objects and properties, v4 associations) over httpx.

Mapping: an entity's ``table`` is an object type (``contacts``, ``notes``, ``calls``,
``emails``, ``meetings``), its fields are property names, and the key is usually
``hs_object_id``. A child entity maps its parent field to ``associations.<object type>``:
``Cond(parent, "in", ids)`` is answered by the v4 associations batch read, then the children
are read (batch read, or search when other conditions, ``after`` or ``limit`` apply); a child
associated with several of the requested parents yields one row per parent.

Everything else goes through the search endpoint: the filter tree becomes filterGroups in
disjunctive normal form, ``in`` lists are cut into IN filters of 100 values, and the groups are
packed into as few searches as HubSpot's limits allow (5 groups, 6 filters per group,
18 filters). Results are sorted by the key; ``after`` adds ``key GT after``.

Normalizers rely on what the portal offers: ``email`` is HubSpot's own EQ/IN, which ignores
case; ``phone_tail`` searches ``hs_searchable_calculated_phone_number`` (the last digits of
``phone`` and ``mobilephone``); ``card`` searches a calculated property ``<property>_normalized``
(spaces and dashes removed, upper-cased) that the portal must define for each card property.
HubSpot's EQ and IN ignore case and CONTAINS_TOKEN treats ``*`` as a wildcard, so ``eq``,
``in`` and ``contains`` are re-checked exactly on the returned values.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar

import httpx
import orjson

from connectors.base import Connector
from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
    UpstreamError,
)
from connectors.query import AllOf, Cond, EntityMap, Expr, Page, Query, fields_of

ID = "hs_object_id"
ASSOCIATION = "associations."
PHONE_SEARCH_PROPERTY = "hs_searchable_calculated_phone_number"
#: Object types ``associations.<type>`` may name; the first five are introspected.
OBJECT_TYPES = ("contacts", "notes", "calls", "emails", "meetings", "companies", "deals",
                "tickets", "tasks")

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

#: httpx exceptions -> (our error, what happened); looked up along the exception's MRO.
HTTPX_ERRORS: dict[type[Exception], tuple[type[ConnectorError], str]] = {
    httpx.ConnectTimeout: (SourceTimeout, "connecting to the CRM timed out"),
    httpx.ReadTimeout: (SourceTimeout, "the CRM did not answer in time"),
    httpx.WriteTimeout: (SourceTimeout, "sending the request to the CRM timed out"),
    httpx.PoolTimeout: (SourceTimeout, "no free connection in time (raise pool_size?)"),
    httpx.TimeoutException: (SourceTimeout, "timed out"),
    httpx.ConnectError: (SourceUnavailable, "cannot connect to the CRM"),
    httpx.ReadError: (SourceUnavailable, "connection lost while reading the answer"),
    httpx.WriteError: (SourceUnavailable, "connection lost while sending the request"),
    httpx.CloseError: (SourceUnavailable, "connection failed while closing"),
    httpx.NetworkError: (SourceUnavailable, "network error"),
    httpx.ProxyError: (SourceUnavailable, "the proxy refused the connection"),
    httpx.RemoteProtocolError: (SourceUnavailable, "the CRM closed the connection mid-answer"),
    httpx.LocalProtocolError: (UpstreamError, "could not send a valid HTTP request"),
    httpx.ProtocolError: (UpstreamError, "HTTP protocol error"),
    httpx.UnsupportedProtocol: (SourceConfigError, "base_url must start with https:// or http://"),
    httpx.TransportError: (SourceUnavailable, "transport error"),
    httpx.DecodingError: (UpstreamError, "the answer could not be decoded"),
    httpx.TooManyRedirects: (UpstreamError, "too many redirects"),
    httpx.HTTPStatusError: (UpstreamError, "the CRM answered with an error"),
    httpx.RequestError: (UpstreamError, "the request failed"),
    httpx.HTTPError: (UpstreamError, "HTTP error"),
    httpx.InvalidURL: (SourceConfigError, "base_url is not a valid URL"),
}
#: httpx exceptions a request cannot raise (misuse of streams and cookies): left unmapped.
HTTPX_NOT_RAISED: tuple[type[Exception], ...] = (
    httpx.CookieConflict, httpx.StreamError, httpx.StreamConsumed, httpx.StreamClosed,
    httpx.ResponseNotRead, httpx.RequestNotRead)

#: HTTP status -> (our error, what it means); other statuses are UpstreamError.
STATUS_ERRORS: dict[int, tuple[type[ConnectorError], str]] = {
    401: (SourceUnavailable, "authentication refused; check the token"),
    403: (SourceUnavailable, "authentication refused: the token lacks a scope for this read"),
    429: (SourceUnavailable, "rate limited by the CRM; try again later"),
}

_DEADLINE: ContextVar[float | None] = ContextVar("crm_deadline", default=None)
_CATEGORY = re.compile(r"[A-Z][A-Z_]{0,63}")


def _chunks(values: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def _text(value: Any) -> str:
    """A condition value as HubSpot filters take it; datetimes as epoch milliseconds (UTC)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if isinstance(value, datetime):
        return str(int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1000))
    return str(value).strip()


def _sort_key(value: Any) -> tuple[int, Any]:
    text = "" if value is None else str(value)
    return (0, int(text)) if text.isdigit() else (1 if value is not None else 2, text)


def _conjuncts(expr: Expr | None) -> list[Expr]:
    if expr is None:
        return []
    if isinstance(expr, AllOf):
        return [c for part in expr.parts for c in _conjuncts(part)]
    return [expr]


def _next_after(data: dict[str, Any]) -> str | None:
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return None if after in (None, "") else str(after)


class CRMConnector(Connector):
    """A HubSpot-compatible CRM; connection keys ``base_url`` and ``token`` (bearer)."""

    kind = "crm"
    #: All evaluated by HubSpot's search; eq, in and contains re-checked exactly on the rows.
    filter_ops = frozenset(OPERATORS)
    #: See the module docstring for the portal properties each one relies on.
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
        self._client: httpx.AsyncClient | None = None

    # -- reading ---------------------------------------------------------------------------

    async def fetch(self, query: Query) -> Page:
        """Rows of one entity: search, batch read, or associations for child entities."""
        entity = self.entity(query.entity)
        fields = self._fields(entity, query)
        if query.limit is not None and query.limit > self.max_page_size:
            raise Unsupported(self.name, f"limit {query.limit} is above max_page_size "
                                         f"{self.max_page_size}; page with after")
        if query.limit == 0:
            return Page([])
        async with self._budget():
            if entity.parent is not None:
                return Page(await self._fetch_children(entity, query, fields))
            props = self._properties(entity, fields, query.where)
            ids = self._key_ids(entity, query.where)
            if ids is None:
                results = await self._search(entity, query.where, props, query.after,
                                             query.limit)
            else:
                results = self._keyset(await self._batch_read(entity.table, ids, props),
                                       query.after, query.limit)
            return Page([self._row(entity, fields, r) for r in results])

    async def _fetch_children(self, entity: EntityMap, query: Query,
                              fields: list[str]) -> list[dict[str, Any]]:
        parent = entity.parent
        assert parent is not None
        parent_type = entity.fields[parent].removeprefix(ASSOCIATION)
        parent_cond, rest = self._split_parent(entity, query.where)
        props = self._properties(entity, fields, rest)
        paged = query.after is not None or query.limit is not None
        if parent_cond is None:
            results = await self._search(entity, rest, props, query.after, query.limit)
            parents_of = await self._associations(entity.table, parent_type,
                                                  [str(r["id"]) for r in results])
        else:
            values = parent_cond.value if parent_cond.op == "in" else (parent_cond.value,)
            parent_ids = list(dict.fromkeys(_text(v) for v in values if _text(v).isdigit()))
            children = await self._associations(parent_type, entity.table, parent_ids)
            parents_of = {}
            for parent_id in parent_ids:
                for child_id in children.get(parent_id, []):
                    parents_of.setdefault(child_id, []).append(parent_id)
            if not parents_of:
                return []
            if rest is None and not paged:
                results = await self._batch_read(entity.table, list(parents_of), props)
            else:
                if entity.fields[entity.key] != ID:
                    raise Unsupported(self.name, f"entity '{entity.name}': filtering children "
                                                 f"needs the key mapped to {ID}")
                by_id = Cond(entity.key, "in", tuple(parents_of))
                where = by_id if rest is None else AllOf((by_id, rest))
                results = await self._search(entity, where, props, query.after, query.limit)
        rows: list[dict[str, Any]] = []
        for result in results:
            row = self._row(entity, fields, result)
            # Every row of the last child is kept, so keyset paging never splits a child.
            rows.extend({**row, parent: p} for p in parents_of.get(str(result["id"]), [None]))
        if paged:
            rows.sort(key=lambda r: (_sort_key(r[entity.key]), _sort_key(r[parent])))
        return rows

    def _fields(self, entity: EntityMap, query: Query) -> list[str]:
        wanted = [entity.key, *([entity.parent] if entity.parent else []), *query.fields]
        unknown = [f for f in (*wanted, *sorted(fields_of(query.where))) if f not in entity.fields]
        if unknown:
            raise Unsupported(self.name, f"entity '{entity.name}' has no field '{unknown[0]}' "
                                         f"(fields: {', '.join(entity.fields)})")
        if entity.parent and not entity.fields[entity.parent].startswith(ASSOCIATION):
            raise Unsupported(self.name, f"entity '{entity.name}': parent field '{entity.parent}' "
                                         f"must map to {ASSOCIATION}<object type>")
        for f in wanted:
            if f != entity.parent and entity.fields[f].startswith(ASSOCIATION):
                raise Unsupported(self.name, f"entity '{entity.name}': field '{f}' maps to an "
                                             "association; only a child's parent field may")
        return list(dict.fromkeys(wanted))

    def _properties(self, entity: EntityMap, fields: list[str], where: Expr | None) -> list[str]:
        """Properties to ask for: the fields', and those the exact re-checks read."""
        refs = [entity.fields[f] for f in (*fields, *sorted(fields_of(where)))]
        return list(dict.fromkeys(r for r in refs if not r.startswith(ASSOCIATION)))

    def _row(self, entity: EntityMap, fields: list[str], result: dict[str, Any]) -> dict[str, Any]:
        props = result.get("properties") or {}
        row = {}
        for f in fields:
            ref = entity.fields[f]
            if not ref.startswith(ASSOCIATION):
                row[f] = str(result["id"]) if ref == ID else props.get(ref)
        return row

    def _key_ids(self, entity: EntityMap, where: Expr | None) -> list[str] | None:
        """Ids to batch-read when the filter is only ``key in (...)``; None otherwise."""
        if not (isinstance(where, Cond) and where.field == entity.key and where.op in ("eq", "in")
                and where.normalize is None and entity.fields[entity.key] == ID):
            return None
        values = where.value if where.op == "in" else (where.value,)
        # HubSpot ids are numbers: any other value cannot match.
        return list(dict.fromkeys(t for t in map(_text, values) if t.isdigit()))

    def _keyset(self, results: list[dict[str, Any]], after: Any,
                limit: int | None) -> list[dict[str, Any]]:
        results = sorted(results, key=lambda r: int(r["id"]))
        if after is not None:
            results = [r for r in results if int(r["id"]) > int(self._after(after))]
        return results if limit is None else results[:limit]

    def _after(self, after: Any) -> str:
        text = _text(after)
        if not text.isdigit():
            raise Unsupported(self.name, f"after must be a key this source returned, not {after!r}")
        return text

    def _split_parent(self, entity: EntityMap, where: Expr | None) -> tuple[Cond | None,
                                                                            Expr | None]:
        """The ``parent in (...)`` condition, and the rest of a top-level AND."""
        parts = _conjuncts(where)
        mine = [p for p in parts if isinstance(p, Cond) and p.field == entity.parent]
        rest = [p for p in parts if p not in mine]
        if len(mine) > 1 or any(entity.parent in fields_of(p) for p in rest) or any(
                c.op not in ("eq", "in") or c.normalize for c in mine):
            raise Unsupported(self.name, f"entity '{entity.name}': '{entity.parent}' can only be "
                                         "filtered once, with eq or in, at the top level")
        return (mine[0] if mine else None), (
            None if not rest else rest[0] if len(rest) == 1 else AllOf(tuple(rest)))

    # -- search ----------------------------------------------------------------------------

    async def _search(self, entity: EntityMap, where: Expr | None, props: list[str],
                      after: Any, limit: int | None) -> list[dict[str, Any]]:
        key_prop = entity.fields[entity.key]
        groups = self._filter_groups(entity, where)
        if not groups:
            return []
        keyset = None if after is None else (self._after(after) if key_prop == ID
                                             else _text(after))
        merged: dict[str, dict[str, Any]] = {}
        for request in self._pack(groups, extra=int(keyset is not None)):
            for result in await self._search_pages(entity, request, props, keyset, limit, where):
                merged.setdefault(str(result["id"]), result)
        rows = sorted(merged.values(), key=lambda r: _sort_key(self._key_of(r, key_prop)))
        return rows if limit is None else rows[:limit]

    async def _search_pages(self, entity: EntityMap, groups: list[list[dict[str, Any]]],
                            props: list[str], keyset: str | None, limit: int | None,
                            where: Expr | None) -> list[dict[str, Any]]:
        """One search followed page by page, until ``limit`` rows pass the re-check."""
        key_prop = entity.fields[entity.key]
        size = self.search_page_size if limit is None else min(limit, self.search_page_size)
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
            data = await self._call("POST", f"/crm/v3/objects/{entity.table}/search", what, body)
            results = self._results(data, what)
            rows.extend(r for r in results if self._recheck(entity, where, r))
            offset = _next_after(data)
            if (limit is not None and len(rows) >= limit) or offset is None or not results:
                return rows
            if offset.isdigit() and int(offset) + size > self.search_window:
                # HubSpot pages one search through 10,000 results at most: go on past the
                # last key instead (results are sorted by it, so nothing is skipped).
                self._pack(groups, extra=1)
                keyset, offset = str(self._key_of(results[-1], key_prop)), None

    def _filter_groups(self, entity: EntityMap, where: Expr | None) -> list[list[dict[str, Any]]]:
        """HubSpot filterGroups for the tree: [] matches nothing, [[]] everything."""
        groups: list[list[dict[str, Any]]] = []
        for conds in self._dnf(where):
            choices = [self._filters(entity, c) for c in conds]
            groups.extend(list(combo) for combo in itertools.product(*choices))
            if len(groups) > self.max_groups:
                raise Unsupported(self.name, f"the filter expands to more than {self.max_groups} "
                                             "HubSpot filter groups; narrow it")
        if any(not g for g in groups):
            return [[]]
        # Identical groups are common (phone_tail on phone and on mobilephone searches the
        # same calculated property): send each once.
        unique = {orjson.dumps(g, option=orjson.OPT_SORT_KEYS): g for g in groups}
        return list(unique.values())

    def _dnf(self, expr: Expr | None) -> list[tuple[Cond, ...]]:
        if expr is None:
            return [()]
        if isinstance(expr, Cond):
            return [(expr,)]
        if isinstance(expr, AllOf):
            groups: list[tuple[Cond, ...]] = [()]
            for part in expr.parts:
                groups = [g + h for g in groups for h in self._dnf(part)]
                if len(groups) > self.max_groups:
                    raise Unsupported(self.name, f"the filter expands to more than "
                                                 f"{self.max_groups} AND groups; narrow it")
            return groups
        return [g for part in expr.parts for g in self._dnf(part)]

    def _filters(self, entity: EntityMap, cond: Cond) -> list[dict[str, Any]]:
        """Alternative HubSpot filters for one condition (IN chunks); [] when none can match."""
        if cond.op not in OPERATORS:
            raise Unsupported(self.name, f"operator '{cond.op}' is not supported "
                                         f"(supported: {', '.join(OPERATORS)})")
        prop = self._search_property(entity, cond)
        if cond.op in ("eq", "ieq", "in"):
            values = cond.value if cond.op == "in" else (cond.value,)
            texts = [_text(v) for v in values if v is not None]
            texts = list(dict.fromkeys(t for t in texts if t.isdigit() or prop != ID))
            if not texts:
                return []
            if cond.op != "in":
                return [{"propertyName": prop, "operator": "EQ", "value": texts[0]}]
            return [{"propertyName": prop, "operator": "IN", "values": chunk}
                    for chunk in _chunks(texts, self.max_in_values)]
        if cond.value is None:
            return []
        text = _text(cond.value)
        if cond.op == "contains":
            return [{"propertyName": prop, "operator": "CONTAINS_TOKEN", "value": f"*{text}*"}]
        if prop == ID and not text.isdigit():
            raise Unsupported(self.name, f"'{cond.field}' compares as a number, not {text!r}")
        return [{"propertyName": prop, "operator": OPERATORS[cond.op], "value": text}]

    def _search_property(self, entity: EntityMap, cond: Cond) -> str:
        ref = entity.fields[cond.field]
        if ref.startswith(ASSOCIATION):
            raise Unsupported(self.name, f"entity '{entity.name}': '{cond.field}' is an "
                                         "association; filter it as a child's parent key")
        if cond.normalize is None:
            return ref
        to_search = SEARCH_PROPERTY.get(cond.normalize)
        if to_search is None or cond.op not in ("eq", "in"):
            raise Unsupported(self.name, f"normalizer '{cond.normalize}' with '{cond.op}' "
                                         f"(supported: {', '.join(SEARCH_PROPERTY)}; eq and in)")
        prop = to_search(ref)
        if prop is None:
            raise Unsupported(self.name, f"'{cond.field}' (property '{ref}'): HubSpot keeps "
                                         "searchable phone digits for phone and mobilephone only")
        return prop

    def _pack(self, groups: list[list[dict[str, Any]]],
              extra: int) -> list[list[list[dict[str, Any]]]]:
        """Groups packed into as few searches as HubSpot's limits allow."""
        requests: list[list[list[dict[str, Any]]]] = []
        count = 0
        for group in groups:
            size = len(group) + extra
            if size > self.max_group_filters:
                raise Unsupported(self.name, f"{size} conditions AND-ed in one filter group; "
                                             f"HubSpot allows {self.max_group_filters}")
            if not requests or len(requests[-1]) == self.max_filter_groups or (
                    count + size > self.max_filters):
                requests.append([])
                count = 0
            requests[-1].append(group)
            count += size
        if len(requests) > self.max_searches:
            raise Unsupported(self.name, f"the filter needs {len(requests)} searches; at most "
                                         f"{self.max_searches} are sent for one fetch")
        return requests

    def _recheck(self, entity: EntityMap, expr: Expr | None, result: dict[str, Any]) -> bool:
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
        verdicts = (self._recheck(entity, p, result) for p in expr.parts)
        return all(verdicts) if isinstance(expr, AllOf) else any(verdicts)

    @staticmethod
    def _key_of(result: dict[str, Any], key_prop: str) -> Any:
        return result["id"] if key_prop == ID else (result.get("properties") or {}).get(key_prop)

    # -- batch reads -----------------------------------------------------------------------

    async def _batch_read(self, table: str, ids: list[str],
                          props: list[str]) -> list[dict[str, Any]]:
        what = f"batch read {table}"
        results = []
        for chunk in _chunks(ids, self.batch_read_size):
            body = {"inputs": [{"id": i} for i in chunk], "properties": props}
            data = await self._call("POST", f"/crm/v3/objects/{table}/batch/read", what, body)
            results.extend(self._results(data, what))  # missing ids are left out (HTTP 207)
        return results

    async def _associations(self, from_type: str, to_type: str,
                            ids: list[str]) -> dict[str, list[str]]:
        """Associated ids of each of ``ids``, following each one's paging."""
        what = f"read {from_type} to {to_type} associations"
        links: dict[str, list[str]] = {}
        pending: list[dict[str, str]] = [{"id": i} for i in ids]
        while pending:
            batch, pending = (pending[:self.association_batch_size],
                              pending[self.association_batch_size:])
            data = await self._call("POST", f"/crm/v4/associations/{from_type}/{to_type}"
                                    "/batch/read", what, {"inputs": batch})
            with self._shape(what):
                for result in data.get("results") or []:
                    from_id = str(result["from"]["id"])
                    links.setdefault(from_id, []).extend(
                        str(to["toObjectId"]) for to in result.get("to") or [])
                    if (after := _next_after(result)) is not None:
                        pending.append({"id": from_id, "after": after})
        return links

    def _results(self, data: dict[str, Any], what: str) -> list[dict[str, Any]]:
        results = data.get("results")
        if not isinstance(results, list) or not all(
                isinstance(r, dict) and "id" in r for r in results):
            raise UpstreamError(self.name, f"{what}: unexpected answer from the CRM (no results)")
        return results

    @contextlib.contextmanager
    def _shape(self, what: str) -> Iterator[None]:
        try:
            yield
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise UpstreamError(self.name, f"{what}: unexpected answer from the CRM") from exc

    # -- mapping checks --------------------------------------------------------------------

    async def verify(self) -> list[str]:
        """Every mapped property exists on its object; association refs name known objects."""
        problems: list[str] = []
        async with self._budget():
            for entity in self.entities.values():
                names = await self._property_names(entity.table)
                if names is None:
                    problems.append(f"entity '{entity.name}': object type '{entity.table}' not "
                                    f"found in the CRM (standard: {', '.join(OBJECT_TYPES)})")
                    continue
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

    async def introspect(self) -> dict[str, list[str]]:
        """Property names of the engagement and contact objects, and of every mapped one."""
        tables: dict[str, list[str]] = {}
        async with self._budget():
            for table in dict.fromkeys([*OBJECT_TYPES[:5],
                                        *(e.table for e in self.entities.values())]):
                names = await self._property_names(table)
                if names is not None:
                    tables[table] = sorted(names)
        return tables

    async def _property_names(self, table: str) -> list[str] | None:
        what = f"read {table} properties"
        data = await self._exchange("GET", f"/crm/v3/properties/{table}", what, missing_ok=True)
        if data is None:
            return None
        with self._shape(what):
            return [str(p["name"]) for p in data["results"]]

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Accept": "application/json"}
            if self.connection.get("token"):
                headers["Authorization"] = f"Bearer {self.connection['token']}"
            try:
                self._client = httpx.AsyncClient(
                    base_url=str(self.connection["base_url"]).rstrip("/"), headers=headers,
                    timeout=self.timeout, limits=httpx.Limits(max_connections=self.pool_size))
            except tuple(HTTPX_ERRORS) as exc:
                raise self._translate(exc, "connect") from exc
        return self._client

    @contextlib.asynccontextmanager
    async def _budget(self) -> AsyncIterator[None]:
        """One timeout for a whole fetch, verify or introspect, retries and waits included."""
        if _DEADLINE.get() is not None:
            yield
            return
        token = _DEADLINE.set(asyncio.get_running_loop().time() + self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError as exc:
            raise SourceTimeout(self.name, f"no answer within {self.timeout:g}s") from exc
        finally:
            _DEADLINE.reset(token)

    def _remaining(self) -> float:
        deadline = _DEADLINE.get()
        now = asyncio.get_running_loop().time()
        return self.timeout if deadline is None else max(deadline - now, 0.001)

    async def _call(self, method: str, path: str, what: str, body: Any = None) -> dict[str, Any]:
        """One request's JSON answer, or the ConnectorError that says why there is none."""
        data = await self._exchange(method, path, what, body, missing_ok=False)
        assert data is not None  # only a missing_ok exchange answers None
        return data

    async def _exchange(self, method: str, path: str, what: str, body: Any = None, *,
                        missing_ok: bool) -> dict[str, Any] | None:
        """One request, with 429 and 5xx retries; errors translated once, here."""
        client = self._http()
        content = None if body is None else orjson.dumps(body)
        headers = None if body is None else {"Content-Type": "application/json"}
        retries = {429: 0, 500: 0}
        while True:
            try:
                response = await client.request(method, path, content=content, headers=headers,
                                                timeout=self._remaining())
            except tuple(HTTPX_ERRORS) as exc:
                raise self._translate(exc, what) from exc
            status = response.status_code
            if status in (200, 207):
                return self._decode(response, what)
            if missing_ok and status in (400, 404):
                return None
            if await self._wait_before_retry(response, retries):
                continue
            error, meaning = STATUS_ERRORS.get(status, (UpstreamError, (
                "the CRM failed" if status >= 500 else "the CRM refused the request")))
            category = self._category(response)
            raise error(self.name, f"{what}: {meaning} (HTTP {status}"
                                   f"{', ' + category if category else ''})")

    async def _wait_before_retry(self, response: httpx.Response, retries: dict[int, int]) -> bool:
        """Sleep before retrying a 429 or 5xx if retries and the time budget allow it."""
        status = 500 if response.status_code >= 500 else response.status_code
        if status == 429:
            most = self.rate_limit_retries
            try:
                wait = max(float(response.headers.get("Retry-After", "")), 0.0)
            except ValueError:
                wait = self.default_retry_after
        elif status == 500:
            most = self.error_retries
            wait = random.uniform(0.05, 0.15) * 2 ** retries[500]
        else:
            return False
        # A wait longer than what is left of the timeout would only end in a timeout.
        if retries[status] >= most or wait >= self._remaining():
            return False
        retries[status] += 1
        await asyncio.sleep(wait)
        return True

    def _decode(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UpstreamError(self.name, f"{what}: the CRM answered HTTP "
                                           f"{response.status_code} without a JSON object")
        return data

    @staticmethod
    def _category(response: httpx.Response) -> str | None:
        """HubSpot's error category, if the body has a plausible one (never the body itself)."""
        try:
            category = orjson.loads(response.content).get("category")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return category if isinstance(category, str) and _CATEGORY.fullmatch(category) else None

    def _translate(self, exc: Exception, what: str) -> ConnectorError:
        for cls in type(exc).__mro__:
            if cls in HTTPX_ERRORS:
                error, meaning = HTTPX_ERRORS[cls]
                return error(self.name, f"{what}: {meaning}")
        return UpstreamError(self.name, f"{what}: {type(exc).__name__}")

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
