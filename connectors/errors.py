"""One exception tree for every connector.

Driver and HTTP-library exceptions are translated once, at the connector boundary
(``raise SourceUnavailable(...) from exc``), so the gateway only ever sees these::

    ConnectorError           code                meaning
    ├── SourceConfigError    SOURCE_CONFIG       the mapping names a table/column/property not there
    ├── Unsupported          SOURCE_UNSUPPORTED  the query needs something this connector cannot do
    ├── SourceUnavailable    SOURCE_UNAVAILABLE  cannot connect, connection lost, auth refused
    │   └── SourceTimeout    SOURCE_TIMEOUT      the source did not answer in time
    └── UpstreamError        SOURCE_ERROR        the source answered with an error (HTTP 5xx, SQL)

Messages name the source by its logical name only: never a host, a DSN, SQL text or a secret.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    code = "SOURCE_ERROR"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"source '{source}': {message}")
        self.source = source
        self.detail = message


class SourceConfigError(ConnectorError):
    """The mapping does not fit the source (missing table, column or property)."""

    code = "SOURCE_CONFIG"


class Unsupported(ConnectorError):
    """The query needs a capability the connector does not declare."""

    code = "SOURCE_UNSUPPORTED"


class SourceUnavailable(ConnectorError):
    """The source cannot be reached or refused us."""

    code = "SOURCE_UNAVAILABLE"


class SourceTimeout(SourceUnavailable):
    """The source did not answer within its timeout."""

    code = "SOURCE_TIMEOUT"


class UpstreamError(ConnectorError):
    """The source answered, with an error."""

    code = "SOURCE_ERROR"
