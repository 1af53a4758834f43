"""``panorama export accounts``: every customer's account into a CSV or NDJSON file.

Who the export is for decides what it holds, as for GraphQL: ``--token`` (a JWT or API key,
checked like a request's), or a local run as ``--role`` (default ``admin``) for ``--purpose``
(default the role's first) with the subject ``cli:<user>`` in the audit log: whoever can read
the config file can mint any token anyway. Ctrl-C (or SIGTERM) stops after the chunk being
written; a failed source stops the export. Either way every row in the file is complete, and
the exact command that resumes is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import getpass
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.finance.export_rows import ExportError

PROG = "panorama export accounts"


def add_parsers(sub: Any) -> None:
    export = sub.add_parser("export", help="export in bulk: every customer's account")
    what = export.add_subparsers(dest="what", required=True, metavar="WHAT")
    p = what.add_parser(
        "accounts", help="every customer's account, risk and profitability as CSV or NDJSON",
        description="Every customer of the identity index with their account (docs/export.md).")
    p.add_argument("--config", default=None, help="config file (default: panorama.yaml)")
    p.add_argument("--out", required=True, help="file to write (`-`: standard output)")
    p.add_argument("--format", default=None,
                   help="csv or ndjson (default: from --out's suffix, else ndjson)")
    p.add_argument("--as-of", default=None, help="YYYY-MM-DD: accounts at the end of that day "
                   "(UTC); default: the instant the export starts")
    p.add_argument("--currency", default=None, help="ISO 4217 code of every amount "
                   "(default: the config's finance.currency)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="shop=SOURCE, tier=NAME, risk=GOOD|WATCH|DEFAULTER, min_balance=AMOUNT, "
                        "overdue=true|false; repeat to combine")
    p.add_argument("--cursor", default=None, help="start after this customer id")
    p.add_argument("--resume", action="store_true",
                   help="append to --out after its last complete row (same as_of)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="customers per chunk (default: the export_chunk_size setting)")
    p.add_argument("--token", default=None, help="export as this credential's principal")
    p.add_argument("--role", default=None, help="without --token: the role (default admin)")
    p.add_argument("--purpose", default=None, help="the purpose of the export (default: the "
                                                   "token's, or the role's first)")
    p.add_argument("--shop", default=None, help="with --role: the shop a shop-bound role needs")
    p.add_argument("--region", default=None, help="with --role: the region a role needs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export_accounts)


def cmd_export_accounts(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_export(args))
    except ExportError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2 if exc.code == "BAD_USER_INPUT" else 1


# --- resuming a file ---------------------------------------------------------------------------

def _last_line(path: Path) -> tuple[bytes | None, int]:
    """The file's last complete line and where the complete lines end (a partial one after it
    is dropped); reads backwards from the end, so a large file costs a few blocks."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        end, tail = None, b""
        position = size
        while position > 0:
            step = min(65536, position)
            position -= step
            f.seek(position)
            tail = f.read(step) + tail
            if end is None:
                cut = tail.rfind(b"\n")
                if cut < 0:
                    continue
                end = position + cut + 1
                tail = tail[:cut + 1]
            start = tail.rfind(b"\n", 0, len(tail) - 1)
            if start >= 0 or position == 0:
                return tail[start + 1:].rstrip(b"\r\n"), end
        return None, 0


def resume_point(path: Path, fmt: str) -> tuple[dict[str, Any] | None, list[str] | None]:
    """The last complete row of ``path`` (as a dict) and its header (CSV: the first line);
    the file is cut after its last complete line."""
    if not path.is_file():
        raise ExportError(f"--resume: {path} does not exist; run without --resume to start")
    line, end = _last_line(path)
    if end < path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(end)
    if line is None:
        return None, None
    if fmt == "ndjson":
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ExportError(f"--resume: the last line of {path} is not an NDJSON row; is it "
                              f"a CSV file (--format csv)?") from None
        return row, list(row)
    with path.open(newline="") as f:
        header = next(csv.reader(f), None)
    values = next(csv.reader([line.decode()]))
    if header is None or values == header:
        return None, header
    if len(values) != len(header):
        raise ExportError(f"--resume: the last line of {path} does not have the header's "
                          f"columns; is it an NDJSON file (--format ndjson)?")
    return dict(zip(header, values, strict=True)), header


def resume_command(args: argparse.Namespace, fmt: str, as_of: str, cursor: str | None) -> str:
    """The command that goes on where this run stopped."""
    words = ["panorama", "export", "accounts"]
    for flag, value in (("--config", args.config), ("--format", fmt), ("--out", args.out),
                        ("--as-of", as_of), ("--currency", args.currency),
                        ("--chunk-size", args.chunk_size), ("--role", args.role),
                        ("--purpose", args.purpose), ("--shop", args.shop),
                        ("--region", args.region)):
        if value is not None:
            words += [flag, str(value)]
    for text in args.filter:
        words += ["--filter", text]
    if args.out == "-":
        words += ["--cursor", cursor] if cursor else []
    else:
        words.append("--resume")
    return shlex.join(words) + (' --token "$TOKEN"' if args.token else "")


# --- the run -----------------------------------------------------------------------------------

