"""Whether a proposed document may become the running config: structure, rules, live sources.

:func:`check_document` parses the document exactly as start-up would (every problem, with its
location), then applies the admin rules start-up does not know (the host allow-list), and, when
asked, checks the changed sources against the live systems: that they answer and that every
mapped table, column or CRM property exists.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors import registry
from connectors.errors import ConnectorError, Unsupported
from gateway.admin.document import CONNECTOR_KEYS, ConfigDocument
from gateway.config import Config, ConfigError, Problem, SourceConfig, parse_config

_POLICY_LOCATION = re.compile(r"^policy [^:]+: (.*)$")


@dataclass(frozen=True)
class HostRule:
    """One entry of ``admin_allowed_hosts``: a host name (``*.example.com`` allowed), an IP
    address or a network (``10.0.0.0/8``)."""

    text: str

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if "/" in self.text or _is_ip(self.text):
            return address is not None and address in ipaddress.ip_network(self.text,
                                                                           strict=False)
        pattern = self.text.lower()
        if pattern.startswith("*."):
            return host.lower().endswith(pattern[1:])
        return host.lower() == pattern


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_host_rules(text: str) -> tuple[HostRule, ...]:
    """``admin_allowed_hosts``: comma-separated; empty: any host."""
    rules = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "/" in part:
            ipaddress.ip_network(part, strict=False)  # ValueError names the bad network
        rules.append(HostRule(part))
    return tuple(rules)


def hosts_of(connection: Mapping[str, Any]) -> list[str]:
    """Every host a connection would reach: ``host``, or the host of a URL or DSN."""
    hosts = []
    if isinstance(connection.get("host"), str):
        hosts.append(connection["host"])
    for key in ("dsn", "url", "base_url"):
        value = connection.get(key)
        if isinstance(value, str) and "://" in value:
            try:
                host = urlsplit(value).hostname
            except ValueError:
                host = None
            if host:
                hosts.append(host)
    return hosts


@dataclass(frozen=True)
class Checked:
    config: Config | None
    problems: list[Problem]


def check_document(document: ConfigDocument, path: str, base_dir: Path,
                   environ: Mapping[str, str], allowed_hosts: Sequence[HostRule]) -> Checked:
    """Parse ``document`` as start-up would and apply the admin rules."""
    problems: list[Problem] = []
    config = None
    try:
        config = parse_config(dict(document.config), path, base_dir, environ,
                              policy_document=document.policy)
    except ConfigError as exc:
        problems += exc.problems
    if allowed_hosts:
        for name, spec in document.sources.items():
            connection = spec.get("connection") if isinstance(spec, Mapping) else None
            if not isinstance(connection, Mapping):
                continue
            # Hosts as written: a reference is resolved only when the whole config parses.
            resolved = config.sources[name].connection if config and name in config.sources \
                else connection
            for host in hosts_of(resolved):
                if not any(rule.allows(host) for rule in allowed_hosts):
                    problems.append(Problem(
                        f"sources.{name}.connection",
                        f"host '{host}' is not in admin_allowed_hosts "
                        f"({', '.join(r.text for r in allowed_hosts)}); connect to an allowed "
                        f"host or ask the operator to allow it"))
    return Checked(config if not problems else None, problems)


async def check_live(sources: Iterable[SourceConfig], timeout: float = 10.0
                     ) -> tuple[list[Problem], dict[str, dict[str, dict[str, str]]]]:
    """Each source answers and its mapping matches the live schema; connections closed after.

    Also returns, for each source that passed, the tables (CRM objects) its mapping reads with
    their columns (properties) and declared types, as the source itself describes them.
    """

    async def one(source: SourceConfig) -> tuple[list[Problem], dict[str, dict[str, str]]]:
        where = f"sources.{source.name}"
        entities = source.entities()
        connector = registry.get(source.kind)(source.name, source.connection, entities,
                                              timeout=source.timeout, pool_size=1)
        try:
            await connector.ping()
            try:
                found = await connector.verify()
            except Unsupported:
                return [], {}
            if found:
                return [Problem(where, message) for message in found], {}
            tables = await connector.introspect()
            read = {t for e in entities.values() for t in (e.table, *(j.table for j in e.joins))}
            return [], {t: tables[t] for t in sorted(read) if t in tables}
        except ConnectorError as exc:
            return [Problem(f"{where}.connection", f"cannot reach the source ({exc.code}): "
                                                   f"{exc.detail}")], {}
        finally:
            await connector.aclose()

    async def bounded(source: SourceConfig) -> tuple[list[Problem], dict[str, dict[str, str]]]:
        try:
            return await asyncio.wait_for(one(source), timeout)
        except TimeoutError:
            return [Problem(f"sources.{source.name}.connection",
                            f"no answer within {timeout:g} s; check the host and port")], {}

    listed = list(sources)
    results = await asyncio.gather(*(bounded(s) for s in listed))
    problems = [p for found, _ in results for p in found]
    described = {s.name: tables for s, (_, tables) in zip(listed, results, strict=True) if tables}
    return problems, described


def located(problem: Problem) -> dict[str, Any]:
    """A problem for the API: its location, and the resource and field it is about, so that a
    console can show it next to the offending input."""
    out: dict[str, Any] = {"location": problem.location, "message": problem.message}
    policy = _POLICY_LOCATION.match(problem.location)
    if policy:
        parts = policy.group(1).split(".")
        if parts[0] == "roles" and len(parts) > 1:
            out.update(kind="policy", name=parts[1], field=".".join(parts[2:]) or None)
        else:
            out.update(kind="policy-document", name="policy", field=policy.group(1))
        return out
    parts = problem.location.split(".")
    if parts[0] == "sources" and len(parts) > 1:
        field = ".".join(parts[2:]) or None
        head = parts[2] if len(parts) > 2 else None
        kind = "connector" if head is None or head in CONNECTOR_KEYS else "mapping"
        out.update(kind=kind, name=parts[1], field=field)
    return out
