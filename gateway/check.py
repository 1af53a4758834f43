"""``panorama check``: validate a config file, and with ``connect`` the live sources too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from connectors.errors import ConnectorError, Unsupported
from gateway.config import Config, ConfigError, load_config
from gateway.sources import SourceSet


async def _check_sources(config: Config, say: Callable[[str], None]) -> int:
    sources = SourceSet.from_config(config)
    failures = 0
    try:
        async def one(source):
            try:
                await source.connector.ping()
                try:
                    problems = await source.connector.verify()
                except Unsupported:
                    problems = []
            except ConnectorError as exc:
                return source, [f"cannot reach the source ({exc.code}): {exc.detail}"]
            return source, problems

        if config.identity is not None:
            failures += await _check_crosswalk(config, say)
        for source, problems in await asyncio.gather(*(one(s) for s in sources)):
            if problems:
                failures += len(problems)
                for problem in problems:
                    say(f"sources.{source.name}: {problem}")
            else:
                say(f"sources.{source.name}: ok ({source.config.kind}, reachable, "
                    f"every mapped table and column exists)")
    finally:
        await sources.aclose()
    return failures


async def _check_crosswalk(config: Config, say: Callable[[str], None]) -> int:
    from gateway.crosswalk import CrosswalkError, open_crosswalk

    assert config.identity is not None
    try:
        async with open_crosswalk(config.identity.store,
                                  base_dir=config.identity.base_dir) as crosswalk:
            stats = await crosswalk.stats()
    except CrosswalkError as exc:
        say(f"identity.store: {exc}")
        return 1
    say(f"identity.store: ok ({stats.get('records', 0)} records of "
        f"{stats.get('customers', 0)} customers indexed)")
    return 0


def _say_policy(config: Config, say: Callable[[str], None]) -> None:
    """Which policy applies, and what in it is legal but probably unintended."""
    policy = config.policy
    if policy is None:
        say("policy: none configured: only the admin role may read (add `policy: FILE`, see "
            "docs/policies.md)")
        return
    say(f"policy: {policy.path}: valid ({len(policy.roles)} roles: {', '.join(policy.roles)}; "
        f"{len(policy.purposes)} purposes: {', '.join(policy.purposes)})")
    for warning in policy.warnings:
        say(f"policy: warning: {warning}")


def run_check(path: str, *, connect: bool, environ: Mapping[str, str],
              say: Callable[[str], None] = print) -> int:
    """Print every problem with its location; return the process exit code."""
    try:
        config = load_config(path, environ)
    except ConfigError as exc:
        for problem in exc.problems:
            say(f"{path}: {problem}")
        say(f"{len(exc.problems)} problem(s) found; nothing was started.")
        return 1
    say(f"{path}: valid ({len(config.sources)} sources: {', '.join(config.sources)})")
    _say_policy(config, say)
    if not connect:
        return 0
    failures = asyncio.run(_check_sources(config, say))
    if failures:
        say(f"{failures} problem(s) found in the live sources.")
        return 1
    return 0