async def _principal(args: argparse.Namespace, config: Any, policy: Any,
                     admin_token: str) -> Any:
    """The token's principal, or the local operator acting as ``--role`` for ``--purpose``."""
    from gateway.auth import Authenticator
    from gateway.principal import ADMIN_ROLE, Principal

    if args.token is not None:
        if args.role or args.shop or args.region:
            raise ExportError("--token says who exports; leave out --role, --shop and --region")
        headers = {"authorization": f"Bearer {args.token}"}
        if args.purpose:
            headers["panorama-purpose"] = args.purpose
        return await Authenticator(config.auth, admin_token, config.path).authenticate(headers)
    role = args.role or ADMIN_ROLE
    known = policy.roles.get(role)
    purpose = args.purpose or (known.purposes[0] if known and known.purposes else None)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(subject=f"cli:{user}", roles=(role,), shop=args.shop, region=args.region,
                     purpose=purpose, kind="user")


async def run_export(args: argparse.Namespace, out: IO[bytes] | None = None) -> int:
    """The command; ``out`` replaces standard output for ``--out -`` (tests)."""
    from tqdm import tqdm

    from gateway.access import Access
    from gateway.app import build_linker
    from gateway.audit import AuditError
    from gateway.auth.errors import AuthError
    from gateway.config import ConfigError, load_config
    from gateway.consent import ConsentError
    from gateway.crosswalk import CrosswalkError
    from gateway.finance.export import AccountExport, ExportEnv, export_request
    from gateway.policy import AccessDenied
    from gateway.privacy import Privacy
    from gateway.schema import build_schema
    from gateway.settings import Settings
    from gateway.sources import SourceSet

    overrides = {"config": args.config}
    try:
        config = load_config(Settings.load(overrides=overrides, environ=os.environ).config,
                             os.environ)
    except ConfigError as exc:
        raise ExportError(str(exc), "CONFIG") from None
    settings = Settings.load(overrides=overrides, environ=os.environ,
                             file_section=dict(config.gateway))
    fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "ndjson")
    access = Access.of(config, build_schema())
    privacy = Privacy(config.audit, config.consent)
    privacy.purposes = frozenset(access.policy.purposes)
    privacy.not_objectable = access.policy.not_objectable
    env = ExportEnv(SourceSet.from_config(config, settings), settings, build_linker(config),
                    access, privacy)
    try:
        principal = await _principal(args, config, access.policy, settings.admin_token)
        admission = access.admit(principal)
    except (AuthError, AccessDenied) as exc:
        raise ExportError(f"{exc}", "FORBIDDEN", 403) from None
    path = None if args.out == "-" else Path(args.out)
    last, header, as_of, cursor = None, None, args.as_of, args.cursor
    if args.resume:
        if path is None or args.cursor:
            raise ExportError("--resume continues the --out file from its last row; it takes "
                              "neither --out - nor --cursor")
        last, header = resume_point(path, fmt)
        if last is not None:
            kept = last.get("as_of")
            if not kept and not as_of:
                raise ExportError(f"--resume: {path} has no as_of column; give the --as-of of "
                                  f"the export it holds")
            if kept and as_of and kept != as_of:
                raise ExportError(f"--resume: {path} is as of {kept}, not {as_of}; drop --as-of")
            as_of, cursor = kept or as_of, last.get("customer_id")
    request = export_request(env, fmt, as_of, args.currency, args.filter, cursor,
                             args.chunk_size)
    export = AccountExport(env, principal, admission, request)
    if header is not None and header != export.header:
        raise ExportError(f"--resume: {path} has the columns {', '.join(header)}; this export "
                          f"writes {', '.join(export.header)} (another role or purpose?)")
    stopping: list[str] = []
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, _stop, stopping, number)
    sink: IO[bytes]
    failure: ExportError | None = None
    label = request.as_of.label
    try:
        async with contextlib.AsyncExitStack() as stack:
            assert env.linker.crosswalk is not None
            await stack.enter_async_context(env.linker.crosswalk)
            await privacy.open()
            stack.push_async_callback(privacy.aclose)
            stack.push_async_callback(env.sources.aclose)
            if path is None:
                sink = out or sys.stdout.buffer
            else:
                sink = stack.enter_context(path.open("ab" if args.resume else "wb"))
            if header is None:
                sink.write(export.format.header_bytes())
            bar = stack.enter_context(tqdm(
                total=await export.total(), unit=" customers", file=sys.stderr,
                dynamic_ncols=True, disable=args.quiet or not sys.stderr.isatty()))
            walk = export.blocks(lambda: bool(stopping))
            stack.push_async_callback(walk.aclose)
            try:
                async for block in walk:
                    if block.data:
                        sink.write(block.data)
                        sink.flush()
                    bar.update(block.walked)
            except ExportError as exc:  # a source or the audit log failed: rows out are whole
                failure = exc
    except (CrosswalkError, AuditError, ConsentError) as exc:
        raise ExportError(str(exc), "UNAVAILABLE", 503) from None
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(number)
    where = "standard output" if path is None else str(path)
    if failure is not None or not export.complete:
        why = f"{PROG}: {failure}" if failure else f"{PROG}: stopped"
        print(f"{why}; {export.written} accounts written to {where}, each row complete. "
              f"Resume with:\n  {resume_command(args, fmt, label, export.cursor)}",
              file=sys.stderr)
        return 1 if failure else 130
    left = export.walked - export.written
    print(f"{export.written} accounts as of {label} written to {where}"
          + (f"; {left} customers of the index left out (row scope, consent, filters, or no "
             f"record left in the sources)" if left else ""), file=sys.stderr)
    if export.walked == 0 and request.cursor is None:
        print("the identity index is empty: run `panorama index` first", file=sys.stderr)
    return 0


def _stop(stopping: list[str], number: int) -> None:
    """First signal: finish the chunk being written, then stop; a second one stops at once."""
    if stopping:
        raise KeyboardInterrupt
    stopping.append(signal.Signals(number).name)
    print(f"\n{PROG}: stopping after the current chunk (again to abort)", file=sys.stderr)
