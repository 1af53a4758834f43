"""Keyed hashes of match and blocking keys: what the crosswalk stores instead of the keys.

A plain hash of an e-mail address can be reversed by hashing a list of addresses; an HMAC
with a secret only the gateway knows cannot. The same secret must be used for every run, or
no stored hash matches a new one: changing it means re-indexing from scratch.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.crosswalk.errors import CrosswalkConfigError

#: Shortest secret accepted, in bytes.
MIN_SECRET_BYTES = 16
#: Hex characters kept of each digest: 128 bits, ample against collisions among customers' keys.
HASH_LENGTH = 32

_HOW = ('set identity.secret to a random value of at least 16 bytes, kept out of the config file'
        ' (${env:NAME} or ${file:PATH}); make one with'
        ' `python -c "import secrets; print(secrets.token_urlsafe(32))"`')


class KeyHasher:
    """HMAC-SHA256 of a key with the configured secret, as lower-case hex."""

    def __init__(self, secret: bytes | str) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(key, bytes) or not key.strip():
            raise CrosswalkConfigError(f"identity.secret is empty: {_HOW}")
        if len(key) < MIN_SECRET_BYTES:
            raise CrosswalkConfigError(
                f"identity.secret is too short ({len(key)} bytes, at least {MIN_SECRET_BYTES}): {_HOW}")
        self._key = key

    def hash(self, key: str) -> str:
        """The keyed hash of ``key`` (e.g. ``email:jean@example.com``)."""
        return hmac.digest(self._key, key.encode(), hashlib.sha256).hex()[:HASH_LENGTH]

    def __repr__(self) -> str:
        return "KeyHasher(secret=***)"
