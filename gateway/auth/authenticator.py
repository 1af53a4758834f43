"""A request's headers -> its Principal: a bearer JWT, an API key, or the static admin token.

Purpose of use: a credential may name the purposes it is for (a token's ``purpose`` claim, an
API key's ``purposes``). The ``Panorama-Purpose`` header may only narrow: it picks one of those,
or any purpose when the credential names none; asking for another is refused (403). Without the
header, a credential naming exactly one purpose declares it; otherwise the request has none and
the policy layer decides what that allows.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace

from gateway.auth import apikeys
from gateway.auth.config import PURPOSE, AuthConfig
from gateway.auth.errors import AuthError, BadPurposeError, PurposeError
from gateway.auth.tokens import TokenVerifier
from gateway.principal import ADMIN_PURPOSE, ADMIN_ROLE, Principal

PURPOSE_HEADER = "panorama-purpose"
# The static admin credentials declare the admin purpose unless the header names another: they
# are admin by construction, and `curl` against an open-mode gateway should just work.
#: Who a caller without credentials is in ``mode: open`` (local development only).
OPEN_PRINCIPAL = Principal(subject="anonymous", roles=(ADMIN_ROLE,), purpose=ADMIN_PURPOSE,
                           kind="user")
#: Who presents the static admin token (setting ``admin_token``).
ADMIN_TOKEN_PRINCIPAL = Principal(subject="admin-token", roles=(ADMIN_ROLE,),
                                  purpose=ADMIN_PURPOSE, kind="service")

Identified = tuple[Principal, tuple[str, ...]]


def choose_purpose(allowed: tuple[str, ...], header: str | None) -> str | None:
    """The request's purpose: the header narrowing what the credential allows (see above)."""
    asked = (header or "").strip()
    if not asked:
        return allowed[0] if len(allowed) == 1 else None
    if not PURPOSE.match(asked):
        raise BadPurposeError("the Panorama-Purpose header is not a purpose name (lower-case "
                              "letters, digits, '-' and '_', such as `marketing`)")
    if allowed and asked not in allowed:
        raise PurposeError(f"the credential is issued for purpose(s) {', '.join(allowed)}, not "
                           f"{asked!r}: drop the Panorama-Purpose header or use a credential "
                           f"issued for {asked!r}")
    return asked


class Authenticator:
    """Checks credentials as the ``auth:`` section (and the ``admin_token`` setting) say."""

    def __init__(self, config: AuthConfig | None, admin_token: str = "",
                 config_path: str = "the config file") -> None:
        self.config = config
        self.admin_token = admin_token
        self.config_path = config_path
        self.tokens = TokenVerifier(config.jwt) if config and config.jwt else None
        self.keys = {k.stored.key_id: k for k in (config.api_keys if config else ())}

    @property
    def open(self) -> bool:
        return self.config is not None and self.config.mode == "open"

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller's principal with the request's purpose; AuthError saying why not."""
        principal, allowed = await self.identify(headers.get("authorization"))
        purpose = choose_purpose(allowed, headers.get(PURPOSE_HEADER)) or principal.purpose
        return replace(principal, purpose=purpose)

    async def identify(self, authorization: str | None) -> Identified:
        if not authorization or not authorization.strip():
            if self.open:
                return OPEN_PRINCIPAL, ()
            raise AuthError(self._missing())
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthError("the Authorization header must read `Bearer <credential>`, with a "
                            "JWT or a Panorama API key")
        if self.admin_token and hmac.compare_digest(credential.encode(), self.admin_token.encode()):
            return ADMIN_TOKEN_PRINCIPAL, ()
        if credential.startswith(apikeys.PREFIX):
            return self._api_key(credential)
        if credential.count(".") == 2:
            if self.tokens is None:
                raise AuthError(f"this gateway accepts no JWTs: {self.config_path} configures "
                                f"neither auth.secret nor auth.jwks_url")
            return await self.tokens.verify(credential)
        raise AuthError("the bearer credential is neither a JWT, a Panorama API key (pnk_...) "
                        "nor the admin token")

    def _api_key(self, key: str) -> Identified:
        # The id is public (it only finds the entry); the secret part is checked in constant time.
        identifier = apikeys.key_id(key)
        entry = self.keys.get(identifier) if identifier else None
        if entry is None or not entry.stored.matches(key):
            raise AuthError("unknown API key: check it was copied whole, or ask an admin for a "
                            "new one (`panorama apikey new`)")
        return Principal(subject=f"apikey:{entry.name}", roles=entry.roles, shop=entry.shop,
                         region=entry.region, kind="service"), entry.purposes

    def _missing(self) -> str:
        if self.config is None:
            return (f"authentication is not configured: add an `auth:` section to "
                    f"{self.config_path} (see docs/security.md), for example `auth: {{secret: "
                    f"\"${{env:PANORAMA_JWT_SECRET}}\"}}`, then mint a token with `panorama token "
                    f"--role ROLE`")
        return ("authentication required: send `Authorization: Bearer <token>` with a JWT or a "
                "Panorama API key; `panorama token --role ROLE` mints a development token")
