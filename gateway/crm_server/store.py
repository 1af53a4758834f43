"""The CRM's objects, built once from a seed dict, with HubSpot's property catalogue.

A seed maps object types to lists of objects::

    {"contacts": [{"id": "1", "properties": {"firstname": "Jean", "phone": "06 12 34 56 78"},
                   "createdAt": "2026-01-05T10:00:00Z"}],
     "notes":    [{"id": "101", "properties": {"hs_timestamp": "2026-03-01T09:30:00Z",
                                               "hs_note_body": "Asked about bread"},
                   "contacts": ["1"]}]}

Any other list-valued key of an object (``"contacts"`` above) names the associated objects of
that type; associations are readable in both directions. Property values are kept as strings
(HubSpot's wire format); ``None`` means the property is not set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.crm_server.errors import HubSpotError

PHONE_TAIL_DIGITS = 9
DEFAULT_TIMESTAMP = "2026-01-01T00:00:00.000Z"
_OBJECT_KEYS = {"id", "properties", "createdAt", "updatedAt", "archived"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One property in the catalogue answered by ``GET /crm/v3/properties/{objectType}``."""

    name: str
    label: str
    type: str = "string"  # string | number | datetime | enumeration
    field_type: str = "text"
    calculated: bool = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "type": self.type,
                "fieldType": self.field_type, "calculated": self.calculated,
                "groupName": "calculated" if self.calculated else "information",
                "hidden": False, "hasUniqueValue": self.name == "hs_object_id"}


def _props(*specs: tuple[str, str, str, str]) -> tuple[PropertyDef, ...]:
    return tuple(PropertyDef(*spec) for spec in specs)


_ENGAGEMENT = _props(
    ("hs_object_id", "Record ID", "number", "number"),
    ("hs_createdate", "Create date", "datetime", "date"),
    ("hs_lastmodifieddate", "Last modified date", "datetime", "date"),
    ("hs_timestamp", "Activity date", "datetime", "date"),
    ("hubspot_owner_id", "Activity assigned to", "enumeration", "select"),
)

#: Standard properties per object type (HubSpot has many more; these are the ones we seed).
STANDARD_PROPERTIES: dict[str, tuple[PropertyDef, ...]] = {
    "contacts": _props(
        ("hs_object_id", "Record ID", "number", "number"),
        ("createdate", "Create Date", "datetime", "date"),
        ("lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ("firstname", "First Name", "string", "text"),
        ("lastname", "Last Name", "string", "text"),
        ("email", "Email", "string", "text"),
        ("phone", "Phone Number", "string", "phonenumber"),
        ("mobilephone", "Mobile Phone Number", "string", "phonenumber"),
        ("address", "Street Address", "string", "text"),
        ("city", "City", "string", "text"),
        ("zip", "Postal Code", "string", "text"),
        ("country", "Country/Region", "string", "text"),
        ("company", "Company Name", "string", "text"),
        ("hs_email_optout", "Unsubscribed from all email", "enumeration", "booleancheckbox"),
    ),
    "notes": _ENGAGEMENT + _props(("hs_note_body", "Note body", "string", "html")),
    "calls": _ENGAGEMENT + _props(
        ("hs_call_title", "Call Title", "string", "text"),
        ("hs_call_body", "Call notes", "string", "html"),
        ("hs_call_direction", "Call direction", "enumeration", "select"),
        ("hs_call_duration", "Call duration", "number", "number"),
        ("hs_call_status", "Call status", "enumeration", "select"),
    ),
    "emails": _ENGAGEMENT + _props(
        ("hs_email_subject", "Email subject", "string", "text"),
        ("hs_email_text", "Email body", "string", "textarea"),
        ("hs_email_direction", "Email direction", "enumeration", "select"),
        ("hs_email_status", "Email send status", "enumeration", "select"),
    ),
    "meetings": _ENGAGEMENT + _props(
        ("hs_meeting_title", "Meeting name", "string", "text"),
        ("hs_meeting_body", "Meeting description", "string", "html"),
        ("hs_meeting_start_time", "Start time", "datetime", "date"),
        ("hs_meeting_end_time", "End time", "datetime", "date"),
        ("hs_meeting_outcome", "Meeting outcome", "enumeration", "select"),
    ),
}

#: Creation and modification timestamp properties: contacts name them differently.
TIMESTAMP_PROPERTIES: dict[str, tuple[str, str]] = {"contacts": ("createdate", "lastmodifieddate")}
ENGAGEMENT_TIMESTAMPS = ("hs_createdate", "hs_lastmodifieddate")

#: Properties returned by a search or read that asks for none.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {"contacts": ("firstname", "lastname", "email")}

#: HubSpot-defined association type ids, by (from type, to type).
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "notes"): 201, ("notes", "contacts"): 202,
    ("contacts", "calls"): 193, ("calls", "contacts"): 194,
    ("contacts", "emails"): 197, ("emails", "contacts"): 198,
    ("contacts", "meetings"): 199, ("meetings", "contacts"): 200,
}

