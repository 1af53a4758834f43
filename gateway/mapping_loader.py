"""How the config file's mapping sections become mapped entities (customer, transactions...).

:class:`MappingLoader` holds the part of the config loader that reads ``customer:``,
``transactions:`` and ``interactions:``; ``gateway.config`` adds sources, connections and the
other sections, and how problems are collected.
"""

from __future__ import annotations

from typing import Any

from connectors.query import EntityMap, Join
from gateway.mapping import (
    AddressSpec,
    CardSpec,
    ChildMapping,
    ContactSpec,
    CustomerMapping,
    FieldSpec,
)
from gateway.transforms import TRANSFORMS

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
ENTITY_KEYS = ("table", "key", "joins", "fields")
CHILD_KEYS = ("table", "key", "customer", "joins", "fields")


class MappingLoader:
    """Reads mapping sections; problems go to :meth:`problem`, never raised."""

    def problem(self, location: str, message: str) -> None:
        raise NotImplementedError

    def mapping(self, value: Any, location: str, allowed: tuple[str, ...] | None = None) -> dict:
        raise NotImplementedError

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
