"""Consent: what customers allow, per purpose, and the corrections they ask for.

Panorama's own decisions (objections and withdrawals, history kept, latest wins) and
correction requests live in a store (SQLite by default, PostgreSQL for replicas); the
sources' opt-out fields are read live and mapped by ``rules``. A customer objects to a
purpose if either says so::

    store = open_consent_store("sqlite:///panorama-consent.db", base_dir=config_dir)
    async with store:
        await store.record(ConsentDecision(customer_id, "marketing", True, subject, "self-service"))
        hidden = await objecting_customers(store, "marketing", page_ids, records, config.rules)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from gateway.consent.base import ConsentStore
from gateway.consent.config import (
    DEFAULT_URL,
    ConsentConfig,
    consent_location,
    load_consent_config,
    parse_consent_section,
)
from gateway.consent.errors import (
    ConsentConfigError,
    ConsentError,
    ConsentUnavailable,
    CorrectionNotFound,
    InvalidConsentRecord,
)
from gateway.consent.postgres import DEFAULT_SCHEMA, PostgresConsentStore
from gateway.consent.routing import DEFAULT_CONTACT, route_correction
from gateway.consent.rules import (
    OptOutRule,
    Owner,
    SourceValues,
    flag,
    objections_from_records,
    parse_rules,
)
from gateway.consent.sqlite import SQLiteConsentStore
from gateway.consent.types import CORRECTION_STATUSES, ConsentDecision, CorrectionRequest
from gateway.stores.location import StoreLocation

#: Backend name -> how to build a store at a location.
BACKENDS: dict[str, Callable[[StoreLocation], ConsentStore]] = {
    "sqlite": lambda at: SQLiteConsentStore(at.path or ""),
    "postgresql": lambda at: PostgresConsentStore(at.dsn or "", schema=at.schema or DEFAULT_SCHEMA),
}


def open_consent_store(url: str, base_dir: Path | str | None = None) -> ConsentStore:
    """The store a URL names, not yet opened (``await store.open()`` or ``async with store``).

    ``sqlite:///path`` is relative to ``base_dir`` (default: the working directory),
    ``sqlite:////path`` absolute; ``postgresql://user@host:port/db`` keeps its tables in the
    schema ``panorama_consent`` (``?schema=name`` for another).
    """
    location = consent_location(url, base_dir)
    return BACKENDS[location.backend](location)


async def objecting_customers(store: ConsentStore, purpose: str, customers: Iterable[str],
                              records: Iterable[SourceValues] = (),
                              rules: Mapping[str, Sequence[OptOutRule]] | None = None) -> set[str]:
    """The customers among ``customers`` who object to ``purpose``: by Panorama's own latest
    decision (one query, never cached) or by any of their source records' opt-out fields.

    ``records`` are owned by global ids (the customers' ids); a source's opt-out is not
    lifted by a withdrawal recorded in Panorama (the strictest wins; see docs/audit.md).
    """
    wanted = list(dict.fromkeys(customers))
    hidden = await store.objections_for(wanted, purpose)
    if rules:
        members = set(wanted)
        hidden |= {owner for owner, name in objections_from_records(records, rules)
                   if name == purpose and isinstance(owner, str) and owner in members}
    return hidden


__all__ = [
    "BACKENDS",
    "CORRECTION_STATUSES",
    "DEFAULT_CONTACT",
    "DEFAULT_URL",
    "ConsentConfig",
    "ConsentConfigError",
    "ConsentDecision",
    "ConsentError",
    "ConsentStore",
    "ConsentUnavailable",
    "CorrectionNotFound",
    "CorrectionRequest",
    "InvalidConsentRecord",
    "OptOutRule",
    "Owner",
    "PostgresConsentStore",
    "SQLiteConsentStore",
    "SourceValues",
    "consent_location",
    "flag",
    "load_consent_config",
    "objecting_customers",
    "objections_from_records",
    "open_consent_store",
    "parse_consent_section",
    "parse_rules",
    "route_correction",
]
