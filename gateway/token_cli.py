"""``panorama token`` (a development JWT) and ``panorama apikey new`` (a service account's key).

Both print the credential on standard output and nothing else there, so a shell can capture it
(``TOKEN=$(panorama token --role finance)``); explanations go to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta

TTL = re.compile(r"^(\d+)([smhd]?)$")
TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_SECONDS = 30 * 86400


def parse_ttl(text: str) -> int:
    """Seconds from ``90``, ``30m``, ``8h`` or ``2d``; ValueError names the accepted forms."""
    match = TTL.match(text.strip().lower())
    seconds = int(match.group(1)) * TTL_UNITS[match.group(2)] if match else 0
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"--ttl {text!r}: give a lifetime such as 900, 30m, 8h or 2d (at most "
                         f"30d: development tokens should not live long)")
    return seconds


def cmd_token(args: argparse.Namespace) -> int:
    from gateway.auth import mint_token
    from gateway.auth.config import PURPOSE
    from gateway.config import ConfigError, load_config
    from gateway.principal import CUSTOMER_ROLE

    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(f"panorama token: {exc}", file=sys.stderr)
        return 2
    if args.purpose is not None and not PURPOSE.match(args.purpose):
        print("panorama token: --purpose: lower-case letters, digits, '-' and '_', such as "
              "marketing", file=sys.stderr)
        return 2
    if CUSTOMER_ROLE in args.role and not args.customer:
        print("panorama token: the customer role needs --customer ID (the global customer id "
              "the token is bound to)", file=sys.stderr)
        return 2
    path = args.config or os.environ.get("PANORAMA_CONFIG", "panorama.yaml")
    try:
        config = load_config(path, os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if config.auth is None or config.auth.jwt is None or not config.auth.jwt.secret:
        print(f"panorama token: {config.path} has no auth.secret to sign with; add "
              f"`auth: {{secret: \"${{env:PANORAMA_JWT_SECRET}}\"}}` (docs/security.md). With "
              f"jwks_url only, tokens come from the identity provider", file=sys.stderr)
        return 1
    subject = args.subject or f"dev:{args.role[0]}"
    token = mint_token(config.auth.jwt, subject=subject, roles=args.role, shop=args.shop,
                       region=args.region, purpose=args.purpose, customer=args.customer,
                       ttl_seconds=ttl)
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    print(f"# token for {subject} (roles: {', '.join(args.role)}), valid until "
          f"{expires:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
    print(token)
    return 0


def cmd_apikey_new(args: argparse.Namespace) -> int:
    from gateway.auth.apikeys import new_key
    from gateway.auth.config import NAME, PURPOSE

    bad = ([f"--name {args.name!r}"] if not NAME.match(args.name) else []) + [
        f"--role {r!r}" for r in args.role if not NAME.match(r)] + [
        f"--purpose {p!r}" for p in args.purpose or () if not PURPOSE.match(p)]
    if bad:
        print(f"panorama apikey new: not a name: {', '.join(bad)} (letters, digits, '.', '_', "
              f"'@', '-'; purposes in lower case)", file=sys.stderr)
        return 2
    key, stored = new_key()
    entry = [f"  - name: {args.name}", f"    hash: \"{stored.text()}\"",
             f"    roles: [{', '.join(args.role)}]"]
    entry += [f"    {name}: {json.dumps(value)}" for name, value in (("shop", args.shop),
                                                                   ("region", args.region)) if value]
    if args.purpose:
        entry.append(f"    purposes: [{', '.join(args.purpose)}]")
    print(f"# API key for {args.name}: shown this once. Give it to the service (it sends "
          f"`Authorization: Bearer <key>`); keep it nowhere else.", file=sys.stderr)
    print(key)
    print("# Add this entry to the auth.api_keys list of the config (it holds only a hash):\n"
          + "\n".join(entry), file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The ``token`` and ``apikey`` subcommands of ``panorama``."""
    token = sub.add_parser("token", help="mint a development token (HS256, signed with "
                                         "auth.secret of the config)")
    token.add_argument("--config", default=None, help="config file (default: PANORAMA_CONFIG or "
                                                      "panorama.yaml)")
    token.add_argument("--role", action="append", required=True,
                       help="a role the token grants (repeat for several)")
    token.add_argument("--purpose", default=None, help="the purpose the token is issued for "
                                                       "(default: none, the request's "
                                                       "Panorama-Purpose header declares it)")
    token.add_argument("--shop", default=None, help="the shop a shop-bound role works for "
                                                    "(as queries name it, e.g. paris)")
    token.add_argument("--region", default=None, help="the region a region-bound role works in")
    token.add_argument("--customer", default=None, help="for the customer role: the global "
                                                        "customer id the token is bound to")
    token.add_argument("--subject", default=None, help="who the token is for (default: "
                                                       "dev:<role>)")
    token.add_argument("--ttl", default="1h", help="lifetime: 900, 30m, 8h, 2d (default 1h)")
    token.set_defaults(func=cmd_token)

    apikey = sub.add_parser("apikey", help="API keys for service accounts")
    actions = apikey.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="make a key: prints it once, and the config entry "
                                         "(its hash) to add under auth.api_keys")
    new.add_argument("--name", required=True, help="the service account, e.g. till-paris")
    new.add_argument("--role", action="append", required=True, help="a role (repeat for several)")
    new.add_argument("--shop", default=None, help="the shop the service works for")
    new.add_argument("--region", default=None, help="the region the service works in")
    new.add_argument("--purpose", action="append", default=None,
                     help="a purpose the key may declare (repeat; default: any)")
    new.set_defaults(func=cmd_apikey_new)
