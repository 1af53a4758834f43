"""What a GraphQL schema offers, by schema coordinate: the facts policies are checked against.

A coordinate names one element of the schema the way the GraphQL spec's schema coordinates do:
``Customer.emails`` (an output field), ``CustomerFilter.email`` (an input field),
``Query.customers(filter:)`` (an argument). Policies, lineage and role views all speak in
coordinates, so a decision never depends on how a query reaches a field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_introspection_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_required_argument,
    is_required_input_field,
)


@dataclass(frozen=True)
class FieldFacts:
    """One output field: ``owner.name`` of GraphQL type ``type_name``."""

    owner: str
    name: str
    type_name: str
    leaf: bool
    non_null: bool
    is_list: bool
    arguments: tuple[str, ...]  # coordinates of its arguments

    @property
    def coordinate(self) -> str:
        return f"{self.owner}.{self.name}"


@dataclass(frozen=True)
class InputFacts:
    """An argument (``Query.customers(filter:)``) or an input field (``CustomerFilter.email``)."""

    coordinate: str
    type_name: str
    required: bool  # non-null without a default: leaving it out is not an option


class Catalog:
    """Every field, argument, input field and enum value of one schema, by coordinate."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.fields: dict[str, FieldFacts] = {}
        self.arguments: dict[str, InputFacts] = {}
        self.input_fields: dict[str, InputFacts] = {}
        self.enum_values: dict[str, str] = {}  # "Channel.NOTE" -> "Channel"
        self.object_types: dict[str, tuple[str, ...]] = {}  # type -> its field coordinates
        self.input_types: dict[str, tuple[str, ...]] = {}
        self.roots = tuple(t.name for t in (schema.query_type, schema.mutation_type,
                                            schema.subscription_type) if t is not None)
        for name, type_ in schema.type_map.items():
            if is_introspection_type(type_):
                continue
            if isinstance(type_, (GraphQLInterfaceType, GraphQLUnionType)):
                raise TypeError(f"type {name}: policy views handle object types only; "
                                f"interfaces and unions are not supported yet")
            if isinstance(type_, GraphQLObjectType):
                self._object(type_)
            elif isinstance(type_, GraphQLInputObjectType):
                coords = []
                for field_name, field in type_.fields.items():
                    coordinate = f"{name}.{field_name}"
                    coords.append(coordinate)
                    self.input_fields[coordinate] = _input(coordinate, field)
                self.input_types[name] = tuple(coords)
            elif isinstance(type_, GraphQLEnumType):
                self.enum_values.update({f"{name}.{value}": name for value in type_.values})

    @classmethod
    def of(cls, schema: Any) -> Catalog:
        """The catalog of a graphql-core schema or of a strawberry ``Schema`` (its ``_schema``)."""
        return cls(schema if isinstance(schema, GraphQLSchema) else schema._schema)

    def _object(self, type_: GraphQLObjectType) -> None:
        coords = []
        for field_name, field in type_.fields.items():
            args = []
            for arg_name, arg in field.args.items():
                coordinate = f"{type_.name}.{field_name}({arg_name}:)"
                args.append(coordinate)
                self.arguments[coordinate] = _input(coordinate, arg)
            facts = FieldFacts(type_.name, field_name, get_named_type(field.type).name,
                               is_leaf_type(get_named_type(field.type)),
                               is_non_null_type(field.type), _is_list(field.type), tuple(args))
            self.fields[facts.coordinate] = facts
            coords.append(facts.coordinate)
        self.object_types[type_.name] = tuple(coords)

    def knows(self, coordinate: str) -> bool:
        return (coordinate in self.fields or coordinate in self.arguments
                or coordinate in self.input_fields or coordinate in self.enum_values)

    def field_names(self, type_name: str) -> list[str]:
        return [self.fields[c].name for c in self.object_types.get(type_name, ())]

    def __iter__(self) -> Iterator[FieldFacts]:
        return iter(self.fields.values())


def _input(coordinate: str, element: Any) -> InputFacts:
    required = (is_required_argument(element) if isinstance(element, GraphQLArgument)
                else is_required_input_field(element))
    return InputFacts(coordinate, get_named_type(element.type).name, required)


def _is_list(type_: Any) -> bool:
    return is_list_type(type_.of_type if is_non_null_type(type_) else type_)


def default_catalog() -> Catalog:
    """The catalog of Panorama's own schema (imported late: gateway.schema may import policy)."""
    from gateway.schema import build_schema

    return Catalog.of(build_schema())
