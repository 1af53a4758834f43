"""Load and validate ``panorama.yaml`` into source configurations.

Every problem is collected (not just the first) with its location in the file and a fix,
then raised together as one :class:`ConfigError`. Nothing is half-loaded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors import registry
from connectors.query import EntityMap
from gateway import secrets
from gateway.audit import AuditConfig, parse_audit_section
from gateway.auth.config import AuthConfig, parse_auth
from gateway.consent import ConsentConfig, parse_consent_section
from gateway.consent_gate import fetching_consent_fields
from gateway.crosswalk import DEFAULT_URL, CrosswalkConfigError, KeyHasher, open_crosswalk
from gateway.finance.config import FinanceConfig, parse_finance_section
from gateway.mapping import ChildMapping, CustomerMapping
from gateway.mapping_loader import (
    INTERACTION_FIELDS,
    TRANSACTION_FIELDS,
    MappingLoader,
)
from gateway.match_rules import parse_rules
from gateway.survivorship import Survivorship, parse_survivorship
from gateway.transforms import SourceDefaults

SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

SOURCE_KEYS = ("kind", "shop", "region", "connection", "timeout", "pool_size",
               "cache_ttl_seconds", "defaults", "customer", "transactions", "interactions")


@dataclass(frozen=True)
class Problem:
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ConfigError(ValueError):
    """The config file has problems; ``problems`` lists every one."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    shop: str | None
    connection: Mapping[str, Any]
    timeout: float | None
    pool_size: int
    defaults: SourceDefaults
    customer: CustomerMapping | None
    transactions: tuple[ChildMapping, ...]
    interactions: tuple[ChildMapping, ...]
    region: str | None = None  # where the source's data lives; policy row filters test it
    cache_ttl: float | None = None  # seconds its results may be served cached; None: the setting

    def entities(self) -> dict[str, EntityMap]:
        maps = [m.entity for m in (self.customer, *self.transactions, *self.interactions) if m]
        return {m.name: m for m in maps}


@dataclass(frozen=True)
class IdentityConfig:
    """The ``identity:`` section: where the crosswalk lives, its HMAC secret, matching rules."""

    secret: str = field(repr=False)
    store: str
    base_dir: Path
    rules: Any  # gateway.match_rules.MatchRules


@dataclass(frozen=True)
class Config:
    path: str
    sources: Mapping[str, SourceConfig]
    gateway: Mapping[str, Any]
    identity: IdentityConfig | None = None
    survivorship: Survivorship = field(default_factory=Survivorship)
    auth: AuthConfig | None = None  # None: no `auth:` section, every request is refused
    # gateway.policy.Policy from the `policy:` file; None: the built-in admin-only policy
    policy: Any = None
    audit: AuditConfig = field(default_factory=AuditConfig)  # the audit log (docs/audit.md)
    consent: ConsentConfig = field(default_factory=ConsentConfig)  # consent and corrections
    finance: FinanceConfig = field(default_factory=FinanceConfig)  # accounts (docs/finance.md)

    @property
    def shops(self) -> dict[str, str]:
        return {s.name: s.shop for s in self.sources.values() if s.shop}


def load_config(path: str | Path, environ: Mapping[str, str]) -> Config:
    """Read, validate and resolve a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem(
            str(path), "file not found; pass --config FILE or set PANORAMA_CONFIG")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(str(path), [Problem(where, f"{reason}; fix the YAML syntax")]) from None
    return parse_config(document, str(path), path.parent, environ)


def parse_config(document: Any, path: str, base_dir: Path, environ: Mapping[str, str],
                 policy_document: Any = None) -> Config:
    """``policy_document``: the policy file's contents as proposed (the admin API's changes);
    None: read the file `policy:` names."""
    loader = _Loader(base_dir, environ, policy_document)
    config = loader.document(document, path)
    if loader.problems:
        raise ConfigError(path, loader.problems)
    return config


def resolve_connection(doc: Any, base_dir: Path, environ: Mapping[str, str]
                       ) -> tuple[dict[str, Any], list[Problem]]:
    """A source's ``connection:`` with its references resolved, as start-up resolves it."""
    loader = _Loader(base_dir, environ)
    return loader.connection(doc, "connection"), loader.problems


