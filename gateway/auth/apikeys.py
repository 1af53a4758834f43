"""API keys for service accounts: made once, shown once, stored only as a salted hash.

A key reads ``pnk_<id>_<secret>``: ``id`` (8 hex digits) is public and finds the stored entry
without trying every hash; ``secret`` is 32 random bytes. The config keeps
``sha256:<id>:<salt>:<digest>``, never the key.

Why salted SHA-256 and not a slow password hash (scrypt, argon2): a key carries 256 random bits,
so nobody can guess it from its hash however fast the hash is; a slow hash would only cost CPU on
every request. The salt keeps equal keys (or a key reused across deployments) from hashing alike.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "pnk_"
KEY = re.compile(r"^pnk_([0-9a-f]{8})_([A-Za-z0-9_-]{40,})$")
STORED = re.compile(r"^sha256:([0-9a-f]{8}):([0-9a-f]{32}):([0-9a-f]{64})$")


@dataclass(frozen=True)
class StoredKey:
    """What the config holds of one key: its id, salt and digest."""

    key_id: str
    salt: bytes
    digest: bytes = b""

    @classmethod
    def parse(cls, text: str) -> StoredKey:
        """Read ``sha256:<id>:<salt>:<digest>``; ValueError says what is wrong, never echoing it."""
        if KEY.match(text):
            raise ValueError("this is an API key itself, not its hash: never store the key; "
                             "write the `hash:` line `panorama apikey new` printed")
        match = STORED.match(text)
        if match is None:
            raise ValueError("not a stored key hash; expected sha256:<id>:<salt>:<digest> as "
                             "`panorama apikey new` prints it")
        return cls(match.group(1), bytes.fromhex(match.group(2)), bytes.fromhex(match.group(3)))

    def text(self) -> str:
        return f"sha256:{self.key_id}:{self.salt.hex()}:{self.digest.hex()}"

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this key; compares in constant time."""
        return hmac.compare_digest(_digest(self.salt, key), self.digest)


def _digest(salt: bytes, key: str) -> bytes:
    return hashlib.sha256(salt + key.encode()).digest()


def key_id(key: str) -> str | None:
    """The public id of a well-formed key, else None."""
    match = KEY.match(key)
    return match.group(1) if match else None


def new_key() -> tuple[str, StoredKey]:
    """A fresh key and what to store of it."""
    identifier = secrets.token_hex(4)
    key = f"{PREFIX}{identifier}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    return key, StoredKey(identifier, salt, _digest(salt, key))
