"""An identity provider's public keys (JWKS), cached, refetched when a token names a new key.

pyjwt's ``PyJWKClient`` does the fetching and caching: the key set is kept for
``jwks_cache_seconds`` (so a key the provider drops stops verifying after that), and a token whose
``kid`` is not in the cache triggers one refetch, at most once per ``jwks_refetch_seconds`` (so a
flood of made-up key ids cannot turn the gateway against the provider). Its fetch is blocking
(urllib): a cached key is looked up on the event loop, a fetch runs in a worker thread.
"""

from __future__ import annotations

import asyncio

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError

from gateway.auth.errors import AuthError, AuthUnavailable

FETCH_TIMEOUT_SECONDS = 5.0


class JWKSKeys:
    """The signing keys published at one JWKS URL."""

    def __init__(self, url: str, *, cache_seconds: float, refetch_seconds: float) -> None:
        self.client = PyJWKClient(url, cache_jwk_set=True, lifespan=cache_seconds,
                                  cooldown_duration=refetch_seconds, timeout=FETCH_TIMEOUT_SECONDS)

    def _cached(self, kid: str) -> PyJWK | None:
        cache = self.client.jwk_set_cache
        keys = cache.get() if cache is not None else None
        if keys is None:
            return None
        return next((k for k in keys.keys if k.key_id == kid and k.public_key_use in ("sig", None)),
                    None)

    async def key(self, kid: str) -> PyJWK:
        """The key with this id; AuthError when the provider has none, AuthUnavailable when the
        provider cannot be reached."""
        found = self._cached(kid)
        if found is not None:
            return found
        try:
            return await asyncio.to_thread(self.client.get_signing_key, kid)
        except PyJWKClientConnectionError:
            raise AuthUnavailable("the identity provider's keys (jwks_url) cannot be fetched; "
                                  "try again shortly, and tell the gateway's operator if it "
                                  "lasts") from None
        except PyJWKSetError:
            raise AuthUnavailable("the identity provider's key set (jwks_url) holds no usable "
                                  "key; tell the gateway's operator") from None
        except PyJWKClientError:
            raise AuthError(f"the bearer token is signed with key id {kid[:64]!r}, which the identity "
                            f"provider does not publish; get a new token") from None
