"""The bypass matrix: every field, by every access path, for every role and purpose of the demo
policy, validated against the role's schema and compared with an oracle computed from the
policy file by a separate implementation (gateway.policy.oracle).

A field must be usable by a path exactly when the oracle says every step of the path is
visible; when it is not, an error must name the first hidden step.
"""

from __future__ import annotations

import functools
from collections import deque
from pathlib import Path

import pytest
import yaml
from graphql import (
    GraphQLInputObjectType,
    GraphQLObjectType,
    get_introspection_query,
    get_named_type,
    graphql_sync,
    is_required_argument,
    is_required_input_field,
    parse,
)

from gateway.policy.catalog import Catalog
from gateway.policy.decide import Decider
from gateway.policy.errors import AccessDenied
from gateway.policy.loader import load_policy, parse_policy
from gateway.policy.oracle import Expected, expected_views
from gateway.policy.schema_view import RoleSchemas
from gateway.schema import build_schema

DEMO = Path(__file__).resolve().parent.parent / "gateway" / "demo" / "policies.yaml"
SCHEMA = build_schema()
FULL = SCHEMA._schema
CATALOG = Catalog.of(SCHEMA)
DOCUMENT = yaml.safe_load(DEMO.read_text())
ORACLE = expected_views(DOCUMENT, FULL)
DECIDER = Decider(load_policy(DEMO, CATALOG), CATALOG)
SCHEMAS = RoleSchemas(SCHEMA)
VIEWS = sorted(k for k, v in ORACLE.items() if isinstance(v, Expected))
REFUSED = sorted(k for k, v in ORACLE.items() if not isinstance(v, Expected))
ROOTS = [c for c in CATALOG.fields if c.partition(".")[0] in CATALOG.roots]


def test_the_matrix_covers_every_role_and_several_purposes():
    assert {r for r, _ in VIEWS} == set(DOCUMENT["roles"]) - {"staff"}
    assert len(VIEWS) >= 9 and len(REFUSED) >= 50


@pytest.mark.parametrize(("role", "purpose"), REFUSED)
def test_a_purpose_the_role_may_not_act_for_is_refused(role, purpose):
    with pytest.raises(AccessDenied) as caught:
        DECIDER.view((role,), purpose)
    assert caught.value.code == ORACLE[(role, purpose)]


@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_decisions_equal_the_oracle(role, purpose):
    expected, view = ORACLE[(role, purpose)], DECIDER.view((role,), purpose)
    assert isinstance(expected, Expected)
    assert {c: (m.strategy, m.params) if m else None for c, m in view.fields.items()} == \
        dict(expected.fields)
    assert view.arguments == expected.arguments
    assert view.input_fields == expected.input_fields
    assert view.introspection == expected.introspection


def _type_ref(ref: dict) -> str:
    return f"{_type_ref(ref['ofType'])}!" if ref["kind"] == "NON_NULL" else \
        f"[{_type_ref(ref['ofType'])}]" if ref["kind"] == "LIST" else ref["name"]


@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_introspection_shows_exactly_the_oracles_view_with_unchanged_types(role, purpose):
    expected = ORACLE[(role, purpose)]
    assert isinstance(expected, Expected)
    schema = SCHEMAS.for_view(DECIDER.view((role,), purpose))
    result = graphql_sync(schema, get_introspection_query())
    assert result.errors is None
    fields, args, inputs = {}, set(), set()
    for type_ in result.data["__schema"]["types"]:
        if type_["name"].startswith("__"):
            continue
        for field in type_["fields"] or ():
            coordinate = f"{type_['name']}.{field['name']}"
            fields[coordinate] = _type_ref(field["type"])
            args.update(f"{coordinate}({a['name']}:)" for a in field["args"])
        inputs.update(f"{type_['name']}.{f['name']}" for f in type_["inputFields"] or ())
    assert fields.keys() == expected.fields.keys()
    assert args == expected.arguments and inputs == expected.input_fields
    for coordinate, type_ref in fields.items():  # masked or not, a field keeps its type
        owner, _, name = coordinate.partition(".")
        assert type_ref == str(FULL.type_map[owner].fields[name].type), coordinate  # type: ignore[union-attr]


