"""The ``auth:`` section of the config: how callers prove who they are.

```yaml
auth:
  secret: ${env:PANORAMA_JWT_SECRET}      # HS256 tokens (development, `panorama token`)
  jwks_url: https://idp.example.com/.well-known/jwks.json   # RS256/ES256 tokens (production)
  issuer: https://idp.example.com/         # optional: tokens must say so
  audience: panorama                       # optional: tokens must say so
  api_keys:                                # service accounts (`panorama apikey new`)
    - {name: till-paris, hash: "sha256:...", roles: [shop_staff], shop: Paris, purposes: [sale]}
```

Every problem is collected with its location, as the rest of the config loader does.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import secrets
from gateway.auth.apikeys import StoredKey

TOKEN_KEYS = ("algorithms", "issuer", "audience", "leeway_seconds", "jwks_cache_seconds",
              "jwks_refetch_seconds", "claims")
SECTION_KEYS = ("mode", "secret", "jwks_url", *TOKEN_KEYS, "api_keys")
API_KEY_KEYS = ("name", "hash", "roles", "shop", "region", "purposes")
MODES = ("tokens", "open")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                         "ES512", "EdDSA")
#: Claims a token may carry, and the claim names used unless ``claims:`` maps them elsewhere
#: (a dotted name reads a nested claim, e.g. ``realm_access.roles``).
DEFAULT_CLAIMS = {"subject": "sub", "roles": "roles", "shop": "shop", "region": "region",
                  "purpose": "purpose", "customer": "customer"}
#: A purpose, as a token claim, an API key's list or the Panorama-Purpose header names it.
PURPOSE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class JWTConfig:
    """How bearer JWTs are verified (and, with a secret, minted)."""

    secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: float = 30.0
    jwks_cache_seconds: float = 300.0
    jwks_refetch_seconds: float = 30.0
    claims: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))


@dataclass(frozen=True)
class APIKeyConfig:
    """One service account's key (its hash) and what it may act as."""

    name: str
    stored: StoredKey = field(repr=False)
    roles: tuple[str, ...]
    shop: str | None = None
    region: str | None = None
    purposes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    """The ``auth:`` section. ``mode: open`` lets a caller without credentials in as admin."""

    mode: str = "tokens"
    jwt: JWTConfig | None = None
    api_keys: tuple[APIKeyConfig, ...] = ()


