"""Authentication: JWTs (HS256, JWKS with rotation), API keys, purposes, the 401 gate, the CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth import AuthConfig, Authenticator, AuthError, mint_token, parse_auth
from gateway.auth.apikeys import new_key
from gateway.cli import main
from gateway.config import ConfigError, load_config
from gateway.crm_server import serve_in_background
from gateway.principal import Principal
from tests.gateway_client import gateway_client, token_for
from tests.servers import unused_port

SECRET = "s" * 40
OTHER_SECRET = "o" * 40
ENV = {"JWT_SECRET": SECRET}


def auth_config(doc: dict[str, Any], environ: dict[str, str] | None = None) -> AuthConfig:
    config, problems = parse_auth(doc, ENV if environ is None else environ, Path("."))
    assert not problems, problems
    assert config is not None
    return config


HS256 = {"secret": "${env:JWT_SECRET}"}


def hs_token(claims: dict[str, Any], secret: str = SECRET, **headers: Any) -> str:
    body = {"sub": "ann", "roles": ["support"], "exp": int(time.time()) + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret,
                      algorithm="HS256", headers=headers or None)


async def authenticate(config: AuthConfig | None, token: str | None = None,
                       purpose: str | None = None, admin_token: str = "") -> Principal:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if purpose is not None:
        headers["panorama-purpose"] = purpose
    return await Authenticator(config, admin_token).authenticate(headers)


async def refused(config: AuthConfig | None, token: str | None, purpose: str | None = None,
                  admin_token: str = "") -> AuthError:
    with pytest.raises(AuthError) as caught:
        await authenticate(config, token, purpose, admin_token)
    if token:
        assert token not in str(caught.value), "an error message must never echo the credential"
    return caught.value


# -- bearer JWTs (HS256) -----------------------------------------------------------------------


async def test_claims_become_the_principal():
    token = hs_token({"roles": ["shop_staff", "support"], "shop": "paris", "region": "eu",
                      "purpose": "service"})
    principal = await authenticate(auth_config(HS256), token)
    assert principal == Principal(subject="ann", roles=("shop_staff", "support"), shop="paris",
                                  region="eu", purpose="service", kind="user")


async def test_a_customer_token_is_bound_to_a_customer():
    config = auth_config(HS256)
    bound = await authenticate(config, hs_token({"roles": ["customer"], "customer": "c-42"}))
    assert bound.customer_id == "c-42"
    error = await refused(config, hs_token({"roles": ["customer"]}))
    assert "'customer' claim" in str(error)


@pytest.mark.parametrize("case, token, needle", [
    ("expired", hs_token({"exp": int(time.time()) - 120}), "has expired"),
    ("forged", hs_token({}, secret=OTHER_SECRET), "signature that does not verify"),
    ("unsigned", jwt.encode({"sub": "ann", "roles": ["admin"], "exp": int(time.time()) + 60}, None,
                            algorithm="none"), "algorithm 'none' is not accepted"),
    ("no expiry", hs_token({"exp": None}), "lacks a claim this gateway requires (exp)"),
    ("no roles", hs_token({"roles": []}), "grants no role"),
    ("roles not strings", hs_token({"roles": [1]}), "list of strings"),
    ("garbage", "not.a.jwt", "not a well-formed JWT"),
    ("not yet valid", hs_token({"nbf": int(time.time()) + 600}), "not valid yet"),
])
async def test_bad_tokens_are_refused_with_a_reason(case, token, needle):
    error = await refused(auth_config(HS256), token)
    assert needle in str(error), case
    assert (error.status, error.code) == (401, "UNAUTHENTICATED")


async def test_expiry_has_a_small_configurable_leeway():
    just_expired = hs_token({"exp": int(time.time()) - 5})
    assert (await authenticate(auth_config(HS256), just_expired)).subject == "ann"
    await refused(auth_config({**HS256, "leeway_seconds": 0}), just_expired)


async def test_issuer_and_audience_are_checked_when_configured():
    config = auth_config({**HS256, "issuer": "https://idp.test/", "audience": "panorama"})
    good = hs_token({"iss": "https://idp.test/", "aud": "panorama"})
    assert (await authenticate(config, good)).subject == "ann"
    assert "another audience" in str(await refused(
        config, hs_token({"iss": "https://idp.test/", "aud": "billing"})))
    assert "another issuer" in str(await refused(
        config, hs_token({"iss": "https://evil.test/", "aud": "panorama"})))
    assert "(aud)" in str(await refused(config, hs_token({"iss": "https://idp.test/"})))
    # A token for some audience, at a gateway that names none: say what to configure.
    assert "set auth.audience" in str(await refused(auth_config(HS256),
                                                    hs_token({"aud": "panorama"})))


async def test_nested_claims_can_be_mapped():
    config = auth_config({**HS256, "claims": {"roles": "realm_access.roles", "shop": "https://x/shop"}})
    token = hs_token({"roles": None, "realm_access": {"roles": ["finance"]}, "https://x/shop": "p"})
    principal = await authenticate(config, token)
    assert (principal.roles, principal.shop) == (("finance",), "p")
    minted = mint_token(config.jwt, subject="x", roles=["finance"], shop="paris")  # type: ignore[arg-type]
    assert jwt.decode(minted, SECRET, algorithms=["HS256"])["realm_access"] == {"roles": ["finance"]}


# -- purpose of use ----------------------------------------------------------------------------


@pytest.mark.parametrize("claim, header, expected", [
    (None, None, None),                        # nothing declared: the policy decides
    (None, "marketing", "marketing"),          # a token for no purpose: the header declares one
    ("support", None, "support"),              # the token's purpose
    ("support", "support", "support"),         # the header may repeat it
    (["support", "billing"], "billing", "billing"),  # or pick one of the token's purposes
    (["support", "billing"], None, None),      # several and no header: none declared
])
async def test_the_purpose_header_may_only_narrow(claim, header, expected):
    principal = await authenticate(auth_config(HS256), hs_token({"purpose": claim}), header)
    assert principal.purpose == expected


async def test_a_purpose_the_credential_does_not_allow_is_forbidden():
    error = await refused(auth_config(HS256), hs_token({"purpose": "support"}), "marketing")
    assert (error.status, error.code) == (403, "FORBIDDEN")
    assert "'marketing'" in str(error) and "support" in str(error)
    bad = await refused(auth_config(HS256), hs_token({}), "Marketing; DROP")
    assert (bad.status, bad.code) == (400, "BAD_USER_INPUT")


# -- API keys, the admin token, no auth section, open mode --------------------------------------


def key_config(**entry: Any) -> tuple[str, AuthConfig]:
    key, stored = new_key()
    doc = {"name": "till-paris", "hash": stored.text(), "roles": ["shop_staff"], **entry}
    return key, auth_config({"api_keys": [doc]})


async def test_an_api_key_is_a_service_principal():
    key, config = key_config(shop="paris", region="eu", purposes=["sale"])
    principal = await authenticate(config, key)
    assert principal == Principal(subject="apikey:till-paris", roles=("shop_staff",), shop="paris",
                                  region="eu", purpose="sale", kind="service")
    assert (await refused(config, key, "marketing")).code == "FORBIDDEN"


async def test_unknown_or_altered_api_keys_are_refused():
    key, config = key_config()
    stranger, _ = new_key()
    altered = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # a known id, wrong key
    for given in (stranger, altered, "pnk_short"):
        assert "unknown API key" in str(await refused(config, given))


async def test_the_admin_token_is_an_admin_service_principal():
    principal = await authenticate(None, "static-admin-secret", admin_token="static-admin-secret")
    assert (principal.subject, principal.roles, principal.kind) == ("admin-token", ("admin",),
                                                                    "service")
    await refused(None, "static-admin-secreT", admin_token="static-admin-secret")


async def test_without_an_auth_section_every_request_is_refused_with_the_fix():
    error = await refused(None, None)
    assert "authentication is not configured" in str(error) and "auth:" in str(error)
    assert "accepts no JWTs" in str(await refused(key_config()[1], hs_token({})))


async def test_open_mode_lets_anonymous_callers_in_as_admin_but_still_checks_tokens():
    config = auth_config({**HS256, "mode": "open"})
    anonymous = await authenticate(config, None, "support")
    assert (anonymous.subject, anonymous.roles, anonymous.purpose) == ("anonymous", ("admin",),
                                                                       "support")
    assert (await authenticate(config, hs_token({}))).roles == ("support",)
    await refused(config, hs_token({}, secret=OTHER_SECRET))


async def test_only_bearer_credentials():
    error = await refused(auth_config(HS256), None)
    assert "Authorization: Bearer" in str(error)
    with pytest.raises(AuthError, match="Bearer <credential>"):
        await Authenticator(auth_config(HS256)).authenticate({"authorization": "Basic YTpi"})


# -- JWKS: RS256 and ES256 against a real key server on loopback --------------------------------


class KeyServer:
    """A JWKS endpoint on loopback whose keys a test changes; counts the fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0

        async def jwks(request: Request) -> JSONResponse:
            self.fetches += 1
            return JSONResponse({"keys": [self.jwk(kid) for kid in self.published]})

        self.handle = serve_in_background(Starlette(routes=[Route("/jwks", jwks)]))
        self.url = f"{self.handle.url}/jwks"

    def new_key(self, kid: str, kind: str = "RS256", publish: bool = True) -> None:
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048)
                          if kind == "RS256" else ec.generate_private_key(ec.SECP256R1()), kind)
        if publish:
            self.published.append(kid)

    def jwk(self, kid: str) -> dict[str, Any]:
        private, kind = self.keys[kid]
        algorithm = RSAAlgorithm if kind == "RS256" else ECAlgorithm
        return {**algorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": kind,
                "use": "sig"}

    def token(self, kid: str, signer: str | None = None, **claims: Any) -> str:
        private, kind = self.keys[signer or kid]
        body = {"sub": "idp-user", "roles": ["finance"], "exp": int(time.time()) + 300,
                "iss": "https://idp.test/", "aud": "panorama", **claims}
        return jwt.encode(body, private, algorithm=kind, headers={"kid": kid})