# --- documents that reach a field along a path, in every way GraphQL allows -----------------

@functools.cache
def _paths_from(root: str, target_type: str) -> list[str] | None:
    """The shortest chain of field coordinates from a root field to a field of ``target_type``."""
    start = CATALOG.fields[root].type_name
    if start == target_type:
        return [root]
    seen, queue = {start}, deque([(start, [root])])
    while queue:
        name, path = queue.popleft()
        for coordinate in CATALOG.object_types.get(name, ()):
            nxt = CATALOG.fields[coordinate].type_name
            if nxt in CATALOG.object_types and nxt not in seen:
                if nxt == target_type:
                    return [*path, coordinate]
                seen.add(nxt)
                queue.append((nxt, [*path, coordinate]))
    return None


def _shortest(coordinate: str) -> list[str]:
    owner = coordinate.partition(".")[0]
    if owner in CATALOG.roots:
        return [coordinate]
    paths = [p for r in ROOTS if (p := _paths_from(r, owner))]
    return [*min(paths, key=len), coordinate]


class Doc:
    """Renders a path as a document in one access style."""

    def __init__(self, path: list[str], style: str, extra_args: tuple[str, ...] = (),
                 literal: str | None = None, number: int = 0) -> None:
        self.path, self.style, self.extra, self.n = path, style, extra_args, number
        self.literal = literal  # an argument value written in the document, e.g. {city: "x"}
        self.variables: list[str] = []
        self.fragments: list[str] = []

    def args(self, coordinate: str, index: int) -> str:
        owner, _, name = coordinate.partition(".")
        field = FULL.type_map[owner].fields[name]  # type: ignore[union-attr]
        given = []
        for arg_name, arg in field.args.items():
            arg_coordinate = f"{coordinate}({arg_name}:)"
            if arg_coordinate in self.extra and self.literal is not None:
                given.append(f"{arg_name}: {self.literal}")
            elif is_required_argument(arg) or arg_coordinate in self.extra:
                variable = f"v{index}_{arg_name}"
                self.variables.append(f"${variable}: {arg.type}")
                given.append(f"{arg_name}: ${variable}")
        return f"({', '.join(given)})" if given else ""

    def selection(self, index: int) -> str:
        if index == len(self.path):
            return ""
        coordinate = self.path[index]
        owner, _, name = coordinate.partition(".")
        field = f"{name}{self.args(coordinate, index)}"
        if self.style == "alias":
            field = f"a{index}: {field}"
        elif self.style == "include":
            field += " @include(if: $yes)"
        elif self.style == "skip_false":
            field += " @skip(if: $no)"
        elif self.style == "skip_true":
            field += " @skip(if: true)"
        inner = self.selection(index + 1)
        if CATALOG.fields[coordinate].type_name in CATALOG.object_types:
            inner = inner or "__typename"
            field = f"{field} {{ {inner} }}"
        if index == 0:
            return field
        if self.style == "inline":
            return f"... on {owner} {{ {field} }}"
        if self.style == "inline_bare":
            return f"... {{ {field} }}"
        if self.style == "fragments" or (self.style == "fragment" and index == len(self.path) - 1):
            self.fragments.append(f"fragment F{self.n}_{index} on {owner} {{ {field} }}")
            return f"...F{self.n}_{index}"
        if self.style == "repeated":  # the same field twice, once through a fragment: merged
            self.fragments.append(f"fragment F{self.n}_{index} on {owner} {{ {field} }}")
            return f"{field} ...F{self.n}_{index}"
        return field

    def text(self) -> str:
        body = self.selection(0)
        if self.style in ("include", "skip_false"):
            self.variables.append("$yes: Boolean! = true" if self.style == "include"
                                  else "$no: Boolean! = false")
        operation = "mutation" if self.path[0].startswith("Mutation.") else "query"
        signature = f"({', '.join(self.variables)})" if self.variables else ""
        text = f"{operation} Reach{self.n}{signature} {{ {body} }}"
        if self.style == "second_operation":
            text = f"query First{self.n} {{ __typename }}\n" + text
        return "\n".join([text, *self.fragments])


