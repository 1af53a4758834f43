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
from connectors.query import EntityMap, Join
from gateway import secrets
from gateway.mapping import (
    AddressSpec,
    CardSpec,
    ChildMapping,
    ContactSpec,
    CustomerMapping,
    FieldSpec,
)
from gateway.survivorship import Survivorship, parse_survivorship
from gateway.transforms import TRANSFORMS, SourceDefaults

SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

# Enumerations of the unified schema, and the unified fields each mapping section accepts.
CUSTOMER_KINDS = ("PERSON", "ORGANIZATION")
TRANSACTION_KINDS = ("PAYMENT", "INVOICE", "REFUND", "CREDIT")
TRANSACTION_STATUSES = ("COMPLETED", "PENDING", "FAILED", "CANCELLED", "UNKNOWN")
CHANNELS = ("NOTE", "CALL", "EMAIL", "MEETING")
CUSTOMER_SCALARS = ("kind", "given_name", "family_name", "full_name", "legal_name", "birth_date",
                    "vat_number", "updated_at")
CUSTOMER_LISTS = ("emails", "phones", "addresses", "loyalty_cards")
ADDRESS_PARTS = ("line1", "line2", "postcode", "city", "region", "country")
TRANSACTION_FIELDS = ("kind", "amount", "currency", "date", "status", "reference")
INTERACTION_FIELDS = ("channel", "date", "subject", "summary")
ENUMS: dict[str, tuple[str, ...]] = {"kind": CUSTOMER_KINDS}
CHILD_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "transactions": {"kind": TRANSACTION_KINDS, "status": TRANSACTION_STATUSES},
    "interactions": {"channel": CHANNELS},
}
# Transforms applied when a mapping does not name one.
DEFAULT_TRANSFORMS = {"birth_date": "date", "updated_at": "datetime", "vat_number": "vat",
                      "amount": "decimal", "date": "datetime",
                      "points": "int", "emails": "email", "phones": "phone", "currency": "upper"}

SOURCE_KEYS = ("kind", "shop", "connection", "timeout", "pool_size", "defaults", "customer",
               "transactions", "interactions")
ENTITY_KEYS = ("table", "key", "joins", "fields")
CHILD_KEYS = ("table", "key", "customer", "joins", "fields")


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


def parse_config(document: Any, path: str, base_dir: Path, environ: Mapping[str, str]) -> Config:
    loader = _Loader(base_dir, environ)
    config = loader.document(document, path)
    if loader.problems:
        raise ConfigError(path, loader.problems)
    return config