_ALIASES = {"contact": "contacts", "note": "notes", "call": "calls", "email": "emails",
            "meeting": "meetings", "0-1": "contacts", "0-46": "notes", "0-48": "calls",
            "0-49": "emails", "0-47": "meetings"}


def phone_tails(values: Iterable[str | None]) -> list[str]:
    """Digits of each phone number, last nine kept: HubSpot's searchable phone number."""
    tails = []
    for value in values:
        digits = re.sub(r"\D", "", value or "")
        if digits:
            tails.append(digits[-PHONE_TAIL_DIGITS:])
    return tails


def normalized_card(value: str | None) -> list[str]:
    """A card number without spaces and dashes, upper-cased."""
    card = re.sub(r"[\s-]", "", value or "").upper()
    return [card] if card else []


#: Calculated search properties: name -> (values of one object, or [] when unset).
Calculated = Callable[[Mapping[str, str | None]], list[str]]


def _normalized_card_of(prop: str) -> Calculated:
    return lambda props: normalized_card(props.get(prop))


@dataclass(slots=True)
class CRMObject:
    """One record: string id, string properties, timestamps."""

    id: str
    properties: dict[str, str | None]
    created_at: str
    updated_at: str
    associations: dict[str, list[str]] = field(default_factory=dict)


def _wire(value: Any) -> str | None:
    """A property value as HubSpot sends it: a string, or None when unset."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Store:
    """Objects by type and id, the property catalogue and the association index."""

    def __init__(self, seed: Mapping[str, Iterable[Mapping[str, Any]]], *,
                 card_properties: Iterable[str] = ("loyalty_card",)) -> None:
        self.objects: dict[str, dict[str, CRMObject]] = {t: {} for t in STANDARD_PROPERTIES}
        self.properties: dict[str, dict[str, PropertyDef]] = {
            t: {p.name: p for p in defs} for t, defs in STANDARD_PROPERTIES.items()}
        self.calculated: dict[str, dict[str, Calculated]] = {}
        for object_type, items in seed.items():
            self._load(object_type, list(items))
        self._link()
        self._add_calculated(tuple(card_properties))
        # Each type's objects and ids in id order (the store is read-only): id ranges bisect them.
        self.ordered = {t: list(objs.values()) for t, objs in self.objects.items()}
        self.ids = {t: [int(i) for i in objs] for t, objs in self.objects.items()}
        self.position = {t: {o.id: i for i, o in enumerate(objs)} for t, objs in self.ordered.items()}
        self._indexes: dict[tuple[str, str], dict[Any, list[CRMObject]]] = {}

    def index(self, object_type: str, name: str,
              coerce: Callable[[str], Any]) -> dict[Any, list[CRMObject]]:
        """Objects by the coerced values of one property, built on first use."""
        key = (object_type, name)
        if key not in self._indexes:
            by_value: dict[Any, list[CRMObject]] = {}
            for obj in self.ordered[object_type]:
                for value in self.values(object_type, obj, name):
                    coerced = coerce(value)
                    if coerced is not None:
                        by_value.setdefault(coerced, []).append(obj)
            self._indexes[key] = by_value
        return self._indexes[key]

    # -- loading ---------------------------------------------------------------------------

    def _load(self, object_type: str, items: list[Mapping[str, Any]]) -> None:
        objects = self.objects.setdefault(object_type, {})
        catalogue = self.properties.setdefault(
            object_type, {p.name: p for p in STANDARD_PROPERTIES["notes"][:3]})
        created_prop, updated_prop = TIMESTAMP_PROPERTIES.get(object_type, ENGAGEMENT_TIMESTAMPS)
        seen: dict[str, list[str | None]] = {}
        for i, item in enumerate(items):
            where = f"seed {object_type}[{i}]"
            object_id = str(item.get("id", "")).strip()
            if not object_id.isdigit():
                raise ValueError(f"{where}: id {item.get('id')!r} must be a number, like HubSpot's")
            if object_id in objects:
                raise ValueError(f"{where}: id {object_id} is seeded twice")
            raw = item.get("properties") or {}
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where}: 'properties' must be an object")
            props = {str(k): _wire(v) for k, v in raw.items()}
            created = _wire(item.get("createdAt")) or DEFAULT_TIMESTAMP
            updated = _wire(item.get("updatedAt")) or created
            props.update({"hs_object_id": object_id, created_prop: created, updated_prop: updated})
            for name, value in props.items():
                seen.setdefault(name, []).append(value)
            links = {str(k): [str(x) for x in v] for k, v in item.items()
                     if k not in _OBJECT_KEYS and isinstance(v, list)}
            objects[object_id] = CRMObject(object_id, props, created, updated, links)
        self.objects[object_type] = dict(sorted(objects.items(), key=lambda kv: int(kv[0])))
        for name, values in seen.items():
            if name not in catalogue:
                # A seeded custom property is a number when every value it has is one.
                texts = [v for v in values if v is not None]
                numeric = bool(texts) and all(_NUMBER.fullmatch(v) for v in texts)
                catalogue[name] = PropertyDef(name, name.replace("_", " ").capitalize(),
                                              *(("number", "number") if numeric else ()))

    def _link(self) -> None:
        """Index associations both ways, refusing links to objects that are not seeded."""
        self.links: dict[tuple[str, str], dict[str, list[str]]] = {}
        for from_type, objects in self.objects.items():
            for obj in objects.values():
                for to_type, ids in obj.associations.items():
                    targets = self.objects.get(self.resolve_name(to_type) or "", {})
                    to_type = self.resolve_name(to_type) or to_type
                    for to_id in ids:
                        if to_id not in targets:
                            raise ValueError(f"seed {from_type} {obj.id}: associated {to_type} "
                                             f"id {to_id} is not seeded")
                        self._add_link(from_type, obj.id, to_type, to_id)
                        self._add_link(to_type, to_id, from_type, obj.id)

    def _add_link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        ids = self.links.setdefault((from_type, to_type), {}).setdefault(from_id, [])
        if to_id not in ids:
            ids.append(to_id)

    def _add_calculated(self, card_properties: tuple[str, ...]) -> None:
        contacts = self.calculated.setdefault("contacts", {})
        contacts["hs_searchable_calculated_phone_number"] = (
            lambda p: phone_tails((p.get("phone"), p.get("mobilephone"))))
        for object_type, catalogue in self.properties.items():
            for card in card_properties:
                if card in catalogue:
                    # A calculated property a portal admin would define: the card without
                    # spaces and dashes, upper-cased, so that IN can match any spelling.
                    self.calculated.setdefault(object_type, {})[f"{card}_normalized"] = (
                        _normalized_card_of(card))
        for object_type, calculated in self.calculated.items():
            for name in calculated:
                self.properties[object_type][name] = PropertyDef(
                    name, name.replace("_", " ").capitalize(), "string", "calculation_equation",
                    calculated=True)

    # -- reading ---------------------------------------------------------------------------

    def resolve_name(self, name: str) -> str | None:
        name = _ALIASES.get(name.lower(), name.lower())
        return name if name in self.objects else None

    def resolve(self, name: str) -> str:
        """The object type called ``name`` (plural, singular or HubSpot's 0-1 form), or a 400."""
        resolved = self.resolve_name(name)
        if resolved is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
        return resolved

    def property(self, object_type: str, name: str) -> PropertyDef | None:
        return self.properties[object_type].get(name)

    def values(self, object_type: str, obj: CRMObject, name: str) -> list[str]:
        """The values a filter compares: one per set value, several for calculated phones."""
        calculated = self.calculated.get(object_type, {}).get(name)
        if calculated is not None:
            return calculated(obj.properties)
        value = obj.properties.get(name)
        return [] if value is None or value == "" else [value]

    def view(self, object_type: str, obj: CRMObject,
             requested: Iterable[str] | None) -> dict[str, Any]:
        """An object as HubSpot answers it: requested properties plus the default ones."""
        created_prop, updated_prop = TIMESTAMP_PROPERTIES.get(object_type, ENGAGEMENT_TIMESTAMPS)
        names = list(DEFAULT_PROPERTIES.get(object_type, ())) if requested is None else [
            n for n in requested if n in self.properties[object_type]]
        props: dict[str, str | None] = {}
        for name in (*names, created_prop, updated_prop, "hs_object_id"):
            if name in self.calculated.get(object_type, {}):
                props[name] = ";".join(self.values(object_type, obj, name)) or None
            else:
                props[name] = obj.properties.get(name)
        return {"id": obj.id, "properties": props, "createdAt": obj.created_at,
                "updatedAt": obj.updated_at, "archived": False}

    def association_type(self, from_type: str, to_type: str) -> dict[str, Any]:
        type_id = ASSOCIATION_TYPE_IDS.get((from_type, to_type))
        if type_id is None:
            return {"category": "USER_DEFINED", "typeId": 1, "label": None}
        return {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}