def _hint(value: Any, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(value), allowed, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def parse_auth(doc: Any, environ: Mapping[str, str], base_dir: Path, location: str = "auth"
               ) -> tuple[AuthConfig | None, list[tuple[str, str]]]:
    """The ``auth:`` section and its problems as ``(location, message)``."""
    parser = _Parser(environ, base_dir, location)
    config = parser.section(doc)
    return (None if parser.problems else config), parser.problems


class _Parser:
    def __init__(self, environ: Mapping[str, str], base_dir: Path, location: str) -> None:
        self.environ, self.base_dir, self.location = environ, base_dir, location
        self.problems: list[tuple[str, str]] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append((f"{self.location}.{key}" if key else self.location, message))

    def mapping(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a mapping with keys {', '.join(allowed)}, "
                              f"got {type(value).__name__}")
            return {}
        for name in value:
            if name not in allowed:
                self.problem(f"{key}.{name}" if key else str(name),
                             f"unknown key; {_hint(name, allowed)}allowed: {', '.join(allowed)}")
        return dict(value)

    def section(self, doc: Any) -> AuthConfig:
        doc = self.mapping(doc, "", SECTION_KEYS)
        mode = doc.get("mode", "tokens")
        if mode not in MODES:
            self.problem("mode", f"unknown mode {mode!r}; {_hint(mode, MODES)}allowed: tokens "
                                 f"(the default), open (local development only)")
        jwt = self.jwt(doc) if "secret" in doc or "jwks_url" in doc else None
        if jwt is None:
            for key in TOKEN_KEYS:
                if key in doc:
                    self.problem(key, "applies to tokens, but no `secret` (HS256) or `jwks_url` "
                                      "(RS256/ES256) is configured; add one")
        keys = self.api_keys(doc.get("api_keys"))
        if mode == "tokens" and jwt is None and not keys and not self.problems:
            self.problem("", "no way to authenticate: set `secret` (HS256 tokens), `jwks_url` "
                             "(an identity provider's keys) or `api_keys`; or `mode: open` for "
                             "local development only")
        return AuthConfig(str(mode), jwt, keys)

    def jwt(self, doc: dict[str, Any]) -> JWTConfig:
        secret = self.secret(doc["secret"]) if "secret" in doc else None
        jwks_url = self.url(doc["jwks_url"]) if "jwks_url" in doc else None
        defaults = ((HMAC_ALGORITHMS[:1] if "secret" in doc else ())
                    + (("RS256", "ES256") if "jwks_url" in doc else ()))
        algorithms = self.algorithms(doc.get("algorithms", list(defaults)), "secret" in doc,
                                     "jwks_url" in doc)
        claims = dict(DEFAULT_CLAIMS)
        for name, claim in self.mapping(doc.get("claims"), "claims", tuple(DEFAULT_CLAIMS)).items():
            if isinstance(claim, str) and claim.strip():
                claims[name] = claim.strip()
            else:
                self.problem(f"claims.{name}", "expected a claim name such as 'roles' or "
                                               "'realm_access.roles'")
        return JWTConfig(
            secret=secret, jwks_url=jwks_url, algorithms=algorithms,
            issuer=self.text(doc.get("issuer"), "issuer"),
            audience=self.text(doc.get("audience"), "audience"),
            leeway_seconds=self.seconds(doc.get("leeway_seconds", 30), "leeway_seconds", 0, 300),
            jwks_cache_seconds=self.seconds(doc.get("jwks_cache_seconds", 300),
                                            "jwks_cache_seconds", 1, 86400),
            jwks_refetch_seconds=self.seconds(doc.get("jwks_refetch_seconds", 30),
                                              "jwks_refetch_seconds", 0, 3600),
            claims=claims)

    def secret(self, value: Any) -> str | None:
        if not isinstance(value, str) or not secrets.REFERENCE.search(value):
            self.problem("secret", "missing or written inline; keep the token secret in an "
                                   "environment variable and write ${env:NAME} (or ${file:PATH})")
            return None
        try:
            resolved = secrets.resolve(value, self.environ, self.base_dir)
        except secrets.UnresolvedReference as exc:
            self.problem("secret", str(exc))
            return None
        if len(resolved) < MIN_SECRET_LENGTH:
            self.problem("secret", f"too short ({len(resolved)} characters); HS256 needs at least "
                                   f"{MIN_SECRET_LENGTH} random characters, e.g. from "
                                   f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
            return None
        return resolved

    def url(self, value: Any) -> str | None:
        try:
            url = secrets.resolve(str(value), self.environ, self.base_dir)
        except secrets.UnresolvedReference as exc:
            self.problem("jwks_url", str(exc))
            return None
        if not re.match(r"^https?://[^/\s]+", url):
            self.problem("jwks_url", "expected an http(s) URL of the identity provider's JWKS, "
                                     "such as https://idp.example.com/.well-known/jwks.json")
            return None
        return url

    def algorithms(self, value: Any, has_secret: bool, has_jwks: bool) -> tuple[str, ...]:
        known = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names:
            self.problem("algorithms", f"expected a list such as [RS256, ES256]; known: "
                                       f"{', '.join(known)}")
            return ()
        for name in names:
            if str(name).lower() == "none":
                self.problem("algorithms", "'none' (unsigned tokens) is never accepted")
            elif name not in known:
                self.problem("algorithms", f"unknown algorithm {name!r}; {_hint(name, known)}"
                                           f"known: {', '.join(known)}")
            elif name in HMAC_ALGORITHMS and not has_secret:
                self.problem("algorithms", f"{name} needs `secret`; the JWKS only verifies "
                                           f"public-key algorithms")
            elif name in PUBLIC_KEY_ALGORITHMS and not has_jwks:
                self.problem("algorithms", f"{name} needs `jwks_url` (the identity provider's "
                                           f"public keys)")
        return tuple(str(n) for n in names)

    def text(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "expected a non-empty string")
            return None
        return value.strip()

    def seconds(self, value: Any, key: str, low: float, high: float) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
            return float(value)
        self.problem(key, f"expected a number of seconds from {low:g} to {high:g}, got {value!r}")
        return float(low)

    def names(self, value: Any, key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if items is None:
            return ()
        if not isinstance(items, list) or not all(isinstance(i, str) and pattern.match(i)
                                                  for i in items):
            self.problem(key, f"expected a list of {what}")
            return ()
        return tuple(items)

    def api_keys(self, value: Any) -> tuple[APIKeyConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem("api_keys", "expected a list of {name, hash, roles, ...} entries")
            return ()
        keys: list[APIKeyConfig] = []
        for index, entry in enumerate(value):
            where = f"api_keys[{index}]"
            doc = self.mapping(entry, where, API_KEY_KEYS)
            name = doc.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                self.problem(f"{where}.name", "missing or not a name (letters, digits, . _ @ -)")
                continue
            try:
                stored = StoredKey.parse(str(doc.get("hash") or ""))
            except ValueError as exc:
                self.problem(f"{where}.hash", str(exc))
                continue
            roles = self.names(doc.get("roles"), f"{where}.roles", NAME, "role names")
            if not roles:
                self.problem(f"{where}.roles", "give the key at least one role")
            if any(k.name == name or k.stored.key_id == stored.key_id for k in keys):
                self.problem(where, f"key {name!r} (or its id) is listed twice")
            keys.append(APIKeyConfig(
                name, stored, roles, self.text(doc.get("shop"), f"{where}.shop"),
                self.text(doc.get("region"), f"{where}.region"),
                self.names(doc.get("purposes"), f"{where}.purposes", PURPOSE,
                           "purpose names (lower-case letters, digits, '-', '_')")))
        return tuple(keys)
