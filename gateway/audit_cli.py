"""The ``panorama audit`` commands: verify the chain, list entries, list correction requests.

Wired into ``gateway.cli`` by :func:`add_parsers`. Each command reads only the section of the
config it needs (``audit:``, or ``consent:`` for corrections), so the log can be checked even
when a source's mapping is broken. Exit codes: 0 done (chain intact), 1 the chain is broken,
2 the command could not run (config, store, arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.audit import (
    KINDS,
    AuditEntry,
    AuditError,
    AuditFilter,
    AuditLog,
    audit_location,
    load_audit_config,
    open_configured_audit_log,
)
from gateway.consent import CORRECTION_STATUSES, ConsentError, load_consent_config, open_consent_store
from gateway.settings import Settings

#: ``7d``, ``12h``, ``30m``: a time that long ago.
_RELATIVE = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or time (UTC unless it says otherwise) or a span ago (``7d``, ``12h``, ``30m``)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        span = timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        return (now or datetime.now(UTC)) - span
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: write 2024-05-01, 2024-05-01T14:30, 2024-05-01T14:30+02:00,"
            " or a span ago such as 7d, 12h, 30m") from None
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)


def _anchor(text: str) -> tuple[int, str]:
    ident, sep, digest = text.partition(":")
    if not (sep and ident.isdigit() and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise argparse.ArgumentTypeError(f"{text!r}: write ID:HASH, as `panorama audit verify` prints")
    return int(ident), digest


def _config_path(args: argparse.Namespace) -> str:
    return Settings.load(overrides={"config": args.config}, environ=os.environ).config


def _fail(message: str) -> int:
    print(f"panorama audit: {message}", file=sys.stderr)
    return 2


def _with_log(args: argparse.Namespace, work: Callable[[AuditLog], Coroutine[Any, Any, int]]) -> int:
    """Open the configured log (it must exist already), run ``work``, close it."""
    path = _config_path(args)
    try:
        config = load_audit_config(path, os.environ)
        location = audit_location(config.store, config.base_dir)
        if location.path is not None and not location.path.is_file():
            return _fail(f"no audit log at {location.path}: the gateway creates it when it first"
                         f" serves {path}")
        log = open_configured_audit_log(config)
    except AuditError as exc:
        return _fail(str(exc))

    async def run() -> int:
        async with log:
            return await work(log)

    try:
        return asyncio.run(run())
    except AuditError as exc:
        return _fail(str(exc))


def cmd_verify(args: argparse.Namespace) -> int:
    """``panorama audit verify``: walk the chain; 0 if intact, 1 naming the first bad entry."""

    async def work(log: AuditLog) -> int:
        report = await log.verify(anchor=args.anchor)
        if report.ok:
            print(f"audit log {log!r}: {report}")
            print(f"note the head elsewhere; `panorama audit verify --anchor"
                  f" {report.head_id}:{report.head_hash}` later proves the log was not rewritten")
            return 0
        print(f"audit log {log!r}: TAMPERED: {report.problem}", file=sys.stderr)
        print(f"{report.entries} entries before it are intact.", file=sys.stderr)
        return 1

    return _with_log(args, work)


def _line(entry: AuditEntry) -> str:
    fields = ",".join(f"{f.path}(masked)" if f.masked else f.path for f in entry.fields)
    parts = [f"#{entry.id}", entry.at.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{entry.kind:<10}",
             f"{entry.subject} [{','.join(entry.roles)}]", f"purpose={entry.purpose or '-'}",
             f"customers={','.join(entry.customers) or '-'}", f"fields={fields or '-'}"]
    if entry.details:
        parts.append(orjson.dumps(entry.details, option=orjson.OPT_SORT_KEYS).decode())
    return "  ".join(parts)


def _json(entry: AuditEntry) -> str:
    return orjson.dumps({
        "id": entry.id, "at": entry.at, "kind": entry.kind, "subject": entry.subject,
        "roles": entry.roles, "purpose": entry.purpose, "customers": entry.customers,
        "fields": [{"path": f.path, "masked": f.masked} for f in entry.fields],
        "details": entry.details, "subject_kind": entry.subject_kind, "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }, option=orjson.OPT_UTC_Z).decode()


def cmd_list(args: argparse.Namespace) -> int:
    """``panorama audit list``: entries matching the filters, newest first."""
    where = AuditFilter(customers=tuple(args.customer or ()), subject=args.subject,
                        kinds=tuple(args.kind or ()), purpose=args.purpose, since=args.since,
                        until=args.until, before=args.before, limit=args.limit)

    async def work(log: AuditLog) -> int:
        try:
            page = await log.query(where)
        except ValueError as exc:
            return _fail(str(exc))
        for entry in page.entries:
            print(_json(entry) if args.json else _line(entry))
        if page.next_before is not None and not args.json:
            print(f"(more: add --before {page.next_before})")
        return 0

    return _with_log(args, work)


def cmd_corrections(args: argparse.Namespace) -> int:
    """``panorama audit corrections``: correction requests and where they were routed."""
    path = _config_path(args)
    try:
        config = load_consent_config(path, os.environ)
        store = open_consent_store(config.store, config.base_dir)
    except ConsentError as exc:
        return _fail(str(exc))

    async def run() -> int:
        async with store:
            found = await store.corrections(status=args.status, customer=args.customer,
                                            source=args.source, limit=args.limit)
        for request in found:
            if args.json:
                print(orjson.dumps(request, option=orjson.OPT_UTC_Z).decode())
                continue
            print(f"#{request.id}  {request.created_at:%Y-%m-%dT%H:%M:%SZ}  {request.status:<8}"
                  f"  {request.customer}  {request.source}.{request.field}"
                  f"  -> {request.routed_to or '(no contact configured)'}")
        return 0

    try:
        return asyncio.run(run())
    except (ConsentError, ValueError) as exc:
        return _fail(str(exc))


def add_parsers(subparsers: Any) -> None:
    """Add ``panorama audit {verify,list,corrections}`` to the ``panorama`` command's subparsers."""
    audit = subparsers.add_parser("audit", help="verify or list the audit log; list correction requests")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    config_help = "config file (default: PANORAMA_CONFIG or panorama.yaml)"

    verify = actions.add_parser("verify", help="check the hash chain; exit 1 naming the first bad entry")
    verify.add_argument("--config", default=None, help=config_help)
    verify.add_argument("--anchor", type=_anchor, default=None, metavar="ID:HASH",
                        help="an entry's id and hash noted earlier: also proves no rewrite up to it")
    verify.set_defaults(func=cmd_verify)

    listing = actions.add_parser("list", help="list entries, newest first")
    listing.add_argument("--config", default=None, help=config_help)
    listing.add_argument("--customer", action="append", metavar="ID",
                         help="entries about this customer global id (repeat for any of several)")
    listing.add_argument("--subject", default=None, help="entries by this principal subject")
    listing.add_argument("--kind", action="append", choices=KINDS, help="entries of this kind (repeatable)")
    listing.add_argument("--purpose", default=None, help="entries for this purpose")
    listing.add_argument("--since", type=parse_time, default=None,
                         help="from this time (ISO, UTC unless given; or 7d, 12h, 30m ago)")
    listing.add_argument("--until", type=parse_time, default=None, help="before this time")
    listing.add_argument("--before", type=int, default=None, metavar="ID",
                         help="entries older than this id (the next page)")
    listing.add_argument("--limit", type=int, default=50, help="entries at most (default 50, up to 1000)")
    listing.add_argument("--json", action="store_true", help="one JSON object a line, hashes included")
    listing.set_defaults(func=cmd_list)

    corrections = actions.add_parser("corrections", help="list correction requests (the outbox)")
    corrections.add_argument("--config", default=None, help=config_help)
    corrections.add_argument("--status", choices=CORRECTION_STATUSES, default=None)
    corrections.add_argument("--customer", default=None, metavar="ID")
    corrections.add_argument("--source", default=None, help="requests for this source")
    corrections.add_argument("--limit", type=int, default=50)
    corrections.add_argument("--json", action="store_true", help="one JSON object a line")
    corrections.set_defaults(func=cmd_corrections)


def main(argv: Sequence[str] | None = None) -> int:
    """``panorama audit ...`` alone (for tests and before the CLI wires it in)."""
    parser = argparse.ArgumentParser(prog="panorama")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