@pytest.fixture
def key_server():
    server = KeyServer()
    try:
        yield server
    finally:
        server.handle.stop()


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed by hand: pyjwt itself refuses to use a public key as an HMAC secret."""
    part = [base64url_encode(json.dumps(d).encode()) for d in (header, claims)]
    signing_input = b".".join(part)
    signature = base64url_encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def jwks_config(url: str, **extra: Any) -> AuthConfig:
    return auth_config({"jwks_url": url, "issuer": "https://idp.test/", "audience": "panorama",
                        **extra})


async def test_jwks_rotation_refetches_once_for_a_new_key_id(key_server):
    key_server.new_key("k1")
    gate = Authenticator(jwks_config(key_server.url, jwks_refetch_seconds=0))
    ask = gate.authenticate
    assert (await ask({"authorization": f"Bearer {key_server.token('k1')}"})).subject == "idp-user"
    await ask({"authorization": f"Bearer {key_server.token('k1')}"})
    assert key_server.fetches == 1  # cached
    key_server.new_key("k2", kind="ES256")  # the provider rotates: a new key, another algorithm
    assert (await ask({"authorization": f"Bearer {key_server.token('k2')}"})).roles == ("finance",)
    assert key_server.fetches == 2  # exactly one refetch for the unknown kid
    await ask({"authorization": f"Bearer {key_server.token('k1')}"})
    await ask({"authorization": f"Bearer {key_server.token('k2')}"})
    assert key_server.fetches == 2
    key_server.new_key("k3", publish=False)  # a key the provider never published
    with pytest.raises(AuthError, match="does not publish"):
        await ask({"authorization": f"Bearer {key_server.token('k3')}"})
    assert key_server.fetches == 3


async def test_unknown_key_ids_cannot_hammer_the_provider(key_server):
    key_server.new_key("k1")
    key_server.new_key("rogue", publish=False)
    gate = Authenticator(jwks_config(key_server.url))  # default: one refetch per 30 s at most
    await gate.authenticate({"authorization": f"Bearer {key_server.token('k1')}"})
    for n in range(5):
        with pytest.raises(AuthError, match="does not publish"):
            await gate.authenticate({"authorization": f"Bearer {key_server.token(f'x{n}', 'rogue')}"})
    assert key_server.fetches == 1


async def test_jwks_tokens_are_verified_like_any_other(key_server):
    key_server.new_key("k1")
    key_server.new_key("rogue", publish=False)
    config = jwks_config(key_server.url)
    forged = key_server.token("k1", signer="rogue")  # claims the provider's key id
    assert "signature that does not verify" in str(await refused(config, forged))
    assert "has expired" in str(await refused(config, key_server.token("k1", exp=1)))
    assert "another audience" in str(await refused(config, key_server.token("k1", aud="x")))
    # Key confusion: an HMAC token "signed" with the provider's public key is never accepted.
    confused = hmac_signed({"alg": "HS256", "typ": "JWT", "kid": "k1"},
                           {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60},
                           RSAAlgorithm.to_jwk(key_server.keys["k1"][0].public_key()).encode())
    assert "algorithm 'HS256' is not accepted" in str(await refused(config, confused))
    no_kid = jwt.encode({"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60},
                        key_server.keys["k1"][0], algorithm="RS256")
    assert "no key id" in str(await refused(config, no_kid))


async def test_a_dropped_key_stops_verifying_once_the_cache_expires(key_server):
    key_server.new_key("old")
    config = jwks_config(key_server.url, jwks_cache_seconds=1, jwks_refetch_seconds=0)
    gate = Authenticator(config)
    await gate.authenticate({"authorization": f"Bearer {key_server.token('old')}"})
    key_server.published = []
    key_server.new_key("new")
    time.sleep(1.1)
    with pytest.raises(AuthError, match="does not publish"):
        await gate.authenticate({"authorization": f"Bearer {key_server.token('old')}"})


async def test_an_unreachable_provider_is_503_not_the_callers_fault():
    config = jwks_config(f"http://127.0.0.1:{unused_port()}/jwks")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "x", "roles": ["r"], "exp": int(time.time()) + 60}, private,
                       algorithm="RS256", headers={"kid": "k1"})
    error = await refused(config, token)
    assert (error.status, error.code) == (503, "AUTH_UNAVAILABLE")


# -- the config section ---------------------------------------------------------------------------


@pytest.mark.parametrize("doc, needle", [
    ({"secret": SECRET}, "auth.secret: missing or written inline"),
    ({"secret": "${env:SHORT}"}, "too short (5 characters)"),
    ({"secret": "${env:NOPE}"}, "NOPE is not set"),
    ({**HS256, "algorithms": ["none"]}, "'none' (unsigned tokens) is never accepted"),
    ({**HS256, "algorithms": ["RS256"]}, "RS256 needs `jwks_url`"),
    ({"jwks_url": "https://idp.test/jwks", "algorithms": ["HS256"]}, "HS256 needs `secret`"),
    ({"jwks_url": "ftp://idp.test/jwks"}, "http(s) URL"),
    ({**HS256, "audiense": "x"}, "did you mean 'audience'?"),
    ({**HS256, "leeway_seconds": 3600}, "from 0 to 300"),
    ({"mode": "opne"}, "did you mean 'open'?"),
    ({}, "no way to authenticate"),
    ({"issuer": "x"}, "no `secret` (HS256) or `jwks_url`"),
    ({"api_keys": [{"name": "a", "hash": "pnk_0123abcd_" + "x" * 43, "roles": ["r"]}]},
     "this is an API key itself"),
    ({"api_keys": [{"name": "a", "hash": "sha256:zz", "roles": ["r"]}]}, "not a stored key hash"),
    ({"api_keys": [{"name": "a", "hash": new_key()[1].text()}]}, "at least one role"),
    ({"api_keys": [{"name": "a", "hash": new_key()[1].text(), "roles": ["r"],
                    "purposes": ["Not A Purpose"]}]}, "purpose names"),
])
def test_config_problems_are_named_and_secrets_never_shown(doc, needle):
    config, problems = parse_auth(doc, {**ENV, "SHORT": "short"}, Path("."))
    text = "\n".join(f"{loc}: {msg}" for loc, msg in problems)
    assert config is None and needle in text, text
    assert SECRET not in text and "short" not in text.replace("too short", "")


def test_the_config_loader_reads_the_auth_section(tmp_path):
    path = write_config(tmp_path, {"secret": "${env:JWT_SECRET}", "audience": "panorama"})
    config = load_config(path, ENV)
    assert config.auth is not None and config.auth.jwt is not None
    assert (config.auth.jwt.audience, config.auth.jwt.algorithms) == ("panorama", ("HS256",))
    assert SECRET not in repr(config)
    with pytest.raises(ConfigError, match="auth.secret"):
        load_config(write_config(tmp_path, {"secret": SECRET}), ENV)


# -- over HTTP ------------------------------------------------------------------------------------


def write_config(folder: Path, auth: dict[str, Any] | None) -> Path:
    db = folder / "shop.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, name TEXT)")
    doc: dict[str, Any] = {"sources": {"shop": {
        "kind": "sqlite", "shop": "Shop", "connection": {"path": str(db)},
        "customer": {"table": "c", "key": "id", "fields": {"full_name": "name"}}}}}
    if auth is not None:
        doc["auth"] = auth
    path = folder / "panorama.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


SOURCES = {"query": "{ sources { name } }"}


async def test_no_token_is_401_graphql_shaped_and_health_stays_open(tmp_path):
    path = write_config(tmp_path, HS256)
    async with gateway_client(path, environ=ENV, principal=None) as client:
        response = await client.post("/graphql", json=SOURCES)
        by_get = await client.get("/graphql", params={"query": "{ sources { name } }"})
        ide = await client.get("/graphql", headers={"accept": "text/html"})
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "Authorization: Bearer" in body["errors"][0]["message"]
    assert by_get.status_code == 401
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()
    assert health.status_code == 200 and ready.status_code in (200, 503)


FINANCE_POLICY = {"purposes": {"billing": {"categories": "*"}}, "roles": {"finance": {
    "purposes": ["billing"], "rules": {"Query.sources": "allow", "Source.name": "allow"}}}}


async def test_a_valid_token_reaches_graphql_with_its_principal_on_the_context(tmp_path):
    path = write_config(tmp_path, HS256)
    (tmp_path / "policies.yaml").write_text(yaml.safe_dump(FINANCE_POLICY))
    path.write_text(path.read_text() + "policy: policies.yaml\n")
    finance = Principal(subject="fanny", roles=("finance",), shop="paris", purpose="billing")
    seen: list[Any] = []
    async with gateway_client(path, environ=ENV, principal=finance) as client:
        view = client.app.routes[0].app  # type: ignore[attr-defined]
        while not hasattr(view, "get_context"):  # the gates in front of the GraphQL view
            view = view.app
        build = view.get_context

        async def spy(request: Any, response: Any) -> Any:
            context = await build(request, response)
            seen.append(context.principal)
            return context

        view.get_context = spy
        response = await client.post("/graphql", json=SOURCES,
                                     headers={"panorama-purpose": "billing"})
    assert response.status_code == 200 and response.json()["data"]["sources"] == [{"name": "shop"}]
    assert seen == [finance]


async def test_refusals_are_logged_without_the_token(tmp_path, caplog):
    path = write_config(tmp_path, HS256)
    forged = hs_token({}, secret=OTHER_SECRET)
    for_x = token_for(Principal("a", ("r",), purpose="x"), load_config(path, ENV).auth)
    caplog.set_level(logging.DEBUG)
    async with gateway_client(path, environ=ENV, token=forged) as client:
        response = await client.post("/graphql", json=SOURCES)
        purpose = await client.post("/graphql", json=SOURCES, headers={
            "authorization": f"Bearer {for_x}", "panorama-purpose": "y"})
    assert response.status_code == 401 and forged not in response.text
    assert purpose.status_code == 403 and purpose.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "refused POST /graphql" in caplog.text and forged not in caplog.text


# -- the CLI --------------------------------------------------------------------------------------


def test_panorama_token_mints_what_the_gateway_accepts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    path = write_config(tmp_path, {**HS256, "issuer": "panorama-dev", "audience": "panorama"})
    assert main(["token", "--config", str(path), "--role", "shop_staff", "--shop", "paris",
                 "--purpose", "sale", "--ttl", "30m"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="panorama",
                        issuer="panorama-dev")
    assert claims["roles"] == ["shop_staff"] and claims["exp"] - claims["iat"] == 1800
    assert token not in err and "dev:shop_staff" in err


async def test_panorama_token_output_authenticates(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", SECRET)
    path = write_config(tmp_path, HS256)
    assert main(["token", "--config", str(path), "--role", "customer", "--customer", "c-1"]) == 0
    principal = await authenticate(load_config(path, ENV).auth, capsys.readouterr().out.strip())
    assert (principal.subject, principal.customer_id) == ("dev:customer", "c-1")


@pytest.mark.parametrize("args, code, needle", [
    (["--role", "x", "--ttl", "forever"], 2, "--ttl 'forever'"),
    (["--role", "x", "--ttl", "90d"], 2, "at most 30d"),
    (["--role", "customer"], 2, "needs --customer"),
    (["--role", "x", "--purpose", "Bad Purpose"], 2, "--purpose"),
])
def test_panorama_token_refuses_bad_options(tmp_path, capsys, args, code, needle):
    path = write_config(tmp_path, HS256)
    assert main(["token", "--config", str(path), *args]) == code
    assert needle in capsys.readouterr().err


def test_panorama_token_needs_a_secret(tmp_path, capsys):
    path = write_config(tmp_path, {"jwks_url": "https://idp.test/jwks"})
    assert main(["token", "--config", str(path), "--role", "x"]) == 1
    assert "no auth.secret" in capsys.readouterr().err


async def test_panorama_apikey_new_prints_the_key_once_and_its_config_entry(tmp_path, capsys):
    assert main(["apikey", "new", "--name", "till-paris", "--role", "shop_staff", "--shop",
                 "paris", "--purpose", "sale"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    entry = yaml.safe_load("\n".join(line for line in err.splitlines() if not line.startswith("#")))
    assert key not in err and key.startswith("pnk_")
    principal = await authenticate(auth_config({"api_keys": entry}), key)
    assert (principal.subject, principal.shop, principal.purpose) == ("apikey:till-paris", "paris",
                                                                      "sale")
