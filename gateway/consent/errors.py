"""One exception tree for the consent store (consent decisions and correction requests).

Library exceptions are translated once, in the database layer shared with the audit log
(``gateway.stores.sqlite``, ``gateway.stores.postgres``), so callers only ever see these::

    ConsentError            code                meaning
    ├── ConsentConfigError  CONSENT_CONFIG      bad store URL, schema, rules or contacts
    ├── ConsentUnavailable  CONSENT_UNAVAILABLE the store cannot be opened or reached
    ├── InvalidConsentRecord CONSENT_RECORD     a decision or request breaks a rule: nothing written
    └── CorrectionNotFound  CONSENT_NOT_FOUND   no correction request has that id
"""

from __future__ import annotations

from gateway.stores.types import ErrorKinds


class ConsentError(Exception):
    """Base of every error the consent store raises."""

    code = "CONSENT_ERROR"


class ConsentConfigError(ConsentError, ValueError):
    """The consent store or rules are configured with something they cannot use."""

    code = "CONSENT_CONFIG"


class ConsentUnavailable(ConsentError):
    """The consent store's database cannot be opened or reached."""

    code = "CONSENT_UNAVAILABLE"


class InvalidConsentRecord(ConsentError, ValueError):
    """A consent decision or correction request breaks a rule; nothing was written."""

    code = "CONSENT_RECORD"


class CorrectionNotFound(ConsentError, LookupError):
    """No correction request has the id asked for."""

    code = "CONSENT_NOT_FOUND"


#: The consent store's errors and rules, for the database layer.
ERRORS = ErrorKinds("consent store", ConsentError, ConsentConfigError, ConsentUnavailable,
                    InvalidConsentRecord,
                    {"correction_status_known": "a correction's status is one of the known statuses"})
