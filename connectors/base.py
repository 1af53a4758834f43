"""The connector interface: one required method, capabilities as class attributes.

A connector is built by the registry from a source's configuration::

    connector = registry.get(kind)(name, connection, entities, timeout=..., pool_size=...)
    page = await connector.fetch(Query("customer", ("email_0",), limit=10))
    await connector.aclose()

Only :meth:`Connector.fetch` must be written. The planner reads the class attributes to
decide what to push down; it never checks a connector's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from connectors.errors import Unsupported
from connectors.query import EntityMap, Page, Query


class Connector:
    """Base class of every connector kind."""

    #: Registry name of the kind, e.g. ``"postgres"``.
    kind: ClassVar[str] = ""
    #: Condition operators (see ``query.OPS``) the source evaluates itself.
    filter_ops: ClassVar[frozenset[str]] = frozenset()
    #: Column normalizations (see ``query.NORMALIZERS``) the source can apply before comparing.
    normalizers: ClassVar[frozenset[str]] = frozenset()
    #: Whether ``AnyOf`` (OR) may appear in a pushed-down filter.
    supports_or: ClassVar[bool] = True
    #: Largest number of values one ``in`` condition may carry; the caller splits bigger lists.
    max_in_values: ClassVar[int] = 1000
    #: Largest ``limit`` one fetch may ask for.
    max_page_size: ClassVar[int] = 10_000
    #: Default seconds before a call raises ``SourceTimeout``.
    default_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        name: str,
        connection: Mapping[str, Any],
        entities: Mapping[str, EntityMap],
        *,
        timeout: float | None = None,
        pool_size: int = 5,
    ) -> None:
        self.name = name
        self.connection = dict(connection)
        self.entities = dict(entities)
        self.timeout = timeout if timeout is not None else self.default_timeout
        self.pool_size = pool_size

    async def fetch(self, query: Query) -> Page:
        """Return the rows of ``query.entity`` that satisfy the query."""
        raise NotImplementedError

    async def can_aggregate(self, query: Query) -> bool:
        """Whether ``fetch`` can answer ``query.aggregate`` exactly (``connectors.query.Aggregate``);
        default: no, the caller reads the rows and summarizes them itself."""
        return False

    async def ping(self) -> None:
        """Raise a ConnectorError unless the source answers; default: fetch one row."""
        entity = next(iter(self.entities.values()), None)
        if entity is not None:
            await self.fetch(Query(entity.name, (entity.key,), limit=1))

    async def verify(self) -> list[str]:
        """Problems between the mapping and the live source, one message each (empty: fine)."""
        raise Unsupported(self.name, f"connector kind '{self.kind}' cannot verify its mapping")

    async def introspect(self) -> dict[str, dict[str, str]]:
        """Tables (or CRM objects) -> column (or property) name -> declared type, columns in
        table order, to help write a mapping. A type is the source's own word for it (``integer``,
        ``varchar``, a CRM's ``datetime``...), or ``""`` when the source declares none."""
        raise Unsupported(self.name, f"connector kind '{self.kind}' cannot introspect")

    async def aclose(self) -> None:
        """Release pools and clients; default: nothing to release."""

    def entity(self, name: str) -> EntityMap:
        """The entity map called ``name``, or an error that lists the known ones."""
        try:
            return self.entities[name]
        except KeyError:
            known = ", ".join(sorted(self.entities)) or "none"
            raise Unsupported(self.name, f"no entity '{name}' mapped (mapped: {known})") from None
