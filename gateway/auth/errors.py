"""Why a request was not let in. One tree; fixed facts on the class, the message says the fix.

    AuthError                 401 UNAUTHENTICATED: no credential, or one that does not verify
    ├── PurposeError          403 FORBIDDEN: the Panorama-Purpose header asks for a purpose the
    │                         credential does not allow
    ├── BadPurposeError       400 BAD_USER_INPUT: the header is not a purpose name
    └── AuthUnavailable       503 AUTH_UNAVAILABLE: the identity provider's keys (JWKS) cannot
                              be fetched; not the caller's fault

Messages never contain the token, the key or a secret: they name what is wrong and what to do.
"""

from __future__ import annotations


class AuthError(Exception):
    """The request carries no usable credential."""

    status = 401
    code = "UNAUTHENTICATED"


class PurposeError(AuthError):
    status = 403
    code = "FORBIDDEN"


class BadPurposeError(AuthError):
    status = 400
    code = "BAD_USER_INPUT"


class AuthUnavailable(AuthError):
    status = 503
    code = "AUTH_UNAVAILABLE"
