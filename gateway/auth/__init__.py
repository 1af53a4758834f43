"""Authentication: bearer JWTs and API keys -> :class:`~gateway.principal.Principal`.

``config`` reads the ``auth:`` section, ``tokens`` verifies and mints JWTs (``jwks`` fetches an
identity provider's keys), ``apikeys`` makes and checks service keys, ``authenticator`` turns a
request's headers into its principal and purpose, ``http`` is the gate in front of /graphql.
See docs/security.md.
"""

from gateway.auth.authenticator import PURPOSE_HEADER, Authenticator, choose_purpose
from gateway.auth.config import AuthConfig, JWTConfig, parse_auth
from gateway.auth.errors import AuthError, AuthUnavailable, BadPurposeError, PurposeError
from gateway.auth.tokens import mint_token

__all__ = ["PURPOSE_HEADER", "AuthConfig", "AuthError", "AuthUnavailable", "Authenticator",
           "BadPurposeError", "JWTConfig", "PurposeError", "choose_purpose", "mint_token",
           "parse_auth"]