STYLES = ("plain", "alias", "fragment", "fragments", "inline", "inline_bare", "include",
          "skip_false", "skip_true", "second_operation", "repeated")


BATCH = 60
_parse = functools.cache(parse)  # the same documents go to every view


def _check(role: str, purpose: str, cases: list[tuple[str, Doc, list[str]]]) -> list[str]:
    """What went wrong, case by case: each Doc must validate exactly when everything it
    ``needs`` is visible, and else fail with an error naming the first hidden element.

    The cases are validated as one document of many operations (validation is per operation,
    and one document per case would take a minute): each error goes to the case whose lines
    it points at.
    """
    view = DECIDER.view((role,), purpose)
    wrong = []
    for start in range(0, len(cases), BATCH):  # locating an error scans the document: keep it short
        batch = cases[start:start + BATCH]
        texts, lines = compose(batch)
        errors = [(e.message, [loc.line for loc in e.locations or ()])
                  for e in SCHEMAS.validate(_parse("\n".join(texts)), view, max_errors=100_000)]
        wrong += verdict(role, purpose, batch, texts, lines, errors)
    return wrong


def compose(cases: list[tuple[str, Doc, list[str]]]) -> tuple[list[str], list[int]]:
    """The cases' documents, and for each line of them joined, the case it belongs to."""
    lines: list[int] = []
    texts = []
    for number, (_, doc, _) in enumerate(cases):
        doc.n = number
        texts.append(doc.text())
        lines += [number] * (texts[-1].count("\n") + 1)
    return texts, lines


def verdict(role: str, purpose: str, cases: list[tuple[str, Doc, list[str]]], texts: list[str],
            lines: list[int], errors: list[tuple[str, list[int]]]) -> list[str]:
    """Compare validation errors (message, lines) of the joined documents with the oracle."""
    expected = ORACLE[(role, purpose)]
    assert isinstance(expected, Expected)
    found: dict[int, list[str]] = {}
    for message, at in errors:
        for number in {lines[line - 1] for line in at if line <= len(lines)}:
            found.setdefault(number, []).append(message)
    wrong = []
    for number, (label, _, needs) in enumerate(cases):
        hidden = [c for c in needs if c not in expected.fields and c not in expected.arguments
                  and c not in expected.input_fields]
        errors_of = found.get(number, [])
        if not hidden and errors_of:
            wrong.append(f"{label}: rejected, expected valid: {texts[number]!r}: {errors_of[0]}")
        elif hidden and not errors_of:
            wrong.append(f"{label}: accepted, but {hidden[0]} is hidden: {texts[number]!r}")
        elif hidden:
            owner, _, name = hidden[0].partition(".")
            name = name.partition("(")[2].rstrip(":)") or name
            if not any(f"'{name}'" in e or f"'{owner}'" in e for e in errors_of):
                wrong.append(f"{label}: no error names {hidden[0]}: {errors_of}")
    return wrong


def _needs(path: list[str], *more: str) -> list[str]:
    required = (a for c in path for a in CATALOG.fields[c].arguments if CATALOG.arguments[a].required)
    return [*path, *more, *required]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_every_field_by_every_access_style(role, purpose, style):
    cases = [(c, Doc(_shortest(c), style), _needs(_shortest(c))) for c in CATALOG.fields]
    wrong = _check(role, purpose, cases)
    assert not wrong, "\n".join(wrong[:10])


@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_every_field_from_every_root(role, purpose):
    cases = []
    for coordinate in CATALOG.fields:
        owner = coordinate.partition(".")[0]
        for root in ROOTS:
            path = _paths_from(root, owner) if owner not in CATALOG.roots else None
            if path is not None:
                path = [*path, coordinate]
                cases.append((f"{coordinate} from {root}", Doc(path, "plain"), _needs(path)))
    wrong = _check(role, purpose, cases)
    assert not wrong, "\n".join(wrong[:10])


