"""The ``consent:`` section of ``panorama.yaml``::

    consent:
      store: sqlite:///panorama-consent.db     # the default; or postgresql://user@host/db
      sources:                                 # opt-out fields of the sources (see rules)
        crm:
          - {field: marketing_opt_out, purposes: [marketing]}
      contacts:                                # where correction requests are routed
        crm: crm-team@example.com
        paris: https://support.example.com/paris/new-ticket
        default: privacy@example.com

The section is optional: without it, decisions are kept in the SQLite file next to the config,
no source field is read for consent, and correction requests wait ``unrouted`` for an admin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.consent.errors import ConsentConfigError
from gateway.consent.postgres import DEFAULT_SCHEMA
from gateway.consent.routing import DEFAULT_CONTACT, is_contact
from gateway.consent.rules import OptOutRule, parse_rules
from gateway.stores.location import (
    StoreLocation,
    parse_store_url,
    problems_error,
    read_config_file,
    section_doc,
    section_store,
)

#: The URL used when the config does not name one, relative to the config file.
DEFAULT_URL = "sqlite:///panorama-consent.db"
SECTION_KEYS = ("store", "sources", "contacts")


@dataclass(frozen=True)
class ConsentConfig:
    """Where decisions and correction requests live, the sources' opt-out rules, the contacts."""

    store: str = DEFAULT_URL
    base_dir: Path = field(default_factory=Path.cwd)
    rules: Mapping[str, tuple[OptOutRule, ...]] = field(default_factory=dict)
    contacts: Mapping[str, str] = field(default_factory=dict)

    def fields_by_source(self) -> dict[str, tuple[str, ...]]:
        """Source -> the fields its records must bring along for consent to be decided."""
        return {source: tuple(dict.fromkeys(r.field for r in rules))
                for source, rules in self.rules.items() if rules}


def consent_location(url: str, base_dir: Path | str | None = None) -> StoreLocation:
    """Where ``url`` keeps the store; ConsentConfigError naming the supported forms if nowhere."""
    return parse_store_url(url, base_dir, what="consent store", default_schema=DEFAULT_SCHEMA,
                           error=ConsentConfigError)


def parse_consent_section(doc: Any, base_dir: Path, environ: Mapping[str, str],
                          sources: Sequence[str] | None = None, location: str = "consent"
                          ) -> tuple[ConsentConfig, list[tuple[str, str]]]:
    """The ``consent:`` section and its problems as ``(location, message)``.

    ``sources`` are the configured source names (checked against the rules and contacts).
    """
    problems: list[tuple[str, str]] = []

    def problem(where: str, message: str) -> None:
        problems.append((where, message))

    doc = section_doc(doc, location, SECTION_KEYS, problem)
    if doc is None:
        return ConsentConfig(base_dir=base_dir), problems
    store = section_store(doc, location, DEFAULT_URL, base_dir, environ,
                          lambda url: consent_location(url, base_dir), problem)
    rules, rule_problems = parse_rules(doc.get("sources"), sources, f"{location}.sources")
    problems += rule_problems
    contacts = _contacts(doc.get("contacts"), sources, f"{location}.contacts", problems)
    return ConsentConfig(store, base_dir, rules, contacts), problems


def _contacts(doc: Any, sources: Sequence[str] | None, location: str,
              problems: list[tuple[str, str]]) -> dict[str, str]:
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        problems.append((location, "expected a mapping of source name (or default) to a contact"))
        return {}
    contacts = {}
    for name, contact in doc.items():
        where = f"{location}.{name}"
        if sources is not None and name != DEFAULT_CONTACT and name not in sources:
            problems.append((where, f"unknown source; configured: {', '.join(sources) or 'none'},"
                                    f" or {DEFAULT_CONTACT}"))
        elif not is_contact(contact):
            problems.append((where, "expected an e-mail address, mailto:ADDRESS or an http(s) URL"))
        else:
            contacts[str(name)] = str(contact)
    return contacts


def load_consent_config(path: Path | str, environ: Mapping[str, str]) -> ConsentConfig:
    """The ``consent:`` section of a config file alone; ConsentConfigError listing its problems."""
    top = read_config_file(path, ConsentConfigError)
    sources = top.get("sources")
    names = [str(n) for n in sources] if isinstance(sources, Mapping) else None
    config, problems = parse_consent_section(top.get("consent"), Path(path).parent, environ, names)
    if problems:
        raise problems_error(path, problems, ConsentConfigError)
    return config
