"""The admin operations, free of HTTP: change, restore, reload, preview, test and introspect.

A change is all or nothing: it is applied to a copy of the head document, validated as a whole
(and against the live sources it touches), built into a runtime, stored as a new version only if
nobody committed in between, and only then swapped in. Any failure before the swap leaves the
running gateway and the store as they were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import registry
from connectors.errors import ConnectorError
from gateway.admin.changes import Change, SecretRules, apply_changes, stored_connection
from gateway.admin.checks import HostRule, check_document, check_live, hosts_of
from gateway.admin.document import ConfigDocument
from gateway.admin.store import ConfigStore, StaleVersion, Version
from gateway.audit import AuditError, AuditEvent
from gateway.config import Config, Problem, resolve_connection
from gateway.principal import Principal
from gateway.runtime import Live, Runtime, Shared

log = logging.getLogger("panorama.admin")

#: What a reason may be: a sentence, not an essay.
MAX_REASON = 500


class Invalid(ValueError):
    """A proposed config has problems; nothing was applied."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s); nothing was applied")


@dataclass(frozen=True)
class Proposal:
    document: ConfigDocument
    config: Config
    #: With a live check: the tables each changed source's mapping reads, with column types.
    described: Mapping[str, Any] = field(default_factory=dict)


#: Runs a GraphQL query on a runtime as a principal: (runtime, principal, query, variables).
Executor = Callable[[Runtime, Principal, str, Mapping[str, Any] | None],
                    Awaitable[dict[str, Any]]]