@pytest.mark.parametrize("style", ("plain", "alias", "fragment", "inline"))
@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_every_argument(role, purpose, style):
    cases = []
    for argument in CATALOG.arguments:
        path = _shortest(argument.partition("(")[0])
        cases.append((argument, Doc(path, style, (argument,)), _needs(path, argument)))
    wrong = _check(role, purpose, cases)
    assert not wrong, "\n".join(wrong[:10])


def _input_value(type_name: str, tested: str) -> str:
    type_ = FULL.type_map[type_name]
    assert isinstance(type_, GraphQLInputObjectType)
    parts = [f'{name}: "x"' for name, field in type_.fields.items()
             if is_required_input_field(field) or f"{type_name}.{name}" == tested]
    return "{" + ", ".join(parts) + "}"


def _argument_taking(type_name: str) -> str:
    return next(a for a, f in CATALOG.arguments.items() if f.type_name == type_name)


@pytest.mark.parametrize(("role", "purpose"), VIEWS)
def test_every_filter_field_in_the_document_and_in_variables(role, purpose):
    expected = ORACLE[(role, purpose)]
    assert isinstance(expected, Expected)
    view = DECIDER.view((role,), purpose)
    wrong = []
    for input_field in CATALOG.input_fields:
        type_name = input_field.partition(".")[0]
        argument = _argument_taking(type_name)
        path = _shortest(argument.partition("(")[0])
        required = [f"{type_name}.{n}" for n, f in FULL.type_map[type_name].fields.items()  # type: ignore[union-attr]
                    if is_required_input_field(f)]
        needs = [*_needs(path, argument, *required, input_field)]
        literal = _input_value(type_name, input_field)
        is_list = "[" in str(FULL.type_map[path[-1].partition(".")[0]]
                             .fields[path[-1].partition(".")[2]].args[  # type: ignore[union-attr]
                                 argument.partition("(")[2].rstrip(":)")].type)
        wrong += _check(role, purpose, [(f"{input_field} (literal)",
                                         Doc(path, "plain", (argument,),
                                             f"[{literal}]" if is_list else literal), needs)])
        # the same value in a variable: validation cannot see it, coercion must refuse it
        doc = Doc(path, "plain", (argument,))
        text = doc.text()
        if any(c not in expected.fields and c not in expected.arguments for c in path + [argument]):
            continue  # the document itself is refused, as checked above
        value = {n: "x" for n in (input_field.partition(".")[2],
                                  *(r.partition(".")[2] for r in required))}
        variables = {v.split(":")[0].lstrip("$"): "x" for v in doc.variables}
        variable = next(v.split(":")[0].lstrip("$") for v in doc.variables
                        if v.startswith(f"$v{len(path) - 1}_"))
        variables[variable] = [value] if is_list else value
        errors = SCHEMAS.check_variables(text, view, variables)
        hidden = input_field not in expected.input_fields or any(
            r not in expected.input_fields for r in required)
        if hidden != bool(errors):
            wrong.append(f"{input_field} (variable): hidden={hidden}, errors={errors}")
        elif hidden and not any(input_field.partition(".")[2] in e.message for e in errors):
            wrong.append(f"{input_field} (variable): no error names it: {errors}")
    assert not wrong, "\n".join(wrong[:10])


def test_types_of_the_full_schema_are_all_reached_by_the_paths():
    reached = {c.partition(".")[0] for c in CATALOG.fields}
    assert reached == {n for n, t in FULL.type_map.items()
                       if isinstance(t, GraphQLObjectType) and not n.startswith("__")}
    assert all(get_named_type(FULL.type_map[t]) for t in reached)


def test_the_documented_example_is_valid():
    text = (Path(__file__).resolve().parent.parent / "docs" / "policies.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(yaml.safe_load(example), "docs/policies.md", CATALOG)
    # and the example behaves as the docs say
    views = expected_views(yaml.safe_load(example), FULL)
    staff = views[("shop_staff", "sale")]
    assert isinstance(staff, Expected) and "Customer.addresses" not in staff.fields
    assert {"finance", "shop_staff", "customer", "admin"} <= set(policy.roles)
    assert "field(s) in no category" in policy.warnings[0]  # the example classifies a few
