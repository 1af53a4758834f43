"""Identity-matching rules: the ``identity`` section of ``panorama.yaml``, validated.

:func:`parse_rules` turns the section into a frozen :class:`MatchRules` and a list of
problems ("identity.person.fuzzy.threshold: expected a number between 0 and 1, got 'x'").
It never raises: a bad value is reported and its default is kept, so one typo never turns
identity matching off. The engine that applies the rules is :mod:`gateway.matching`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from gateway.records import CustomerRecord
from gateway.transforms import normalize_card, normalize_email, normalize_vat

RUNS = "01234567890123456789", "98765432109876543210"


def _placeholder_phone(e164: str) -> bool:
    """National digits that are one repeated digit or a run (06 00 00 00 00, 01 23 45 67 89)."""
    digits = e164.lstrip("+")
    tail = digits[-6:]
    if len(set(tail)) > 1 and not any(tail in run for run in RUNS):
        return False  # the common case, decided without finding the country code
    for size in (1, 2, 3):
        if int(digits[:size] or 0) in COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            return len(national) >= 6 and (len(set(national[1:])) == 1
                                           or any(national in run for run in RUNS))
    return False


def _sane_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(local and at and domain) and "@" not in domain


# Key kind -> the normalized values of a record that can be evidence (config placeholders aside):
# an e-mail with one @, a valid phone that is not 0600000000-like, a card or VAT number that is
# not one repeated character.
KEY_READERS: dict[str, Callable[[CustomerRecord], list[str]]] = {
    "email": lambda r: [v for c in r.emails if (v := normalize_email(c.value)) and _sane_email(v)],
    "phone": lambda r: [p.value for p in r.phones if p.valid and not _placeholder_phone(p.value)],
    "card": lambda r: [v for c in r.cards if (v := normalize_card(c.number))
                       and len(set(v)) > 1 and any(c.isalnum() for c in v)],
    "vat": lambda r: [v] if (v := normalize_vat(r.vat_number)) and len(
        {c for c in v if c.isdigit()}) > 1 else [],
}
KEY_KINDS = tuple(KEY_READERS)
CONFLICT_ATTRIBUTES = ("birth_date", "vat")
FUZZY_ATTRIBUTES = ("name", "birth_date", "postcode", "city", "street")

# Never identity evidence, whatever the config adds (fnmatch patterns on normalized values).
PLACEHOLDER_EMAILS = (
    "noemail@*", "no-email@*", "no.email@*", "none@*", "no-reply@*", "noreply@*",
    "donotreply@*", "do-not-reply@*", "nobody@*", "unknown@*", "inconnu@*", "test@test.*",
    "*@noemail.*", "*@invalid", "*@*.invalid", "x@x.*", "a@a.*",
)


@dataclass(frozen=True)
class FuzzyRules:
    """When two records without a common key are still the same customer."""

    threshold: float
    """A pair whose weighted score reaches this links."""
    weights: Mapping[str, float] = field(hash=False)
    """Attribute -> weight; the score is renormalized over the attributes both records have."""
    min_name_similarity: float
    """Below this name similarity there is no fuzzy link at all, whatever else agrees."""
    corroborate: tuple[str, ...]
    """At least one of these must agree too: a name (and a town) alone never links."""
    enabled: bool = True


@dataclass(frozen=True)
class KindRules:
    """The rules for one kind of customer (persons or organizations)."""

    keys: tuple[str, ...]
    """Deterministic keys: records sharing one are the same customer."""
    conflicts: tuple[str, ...]
    """Attributes whose two different values forbid a merge."""
    fuzzy: FuzzyRules


@dataclass(frozen=True)
class Placeholders:
    """Values that are never identity evidence (built-in defaults plus the config's)."""

    emails: tuple[str, ...] = PLACEHOLDER_EMAILS
    phones: tuple[str, ...] = ()
    cards: tuple[str, ...] = ()

    def matcher(self, kind: str) -> Callable[[str], bool]:
        """A predicate: is this normalized value one of the ``kind`` patterns."""
        patterns = getattr(self, kind + "s", ())
        if not patterns:
            return lambda _: False
        compiled = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
        return lambda value: compiled.match(value) is not None


PERSON = KindRules(
    keys=("email", "phone", "card"),
    conflicts=("birth_date",),
    fuzzy=FuzzyRules(
        threshold=0.86,
        weights={"name": 0.55, "birth_date": 0.25, "postcode": 0.08, "city": 0.04, "street": 0.08},
        min_name_similarity=0.85,
        corroborate=("birth_date", "street"),
    ),
)
ORGANIZATION = KindRules(
    keys=("vat", "email", "phone", "card"),
    conflicts=("vat",),
    fuzzy=FuzzyRules(
        threshold=0.9,
        weights={"name": 0.7, "postcode": 0.1, "city": 0.1, "street": 0.1},
        min_name_similarity=0.9,
        corroborate=("postcode", "street"),
    ),
)


@dataclass(frozen=True)
class MatchRules:
    """Everything the matcher needs to know; the defaults are the documented ones."""

    placeholders: Placeholders = field(default_factory=Placeholders)
    shared_key_limit: int = 6
    """A key on more records than this, whose names disagree, is shared (a switchboard)."""
    max_cluster_size: int = 25
    """No cluster grows past this through fuzzy links (deterministic keys are not capped)."""
    person: KindRules = PERSON
    organization: KindRules = ORGANIZATION

    def for_kind(self, kind: str) -> KindRules:
        """The rules of a record kind; anything but ORGANIZATION is matched as a person."""
        return self.organization if kind == "ORGANIZATION" else self.person


TOP_KEYS = ("placeholders", "shared_key_limit", "max_cluster_size", "person", "organization")
PLACEHOLDER_KEYS = ("emails", "phones", "cards")
KIND_KEYS = ("keys", "conflicts", "fuzzy")
FUZZY_KEYS = ("threshold", "weights", "min_name_similarity", "corroborate")
PLACEHOLDER_NORMALIZERS: dict[str, Callable[[str], str | None]] = {
    "emails": normalize_email,
    "phones": lambda v: re.sub(r"[\s.\-/()]", "", v) or None,
    "cards": normalize_card,
}


def parse_rules(doc: Mapping | None, location: str = "identity") -> tuple[MatchRules, list[str]]:
    """The rules of an ``identity`` section and its problems; a bad value keeps its default."""
    parser = _Parser()
    return parser.rules(doc, location), parser.problems


class _Parser:
    """Walks the section, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, location: str, message: str) -> None:
        self.problems.append(f"{location}: {message}")

    def mapping(self, doc: Any, location: str, allowed: tuple[str, ...]) -> dict:
        if doc is None:
            return {}
        if not isinstance(doc, Mapping):
            self.problem(location, f"expected a mapping with keys {', '.join(allowed)}, "
                                   f"got {_shown(doc)}")
            return {}
        for key in doc:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                self.problem(f"{location}.{key}", f"unknown key; {hint}allowed: {', '.join(allowed)}")
        return {k: v for k, v in doc.items() if k in allowed}

    def rules(self, doc: Mapping | None, loc: str) -> MatchRules:
        section = self.mapping(doc, loc, TOP_KEYS)
        rules = MatchRules()
        if "placeholders" in section:
            rules = replace(rules, placeholders=self.placeholders(
                section["placeholders"], f"{loc}.placeholders"))
        if (limit := self.integer(section, "shared_key_limit", loc, 1)) is not None:
            rules = replace(rules, shared_key_limit=limit)
        if (size := self.integer(section, "max_cluster_size", loc, 2)) is not None:
            rules = replace(rules, max_cluster_size=size)
        if "person" in section:
            rules = replace(rules, person=self.kind_rules(section["person"], f"{loc}.person",
                                                          rules.person))
        if "organization" in section:
            rules = replace(rules, organization=self.kind_rules(
                section["organization"], f"{loc}.organization", rules.organization))
        return rules

    def placeholders(self, doc: Any, loc: str) -> Placeholders:
        section = self.mapping(doc, loc, PLACEHOLDER_KEYS)
        added: dict[str, tuple[str, ...]] = {}
        for name, values in section.items():
            normalize = PLACEHOLDER_NORMALIZERS[name]
            patterns = []
            for i, value in enumerate(self.strings(values, f"{loc}.{name}") or ()):
                pattern = normalize(value)
                if pattern is None:
                    self.problem(f"{loc}.{name}[{i}]", "expected a non-empty pattern")
                else:
                    patterns.append(pattern)
            added[name] = tuple(patterns)
        base = Placeholders()
        return Placeholders(**{n: getattr(base, n) + added.get(n, ()) for n in PLACEHOLDER_KEYS})

    def kind_rules(self, doc: Any, loc: str, default: KindRules) -> KindRules:
        section = self.mapping(doc, loc, KIND_KEYS)
        rules = default
        if "keys" in section:
            keys = self.names(section["keys"], f"{loc}.keys", KEY_KINDS, "key kind")
            if keys is not None:
                rules = replace(rules, keys=keys)
        if "conflicts" in section:
            conflicts = self.names(section["conflicts"], f"{loc}.conflicts", CONFLICT_ATTRIBUTES,
                                   "conflict attribute")
            if conflicts is not None:
                rules = replace(rules, conflicts=conflicts)
        if "fuzzy" in section:
            rules = replace(rules, fuzzy=self.fuzzy(section["fuzzy"], f"{loc}.fuzzy", rules.fuzzy))
        return rules

    def fuzzy(self, doc: Any, loc: str, default: FuzzyRules) -> FuzzyRules:
        if doc is False:  # `fuzzy: false`: deterministic keys only
            return replace(default, enabled=False)
        section = self.mapping(doc, loc, FUZZY_KEYS)
        rules = default
        if (threshold := self.fraction(section, "threshold", loc)) is not None:
            rules = replace(rules, threshold=threshold)
        if (least := self.fraction(section, "min_name_similarity", loc)) is not None:
            rules = replace(rules, min_name_similarity=least)
        if "weights" in section:
            weights = self.weights(section["weights"], f"{loc}.weights")
            if weights is not None:
                rules = replace(rules, weights=weights)
        if "corroborate" in section:
            corroborate = self.names(section["corroborate"], f"{loc}.corroborate",
                                     FUZZY_ATTRIBUTES[1:], "attribute", allow_empty=True)
            if corroborate is not None:
                rules = replace(rules, corroborate=corroborate)
        return rules

    def weights(self, doc: Any, loc: str) -> dict[str, float] | None:
        if not isinstance(doc, Mapping) or not doc:
            self.problem(loc, f"expected a mapping of attribute to weight "
                              f"({', '.join(FUZZY_ATTRIBUTES)}), got {_shown(doc)}")
            return None
        weights: dict[str, float] = {}
        ok = True
        for name, value in doc.items():
            if name not in FUZZY_ATTRIBUTES:
                self.problem(f"{loc}.{name}", f"unknown attribute; allowed: {', '.join(FUZZY_ATTRIBUTES)}")
                ok = False
            elif not _is_number(value) or value < 0:
                self.problem(f"{loc}.{name}", f"expected a non-negative number, got {_shown(value)}")
                ok = False
            else:
                weights[name] = float(value)
        if ok and not weights.get("name"):
            self.problem(loc, "the name needs a positive weight: every fuzzy link compares names")
            ok = False
        return weights if ok else None

    def names(self, doc: Any, loc: str, allowed: tuple[str, ...], what: str,
              allow_empty: bool = False) -> tuple[str, ...] | None:
        values = self.strings(doc, loc)
        if values is None:
            return None
        bad = [v for v in values if v not in allowed]
        for value in bad:
            self.problem(loc, f"unknown {what} '{value}'; allowed: {', '.join(allowed)}")
        if not values and not allow_empty:
            self.problem(loc, f"expected at least one of {', '.join(allowed)}")
            return None
        return None if bad else tuple(dict.fromkeys(values))

    def strings(self, doc: Any, loc: str) -> list[str] | None:
        if not isinstance(doc, list | tuple) or not all(isinstance(v, str) for v in doc):
            self.problem(loc, f"expected a list of strings, got {_shown(doc)}")
            return None
        return list(doc)

    def fraction(self, section: dict, name: str, loc: str) -> float | None:
        if name not in section:
            return None
        value = section[name]
        if not _is_number(value) or not 0 <= value <= 1:
            self.problem(f"{loc}.{name}", f"expected a number between 0 and 1, got {_shown(value)}")
            return None
        return float(value)

    def integer(self, section: dict, name: str, loc: str, least: int) -> int | None:
        if name not in section:
            return None
        value = section[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            self.problem(f"{loc}.{name}", f"expected a whole number of at least {least}, "
                                          f"got {_shown(value)}")
            return None
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float | bool) or value is None \
        else type(value).__name__
