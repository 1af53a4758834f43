"""One config version at run time, and the live holder that swaps versions under traffic.

A :class:`Runtime` is everything built from one version of the editable config (the sources,
the policy's decisions, the steward, the export environment). :class:`Live` holds the current
one. Every request takes the runtime current when it arrives and keeps it to its end
(:class:`ConfigScope`), so a request never mixes two versions; the response says which one it
ran on (``Panorama-Config-Version``). A runtime replaced by a newer one is closed once the last
request still on it has finished; sources whose config did not change move to the new runtime
as they are, warm pools, breakers and all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access import Access
from gateway.config import Config
from gateway.crosswalk import KeyHasher
from gateway.finance.export import ExportEnv
from gateway.linking import Linker
from gateway.privacy import Privacy
from gateway.settings import Settings
from gateway.sources import Source, SourceSet
from gateway.stewardship import Steward

log = logging.getLogger("panorama.runtime")

RUNTIME_KEY = "panorama.runtime"
VERSION_HEADER = b"panorama-config-version"


@dataclass(frozen=True)
class Shared:
    """What every version shares: built once from the start-up config, never reloaded."""

    settings: Settings
    schema: Any  # the full strawberry schema; requests run on its per-role copies
    linker: Linker
    privacy: Privacy


@dataclass(eq=False)
class Runtime:
    """The gateway as one config version makes it."""

    version: int
    config: Config
    sources: SourceSet
    access: Access
    steward: Steward | None
    export_env: ExportEnv
    privacy: Privacy  # the shared audit log and consent store, under this version's policy
    #: Requests running on this runtime right now.
    active: int = 0
    _drained: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, version: int, config: Config, shared: Shared,
              previous: Runtime | None = None) -> Runtime:
        """The runtime of ``config``; sources whose config equals ``previous``'s are reused."""
        fresh = SourceSet.from_config(config, shared.settings, reuse=_reusable(previous, config))
        access = Access.of(config, shared.schema)
        steward = None
        linker = shared.linker
        if config.identity is not None and linker.crosswalk is not None and linker.matcher:
            steward = Steward(fresh, linker.crosswalk, linker.matcher,
                              KeyHasher(config.identity.secret), consent=shared.privacy.consent)
        privacy = shared.privacy.bound(access.policy)
        env = ExportEnv(fresh, shared.settings, linker, access, privacy)
        return cls(version, config, fresh, access, steward, env, privacy)

    def enter(self) -> None:
        self.active += 1
        self._drained.clear()

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._drained.set()

    async def drained(self) -> None:
        if self.active:
            await self._drained.wait()


def _reusable(previous: Runtime | None, config: Config) -> dict[str, Source]:
    """Sources of ``previous`` that ``config`` configures identically (same connection,
    mapping, everything): they move over with their pools and breakers."""
    if previous is None:
        return {}
    return {name: source for name, source in
            ((s.name, s) for s in previous.sources)
            if config.sources.get(name) == source.config}


Listener = Callable[[Runtime, Runtime], Awaitable[None]]


class Live:
    """The current runtime, swapped atomically; retired runtimes close once drained."""

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        #: Told of every swap (old, new) once the new runtime serves: the source cache forgets
        #: the sources that changed.
        self.listeners: list[Listener] = []

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a change is built and swapped in: one change at a time per process."""
        return self._lock

    async def swap(self, runtime: Runtime) -> None:
        """Serve ``runtime`` from now on; the old one closes when its last request is done."""
        old, self.current = self.current, runtime
        log.info("config version %d now serves (was %d)", runtime.version, old.version)
        for listener in self.listeners:
            try:
                await listener(old, runtime)
            except Exception:  # a listener's failure must not undo a swap that happened
                log.exception("config version %d: a reload listener failed", runtime.version)
        task = asyncio.create_task(self._retire(old, runtime))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, old: Runtime, new: Runtime) -> None:
        await old.drained()
        kept = {id(s.connector) for s in new.sources}
        await asyncio.gather(*(s.connector.aclose() for s in old.sources
                               if id(s.connector) not in kept),
                             return_exceptions=True)

    async def aclose(self) -> None:
        """Wait for retiring runtimes, then close the current one's sources."""
        for task in list(self._retiring):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.current.sources.aclose()


def runtime_of(scope_or_request: Any) -> Runtime:
    """The runtime a request runs on (ConfigScope put it in the scope)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    return scope[RUNTIME_KEY]


class ConfigScope:
    """ASGI middleware, outermost: pin the request to the current runtime until it ends, and
    report the version it ran on in the ``Panorama-Config-Version`` response header."""

    def __init__(self, app: ASGIApp, live: Live) -> None:
        self.app = app
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = self.live.current
        scope[RUNTIME_KEY] = runtime
        version = str(runtime.version).encode()

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (VERSION_HEADER, version)]
            await send(message)

        runtime.enter()
        try:
            await self.app(scope, receive, send_with_version)
        finally:
            runtime.leave()