class _Loader:
    """Walks the YAML document, collecting problems instead of stopping at the first."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
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
                           ("gateway", "sources", "identity", "survivorship"))
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
        return Config(path, sources, self.mapping(top.get("gateway"), "gateway"), identity,
                      survivorship)

    def survivorship(self, doc: Any, sources: list[str]) -> Survivorship:
        rules, problems = parse_survivorship(doc, sources, "survivorship")
        for location, message in problems:
            self.problem(location, message)
        return rules

    def identity(self, doc: Any) -> IdentityConfig | None:
        from gateway.crosswalk import DEFAULT_URL, KeyHasher, open_crosswalk
        from gateway.crosswalk.errors import CrosswalkConfigError
        from gateway.match_rules import parse_rules

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
        customer = None
        if "customer" in doc:
            customer = self.customer(doc["customer"], f"{loc}.customer")
        else:
            self.problem(loc, "no customer mapping; add a 'customer:' section")
        transactions = self.children(doc.get("transactions"), f"{loc}.transactions", "transactions",
                                     TRANSACTION_FIELDS)
        interactions = self.children(doc.get("interactions"), f"{loc}.interactions", "interactions",
                                     INTERACTION_FIELDS)
        shop = doc.get("shop")
        return SourceConfig(name, str(kind), str(shop) if shop else None, connection, timeout,
                            pool_size, defaults, customer, transactions, interactions)

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

    def field(self, spec: Any, loc: str, logical: str, default_transform: str | None = None,
              enum: tuple[str, ...] | None = None) -> tuple[FieldSpec | None, str | None]:
        """A field spec and the column it reads (None for constants)."""
        if isinstance(spec, str):
            spec = {"column": spec}
        spec = self.mapping(spec, loc, ("column", "transform", "map", "value"))
        if "value" in spec:
            const = spec["value"]
            if enum and const not in enum:
                self.problem(f"{loc}.value", f"{const!r} is not one of {', '.join(enum)}")
            return FieldSpec(const=const), None
        column = spec.get("column")
        if not isinstance(column, str) or not column.strip():
            self.problem(loc, "expected a column name, {column: ...} or {value: ...}")
            return None, None
        table = spec.get("map")
        if table is not None:
            table = {str(k): str(v) for k, v in self.mapping(table, f"{loc}.map").items()}
            if enum:
                for source_value, unified in table.items():
                    if unified not in enum:
                        self.problem(f"{loc}.map.{source_value}",
                                     f"{unified!r} is not one of {', '.join(enum)}")
            return FieldSpec(logical=logical, table=table), column.strip()
        if enum:
            self.problem(loc, f"an enumeration needs {{value: ...}} or a map to {', '.join(enum)}")
        name = spec.get("transform", default_transform)
        transform = None
        if name is not None:
            transform = TRANSFORMS.get(str(name))
            if transform is None:
                self.problem(f"{loc}.transform",
                             f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
        return FieldSpec(logical=logical, transform=transform), column.strip()

    def entity_base(self, doc: dict, loc: str, name: str) -> tuple[str, str, tuple[Join, ...]]:
        table = doc.get("table")
        if not isinstance(table, str) or not table:
            self.problem(f"{loc}.table", "missing; name the table (or CRM object) to read")
            table = "?"
        key = doc.get("key")
        if not isinstance(key, str) or not key:
            self.problem(f"{loc}.key", "missing; name the column that identifies a row")
            key = "?"
        joins = []
        raw_joins = doc.get("joins") or []
        if not isinstance(raw_joins, list):
            self.problem(f"{loc}.joins", "expected a list of {table, as, on}")
            raw_joins = []
        for i, join in enumerate(raw_joins):
            jloc = f"{loc}.joins[{i}]"
            if isinstance(join, dict):  # YAML 1.1 reads a bare `on:` key as the boolean True
                join = {("on" if k is True else k): v for k, v in join.items()}
            join = self.mapping(join, jloc, ("table", "as", "on"))
            if not all(isinstance(join.get(k), str) for k in ("table", "on")):
                self.problem(jloc, "a join needs 'table' and 'on' (and 'as' for an alias)")
                continue
            joins.append(Join(join["table"], str(join.get("as") or join["table"]), join["on"]))
        return table, key, tuple(joins)

    def customer(self, doc: Any, loc: str) -> CustomerMapping | None:
        doc = self.mapping(doc, loc, ENTITY_KEYS)
        table, key, joins = self.entity_base(doc, loc, "customer")
        fields_doc = self.mapping(doc.get("fields"), f"{loc}.fields", CUSTOMER_SCALARS + CUSTOMER_LISTS)
        columns: dict[str, str] = {"key": key}
        scalars: dict[str, FieldSpec] = {}

        def add(spec_doc: Any, floc: str, logical: str, default: str | None = None,
                enum: tuple[str, ...] | None = None) -> FieldSpec | None:
            spec, column = self.field(spec_doc, floc, logical, default, enum)
            if column is not None:
                columns[logical] = column
            return spec

        for name in CUSTOMER_SCALARS:
            if name in fields_doc:
                spec = add(fields_doc[name], f"{loc}.fields.{name}", name,
                           DEFAULT_TRANSFORMS.get(name), ENUMS.get(name))
                if spec:
                    scalars[name] = spec
        contacts: dict[str, list[ContactSpec]] = {"emails": [], "phones": []}
        for group, prefix in (("emails", "email"), ("phones", "phone")):
            for i, item in enumerate(self.items(fields_doc.get(group), f"{loc}.fields.{group}")):
                iloc = f"{loc}.fields.{group}[{i}]"
                item = {"column": item} if isinstance(item, str) else item
                item = self.mapping(item, iloc, ("column", "transform", "type", "value"))
                spec = add({k: v for k, v in item.items() if k != "type"}, iloc, f"{prefix}_{i}",
                           DEFAULT_TRANSFORMS[group])
                if spec:
                    contacts[group].append(ContactSpec(spec, item.get("type")))
        addresses = []
        for i, item in enumerate(self.items(fields_doc.get("addresses"), f"{loc}.fields.addresses")):
            iloc = f"{loc}.fields.addresses[{i}]"
            item = self.mapping(item, iloc, ("type", *ADDRESS_PARTS))
            parts = {}
            for part in ADDRESS_PARTS:
                if part in item:
                    spec = add(item[part], f"{iloc}.{part}", f"address_{i}_{part}", "trim")
                    if spec:
                        parts[part] = spec
            addresses.append(AddressSpec(item.get("type"), parts))
        cards = []
        for i, item in enumerate(self.items(fields_doc.get("loyalty_cards"),
                                            f"{loc}.fields.loyalty_cards")):
            iloc = f"{loc}.fields.loyalty_cards[{i}]"
            item = {"column": item} if isinstance(item, str) else item
            item = self.mapping(item, iloc, ("column", "transform", "program", "points"))
            number = add({k: v for k, v in item.items() if k in ("column", "transform")}, iloc,
                         f"card_{i}", "trim")
            points = add(item["points"], f"{iloc}.points", f"card_{i}_points", "int") \
                if "points" in item else None
            if number:
                cards.append(CardSpec(number, item.get("program"), points))
        self.check_aliases(columns, table, joins, loc)
        entity = EntityMap("customer", table, "key", columns, joins)
        return CustomerMapping(entity, scalars, tuple(contacts["emails"]), tuple(contacts["phones"]),
                               tuple(addresses), tuple(cards))

    def items(self, value: Any, loc: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(loc, "expected a list")
            return []
        return value

    def children(self, value: Any, loc: str, section: str,
                 allowed: tuple[str, ...]) -> tuple[ChildMapping, ...]:
        mappings = []
        for i, doc in enumerate(self.items(value, loc)):
            iloc = f"{loc}[{i}]"
            doc = self.mapping(doc, iloc, CHILD_KEYS)
            table, key, joins = self.entity_base(doc, iloc, section)
            parent = doc.get("customer")
            if not isinstance(parent, str) or not parent:
                self.problem(f"{iloc}.customer", "missing; name the column holding the customer's "
                                                 "local key (CRM: associations.contacts)")
                parent = "?"
            columns = {"key": key, "customer_key": parent}
            specs = {}
            fields_doc = self.mapping(doc.get("fields"), f"{iloc}.fields", allowed)
            enums = CHILD_ENUMS[section]
            for name in allowed:
                if name in fields_doc:
                    spec, column = self.field(fields_doc[name], f"{iloc}.fields.{name}", name,
                                              DEFAULT_TRANSFORMS.get(name), enums.get(name))
                    if spec:
                        specs[name] = spec
                    if column:
                        columns[name] = column
            for required in ("kind", "amount", "date") if section == "transactions" else (
                    "channel", "date"):
                if required not in fields_doc:
                    self.problem(f"{iloc}.fields", f"'{required}' is not mapped; add it")
            self.check_aliases(columns, table, joins, iloc)
            entity = EntityMap(f"{section}[{i}]", table, "key", columns, joins,
                               parent="customer_key")
            mappings.append(ChildMapping(entity, specs))
        return tuple(mappings)

    def check_aliases(self, columns: dict[str, str], table: str, joins: tuple[Join, ...],
                      loc: str) -> None:
        if not joins:
            return  # a dotted name may be a CRM pseudo-property; the connector checks it
        aliases = {table.rsplit(".", 1)[-1], *(j.alias for j in joins)}
        for logical, column in columns.items():
            if "." in column and column.rsplit(".", 1)[0] not in aliases:
                self.problem(loc, f"field {logical} reads {column!r} but "
                                  f"{column.rsplit('.', 1)[0]!r} is not a table alias here "
                                  f"(aliases: {', '.join(sorted(aliases))})")
