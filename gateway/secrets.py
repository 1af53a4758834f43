"""``${env:NAME}``, ``${file:PATH}`` and ``${enc:TOKEN}`` references in the config file.

Secrets are never written inline: connection keys that hold one must be references, and
resolved values are never echoed in messages. ``${enc:...}`` holds a secret encrypted (Fernet:
AES-128-CBC with an HMAC) with the key in the ``PANORAMA_SECRETS_KEY`` environment variable;
the admin API writes those when an admin types a password in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

REFERENCE = re.compile(r"\$\{(env|file|enc):([^}:]+)(?::-([^}]*))?\}")
#: The environment variable that holds the key of ``${enc:...}`` secrets.
KEY_VARIABLE = "PANORAMA_SECRETS_KEY"
#: Connection keys whose value is a secret and so must be a reference.
SECRET_KEYS = frozenset({"password", "token", "api_key", "secret"})
#: A URL or DSN with a password in it: scheme://user:password@host
DSN_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/:@]*:[^@]+@", re.IGNORECASE)


class UnresolvedReference(ValueError):
    """A reference names a variable or file that is not there."""


def resolve(text: str, environ: Mapping[str, str], base_dir: Path) -> str:
    """Replace every reference in ``text``; raise UnresolvedReference naming what is missing."""

    def substitute(match: re.Match[str]) -> str:
        kind, name, default = match.group(1), match.group(2).strip(), match.group(3)
        if kind == "env":
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise UnresolvedReference(
                f"environment variable {name} is not set; export it or write ${{env:{name}:-default}}")
        if kind == "enc":
            return decrypt(name, environ)
        path = Path(name) if Path(name).is_absolute() else base_dir / name
        try:
            return path.read_text().strip()
        except OSError:
            raise UnresolvedReference(
                f"secret file {name} cannot be read; create it or fix the path") from None

    return REFERENCE.sub(substitute, text)


def inline_secret(key: str, value: object) -> bool:
    """Whether a connection value is a secret written in clear instead of as a reference."""
    if not isinstance(value, str) or REFERENCE.search(value):
        return False
    if key in SECRET_KEYS:
        return bool(value)
    return key in ("dsn", "url", "base_url") and bool(DSN_PASSWORD.match(value))


def _fernet(environ: Mapping[str, str]) -> Fernet:
    key = environ.get(KEY_VARIABLE, "")
    if not key:
        raise UnresolvedReference(
            f"an encrypted secret needs its key: set {KEY_VARIABLE} (make one with "
            f"`panorama secrets-key`), or use an ${{env:NAME}} or ${{file:PATH}} reference")
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise UnresolvedReference(
            f"{KEY_VARIABLE} is not a valid key (32 url-safe base64-encoded bytes); make one "
            f"with `panorama secrets-key`") from None


def encrypt(secret: str, environ: Mapping[str, str]) -> str:
    """``secret`` as an ``${enc:...}`` reference, encrypted with the environment's key."""
    return "${enc:" + _fernet(environ).encrypt(secret.encode()).decode() + "}"


def decrypt(token: str, environ: Mapping[str, str]) -> str:
    try:
        return _fernet(environ).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UnresolvedReference(
            f"an encrypted secret cannot be decrypted with {KEY_VARIABLE}: it was encrypted "
            f"with another key, or altered; write the secret again") from None


def new_key() -> str:
    """A fresh key for ``PANORAMA_SECRETS_KEY``."""
    return Fernet.generate_key().decode()
