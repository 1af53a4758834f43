"""Access decisions: what one (roles, purpose) may see, masked how, over which rows. Pure.

A decision is taken per schema coordinate, never per query: whichever way a query reaches
``Customer.emails`` (alias, fragment, nested path, another operation), the answer is the same.
For one role and one field, the most specific rule wins: a rule on the field itself, else a
rule on its category, looked up in the role and then its parents in order; else the field is
denied (or allowed, for a role with ``all_fields``). A field of a category the purpose does
not cover is denied whatever the rules say. With several roles, a field is visible if any
role acting for the purpose sees it, unmasked if any sees it unmasked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.policy.catalog import Catalog, default_catalog
from gateway.policy.errors import (
    NothingVisible,
    PurposeNotAllowed,
    PurposeRequired,
    UnknownPurpose,
    UnknownRole,
)
from gateway.policy.lineage import LINEAGE
from gateway.policy.masks import Mask
from gateway.policy.model import ALLOW, DENY, Policy, RowRule, Rule
from gateway.policy.rows import RowScope, scope_for
from gateway.principal import Principal


@dataclass(frozen=True, eq=False)
class RoleView:
    """What a (roles, purpose) may see: the same for every request that has them."""

    roles: tuple[str, ...]
    purpose: str
    #: Visible output fields reachable from the roots -> their mask (None: plain).
    fields: Mapping[str, Mask | None]
    arguments: frozenset[str]
    input_fields: frozenset[str]
    hidden_enum_values: frozenset[str]
    introspection: bool
    rows: tuple[RowRule, ...]  # templates; scope_for(view.rows, principal) fills them in
    key: tuple[str, ...]  # (policy digest, purpose, *roles): caches of derived schemas use it

    def can_read(self, coordinate: str) -> bool:
        return coordinate in self.fields

    def mask(self, coordinate: str) -> Mask | None:
        return self.fields.get(coordinate)

    @property
    def masks(self) -> dict[str, Mask]:
        return {c: m for c, m in self.fields.items() if m is not None}

    @property
    def types(self) -> frozenset[str]:
        return frozenset(c.partition(".")[0] for c in self.fields)

    def describe(self) -> str:
        who = "+".join(self.roles)
        return f"role '{who}' for purpose '{self.purpose}'"


class Decider:
    """Takes the decisions of one policy over one schema; views are cached per (roles, purpose)."""

    def __init__(self, policy: Policy, catalog: Catalog | None = None,
                 lineage: Mapping[str, tuple[str, ...]] = LINEAGE) -> None:
        self.policy = policy
        self.catalog = catalog or default_catalog()
        self.lineage = lineage
        self._views: dict[tuple[tuple[str, ...], str | None], RoleView] = {}

    def view_for(self, principal: Principal) -> RoleView:
        return self.view(principal.roles, principal.purpose)

    def rows_for(self, view: RoleView, principal: Principal) -> RowScope:
        """The rows this principal may read; raises PrincipalIncomplete when an attribute is missing."""
        return scope_for(view.rows, principal)

    def view(self, roles: Sequence[str], purpose: str | None) -> RoleView:
        key = (tuple(roles), purpose)
        found = self._views.get(key)
        if found is None:
            found = self._views[key] = self._build(tuple(roles), purpose)
        return found

    def acting_roles(self, roles: tuple[str, ...], purpose: str | None) -> tuple[str, ...]:
        """The roles that act for the purpose; raises the AccessDenied that explains why none does."""
        policy = self.policy
        if not roles:
            raise UnknownRole("the principal has no role; issue its token with one of: "
                              f"{', '.join(policy.roles)}")
        for role in roles:
            if role not in policy.roles:
                raise UnknownRole(f"unknown role '{role}'; roles: {', '.join(policy.roles)}")
        may = sorted({p for r in roles for p in policy.purposes_of(r)})
        if purpose is None:
            raise PurposeRequired("every request declares its purpose: a `purpose` claim in the "
                                  "token or a Panorama-Purpose header; "
                                  f"{_who(roles)} may act for: {', '.join(may) or 'nothing'}")
        if purpose not in policy.purposes:
            raise UnknownPurpose(f"unknown purpose '{purpose}'; {_who(roles)} may act for: "
                                 f"{', '.join(may) or 'nothing'}")
        acting = tuple(r for r in roles if purpose in policy.purposes_of(r))
        if not acting:
            raise PurposeNotAllowed(f"{_who(roles)} may not act for purpose '{purpose}'; "
                                    f"allowed: {', '.join(may) or 'nothing'}")
        return acting

    def _role_rule(self, role: str, coordinate: str, categories: frozenset[str]) -> Rule:
        category = self.policy.category_of.get(coordinate)
        if category is not None and category not in categories:
            return DENY
        chain = self.policy.ancestry(role)
        for target in (coordinate, category):
            for ancestor in chain:
                if target is not None and target in ancestor.rules:
                    return ancestor.rules[target]
        return ALLOW if self.policy.all_fields_of(role) else DENY

    def _fields(self, acting: tuple[str, ...], purpose: str) -> dict[str, Rule]:
        """Each field's rule for the acting roles, before lineage and structure."""
        categories = self.policy.purposes[purpose].categories
        combined: dict[str, Rule] = {}
        for coordinate in self.catalog.fields:
            rules = [self._role_rule(r, coordinate, categories) for r in acting]
            masked = [r for r in rules if r.effect == "mask"]
            combined[coordinate] = ALLOW if ALLOW in rules else masked[0] if masked else DENY
        return combined

    def _usable(self, coordinate: str, plain: set[str], all_fields: bool) -> bool:
        """An argument, input field or enum value: usable when what it reveals is readable, unmasked."""
        dependencies = self.lineage.get(coordinate)
        if dependencies is None:
            return all_fields
        return all(d in plain for d in dependencies)

    def _derived(self, coordinate: str, visible: set[str], rules: Mapping[str, Rule]) -> bool:
        """A computed field: visible when its inputs are; masked when any input is."""
        for dependency in self.lineage.get(coordinate, ()):
            if dependency not in visible:
                return False
            if rules[dependency].effect == "mask" and rules[coordinate].effect != "mask":
                return False
        return True

    def _build(self, roles: tuple[str, ...], purpose: str | None) -> RoleView:
        acting = self.acting_roles(roles, purpose)
        assert purpose is not None  # acting_roles raised otherwise
        catalog, policy = self.catalog, self.policy
        rules = self._fields(acting, purpose)
        all_fields = any(policy.all_fields_of(r) for r in acting)
        visible = {c for c, rule in rules.items() if rule is not DENY}
        # What reveals a field needs that field readable *as this view shows it*: reachable
        # from a root, so hiding a type hides the filters on it. Shrinks until stable.
        while True:
            plain = {c for c in visible if rules[c] is ALLOW}
            arguments = {a for a in catalog.arguments if self._usable(a, plain, all_fields)}
            inputs = {i for i in catalog.input_fields if self._usable(i, plain, all_fields)}
            visible = {c for c in visible if self._derived(c, visible, rules)}
            _prune(catalog, visible, arguments, inputs)
            fields, arguments, inputs = _reachable(catalog, visible, arguments, inputs)
            if fields == visible:
                break
            visible = fields
        root = catalog.schema.query_type
        if root is None or not any(c.startswith(f"{root.name}.") for c in fields):
            raise NothingVisible(f"{_who(roles)} may read nothing for purpose '{purpose}'; grant "
                                 f"it a {root.name if root else 'Query'} field (e.g. the lookup "
                                 f"category) or choose another purpose")
        plain = {c for c in fields if rules[c] is ALLOW}
        hidden = frozenset(e for e in catalog.enum_values
                           if e in self.lineage and not self._usable(e, plain, all_fields))
        return RoleView(roles, purpose, {c: rules[c].mask for c in sorted(fields)},
                        frozenset(arguments), frozenset(inputs), hidden,
                        any(policy.introspection_of(r) for r in acting),
                        tuple(rule for r in acting for rule in policy.rows_of(r)),
                        (policy.digest, purpose, *roles))


