"""The ``panorama`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gateway.audit_cli import add_parsers as add_audit_commands
from gateway.finance.export_cli import add_parsers as add_export_commands
from gateway.settings import SETTINGS, Settings, SettingsError
from gateway.token_cli import add_commands as add_credential_commands

DEMO_TOKEN_ENV = "PANORAMA_DEMO_CRM_TOKEN"


def _settings(args: argparse.Namespace, file_section: dict | None = None) -> Settings:
    overrides = {name: getattr(args, name, None) for name in ("config", "host", "port")}
    return Settings.load(overrides=overrides, environ=os.environ, file_section=file_section)


def _serve(settings: Settings, app) -> None:
    import uvicorn

    from gateway.logs import configure_logging

    logging.getLogger().setLevel(settings.log_level.upper())
    configure_logging(settings.log_format)
    # JSON logs: uvicorn's own lines go through the same (root) handlers instead of its own.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False, log_config=None if settings.log_format == "json" else
                uvicorn.config.LOGGING_CONFIG)


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.config import ConfigError, load_config

    try:
        config = load_config(_settings(args).config, os.environ)
        settings = _settings(args, dict(config.gateway))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print("Fix these and start again; `panorama check --config FILE` lists them too.",
              file=sys.stderr)
        return 1
    print(f"Panorama serving {settings.config} on http://{settings.host}:{settings.port}/graphql")
    _serve(settings, create_app(settings, config))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.check import run_check

    return run_check(args.config or "panorama.yaml", connect=args.connect, environ=os.environ)


def cmd_index(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.config import ConfigError, load_config
    from gateway.indexing_cli import run_index

    try:
        config = load_config(_settings(args).config, os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if config.identity is None:
        print(f"{config.path}: no identity: section; add one with a secret (see docs/identity.md) "
              f"to keep a crosswalk", file=sys.stderr)
        return 1
    return asyncio.run(run_index(config, full=args.full))


def cmd_schema(args: argparse.Namespace) -> int:
    from gateway.schema import sdl

    sys.stdout.write(sdl())
    return 0


def cmd_crm_server(args: argparse.Namespace) -> int:
    from gateway.crm_server import run

    token = os.environ.get(args.token_env) if args.token_env else None
    if args.token_env and not token:
        print(f"environment variable {args.token_env} is not set; export it or drop --token-env",
              file=sys.stderr)
        return 1
    run(host=args.host, port=args.port, seed_path=args.seed, token=token)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo.run import run_demo

    return run_demo(directory=Path(args.dir), host=args.host or "127.0.0.1",
                    port=args.port or 8000, crm_port=args.crm_port, seed=args.seed,
                    customers=args.customers)


def cmd_secrets_key(args: argparse.Namespace) -> int:
    from gateway.secrets import KEY_VARIABLE, new_key

    print(new_key())
    print(f"Keep it in {KEY_VARIABLE} (the same on every replica); the admin API encrypts the "
          f"secrets admins type in with it. Lost, they must be typed in again.", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    settings_help = "\n".join(f"  PANORAMA_{s.name.upper():<22} {s.help} (default: {s.default})"
                              for s in SETTINGS)
    parser = argparse.ArgumentParser(
        prog="panorama", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Federated customer-data gateway: one GraphQL Customer over the shops' "
                    "databases and the CRM.",
        epilog=f"settings (environment variables):\n{settings_help}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="build the baker's demo world and serve it (no servers needed)")
    demo.add_argument("--dir", default="panorama-demo", help="where to write the demo databases "
                                                            "(default: ./panorama-demo)")
    demo.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=None, help="gateway port (default 8000)")
    demo.add_argument("--crm-port", type=int, default=8001, help="in-process CRM port (default 8001)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the demo data")
    demo.add_argument("--customers", type=int, default=400, help="number of people to generate")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="serve the gateway for a config file")
    serve.add_argument("--config", default=None, help="config file (default: PANORAMA_CONFIG or "
                                                      "panorama.yaml)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="validate a config file (and the live sources)")
    check.add_argument("--config", default=None, help="config file (default: panorama.yaml)")
    check.add_argument("--connect", action="store_true",
                       help="also connect to every source and check tables, columns, properties")
    check.set_defaults(func=cmd_check)

    index = sub.add_parser("index", help="resolve identities into the crosswalk (incremental by "
                                         "default)")
    index.add_argument("--config", default=None, help="config file (default: panorama.yaml)")
    index.add_argument("--full", action="store_true",
                       help="read every record of every source, not only what changed")
    index.set_defaults(func=cmd_index)

    crm = sub.add_parser("crm-server", help="run the HubSpot-compatible CRM server (demo, tests)")
    crm.add_argument("--host", default="127.0.0.1")
    crm.add_argument("--port", type=int, default=8100)
    crm.add_argument("--seed", default=None, help="JSON seed file (default: a small built-in set)")
    crm.add_argument("--token-env", default=None,
                     help="environment variable holding the bearer token clients must send")
    crm.set_defaults(func=cmd_crm_server)

    add_credential_commands(sub)  # token, apikey
    add_audit_commands(sub)  # audit verify, list, corrections
    add_export_commands(sub)  # export accounts

    key = sub.add_parser("secrets-key", help="print a new key for PANORAMA_SECRETS_KEY (the "
                                             "admin API's encrypted secrets)")
    key.set_defaults(func=cmd_secrets_key)

    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(func=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per CRM call is noise
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"panorama: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
