"""The configured sources at run time: their connectors, order and readiness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping

from connectors import registry
from connectors.base import Connector
from connectors.errors import ConnectorError
from gateway.config import Config, SourceConfig
from gateway.faults import CircuitBreaker
from gateway.finance.config import FinanceConfig
from gateway.settings import Settings
from gateway.survivorship import Survivorship

log = logging.getLogger("panorama.sources")


class Source:
    """One configured source: its mapping and its connector."""

    def __init__(self, config: SourceConfig, connector: Connector, rank: int,
                 breaker: CircuitBreaker | None = None, cache_ttl: float = 0.0) -> None:
        self.config = config
        self.connector = connector
        self.rank = rank
        self.name = config.name
        #: Set once the source has answered any call: readiness.
        self.answered = False
        self.last_error: str | None = None
        #: Shared by every request: after repeated failures, calls short-circuit (gateway.faults).
        #: Seconds its results may be served from the cache (0: always live).
        self.cache_ttl = cache_ttl
        defaults = Settings()
        self.breaker = breaker or CircuitBreaker(config.name, defaults.breaker_failures,
                                                 defaults.breaker_cooldown_seconds)


class SourceSet:
    """Every source of a config, in config order (which is the identity order)."""

    def __init__(self, sources: list[Source], survivorship: Survivorship | None = None,
                 finance: FinanceConfig | None = None) -> None:
        self._sources = {s.name: s for s in sources}
        self.rank = {s.name: s.rank for s in sources}
        #: The parsed `survivorship:` rules that merge applies to every customer.
        self.survivorship = survivorship or Survivorship()
        #: The `finance:` section: currency, rates, risk and profit rules of accounts.
        self.finance = finance or FinanceConfig()

    @classmethod
    def from_config(cls, config: Config, settings: Settings | None = None,
                    reuse: Mapping[str, Source] | None = None) -> SourceSet:
        """Connectors for every source of ``config``; breakers as ``settings`` say (or defaults).

        ``reuse``: sources of a previous version configured identically; their connector (its
        pool) and breaker carry over, so that a reload leaves unchanged sources warm.
        """
        settings = settings or Settings()
        sources = []
        for rank, sc in enumerate(config.sources.values()):
            ttl = settings.cache_ttl_seconds if sc.cache_ttl is None else sc.cache_ttl
            kept = (reuse or {}).get(sc.name)
            if kept is not None:
                source = Source(sc, kept.connector, rank, kept.breaker, ttl)
                source.answered, source.last_error = kept.answered, kept.last_error
                sources.append(source)
                continue
            connector_cls = registry.get(sc.kind)
            connector = connector_cls(sc.name, sc.connection, sc.entities(), timeout=sc.timeout,
                                      pool_size=sc.pool_size)
            breaker = CircuitBreaker(sc.name, settings.breaker_failures,
                                     settings.breaker_cooldown_seconds)
            sources.append(Source(sc, connector, rank, breaker, ttl))
        return cls(sources, config.survivorship, config.finance)

    def __iter__(self) -> Iterator[Source]:
        return iter(self._sources.values())

    def get(self, name: str) -> Source | None:
        return self._sources.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._sources)

    @property
    def shops(self) -> Mapping[str, str]:
        return {s.name: s.config.shop for s in self if s.config.shop}

    @property
    def ready(self) -> bool:
        return all(s.answered for s in self)

    async def probe(self) -> None:
        """Ping every source that has not answered yet, in parallel."""

        async def one(source: Source) -> None:
            try:
                await source.connector.ping()
            except ConnectorError as exc:
                source.last_error = exc.code
                log.warning("source %s not ready: %s", source.name, exc.code)
            except Exception:  # a connector bug must not stop the probe of the others
                source.last_error = "SOURCE_ERROR"
                log.exception("source %s: unexpected error while probing", source.name)
            else:
                source.answered, source.last_error = True, None

        await asyncio.gather(*(one(s) for s in self if not s.answered))

    async def aclose(self) -> None:
        await asyncio.gather(*(s.connector.aclose() for s in self), return_exceptions=True)