class _Loader(MappingLoader):
    """Walks the YAML document, collecting problems instead of stopping at the first."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str],
                 policy_document: Any = None) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.policy_document = policy_document
        self.problems: list[Problem] = []

    def problem(self, location: str, message: str) -> None:
        self.problems.append(Problem(location, message))

    def mapping(self, value: Any, location: str, allowed: tuple[str, ...] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(location, f"expected a mapping (key: value), got {type(value).__name__}")
            return {}
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), allowed, n=1)
                    hint = f"did you mean '{close[0]}'? " if close else ""
                    self.problem(f"{location}.{key}",
                                 f"unknown key; {hint}allowed here: {', '.join(allowed)}")
        return value

    def document(self, document: Any, path: str) -> Config:
        top = self.mapping(document, "(top level)",
                           ("gateway", "sources", "identity", "survivorship", "auth", "policy",
                            "audit", "consent", "finance"))
        sources_doc = self.mapping(top.get("sources"), "sources")
        if not sources_doc and not self.problems:
            self.problem("sources", "no sources configured; add at least one source")
        sources = {}
        for name, spec in sources_doc.items():
            source = self.source(str(name), spec, f"sources.{name}")
            if source is not None:
                sources[source.name] = source
        identity = self.identity(top["identity"]) if "identity" in top else None
        survivorship = self.survivorship(top.get("survivorship"), [str(n) for n in sources_doc])
        auth = self.auth(top["auth"]) if "auth" in top else None
        policy = self.policy(top["policy"]) if "policy" in top else None
        audit, consent = self.privacy(top.get("audit"), top.get("consent"), list(sources_doc))
        sources = {name: fetching_consent_fields(source, consent)
                   for name, source in sources.items()}
        finance, problems = parse_finance_section(top.get("finance"))
        for location, message in problems:
            self.problem(location, message)
        return Config(path, sources, self.mapping(top.get("gateway"), "gateway"), identity,
                      survivorship, auth, policy, audit, consent, finance)

    def privacy(self, audit_doc: Any, consent_doc: Any, sources: list[Any]
                ) -> tuple[AuditConfig, ConsentConfig]:
        """The `audit:` and `consent:` sections (both optional: SQLite next to this file)."""
        audit, problems = parse_audit_section(audit_doc, self.base_dir, self.environ)
        consent, more = parse_consent_section(consent_doc, self.base_dir, self.environ,
                                              [str(n) for n in sources])
        for location, message in (*problems, *more):
            self.problem(location, message)
        return audit, consent

    def policy(self, value: Any) -> Any:
        """The policy file, checked against the schema; its problems join the config's."""
        from gateway.policy import (  # gateway.policy imports config
            PolicyFileError,
            load_policy,
            parse_policy,
        )

        if not isinstance(value, str) or not value.strip():
            self.problem("policy", "expected the path of a policy file (relative to this file), "
                                   "such as `policy: policies.yaml`; see docs/policies.md")
            return None
        path = self.base_dir / value
        if self.policy_document is not None:
            try:
                return parse_policy(self.policy_document, value)
            except PolicyFileError as exc:
                for problem in exc.problems:
                    self.problem(f"policy {value}: {problem.location}", problem.message)
                return None
        if not path.is_file():
            self.problem("policy", f"file not found: {path}; the path is relative to the config "
                                   f"file (deploy/policies.example.yaml is a starting point)")
            return None
        try:
            return load_policy(path)
        except PolicyFileError as exc:
            for problem in exc.problems:
                self.problem(f"policy {value}: {problem.location}", problem.message)
            return None

    def auth(self, doc: Any) -> AuthConfig | None:
        config, problems = parse_auth(doc, self.environ, self.base_dir)
        for location, message in problems:
            self.problem(location, message)
        return config

    def survivorship(self, doc: Any, sources: list[str]) -> Survivorship:
        rules, problems = parse_survivorship(doc, sources, "survivorship")
        for location, message in problems:
            self.problem(location, message)
        return rules

    def identity(self, doc: Any) -> IdentityConfig | None:
        doc = dict(self.mapping(doc, "identity"))
        secret_ref, store = doc.pop("secret", None), doc.pop("store", DEFAULT_URL)
        rules, problems = parse_rules(doc, "identity")
        for problem in problems:
            location, _, message = problem.partition(": ")
            self.problem(location, message.replace("allowed: ", "allowed: secret, store, ", 1)
                         if location.count(".") == 1 else message)
        secret = None
        if not isinstance(secret_ref, str) or not secrets.REFERENCE.search(secret_ref):
            self.problem("identity.secret", "missing or written inline; keep the HMAC secret in an "
                                            "environment variable and write ${env:NAME}")
        else:
            try:
                secret = secrets.resolve(secret_ref, self.environ, self.base_dir)
                KeyHasher(secret)
            except secrets.UnresolvedReference as exc:
                self.problem("identity.secret", str(exc))
                secret = None
            except CrosswalkConfigError as exc:
                self.problem("identity.secret", str(exc).removeprefix("identity.secret "))
                secret = None
        try:
            store = secrets.resolve(str(store), self.environ, self.base_dir)
            open_crosswalk(store, base_dir=self.base_dir)  # validates the URL; connects later
        except (secrets.UnresolvedReference, CrosswalkConfigError, ValueError) as exc:
            self.problem("identity.store", str(exc))
        if secret is None:
            return None
        return IdentityConfig(secret, store, self.base_dir, rules)

    def source(self, name: str, doc: Any, loc: str) -> SourceConfig | None:
        doc = self.mapping(doc, loc, SOURCE_KEYS)
        if not SOURCE_NAME.match(name):
            self.problem(loc, "source names are lower-case letters, digits, '-' and '_', "
                              "starting with a letter")
        kind = doc.get("kind")
        if kind is None:
            self.problem(f"{loc}.kind", f"missing; one of: {', '.join(registry.kinds())}")
        elif str(kind) not in registry.kinds():
            self.problem(f"{loc}.kind", f"unknown connector kind '{kind}'; "
                                        f"known: {', '.join(registry.kinds())}")
        defaults_doc = self.mapping(doc.get("defaults"), f"{loc}.defaults", ("country", "currency"))
        defaults = SourceDefaults(
            country=str(defaults_doc.get("country", "FR")).upper(),
            currency=str(defaults_doc.get("currency", "EUR")).upper())
        connection = self.connection(doc.get("connection"), f"{loc}.connection")
        timeout = self.number(doc.get("timeout"), f"{loc}.timeout", float)
        pool_size = self.number(doc.get("pool_size", 5), f"{loc}.pool_size", int) or 5
        cache_ttl = self.seconds_or_zero(doc.get("cache_ttl_seconds"), f"{loc}.cache_ttl_seconds")
        customer = None
        if "customer" in doc:
            customer = self.customer(doc["customer"], f"{loc}.customer")
        else:
            self.problem(loc, "no customer mapping; add a 'customer:' section")
        transactions = self.children(doc.get("transactions"), f"{loc}.transactions", "transactions",
                                     TRANSACTION_FIELDS)
        interactions = self.children(doc.get("interactions"), f"{loc}.interactions", "interactions",
                                     INTERACTION_FIELDS)
        shop, region = doc.get("shop"), doc.get("region")
        if region is not None and (not isinstance(region, str) or not region.strip()):
            self.problem(f"{loc}.region", "expected a region name (text, such as `eu` or `uk`), "
                                          "as policies' row filters name it")
            region = None
        return SourceConfig(name, str(kind), str(shop) if shop else None, connection, timeout,
                            pool_size, defaults, customer, transactions, interactions,
                            region.strip() if region else None, cache_ttl)

    def seconds_or_zero(self, value: Any, loc: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e9:
            return float(value)
        self.problem(loc, f"expected seconds, 0 or more (0: never cached), got {value!r}")
        return None

    def number(self, value: Any, loc: str, kind: type) -> Any:
        if value is None:
            return None
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = None
        if number is None or number <= 0 or isinstance(value, bool):
            self.problem(loc, f"expected a positive number, got {value!r}")
            return None
        return number

    def connection(self, doc: Any, loc: str) -> dict[str, Any]:
        doc = self.mapping(doc, loc)
        resolved: dict[str, Any] = {}
        for key, value in doc.items():
            if secrets.inline_secret(key, value):
                self.problem(f"{loc}.{key}", "a secret is written inline; put it in an environment "
                                             "variable and write ${env:NAME} (or ${file:PATH})")
                continue
            if isinstance(value, str):
                try:
                    value = secrets.resolve(value, self.environ, self.base_dir)
                except secrets.UnresolvedReference as exc:
                    self.problem(f"{loc}.{key}", str(exc))
                    continue
            if key == "path" and isinstance(value, str) and not Path(value).is_absolute():
                value = str((self.base_dir / value).resolve())
            resolved[key] = value
        return resolved
