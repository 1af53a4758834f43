"""The policy package's errors, in one tree::

    PolicyError
    ├── PolicyFileError        the policy file has problems (every one listed); also a ConfigError
    └── AccessDenied           this request cannot be served as asked (HTTP 403)
        ├── PurposeRequired        no purpose declared
        ├── UnknownPurpose         a purpose the policy does not define
        ├── PurposeNotAllowed      none of the principal's roles may act for that purpose
        ├── UnknownRole            a role the policy does not define
        ├── PrincipalIncomplete    a row filter needs an attribute the principal lacks
        └── NothingVisible         the roles may read nothing for that purpose

Every ``AccessDenied`` says what to do instead; ``code`` goes to the GraphQL error's
``extensions.code``.
"""

from __future__ import annotations

from gateway.config import ConfigError


class PolicyError(Exception):
    """Any problem of the policy package."""


class PolicyFileError(ConfigError, PolicyError):
    """The policy file has problems; ``problems`` lists every one with its location and a fix."""


class AccessDenied(PolicyError):
    code = "FORBIDDEN"
    status = 403


class PurposeRequired(AccessDenied):
    code = "PURPOSE_REQUIRED"


class UnknownPurpose(AccessDenied):
    code = "UNKNOWN_PURPOSE"


class PurposeNotAllowed(AccessDenied):
    code = "PURPOSE_NOT_ALLOWED"


class UnknownRole(AccessDenied):
    code = "UNKNOWN_ROLE"


class PrincipalIncomplete(AccessDenied):
    code = "PRINCIPAL_INCOMPLETE"


class NothingVisible(AccessDenied):
    code = "NOTHING_VISIBLE"
