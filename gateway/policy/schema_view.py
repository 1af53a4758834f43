"""One GraphQL schema per role view: only what the role may see, masks in the resolvers.

:class:`RoleSchemas` rebuilds the full graphql-core schema (the one strawberry builds) keeping
only the fields, arguments and input fields of a :class:`RoleView`, the way graphql-core's
``lexicographic_sort_schema`` (which strawberry itself uses) rebuilds one. Resolvers are the
full schema's own, so executing against the role's schema runs the same code; a masked
field's resolver masks what it returns, so a mask holds on every path that reaches the field.

Because the role's schema is the only schema a request sees, introspection shows what the
role may see and nothing else, validation rejects a denied field, argument or filter field
(naming it), and variables are coerced against the role's input types, so a denied filter
field passed in a variable is rejected too. Execute against :meth:`RoleSchemas.for_view` (or
the strawberry schema :meth:`RoleSchemas.strawberry_for`), never against the full schema.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Mapping
from inspect import isawaitable
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FieldsOnCorrectTypeRule,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    KnownArgumentNamesRule,
    KnownOperationTypesRule,
    OperationDefinitionNode,
    ValidationRule,
    ValuesOfCorrectTypeRule,
    default_field_resolver,
    get_operation_ast,
    is_list_type,
    is_non_null_type,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from strawberry.extensions import SchemaExtension

from gateway.policy.decide import RoleView
from gateway.policy.masks import STRATEGIES, Mask, mask_value

INTROSPECTION_FIELDS = ("__schema", "__type")
UNKNOWN_INPUT_FIELD = re.compile(r"^Expected value of type '(\w+)' not to include unknown field "
                                 r"'(\w+)'")


def denied(message: str, node: Any, coordinate: str) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": "FORBIDDEN", "coordinate": coordinate})


class RoleSchemas:
    """Per-view graphql-core schemas and validation rules, built once per view and cached."""

    def __init__(self, schema: Any, *, mask_key: bytes | None = None) -> None:
        """``schema``: the strawberry ``Schema`` (or a graphql-core one); ``mask_key`` keys the
        ``hash`` mask (pass a deployment secret for hashes that stay stable across restarts)."""
        self.strawberry = None if isinstance(schema, GraphQLSchema) else schema
        self.full: GraphQLSchema = schema if isinstance(schema, GraphQLSchema) else schema._schema
        self.mask_key = mask_key if mask_key is not None else os.urandom(32)
        self._schemas: dict[tuple[str, ...], GraphQLSchema] = {}
        self._rules: dict[tuple[str, ...], tuple[type[ASTValidationRule], ...]] = {}
        self._strawberry: dict[tuple[str, ...], Any] = {}

    def for_view(self, view: RoleView) -> GraphQLSchema:
        """The schema of this view: execute and introspect against it."""
        found = self._schemas.get(view.key)
        if found is None:
            found = self._schemas[view.key] = _RoleSchemaBuilder(self.full, view,
                                                                 self.mask_key).build()
        return found

    def rules(self, view: RoleView) -> tuple[type[ASTValidationRule], ...]:
        """graphql-core's rules with messages that name what the view hides, and no
        introspection when the view does not allow it."""
        found = self._rules.get(view.key)
        if found is None:
            found = self._rules[view.key] = _rules_for(view, self.full)
        return found

    def validate(self, document: DocumentNode | str, view: RoleView,
                 max_errors: int | None = None) -> list[GraphQLError]:
        """Every validation error of the document for this view (all operations, all paths),
        up to ``max_errors`` (graphql-core's default, 100, when None)."""
        if isinstance(document, str):
            document = parse(document)
        return validate(self.for_view(view), document, self.rules(view), max_errors=max_errors)

    def check_variables(self, document: DocumentNode | str, view: RoleView,
                        variables: Mapping[str, Any] | None,
                        operation_name: str | None = None) -> list[GraphQLError]:
        """Errors of the variables' values against the view's input types (execution does this
        too when it runs against the view's schema)."""
        if isinstance(document, str):
            document = parse(document)
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return [GraphQLError("no operation to run: give operationName when the document "
                                 "has several")]
        got = get_variable_values(self.for_view(view), operation.variable_definitions or (),
                                  dict(variables or {}))
        return got if isinstance(got, list) else []

    def strawberry_for(self, view: RoleView) -> Any:
        """A strawberry ``Schema`` for this view: the full one's settings and extensions, the
        view's graphql-core schema and validation rules. ``execute`` it like the full one."""
        if self.strawberry is None:
            raise TypeError("RoleSchemas was given a graphql-core schema; give it the strawberry "
                            "Schema to get strawberry schemas per view")
        found = self._strawberry.get(view.key)
        if found is None:
            found = copy.copy(self.strawberry)
            found._schema = self.for_view(view)
            found._schema._strawberry_schema = found  # what strawberry's Info.schema reads
            rules = self.rules(view)
            found.extensions = [*self.strawberry.extensions, lambda: _ViewRules(rules)]
            self._strawberry[view.key] = found
        return found


class _ViewRules(SchemaExtension):
    """Validates every operation with the view's rules instead of graphql-core's defaults."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = self.rules
        yield


class _RoleSchemaBuilder:
    """Copies of the full schema's types with only the view's fields, args and input fields."""

    def __init__(self, full: GraphQLSchema, view: RoleView, mask_key: bytes) -> None:
        self.full, self.view, self.mask_key = full, view, mask_key
        self.types: dict[str, GraphQLNamedType] = {}

    def build(self) -> GraphQLSchema:
        view, full = self.view, self.full
        owners = {c.partition(".")[0] for c in (*view.fields, *view.input_fields,
                                                 *view.hidden_enum_values)}
        for name, type_ in full.type_map.items():  # the full schema's order
            if name not in owners:
                continue
            if isinstance(type_, GraphQLObjectType):
                self.types[name] = self.object_type(type_)
            elif isinstance(type_, GraphQLInputObjectType):
                self.types[name] = self.input_type(type_)
            elif isinstance(type_, GraphQLEnumType):
                self.types[name] = self.enum_type(type_)
        assert full.query_type is not None
        mutation = full.mutation_type
        schema = GraphQLSchema(
            query=self.types[full.query_type.name],  # type: ignore[arg-type]
            mutation=self.types.get(mutation.name) if mutation else None,  # type: ignore[arg-type]
            types=list(self.types.values()), directives=full.directives,
            description=full.description, extensions=full.extensions)
        return schema

    def named(self, name: str) -> GraphQLNamedType:
        return self.types.get(name) or self.full.type_map[name]

    def wrap(self, type_: Any) -> Any:
        if is_non_null_type(type_):
            return GraphQLNonNull(self.wrap(type_.of_type))
        if is_list_type(type_):
            return GraphQLList(self.wrap(type_.of_type))
        return self.named(type_.name)

    def object_type(self, type_: GraphQLObjectType) -> GraphQLObjectType:
        def fields() -> dict[str, GraphQLField]:
            return {name: self.field(f"{type_.name}.{name}", name, field)
                    for name, field in type_.fields.items() if f"{type_.name}.{name}" in self.view.fields}

        return GraphQLObjectType(**_with(type_.to_kwargs(), fields=fields, interfaces=()))

    def field(self, coordinate: str, name: str, field: GraphQLField) -> GraphQLField:
        args = {arg_name: GraphQLArgument(**_with(arg.to_kwargs(), type_=self.wrap(arg.type)))
                for arg_name, arg in field.args.items()
                if f"{coordinate}({arg_name}:)" in self.view.arguments}
        kwargs = _with(field.to_kwargs(), type_=self.wrap(field.type), args=args)
        mask = self.view.mask(coordinate)
        if mask is not None:
            note = f"Masked for {self.view.describe()}: {STRATEGIES[mask.strategy].summary}."
            kwargs["description"] = f"{field.description}\n\n{note}" if field.description else note
            kwargs["resolve"] = _masked(field.resolve or default_field_resolver, mask, self.mask_key)
        return GraphQLField(**kwargs)

    def input_type(self, type_: GraphQLInputObjectType) -> GraphQLInputObjectType:
        def fields() -> dict[str, GraphQLInputField]:
            return {name: GraphQLInputField(**_with(field.to_kwargs(), type_=self.wrap(field.type)))
                    for name, field in type_.fields.items()
                    if f"{type_.name}.{name}" in self.view.input_fields}

        return GraphQLInputObjectType(**_with(type_.to_kwargs(), fields=fields))

    def enum_type(self, type_: GraphQLEnumType) -> GraphQLEnumType:
        # A copy, not a new instance: strawberry's enum type class takes extra arguments.
        enum = copy.copy(type_)
        enum.values = {name: value for name, value in type_.values.items()
                       if f"{type_.name}.{name}" not in self.view.hidden_enum_values}
        return enum


def _with(kwargs: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A graphql-core element's constructor arguments (``to_kwargs()``), some replaced."""
    return {**kwargs, **changes}


def _masked(resolve: Any, mask: Mask, key: bytes) -> Any:
    async def later(pending: Any) -> Any:
        return mask_value(mask, await pending, key)

    def resolver(source: Any, info: Any, **args: Any) -> Any:
        value = resolve(source, info, **args)
        return later(value) if isawaitable(value) else mask_value(mask, value, key)

    return resolver


def _rules_for(view: RoleView, full: GraphQLSchema) -> tuple[type[ASTValidationRule], ...]:
    """graphql-core's specified rules, with four made to say what the view hides."""
    who = view.describe()

    class Fields(FieldsOnCorrectTypeRule):
        def enter_field(self, node: FieldNode, *args: Any) -> None:
            parent = self.context.get_parent_type()
            name = node.name.value
            if parent is not None and self.context.get_field_def() is None:
                full_type = full.type_map.get(parent.name)
                if isinstance(full_type, GraphQLObjectType) and name in full_type.fields:
                    self.report_error(denied(f"Cannot query field '{name}' on type "
                                             f"'{parent.name}': {who} may not read it.", node,
                                             f"{parent.name}.{name}"))
                    return
            super().enter_field(node, *args)

    class Arguments(KnownArgumentNamesRule):
        def enter_argument(self, node: Any, *args: Any) -> None:
            context = self.context
            field, parent = context.get_field_def(), context.get_parent_type()
            if context.get_argument() is None and field is not None and parent is not None:
                field_name = next((n for n, f in parent.fields.items() if f is field), "")  # type: ignore[union-attr]
                full_type = full.type_map.get(parent.name)
                full_field = getattr(full_type, "fields", {}).get(field_name)
                if full_field is not None and node.name.value in full_field.args:
                    coordinate = f"{parent.name}.{field_name}({node.name.value}:)"
                    self.report_error(denied(f"Unknown argument '{node.name.value}' on field "
                                             f"'{parent.name}.{field_name}': {who} may not use "
                                             f"it.", node, coordinate))
                    return
            super().enter_argument(node, *args)

    class Values(ValuesOfCorrectTypeRule):
        def report_error(self, error: GraphQLError) -> None:
            found = UNKNOWN_INPUT_FIELD.match(error.message)
            if found:
                type_name, field_name = found.groups()
                full_type = full.type_map.get(type_name)
                if isinstance(full_type, GraphQLInputObjectType) and field_name in full_type.fields:
                    error = denied(f"Field '{field_name}' of input '{type_name}' is not allowed: "
                                   f"{who} may not filter on it.", error.nodes,
                                   f"{type_name}.{field_name}")
            super().report_error(error)

    class Operations(KnownOperationTypesRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *args: Any) -> None:
            root = full.get_root_type(node.operation)
            if self.context.schema.get_root_type(node.operation) or root is None:
                return super().enter_operation_definition(node, *args)
            fields = [s for s in node.selection_set.selections if isinstance(s, FieldNode)]
            for field in fields:
                self.report_error(denied(f"Cannot query field '{field.name.value}' on type "
                                         f"'{root.name}': {who} may not read it.", field,
                                         f"{root.name}.{field.name.value}"))
            if not fields:
                self.report_error(denied(f"{who} may not run a {node.operation.value}.", node,
                                         root.name))

    class NoIntrospection(ValidationRule):
        def enter_field(self, node: FieldNode, *args: Any) -> None:
            if node.name.value in INTROSPECTION_FIELDS:
                self.report_error(GraphQLError(
                    f"introspection ({node.name.value}) is not allowed for {who}; the API is "
                    f"documented in the published schema.graphql",
                    node, extensions={"code": "INTROSPECTION_DISABLED"}))

    swap: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
        FieldsOnCorrectTypeRule: Fields, KnownArgumentNamesRule: Arguments,
        ValuesOfCorrectTypeRule: Values, KnownOperationTypesRule: Operations}
    rules = [swap.get(rule, rule) for rule in specified_rules]
    if not view.introspection:
        rules.append(NoIntrospection)
    return tuple(rules)
