"""Load and validate a policy file (YAML) against the GraphQL schema it governs.

Every problem is collected with its location and a fix, then raised together as one
:class:`PolicyFileError` (a :class:`gateway.config.ConfigError`); nothing is half-loaded.
What is legal but probably unintended (fields no rule can ever grant) is kept as warnings.
The format is described in docs/policies.md.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from gateway.config import Problem
from gateway.policy.catalog import Catalog, default_catalog
from gateway.policy.errors import PolicyFileError
from gateway.policy.lineage import LINEAGE
from gateway.policy.masks import STRATEGIES, Mask
from gateway.policy.model import (
    ALLOW,
    DENY,
    PRINCIPAL_ATTRIBUTES,
    ROW_KINDS,
    SOURCE_ATTRIBUTES,
    Category,
    Match,
    Policy,
    Purpose,
    Role,
    RowRule,
    Rule,
)

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
PRINCIPAL_REF = re.compile(r"^\$principal\.([a-z_]+)$")
TOP_KEYS = ("version", "categories", "purposes", "roles")
CATEGORY_KEYS = ("description", "fields")
PURPOSE_KEYS = ("description", "categories", "objectable")
ROLE_KEYS = ("description", "inherits", "purposes", "introspection", "all_fields", "rules", "rows")
ALL = "*"


def load_policy(path: str | Path, catalog: Catalog | None = None) -> Policy:
    """Read and validate a policy file; raise PolicyFileError listing every problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PolicyFileError(str(path), [Problem(str(path), "file not found; check the path "
                                                             "of the policy file")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise PolicyFileError(str(path), [Problem(where, f"{reason}; fix the YAML syntax")]) from None
    return parse_policy(document, str(path), catalog)


def parse_policy(document: Any, path: str = "<policy>", catalog: Catalog | None = None) -> Policy:
    """Validate a parsed policy document against ``catalog`` (default: Panorama's schema)."""
    reader = _Reader(catalog or default_catalog())
    policy = reader.document(document, path)
    if reader.problems:
        raise PolicyFileError(path, reader.problems)
    return policy


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


class _Reader:
    """Walks the document, collecting problems instead of stopping at the first."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.problems: list[Problem] = []

    def problem(self, location: str, message: str) -> None:
        self.problems.append(Problem(location, message))

    def section(self, value: Any, location: str, keys: tuple[str, ...] | None = None) -> dict:
        """A mapping (None counts as empty); with ``keys``, unknown keys are problems."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(location, f"expected a mapping (key: value), got {type(value).__name__}")
            return {}
        for key in value:
            if keys is not None and key not in keys:
                self.problem(f"{location}.{key}",
                             f"unknown key; {_hint(str(key), keys)}allowed here: {', '.join(keys)}")
        return value

    def names(self, value: Any, location: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(location, f"expected a list of names, got {value!r}")
            return []
        return value

    def named(self, name: Any, location: str, what: str) -> bool:
        if isinstance(name, str) and NAME.match(name):
            return True
        self.problem(location, f"{what} names are lower-case letters, digits, '-' and '_', "
                               f"starting with a letter")
        return False

    def flag(self, value: Any, location: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.problem(location, f"expected true or false, got {value!r}")
        return None

    def document(self, document: Any, path: str) -> Policy:
        top = self.section(document, "(top level)", TOP_KEYS)
        if top.get("version", 1) != 1:
            self.problem("version", f"unsupported version {top['version']!r}; this gateway reads "
                                    f"version 1")
        categories = {str(n): self.category(str(n), spec, f"categories.{n}")
                      for n, spec in self.section(top.get("categories"), "categories").items()}
        owner: dict[str, str] = {}
        for category in categories.values():
            for coordinate in category.fields:
                if owner.setdefault(coordinate, category.name) != category.name:
                    self.problem(f"categories.{category.name}",
                                 f"{coordinate} is already in category '{owner[coordinate]}'; a "
                                 f"field belongs to one category: remove it from one of them")
        purposes = {str(n): self.purpose(str(n), spec, categories, f"purposes.{n}")
                    for n, spec in self.section(top.get("purposes"), "purposes").items()}
        roles_doc = self.section(top.get("roles"), "roles")
        if not roles_doc:
            self.problem("roles", "no roles defined; add at least one (e.g. admin with "
                                  "all_fields: true)")
        roles = {str(n): self.role(str(n), spec, categories, purposes, roles_doc, f"roles.{n}")
                 for n, spec in roles_doc.items()}
        self.cycles(roles)
        digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode())
        policy = Policy(categories, purposes, roles, path, digest.hexdigest()[:16])
        if self.problems:
            return policy
        return Policy(categories, purposes, roles, path, policy.digest, self.warnings(policy))

    def category(self, name: str, doc: Any, loc: str) -> Category:
        self.named(name, loc, "category")
        doc = self.section(doc, loc, CATEGORY_KEYS)
        coords: list[str] = []
        for type_name, fields in self.section(doc.get("fields"), f"{loc}.fields").items():
            where = f"{loc}.fields.{type_name}"
            if type_name not in self.catalog.object_types:
                self.problem(where, f"no object type '{type_name}' in the schema; "
                                    f"{_hint(str(type_name), self.catalog.object_types)}"
                                    f"types: {', '.join(sorted(self.catalog.object_types))}")
                continue
            known = self.catalog.field_names(type_name)
            for field_name in self.names(fields, where):
                if field_name not in known:
                    self.problem(where, f"type {type_name} has no field '{field_name}'; "
                                        f"{_hint(field_name, known)}fields: {', '.join(known)}")
                else:
                    coords.append(f"{type_name}.{field_name}")
        return Category(name, str(doc.get("description") or ""), tuple(coords))

    def purpose(self, name: str, doc: Any, categories: Mapping[str, Category],
                loc: str) -> Purpose:
        self.named(name, loc, "purpose")
        doc = self.section(doc, loc, PURPOSE_KEYS)
        description = str(doc.get("description") or "")
        objectable = doc.get("objectable", True)
        if not isinstance(objectable, bool):
            self.problem(f"{loc}.objectable", f"expected true or false (may a customer object to "
                                              f"purpose '{name}'?), got {objectable!r}")
            objectable = True
        wanted = doc.get("categories")
        if wanted == ALL:
            return Purpose(name, description, frozenset(categories), objectable)
        if wanted is None:
            self.problem(f"{loc}.categories", "missing; list the categories this purpose may "
                                              "read, or \"*\" for all")
        names = self.names(wanted, f"{loc}.categories")
        for category in names:
            if category not in categories:
                self.problem(f"{loc}.categories", f"unknown category '{category}'; "
                                                  f"{_hint(category, categories)}categories: "
                                                  f"{', '.join(categories)}")
        return Purpose(name, description, frozenset(names), objectable)

    def role(self, name: str, doc: Any, categories: Mapping[str, Category],
             purposes: Mapping[str, Purpose], roles: Mapping[str, Any], loc: str) -> Role:
        self.named(name, loc, "role")
        doc = self.section(doc, loc, ROLE_KEYS)
        inherits = self.names(doc.get("inherits"), f"{loc}.inherits")
        for parent in inherits:
            if parent not in roles:
                self.problem(f"{loc}.inherits", f"unknown role '{parent}'; {_hint(parent, roles)}"
                                                f"roles: {', '.join(map(str, roles))}")
        role_purposes = self.names(doc.get("purposes"), f"{loc}.purposes")
        for purpose in role_purposes:
            if purpose not in purposes:
                self.problem(f"{loc}.purposes", f"unknown purpose '{purpose}'; "
                                                f"{_hint(purpose, purposes)}purposes: "
                                                f"{', '.join(purposes)}")
        rules = {}
        for target, action in self.section(doc.get("rules"), f"{loc}.rules").items():
            rule = self.rule(str(target), action, categories, f"{loc}.rules.{target}")
            if rule is not None:
                rules[str(target)] = rule
        rows = self.rows(doc.get("rows"), name, f"{loc}.rows")
        return Role(name, str(doc.get("description") or ""), tuple(inherits), tuple(role_purposes),
                    self.flag(doc.get("introspection"), f"{loc}.introspection"),
                    self.flag(doc.get("all_fields"), f"{loc}.all_fields"), rules, rows)

    def rule(self, target: str, action: Any, categories: Mapping[str, Category],
             loc: str) -> Rule | None:
        facts = self.catalog.fields.get(target)
        if target not in categories and facts is None:
            self.problem(loc, f"unknown target; {_hint(target, [*categories, *self.catalog.fields])}"
                              f"name a category ({', '.join(categories)}) or a field as "
                              f"Type.field")
            return None
        if action in ("allow", "deny"):
            return ALLOW if action == "allow" else DENY
        if not isinstance(action, dict) or "mask" not in action:
            self.problem(loc, f"expected allow, deny or {{mask: STRATEGY}}, got {action!r}")
            return None
        strategy_name = str(action["mask"])
        strategy = STRATEGIES.get(strategy_name)
        if strategy is None:
            self.problem(loc, f"unknown mask strategy '{strategy_name}'; "
                              f"{_hint(strategy_name, STRATEGIES)}known: {', '.join(STRATEGIES)}")
            return None
        if facts is None:
            self.problem(loc, "masks name one field (e.g. Email.address), not a category: a "
                              "masked field keeps its type, which a category does not have")
            return None
        if not facts.leaf:
            leaves = [c for c in self.catalog.object_types.get(facts.type_name, ())
                      if self.catalog.fields[c].leaf]
            self.problem(loc, f"{target} is an object ({facts.type_name}); mask one of its "
                              f"scalar fields instead: {', '.join(leaves)}")
            return None
        if not strategy.fits(facts.type_name, facts.non_null):
            fitting = [n for n, s in STRATEGIES.items() if s.fits(facts.type_name, facts.non_null)]
            self.problem(loc, f"{strategy_name} cannot keep the type of {target} "
                              f"({facts.type_name}{'!' if facts.non_null else ''}); strategies that "
                              f"can: {', '.join(fitting) or 'none (deny the field instead)'}")
            return None
        params = []
        for key, value in action.items():
            if key == "mask":
                continue
            parse = strategy.params.get(key)
            if parse is None:
                allowed = ", ".join(strategy.params) or "none"
                self.problem(f"{loc}.{key}", f"unknown parameter of {strategy_name}; allowed: "
                                             f"{allowed}")
                continue
            try:
                params.append((str(key), parse(value)))
            except ValueError as exc:
                self.problem(f"{loc}.{key}", str(exc))
        return Rule("mask", Mask(strategy_name, tuple(params)))

    def rows(self, doc: Any, role: str, loc: str) -> tuple[RowRule, ...]:
        rules = []
        for kind, spec in self.section(doc, loc, ROW_KINDS).items():
            if kind not in ROW_KINDS:
                continue
            if kind == "subject":
                ref = self.reference(spec, f"{loc}.subject")
                if ref is not None and ref != "customer_id":
                    self.problem(f"{loc}.subject", "write $principal.customer_id: the customer a "
                                                   "data subject may see is their own")
                rules.append(RowRule(kind, (Match("id", principal="customer_id"),), role))
                continue
            matches = []
            for attribute, value in self.section(spec, f"{loc}.{kind}", SOURCE_ATTRIBUTES).items():
                if attribute not in SOURCE_ATTRIBUTES:
                    continue
                where = f"{loc}.{kind}.{attribute}"
                if isinstance(value, str) and value.startswith("$"):
                    ref = self.reference(value, where)
                    matches.append(Match(str(attribute), principal=ref))
                else:
                    matches.append(Match(str(attribute), tuple(self.names(value, where))))
            if not matches:
                self.problem(f"{loc}.{kind}", f"empty; give a source attribute and its value, "
                                              f"e.g. shop: $principal.shop "
                                              f"(attributes: {', '.join(SOURCE_ATTRIBUTES)})")
            rules.append(RowRule(kind, tuple(matches), role))
        return tuple(rules)

    def reference(self, value: Any, loc: str) -> str | None:
        match = PRINCIPAL_REF.match(value) if isinstance(value, str) else None
        if match is None or match.group(1) not in PRINCIPAL_ATTRIBUTES:
            self.problem(loc, f"expected $principal.<attribute> with one of: "
                              f"{', '.join(PRINCIPAL_ATTRIBUTES)}; got {value!r}")
            return None
        return match.group(1)

    def cycles(self, roles: Mapping[str, Role]) -> None:
        state: dict[str, str] = {}
        reported: set[frozenset[str]] = set()

        def visit(name: str, trail: list[str]) -> None:
            state[name] = "open"
            for parent in roles[name].inherits:
                if parent not in roles:
                    continue
                if state.get(parent) == "open":
                    cycle = trail[trail.index(parent):] + [parent]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.problem(f"roles.{parent}.inherits",
                                     f"inheritance cycle {' -> '.join(cycle)}; remove one of "
                                     f"these `inherits`")
                elif parent not in state:
                    visit(parent, [*trail, parent])
            state[name] = "done"

        for name in roles:
            if name not in state:
                visit(name, [name])

    def warnings(self, policy: Policy) -> tuple[str, ...]:
        named = set(policy.category_of)
        named.update(t for role in policy.roles.values() for t in role.rules)
        loose = [c for c in self.catalog.fields if c not in named]
        unlisted = [c for c in (*self.catalog.arguments, *self.catalog.input_fields)
                    if c not in LINEAGE]
        found = []
        if loose:
            found.append(f"{len(loose)} field(s) in no category and named by no rule: only "
                         f"roles with all_fields see them; classify them: {', '.join(loose)}")
        if unlisted:
            found.append(f"{len(unlisted)} argument(s)/input field(s) have no lineage entry "
                         f"(gateway/policy/lineage.py): only roles with all_fields may use "
                         f"them: {', '.join(unlisted)}")
        inherited = {p for role in policy.roles.values() for p in role.inherits}
        for name in policy.roles:
            if not policy.purposes_of(name) and name not in inherited:
                found.append(f"role {name} has no purposes and no role inherits it: no request "
                             f"can use it; give it `purposes:`")
        return tuple(found)
