"""The accounts export: every customer's account, streamed as CSV or NDJSON in constant memory.

The export walks the identity index by global id (a keyset page of ``export_chunk_size`` ids at
a time) and, per chunk, with a fresh Resolver (the principal's row scope; nothing accumulates):
reads the customers' records by primary key, their accounts in one ledger round
(``gateway.finance.schema.accounts``: sums pushed down to the sources), then builds the rows
(``export_rows``). The next chunk is read while the current one is encoded and written.

- **One timestamp**: every movement dated before ``until`` counts, for every chunk, and every
  row says the same ``as_of`` (a day asked for, else the export's start instant).
- **Consent**: for an objectable purpose, the customers who object (loaded once) and those a
  source opts out (read with their records) are left out, exactly as GraphQL leaves them out.
- **Audit**: rows go out in blocks of at most ``audit_every`` customers, each appended to the
  audit log (kind ``read``, operation ``export``) before its rows leave: no row without its entry.
- **Resumable**: rows are in global id order; a block's ``cursor`` is the last id walked before
  it, and an export started after a cursor writes the rest exactly once.
- **Source failures** stop the export (a missing source would make totals wrong): the blocks
  already out are complete and correct, and :class:`SourceFailed` says where to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gateway.access import Access, Admission
from gateway.audit import AuditError, AuditEvent
from gateway.audit.events import TOKEN
from gateway.consent_gate import ConsentGate
from gateway.finance.export_rows import ExportError, Filters, RowFormat, parse_filters
from gateway.finance.money import MoneyError, currency_code
from gateway.finance.schema import accounts, end_of
from gateway.finance.types import Account
from gateway.identity import Cluster
from gateway.linking import Linker
from gateway.principal import Principal
from gateway.privacy import Privacy
from gateway.resolver import Resolver, SourceFailure
from gateway.settings import Settings
from gateway.sources import SourceSet

#: Customers one audit entry names at most (the audit log's own limit per entry).
AUDIT_EVERY = 10_000
NAMES = frozenset({"names"})  # the customer columns display_name needs (gateway.selection)


@dataclass
class ExportEnv:
    """What an export needs of a gateway: the CLI builds it from a config, the app from its own."""

    sources: SourceSet
    settings: Settings
    linker: Linker
    access: Access
    privacy: Privacy


@dataclass(frozen=True)
class AsOf:
    day: date  # rates and overdue invoices are as of this day
    until: datetime  # movements dated at or after it are left out
    label: str  # what every row says: the day asked for, else the start instant


def parse_as_of(text: str | None, now: datetime | None = None) -> AsOf:
    """A day (``2025-12-31``: the end of that day, UTC) or an instant (``2025-06-01T12:00:00Z``,
    as a previous export printed it); None: now, to the second."""
    if text is None or not text.strip():
        start = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        return AsOf(start.date(), start, start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    text = text.strip()
    instant: datetime | None = None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return AsOf(day, end_of(day), day.isoformat())
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    if instant is None or instant.tzinfo is None:
        raise ExportError(f"as of {text!r}: write a day as YYYY-MM-DD (accounts at the end of "
                          f"that day, UTC), or an instant such as 2025-06-01T12:00:00Z")
    instant = instant.astimezone(UTC)
    return AsOf(instant.date(), instant, instant.isoformat().replace("+00:00", "Z"))


@dataclass(frozen=True)
class ExportRequest:
    format: str
    as_of: AsOf
    currency: str
    filters: Filters
    cursor: str | None = None  # start after this global id
    chunk_size: int = 1000


def export_request(env: ExportEnv, fmt: str | None, as_of: str | None, currency: str | None,
                   filters: Iterable[str], cursor: str | None = None,
                   chunk_size: int | None = None, now: datetime | None = None) -> ExportRequest:
    """The request, checked: ExportError names what to fix."""
    if env.linker.crosswalk is None:
        raise ExportError("an export walks the identity index, and this config has no "
                          "`identity:` section: add one (docs/identity.md), then run "
                          "`panorama index`", "NO_IDENTITY_INDEX", 409)
    fmt = (fmt or "ndjson").strip().lower()
    if fmt not in ("csv", "ndjson"):
        raise ExportError(f"format {fmt!r}: use csv or ndjson")
    size = env.settings.export_chunk_size if chunk_size is None else chunk_size
    if not 1 <= size <= AUDIT_EVERY:
        raise ExportError(f"chunk size {size}: give a whole number from 1 to {AUDIT_EVERY}")
    finance = env.sources.finance
    try:
        code = finance.currency if currency is None else currency_code(currency, "currency")
    except MoneyError as exc:
        raise ExportError(str(exc)) from None
    parsed = parse_filters(filters, sorted(env.sources.shops),
                           [t.name for t in finance.tiers])
    return ExportRequest(fmt, parse_as_of(as_of, now), code, parsed, cursor or None, size)


@dataclass
class Block:
    """What the walk gives its writer: ``data`` (encoded rows, already audited, possibly none),
    how many rows and customers walked it stands for, and with data the cursor after it."""

    data: bytes = b""
    rows: int = 0
    walked: int = 0
    cursor: str | None = None


class SourceFailed(ExportError):
    """A source could not answer: the export stopped before the chunk it was needed for."""

    def __init__(self, failures: Sequence[SourceFailure], cursor: str | None) -> None:
        names = ", ".join(f"'{f.source}' ({f.code}: {f.message})" for f in failures)
        super().__init__(f"source {names} could not answer: the export stopped; the rows "
                         f"written are complete and correct", "SOURCE_FAILED", 503)
        self.failures = list(failures)
        self.cursor = cursor


@dataclass
class _Chunk:
    ids: list[str]
    clusters: list[Cluster] = field(default_factory=list)
    accounts: list[Account | Exception] = field(default_factory=list)
    failures: list[SourceFailure] = field(default_factory=list)


class AccountExport:
    """One export for one principal: ``blocks()`` walks the index once."""

    def __init__(self, env: ExportEnv, principal: Principal, admission: Admission,
                 request: ExportRequest, *, audit_every: int = AUDIT_EVERY) -> None:
        self.env = env
        self.principal = principal
        self.admission = admission
        self.request = request
        self.audit_every = audit_every
        self.format = RowFormat(admission.view, env.access.schemas.mask_key, request.format,
                                request.currency, request.as_of.label, env.sources.survivorship)
        self.format.check_filters(request.filters)
        self.objectable = env.privacy.objectable(principal.purpose)
        self.objectors: frozenset[str] = frozenset()
        self.written = 0  # rows out, audited
        self.walked = 0  # customers of the index walked (written, out of scope, objecting...)
        self.cursor = request.cursor  # the last customer walked whose row (if any) is out
        self.complete = False  # the walk reached the end of the index

    @property
    def header(self) -> list[str]:
        return self.format.header

    async def total(self) -> int:
        """Customers in the index (for a progress bar)."""
        assert self.env.linker.crosswalk is not None
        return (await self.env.linker.crosswalk.stats())["customers"]

    async def objections_for(self, customers: Iterable[str], purpose: str) -> set[str]:
        """The consent store's answer, from the objectors loaded when the export started."""
        return {c for c in customers if c in self.objectors}

    def _resolver(self) -> Resolver:
        env = self.env
        resolver = Resolver(env.sources, env.settings, env.linker, self.admission.scope,
                            env.access.facts)
        resolver.groups = NAMES if self.format.names else frozenset()
        resolver.match_keys = False  # the index has placed every record: no key is parsed
        if self.objectable:
            resolver.consent = ConsentGate(self, self.principal.purpose,
                                           env.privacy.consent_config.rules, objectable=True)
        return resolver

    async def _load(self, ids: list[str]) -> _Chunk:
        resolver = self._resolver()
        chunk = _Chunk(ids, await resolver.indexed_customers(ids))
        if chunk.clusters and not resolver.failures:
            request = self.request
            chunk.accounts = await accounts(resolver, self.env.sources, chunk.clusters,
                                            request.as_of.day, request.currency,
                                            request.as_of.until)
        chunk.failures = list(resolver.failures)
        return chunk

    def _rows(self, chunk: _Chunk) -> tuple[list[list[Any]], list[str]]:
        rows, ids = [], []
        filters, row = self.request.filters, self.format.row
        for found, account in zip(chunk.clusters, chunk.accounts, strict=True):
            if isinstance(account, Exception):
                if filters.active:  # nothing to judge the filters on
                    continue
            elif filters.active and not filters.admits(account):
                continue
            rows.append(row(found, account))
            ids.append(found.id)
        return rows, ids

    async def _audited(self, data: list[bytes], ids: list[str], cursor: str | None) -> Block:
        request = self.request
        details = {"operation": "export", "export": "accounts", "format": request.format,
                   "as_of": request.as_of.label, "currency": request.currency,
                   "filters": [f if TOKEN.fullmatch(f) else f.partition("=")[0]
                               for f in request.filters.given],
                   "cursor": request.cursor or "", "outcome": "ok"}
        if ids:
            try:
                await self.env.privacy.log.append(AuditEvent.of(
                    self.principal, "read", ids, self.format.fields, **details))
            except AuditError:
                raise ExportError("the audit log could not record the export, so no further "
                                  "rows were written; try again, and tell the gateway's "
                                  "operators if it persists", "AUDIT_UNAVAILABLE", 503) from None
        self.written += len(ids)
        self.cursor = cursor
        return Block(b"".join(data), len(ids), 0, cursor)

    async def blocks(self, stop: Callable[[], bool] = lambda: False) -> AsyncGenerator[Block, None]:
        """The export, block by block. ``stop()`` is asked after every chunk: when true, what
        is computed goes out and the walk ends (``complete`` stays False)."""
        crosswalk = self.env.linker.crosswalk
        assert crosswalk is not None
        if self.objectable and self.principal.purpose is not None:
            self.objectors = frozenset(await self.env.privacy.consent.objectors(
                self.principal.purpose))
        size = self.request.chunk_size
        data: list[bytes] = []
        ids: list[str] = []
        walked_to = self.cursor
        page = await crosswalk.global_ids(self.cursor, size)
        task = asyncio.ensure_future(self._load(page)) if page else None
        try:
            while task is not None:
                chunk = await task
                task = None
                if chunk.failures:
                    if ids:
                        yield await self._audited(data, ids, walked_to)
                    raise SourceFailed(chunk.failures, self.cursor)
                more = len(chunk.ids) == size
                if more and not stop():  # overlap: read the next chunk while this one is written
                    page = await crosswalk.global_ids(chunk.ids[-1], size)
                    task = asyncio.ensure_future(self._load(page)) if page else None
                    more = bool(page)
                rows, chunk_ids = self._rows(chunk)
                if ids and len(ids) + len(chunk_ids) > self.audit_every:
                    yield await self._audited(data, ids, walked_to)
                    data, ids = [], []
                if rows:
                    data.append(self.format.encode(rows))
                    ids.extend(chunk_ids)
                walked_to = chunk.ids[-1]
                self.walked += len(chunk.ids)
                if not ids:  # nothing pending: the walk itself may move the cursor on
                    self.cursor = walked_to
                yield Block(walked=len(chunk.ids))
                if more and stop():  # the chunk being read is dropped (finally)
                    break
            else:
                self.complete = True
            if ids:
                yield await self._audited(data, ids, walked_to)
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
