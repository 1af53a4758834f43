"""``${env:NAME}`` and ``${file:PATH}`` references in the config file.

Secrets are never written inline: connection keys that hold one must be references, and
resolved values are never echoed in messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

REFERENCE = re.compile(r"\$\{(env|file):([^}:]+)(?::-([^}]*))?\}")
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
