"""Bearer JWTs: verified against the configured secret (HS256) or the JWKS (RS256, ES256), and
minted with the secret for development (``panorama token``).

Only the configured algorithms are accepted, so ``alg: none`` never is, nor an HMAC token when
only public keys are configured (the classic key-confusion attack). Tokens must carry ``exp`` and
``sub``; ``iss`` and ``aud`` are checked when configured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from gateway.auth.config import HMAC_ALGORITHMS, PURPOSE, JWTConfig
from gateway.auth.errors import AuthError
from gateway.auth.jwks import JWKSKeys
from gateway.principal import CUSTOMER_ROLE, Principal

#: pyjwt's errors, most specific first, and what the caller is told (after "the bearer token").
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "has expired; get a new one"),
    (jwt.ImmatureSignatureError, "is not valid yet (nbf or iat lies in the future); check the "
                                 "issuer's clock"),
    (jwt.InvalidIssuedAtError, "has an unusable issued-at time (iat)"),
    (jwt.InvalidIssuerError, "was issued by another issuer than this gateway trusts ({issuer})"),
    (jwt.MissingRequiredClaimError, "lacks a claim this gateway requires ({claim}); tokens need "
                                    "sub and exp, and iss/aud where configured"),
    (jwt.InvalidAlgorithmError, "is signed with an algorithm this gateway does not accept "
                                "(accepted: {algorithms})"),
    (jwt.InvalidSignatureError, "has a signature that does not verify: it was not signed by the "
                                "key this gateway trusts"),
    (jwt.DecodeError, "is not a well-formed JWT (three base64url parts separated by dots)"),
    (jwt.InvalidTokenError, "is not valid"),
)


def _message(exc: Exception, config: JWTConfig) -> str:
    if isinstance(exc, jwt.InvalidAudienceError):
        if config.audience is None:
            return ("the bearer token names an audience (aud) but this gateway has none "
                    "configured; set auth.audience to the audience your tokens are issued for")
        return f"the bearer token is for another audience; this gateway is {config.audience!r}"
    text = next(text for kind, text in _ERRORS if isinstance(exc, kind))
    claim = getattr(exc, "claim", "")
    return "the bearer token " + text.format(issuer=repr(config.issuer), claim=claim,
                                             algorithms=", ".join(config.algorithms))


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise AuthError(f"the bearer token's {name!r} claim should be a string")


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if items is None:
        return ()
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise AuthError(f"the bearer token's {name!r} claim should be a list of strings")
    return tuple(items)


def principal_from_claims(claims: Mapping[str, Any], names: Mapping[str, str]
                          ) -> tuple[Principal, tuple[str, ...]]:
    """The principal a verified token describes, and the purposes it allows (none: any)."""
    subject = _text(_claim(claims, names["subject"]), names["subject"])
    if subject is None:
        raise AuthError(f"the bearer token has no subject ({names['subject']!r} claim)")
    roles = _strings(_claim(claims, names["roles"]), names["roles"])
    if not roles:
        raise AuthError(f"the bearer token grants no role (claim {names['roles']!r}); ask for a "
                        f"token with one, or map the claim your identity provider uses in "
                        f"auth.claims.roles")
    purposes = _strings(_claim(claims, names["purpose"]), names["purpose"])
    if not all(PURPOSE.match(p) for p in purposes):
        raise AuthError(f"the bearer token's {names['purpose']!r} claim is not a purpose name "
                        f"(lower-case letters, digits, '-', '_')")
    customer = _text(_claim(claims, names["customer"]), names["customer"])
    if CUSTOMER_ROLE in roles and customer is None:
        raise AuthError(f"the bearer token has the customer role but no {names['customer']!r} "
                        f"claim: a customer's token is bound to their global customer id")
    principal = Principal(
        subject=subject, roles=roles,
        shop=_text(_claim(claims, names["shop"]), names["shop"]),
        region=_text(_claim(claims, names["region"]), names["region"]),
        customer_id=customer, kind="user")
    return principal, purposes


class TokenVerifier:
    """Verifies bearer JWTs as the ``auth:`` section says."""

    def __init__(self, config: JWTConfig) -> None:
        self.config = config
        self.jwks = None if config.jwks_url is None else JWKSKeys(
            config.jwks_url, cache_seconds=config.jwks_cache_seconds,
            refetch_seconds=config.jwks_refetch_seconds)
        self.required = ["exp", "sub"] + (["iss"] if config.issuer else []) + (
            ["aud"] if config.audience else [])

    async def _key(self, header: Mapping[str, Any]) -> Any:
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise AuthError(f"the bearer token's algorithm {str(alg)[:16]!r} is not accepted; "
                            f"accepted: {', '.join(self.config.algorithms)}")
        if alg in HMAC_ALGORITHMS:
            return self.config.secret
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or self.jwks is None:
            raise AuthError("the bearer token names no key id (kid); tokens verified against "
                            "the identity provider's keys need one")
        return await self.jwks.key(kid)

    async def verify(self, token: str) -> tuple[Principal, tuple[str, ...]]:
        """The principal and allowed purposes of a valid token; AuthError saying why not."""
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key(header)
            claims = jwt.decode(
                token, key, algorithms=[header["alg"]], audience=self.config.audience,
                issuer=self.config.issuer, leeway=self.config.leeway_seconds,
                options={"require": self.required})
        except jwt.InvalidTokenError as exc:
            raise AuthError(_message(exc, self.config)) from None
        return principal_from_claims(claims, self.config.claims)


def _nest(claims: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


def mint_token(config: JWTConfig, *, subject: str, roles: Sequence[str], shop: str | None = None,
               region: str | None = None, purpose: str | None = None,
               customer: str | None = None, ttl_seconds: int = 3600,
               now: float | None = None) -> str:
    """A token signed with the configured secret (development and the demo)."""
    algorithm = next((a for a in config.algorithms if a in HMAC_ALGORITHMS), None)
    if config.secret is None or algorithm is None:
        raise ValueError("minting tokens needs auth.secret (HS256); tokens for a JWKS-configured "
                         "gateway come from its identity provider")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"iat": issued, "exp": issued + ttl_seconds}
    if config.issuer:
        claims["iss"] = config.issuer
    if config.audience:
        claims["aud"] = config.audience
    names = config.claims
    for name, value in (("subject", subject), ("roles", list(roles)), ("shop", shop),
                        ("region", region), ("purpose", purpose), ("customer", customer)):
        if value is not None:
            _nest(claims, names[name], value)
    return jwt.encode(claims, config.secret, algorithm=algorithm)