class AdminService:
    def __init__(self, store: ConfigStore, live: Live, shared: Shared, *, config_path: Path,
                 environ: Mapping[str, str], secrets_dir: Path,
                 allowed_hosts: Sequence[HostRule]) -> None:
        self.store = store
        self.live = live
        self.shared = shared
        self.config_path = config_path
        self.base_dir = config_path.parent
        self.environ = environ
        self.rules = SecretRules(environ, secrets_dir, self.base_dir)
        self.allowed_hosts = tuple(allowed_hosts)
        self.execute: Executor | None = None  # set by the app: the GraphQL view runs previews

    # -- start-up and reloads -------------------------------------------------------------

    async def start(self, initial: ConfigDocument) -> None:
        """Open the store; serve its head (the start-up runtime was built from the files)."""
        head = await self.store.open(initial)
        if head.document == initial:
            self.live.current.version = head.number
        else:  # PostgreSQL holds a newer config than the files: it wins
            self.live.current.version = 0
            await self.reload(head.number)
        await self.store.watch(self.reload)

    async def reload(self, number: int) -> None:
        """Serve version ``number`` (another replica committed it), unless already serving it
        or a newer one. A version this replica cannot load is logged and skipped."""
        async with self.live.lock:
            if number <= self.live.version:
                return
            version = await self.store.get(number)
            if version is None:
                log.error("config version %d announced but not found in the store", number)
                return
            checked = self._check(version.document)
            if checked.config is None:
                log.error("config version %d cannot be served here; still serving %d: %s",
                          number, self.live.version, "; ".join(map(str, checked.problems)))
                return
            await self.live.swap(Runtime.build(number, checked.config, self.shared,
                                               self.live.current))

    # -- changes --------------------------------------------------------------------------

    async def propose(self, changes: Sequence[Change], base: ConfigDocument | None = None,
                      live: bool = False) -> Proposal:
        """The document ``changes`` make of ``base`` (the head), checked; Invalid if not fit."""
        if base is None:
            base = (await self.store.head()).document
        document, problems = apply_changes(base, changes, self.rules)
        if problems:
            raise Invalid(problems)
        return await self._checked(document, live)

    async def _checked(self, document: ConfigDocument, live: bool) -> Proposal:
        checked = self._check(document)
        if checked.config is None:
            raise Invalid(checked.problems)
        if live:
            running = self.live.current.config.sources
            changed = [s for name, s in checked.config.sources.items() if running.get(name) != s]
            problems, described = await check_live(changed)
            if problems:
                raise Invalid(problems)
            return Proposal(document, checked.config, described)
        return Proposal(document, checked.config)

    def _check(self, document: ConfigDocument) -> Any:
        return check_document(document, str(self.config_path), self.base_dir, self.environ,
                              self.allowed_hosts)

    async def apply(self, changes: Sequence[Change], expected: int, author: str, reason: str,
                    live: bool = True) -> Version:
        async with self.live.lock:
            head = await self.store.head()
            if head.number != expected:
                raise StaleVersion(expected, head.number)
            proposal = await self.propose(changes, head.document, live)
            return await self._commit(proposal, head, author, reason)

    async def restore(self, number: int, expected: int, author: str, reason: str) -> Version:
        async with self.live.lock:
            head = await self.store.head()
            if head.number != expected:
                raise StaleVersion(expected, head.number)
            old = await self.store.get(number)
            if old is None:
                raise LookupError(f"no version {number}; GET /admin/api/history lists them")
            proposal = await self._checked(old.document, live=False)
            return await self._commit(proposal, head, author, reason)

    async def _commit(self, proposal: Proposal, head: Version, author: str,
                      reason: str) -> Version:
        runtime = Runtime.build(head.number + 1, proposal.config, self.shared, self.live.current)
        try:
            version = await self.store.commit(proposal.document, head.number, author, reason)
        except BaseException:
            await _close_new(runtime, self.live.current)
            raise
        await self.live.swap(runtime)
        return version

    # -- looking before applying ----------------------------------------------------------

    async def preview(self, changes: Sequence[Change], principal: Principal, query: str,
                      variables: Mapping[str, Any] | None) -> dict[str, Any]:
        """What ``principal`` gets for ``query`` now, and under the proposed changes."""
        assert self.execute is not None
        current = self.live.current
        current.enter()
        try:
            proposal = await self.propose(changes)
            proposed = Runtime.build(current.version, proposal.config, self.shared, current)
            try:
                return {"current": await self.execute(current, principal, query, variables),
                        "proposed": await self.execute(proposed, principal, query, variables)}
            finally:
                await _close_new(proposed, current)
        finally:
            current.leave()

    async def probe(self, name: str | None, item: Mapping[str, Any] | None,
                    introspect: bool) -> dict[str, Any]:
        """Test a connection (or list its tables and columns): a configured source by name, or
        a connector as proposed. Hosts outside the allow-list are never contacted."""
        kind, connection, timeout = await self._connection_of(name, item)
        bad = [h for h in hosts_of(connection)
               if self.allowed_hosts and not any(r.allows(h) for r in self.allowed_hosts)]
        if bad:
            raise Invalid([Problem("connection", f"host '{bad[0]}' is not in "
                                                 f"admin_allowed_hosts; nothing was contacted")])
        connector = registry.get(kind)(name or "proposed", connection, {},
                                       timeout=timeout or 10.0, pool_size=1)
        started = time.perf_counter()
        try:
            if introspect:
                tables = await connector.introspect()
                return {"tables": tables}
            await connector.introspect() if kind == "crm" else await connector.ping()
            return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 1)}
        except ConnectorError as exc:
            if introspect:
                raise Invalid([Problem("connection", f"cannot reach the source ({exc.code}): "
                                                     f"{exc.detail}")]) from None
            return {"ok": False, "error": f"{exc.code}: {exc.detail}",
                    "latencyMs": round((time.perf_counter() - started) * 1000, 1)}
        finally:
            await connector.aclose()

    async def _connection_of(self, name: str | None, item: Mapping[str, Any] | None
                             ) -> tuple[str, dict[str, Any], float | None]:
        if item is None:
            source = self.live.current.config.sources.get(name or "")
            if source is None:
                raise LookupError(f"no connector '{name}'; GET /admin/api/connectors lists them")
            return source.kind, dict(source.connection), source.timeout
        # A connector as proposed: secrets as the API takes them (a redacted one kept from the
        # stored connector of that name), then resolved like start-up resolves them.
        spec = (await self.store.head()).document.sources.get(name or "") or {}
        connection, problems = stored_connection(item.get("connection") or {},
                                                 spec.get("connection") or {}, "connection",
                                                 self.rules)
        kind = item.get("kind")
        if kind not in registry.kinds():
            problems.append(Problem("kind", f"expected one of {', '.join(registry.kinds())}"))
        resolved, more = resolve_connection(connection or {}, self.base_dir, self.environ)
        problems += more
        if problems:
            raise Invalid(problems)
        timeout = item.get("timeout")
        return str(kind), resolved, float(timeout) if isinstance(timeout, int | float) else None

    # -- audit ----------------------------------------------------------------------------

    async def audit(self, principal: Principal | None, action: str, outcome: str,
                    **details: Any) -> None:
        """Every admin action, accepted or refused, goes to the audit log."""
        if principal is None:
            return
        event = AuditEvent.of(principal, "admin", action=action, outcome=outcome,
                              **{k: v for k, v in details.items() if v is not None})
        try:
            await self.shared.privacy.log.append(event)
        except AuditError:
            log.exception("audit log: could not record admin action %s (%s)", action, outcome)


async def _close_new(runtime: Runtime, running: Runtime) -> None:
    """Close the connectors ``runtime`` opened that ``running`` does not share."""
    kept = {id(s.connector) for s in running.sources}
    for source in runtime.sources:
        if id(source.connector) not in kept:
            await source.connector.aclose()
