"""Connectors: the lower layer that reads customer data from the sources.

A connector turns a :class:`~connectors.query.Query` (logical fields, a filter tree,
keyset paging) into the source's own protocol and returns rows keyed by logical field
name. It never imports ``gateway``.
"""

from connectors.base import Connector
from connectors.errors import (
    ConnectorError,
    SourceConfigError,
    SourceTimeout,
    SourceUnavailable,
    Unsupported,
    UpstreamError,
)
from connectors.query import All, Any_, Cond, EntityMap, Join, Page, Query

__all__ = [
    "All",
    "Any_",
    "Cond",
    "Connector",
    "ConnectorError",
    "EntityMap",
    "Join",
    "Page",
    "Query",
    "SourceConfigError",
    "SourceTimeout",
    "SourceUnavailable",
    "Unsupported",
    "UpstreamError",
]