def _who(roles: Sequence[str]) -> str:
    return f"role '{roles[0]}'" if len(roles) == 1 else f"roles {', '.join(roles)}"


def _prune(catalog: Catalog, visible: set[str], arguments: set[str], inputs: set[str]) -> None:
    """Hide, until nothing changes: input types with nothing usable or a required field hidden,
    what takes them, and fields whose object type shows nothing or that lose a required argument."""
    changed = True
    while changed:
        changed = False
        usable_types = {name for name, coords in catalog.input_types.items()
                        if any(c in inputs for c in coords)
                        and all(c in inputs for c in coords if catalog.input_fields[c].required)}
        for pool, facts in ((inputs, catalog.input_fields), (arguments, catalog.arguments)):
            for coordinate in list(pool):
                type_name = facts[coordinate].type_name
                if type_name in catalog.input_types and type_name not in usable_types:
                    pool.discard(coordinate)
                    changed = True
        for coordinate in list(visible):
            field = catalog.fields[coordinate]
            empty = field.type_name in catalog.object_types and not any(
                c in visible for c in catalog.object_types[field.type_name])
            lost = any(catalog.arguments[a].required and a not in arguments
                       for a in field.arguments)
            if empty or lost:
                visible.discard(coordinate)
                changed = True


def _reachable(catalog: Catalog, visible: set[str], arguments: set[str],
               inputs: set[str]) -> tuple[set[str], set[str], set[str]]:
    """Keep what a query can reach from the root types through visible fields and arguments."""
    types, todo = set(), list(catalog.roots)
    while todo:
        name = todo.pop()
        if name in types:
            continue
        types.add(name)
        todo.extend(catalog.fields[c].type_name for c in catalog.object_types.get(name, ())
                    if c in visible and catalog.fields[c].type_name in catalog.object_types)
    fields = {c for c in visible if catalog.fields[c].owner in types}
    args = {a for f in fields for a in catalog.fields[f].arguments if a in arguments}
    input_types: set[str] = set()
    todo = [catalog.arguments[a].type_name for a in args]
    while todo:
        name = todo.pop()
        if name in input_types or name not in catalog.input_types:
            continue
        input_types.add(name)
        todo.extend(catalog.input_fields[c].type_name for c in catalog.input_types[name]
                    if c in inputs)
    return fields, args, {i for i in inputs if i.partition(".")[0] in input_types}
