"""A second, independent reading of a policy file: what each (role, purpose) should see.

It works from the raw YAML and the graphql-core schema alone, sharing no code with the loader,
the model or :mod:`gateway.policy.decide` (only the lineage table, which is data), so that the
bypass-matrix tests compare two implementations of the documented rules rather than one with
itself. It is slow and simple on purpose, and it trusts the file to be valid (load it first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    is_introspection_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined

from gateway.policy.lineage import LINEAGE

_UNDEFINED = Undefined


@dataclass(frozen=True)
class Expected:
    """What one (role, purpose) must see: fields (with their mask), arguments, input fields."""

    fields: Mapping[str, tuple[str, tuple[tuple[str, Any], ...]] | None]
    arguments: frozenset[str]
    input_fields: frozenset[str]
    introspection: bool


def expected_views(document: Mapping[str, Any], schema: GraphQLSchema,
                   lineage: Mapping[str, tuple[str, ...]] = LINEAGE,
                   ) -> dict[tuple[str, str], Expected | str]:
    """For every role and every purpose of the file: an Expected, or the error code expected."""
    return {(role, purpose): _one(document, schema, lineage, role, purpose)
            for role in document.get("roles") or {}
            for purpose in document.get("purposes") or {}}


def _family(roles: Mapping[str, Any], role: str) -> list[str]:
    out = [role]
    for parent in (roles[role] or {}).get("inherits") or []:
        out += [r for r in _family(roles, parent) if r not in out]
    return out


def _first(roles: Mapping[str, Any], family: list[str], key: str) -> bool:
    for role in family:
        value = (roles[role] or {}).get(key)
        if value is not None:
            return bool(value)
    return False


def _one(document: Mapping[str, Any], schema: GraphQLSchema,
         lineage: Mapping[str, tuple[str, ...]], role: str, purpose: str) -> Expected | str:
    roles = document["roles"]
    family = _family(roles, role)
    purposes: set[str] = set()
    for member in family:
        purposes.update((roles[member] or {}).get("purposes") or [])
    if purpose not in purposes:
        return "PURPOSE_NOT_ALLOWED"
    allowed = document["purposes"][purpose]["categories"]
    all_categories = list(document.get("categories") or {})
    allowed = all_categories if allowed == "*" else list(allowed)
    category_of = {}
    for name, spec in (document.get("categories") or {}).items():
        for type_name, names in (spec.get("fields") or {}).items():
            for field_name in names:
                category_of[f"{type_name}.{field_name}"] = name
    all_fields = _first(roles, family, "all_fields")

    def effect(coordinate: str) -> Any:
        category = category_of.get(coordinate)
        if category is not None and category not in allowed:
            return "deny"
        for target in (coordinate, category):
            for member in family:
                rules = (roles[member] or {}).get("rules") or {}
                if target in rules:
                    return rules[target]
        return "allow" if all_fields else "deny"

    objects = {n: t for n, t in schema.type_map.items()
               if isinstance(t, GraphQLObjectType) and not is_introspection_type(t)}
    inputs_types = {n: t for n, t in schema.type_map.items()
                    if isinstance(t, GraphQLInputObjectType)}
    effects = {f"{n}.{f}": effect(f"{n}.{f}") for n, t in objects.items() for f in t.fields}
    shown = {c for c, e in effects.items() if e != "deny"}

    def masked(coordinate: str) -> bool:
        return isinstance(effects[coordinate], dict)

    def usable(coordinate: str, plain: set[str]) -> bool:
        if coordinate not in lineage:
            return all_fields
        return all(d in plain for d in lineage[coordinate])

    while True:
        plain = {c for c in shown if not masked(c)}
        args = {f"{n}.{f}({a}:)" for n, t in objects.items() for f, fd in t.fields.items()
                for a in fd.args if usable(f"{n}.{f}({a}:)", plain)}
        ins = {f"{n}.{f}" for n, t in inputs_types.items() for f in t.fields
               if usable(f"{n}.{f}", plain)}
        while True:  # input types left with nothing usable, or without a required field
            good = {n for n, t in inputs_types.items()
                    if any(f"{n}.{f}" in ins for f in t.fields)
                    and all(f"{n}.{f}" in ins for f, fd in t.fields.items()
                            if is_non_null_type(fd.type) and fd.default_value is _UNDEFINED)}
            keep_ins = {c for c in ins if _input_type(schema, c, False) not in inputs_types
                        or _input_type(schema, c, False) in good}
            keep_args = {c for c in args if _input_type(schema, c, True) not in inputs_types
                         or _input_type(schema, c, True) in good}
            if keep_ins == ins and keep_args == args:
                break
            ins, args = keep_ins, keep_args
        kept = set()
        for coordinate in shown:
            owner, _, name = coordinate.partition(".")
            field = objects[owner].fields[name]
            target = get_named_type(field.type).name
            if target in objects and not any(f"{target}.{f}" in shown for f in objects[target].fields):
                continue
            if any(is_non_null_type(a.type) and a.default_value is _UNDEFINED
                   and f"{coordinate}({n}:)" not in args for n, a in field.args.items()):
                continue
            if any(d not in shown or (masked(d) and not masked(coordinate))
                   for d in lineage.get(coordinate, ())):
                continue
            kept.add(coordinate)
        reach, todo = set(), [t.name for t in (schema.query_type, schema.mutation_type) if t]
        while todo:
            name = todo.pop()
            if name not in reach:
                reach.add(name)
                todo += [get_named_type(objects[name].fields[c.partition(".")[2]].type).name
                         for c in kept if c.partition(".")[0] == name]
        kept = {c for c in kept if c.partition(".")[0] in reach}
        if kept == shown:
            break
        shown = kept
    args = {a for a in args if a.partition("(")[0] in shown}
    reach_in, todo = set(), [_input_type(schema, a, True) for a in args]
    while todo:
        name = todo.pop()
        if name in inputs_types and name not in reach_in:
            reach_in.add(name)
            todo += [get_named_type(fd.type).name for f, fd in inputs_types[name].fields.items()
                     if f"{name}.{f}" in ins]
    query = schema.query_type
    if query is None or not any(c.startswith(f"{query.name}.") for c in shown):
        return "NOTHING_VISIBLE"
    masks: dict[str, tuple[str, tuple[tuple[str, Any], ...]] | None] = {}
    for coordinate in shown:
        rule = effects[coordinate]
        masks[coordinate] = None if not isinstance(rule, dict) else (
            rule["mask"], tuple((k, tuple(v) if isinstance(v, list) else v)
                                for k, v in rule.items() if k != "mask"))
    introspection = _first(roles, family, "introspection")
    return Expected(masks, frozenset(args),
                    frozenset(c for c in ins if c.partition(".")[0] in reach_in), introspection)


def _input_type(schema: GraphQLSchema, coordinate: str, argument: bool) -> str:
    if argument:
        owner, _, rest = coordinate.partition(".")
        field, _, arg = rest.partition("(")
        element = schema.type_map[owner].fields[field].args[arg.rstrip(":)")]  # type: ignore[attr-defined]
    else:
        owner, _, name = coordinate.partition(".")
        element = schema.type_map[owner].fields[name]  # type: ignore[attr-defined]
    return get_named_type(element.type).name
