"""Limits and hardening of POST/GET /graphql (docs/security.md, "Limits and hardening").

* :class:`Hardening`, a schema extension: the token limit while parsing (graphql-core's
  ``max_tokens``, as strawberry's ``MaxTokensLimiter`` sets it), then depth, aliases and
  directives as one validation rule; :class:`CostLimit` then checks the estimated cost with the
  request's variables. Both run before execution starts, so a refused operation never reaches
  a resolver, hence never a source. Hardening also strips "Did you mean ...?" suggestions from
  the errors of views that may not introspect.
* :class:`MaskInternalErrors`: strawberry's ``MaskErrors`` with a correlation id, logged with
  the traceback and answered in ``extensions.correlationId``.
* :func:`refuse_request`: the HTTP checks made before anything else of a request: content type
  (415; a CSRF defence: a browser form cannot send JSON without a preflight), body size (413)
  and batched bodies (400: batching is off).

strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` are not used: they have no error
codes, report neither the value found nor the setting, and walk a fragment once per spread
(a document whose fragments each spread the next one twice costs 2^n steps); the walk here is
one pass with each fragment's figures computed once.
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
    get_operation_ast,
    is_list_type,
    is_non_null_type,
)
from graphql.pyutils import Undefined
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type

from gateway.settings import Settings

log = logging.getLogger("panorama.hardening")

#: Request media types POST /graphql accepts; anything else gets 415. None of them is one a
#: plain HTML form or a "simple" cross-origin request can send (those need a CORS preflight).
JSON_TYPES = frozenset({"application/json", "application/graphql-response+json"})
GRAPHQL_TYPE = "application/graphql"  # the body is the query text itself
ACCEPTED_TYPES = JSON_TYPES | {GRAPHQL_TYPE}
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
TOKENS_EXCEEDED = re.compile(r"Document contains more than (\d+) tokens")
#: Fields below which nothing counts towards depth and cost (as strawberry's depth limiter).
INTROSPECTION_PREFIX = "__"


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message,
                                      "extensions": {"code": code, **extensions}}]}


def error_response(status: int, message: str, code: str, **extensions: Any) -> Response:
    import orjson

    return Response(orjson.dumps(error_body(message, code, **extensions)), status_code=status,
                    media_type="application/json")


async def refuse_request(request: Request, max_body_bytes: int) -> Response | None:
    """The answer to a POST that must not reach GraphQL (415, 413, 400), else None; the body,
    once read within the limit, stays cached on ``request`` for strawberry to parse."""
    if request.method != "POST":
        return None  # GET: strawberry runs queries only (mutations over GET get 400)
    media_type, _ = parse_content_type(request.headers.get("content-type", ""))
    if media_type not in ACCEPTED_TYPES:
        shown = media_type or "none"
        return error_response(415, f"content type {shown!r} is not accepted: send the request as "
                                   f"application/json (or the query text as "
                                   f"application/graphql)", "UNSUPPORTED_MEDIA_TYPE")
    too_large = error_response(413, f"the request body is larger than {max_body_bytes} bytes "
                                    f"(the max_body_bytes setting)", "BODY_TOO_LARGE",
                               limit=max_body_bytes)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        return too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body_bytes:
            return too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # what Request.body() (strawberry's get_body) returns from now on
    if media_type in JSON_TYPES and body.lstrip()[:1] == b"[":
        return error_response(400, "batched requests (a JSON array of operations) are not "
                                   "accepted: batching is off on this gateway, so there is no "
                                   "max_batch_operations setting; send one operation per "
                                   "request", "BATCHING_DISABLED")
    return None


# -- depth, aliases, directives, cost -----------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    depth: int
    aliases: int
    directives: int
    cost: int
    default_page_size: int
    max_page_size: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_query_depth, settings.max_aliases, settings.max_directives,
                   settings.max_query_cost, settings.default_page_size, settings.max_page_size)


@dataclass(frozen=True)
class Figures:
    """What one selection set (with its fragments expanded) amounts to."""

    depth: int = 0
    aliases: int = 0
    directives: int = 0
    cost: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(max(self.depth, other.depth), self.aliases + other.aliases,
                       self.directives + other.directives, self.cost + other.cost)


class Estimate:
    """Walks one operation: depth, aliases, directives and estimated cost (docs/security.md).

    Cost: 1 per field; a field's selection counts once per item it returns: its ``first``
    argument (a literal or the variable's value, at most max_page_size: more is refused anyway),
    else the argument's default, else default_page_size, for a field that takes ``first`` or
    returns a list. A field that
    takes ``first`` and returns an object (a page, a connection) counts its direct list fields
    once: their items are the page's. Introspection fields (``__schema``, ``__typename``...)
    count for nothing but aliases and directives.
    """

    def __init__(self, schema: GraphQLSchema, operation: OperationDefinitionNode,
                 fragments: dict[str, FragmentDefinitionNode], limits: Limits,
                 variables: dict[str, Any] | None = None) -> None:
        self.schema, self.fragments, self.limits = schema, fragments, limits
        self.variables = variables or {}
        self.defaults = {v.variable.name.value: v.default_value
                         for v in operation.variable_definitions or ()}
        self.memo: dict[tuple[str, bool], Figures] = {}
        self.busy: set[str] = set()
        self.too_deep = False
        self.offset = 0  # the level of the spreads whose fragments are being walked

    def operation(self, operation: OperationDefinitionNode) -> Figures:
        root = self.schema.get_root_type(operation.operation)
        figures = self.selections(operation.selection_set, root, paged=False, level=0)
        return figures + Figures(directives=len(operation.directives or ()))

    def selections(self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None,
                   paged: bool, level: int) -> Figures:
        total = Figures()
        for node in selection_set.selections:
            directives = Figures(directives=len(node.directives or ()))
            if isinstance(node, FieldNode):
                total += self.field(node, parent, paged, level) + directives
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(node.selection_set, inner, paged, level) + directives
            elif isinstance(node, FragmentSpreadNode):
                total += self.spread(node.name.value, paged, level) + directives
        return total

    def spread(self, name: str, paged: bool, level: int) -> Figures:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.busy:  # unknown or cyclic: validation says so
            return Figures()
        key = (name, paged)
        found = self.memo.get(key)
        if found is None:
            self.busy.add(name)
            self.offset += level
            try:
                # Depth from the fragment's own top, added to the spread's level below.
                found = self.selections(fragment.selection_set,
                                        self.schema.get_type(fragment.type_condition.name.value),
                                        paged, 0) + Figures(directives=len(fragment.directives
                                                                           or ()))
            finally:
                self.busy.discard(name)
                self.offset -= level
            self.memo[key] = found
        if self.offset + level + found.depth > self.limits.depth:
            self.too_deep = True
        return Figures(level + found.depth if found.depth else 0, found.aliases,
                       found.directives, found.cost)

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, paged: bool,
              level: int) -> Figures:
        aliases = 1 if node.alias else 0
        name = node.name.value
        if name.startswith(INTROSPECTION_PREFIX):
            return Figures(aliases=aliases)
        level += 1
        deep = self.offset + level > self.limits.depth
        if deep:
            self.too_deep = True
        definition = getattr(parent, "fields", {}).get(name) if parent is not None else None
        if node.selection_set is None or deep:
            # Past the depth limit the operation is refused anyway: no deeper walk (which keeps
            # the recursion bounded by the setting, never by the document).
            return Figures(level, aliases, 0, 1)
        type_ = definition.type if definition is not None else None
        inner = get_named_type(type_) if type_ is not None else None
        returns_list = type_ is not None and is_list_type(
            type_.of_type if is_non_null_type(type_) else type_)
        takes_first = definition is not None and "first" in definition.args
        if takes_first or returns_list:
            items = self.first(node, definition) if takes_first else self.limits.default_page_size
            if paged and returns_list and not takes_first:
                items = 1  # a page's own list: its items are the page's
        else:
            items = 1
        below = self.selections(node.selection_set, inner,
                                paged=takes_first and not returns_list, level=level)
        return Figures(max(level, below.depth), aliases + below.aliases, below.directives,
                       1 + items * below.cost)

    def first(self, node: FieldNode, definition: Any) -> int:
        given: Any = next((a.value for a in node.arguments or () if a.name.value == "first"),
                          None)
        if isinstance(given, VariableNode):
            name = given.name.value
            given = self.variables.get(name) if name in self.variables \
                else self.defaults.get(name)
        if isinstance(given, IntValueNode):
            given = int(given.value)
        if given is None or isinstance(given, bool) or not isinstance(given, int):
            default = definition.args["first"].default_value
            given = default if isinstance(default, int) and default is not Undefined \
                else self.limits.default_page_size
        return max(0, min(given, self.limits.max_page_size))


def _refusal(message: str, code: str, node: Any, setting: str, limit: int,
             found: int | None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code, "setting": setting, "limit": limit}
    if found is not None:
        extensions["found"] = found
    return GraphQLError(message, node, extensions=extensions)


def cost_errors(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
                variables: dict[str, Any] | None, limits: Limits) -> list[GraphQLError]:
    """The operation that runs, if its estimated cost (with the request's variables) is over
    the limit."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    cost = Estimate(schema, operation, fragments, limits, variables).operation(operation).cost
    if cost <= limits.cost:
        return []
    which = f"operation '{operation.name.value}'" if operation.name else "the operation"
    return [_refusal(f"{which} has an estimated cost of {cost}; at most {limits.cost} is "
                     f"allowed (the max_query_cost setting): ask for smaller pages (`first`) or "
                     f"fewer fields (docs/security.md explains the estimate)", "QUERY_TOO_COSTLY",
                     operation, "max_query_cost", limits.cost, cost)]


@functools.cache
def limits_rule(limits: Limits) -> type[ValidationRule]:
    """The validation rule of depth, aliases and directives: one class per set of values, so
    that strawberry's ValidationCache (keyed by the rules) keeps hitting. The cost depends on
    the variables: :class:`CostLimit` checks it after validation."""

    class LimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {d.name.value: d for d in document.definitions
                         if isinstance(d, FragmentDefinitionNode)}
            for operation in document.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    self.check(context, operation, fragments)

        def check(self, context: ValidationContext, operation: OperationDefinitionNode,
                  fragments: dict[str, FragmentDefinitionNode]) -> None:
            estimate = Estimate(context.schema, operation, fragments, limits)
            figures = estimate.operation(operation)
            which = (f"operation '{operation.name.value}'" if operation.name
                     else "the operation")
            if estimate.too_deep:  # the walk stopped there: the other figures are partial
                context.report_error(_refusal(
                    f"{which} is nested more than {limits.depth} levels deep (at least "
                    f"{limits.depth + 1} fields on one path); at most {limits.depth} are "
                    f"allowed (the max_query_depth setting)", "QUERY_TOO_DEEP", operation,
                    "max_query_depth", limits.depth, limits.depth + 1))
                return
            checks = (
                (figures.aliases, limits.aliases, "aliases", "TOO_MANY_ALIASES", "max_aliases"),
                (figures.directives, limits.directives, "directives", "TOO_MANY_DIRECTIVES",
                 "max_directives"))
            for found, limit, what, code, setting in checks:
                if found > limit:
                    context.report_error(_refusal(
                        f"{which} uses {found} {what}; at most {limit} are allowed (the "
                        f"{setting} setting)", code, operation, setting, limit, found))

    return LimitsRule


# -- the extensions -----------------------------------------------------------------------------


def _settings_of(context: Any) -> Settings:
    settings = getattr(context, "settings", None)
    return settings if isinstance(settings, Settings) else Settings()


class Hardening(SchemaExtension):
    """The limits of one operation, and no field suggestions for views that cannot introspect.

    Place it before ValidationCache: its on_validate adds the rule before validation runs.
    """

    def on_operation(self) -> Iterator[None]:
        settings = _settings_of(self.execution_context.context)
        # graphql-core aborts parsing past it (comments count too); as MaxTokensLimiter does.
        self.execution_context.parse_options["max_tokens"] = settings.max_tokens
        view = getattr(self.execution_context.context, "view", None)
        suggest = view is not None and view.introspection
        try:
            yield
        except GraphQLError as error:  # ParserCache's parse raises through the extensions
            raise self.rewrite(error, settings, suggest) from None
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [self.rewrite(e, settings, suggest) for e in errors]

    def on_validate(self) -> Iterator[None]:
        settings = _settings_of(self.execution_context.context)
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, limits_rule(Limits.of(settings)))
        yield

    @staticmethod
    def rewrite(error: GraphQLError, settings: Settings, suggest: bool) -> GraphQLError:
        """A new error (never the cached one changed): token limits with their code; no
        "Did you mean" for a view that may not see the schema."""
        message, extensions = error.message, dict(error.extensions or {})
        if TOKENS_EXCEEDED.search(message) and "code" not in extensions:
            message = (f"the document has more than {settings.max_tokens} tokens; at most "
                       f"{settings.max_tokens} are allowed (the max_tokens setting)")
            extensions.update(code="TOO_MANY_TOKENS", setting="max_tokens",
                              limit=settings.max_tokens)
        elif not suggest and "Did you mean" in message:
            message = SUGGESTION.sub("", message)
        else:
            return error
        return GraphQLError(message, error.nodes, error.source, error.positions, error.path,
                            error.original_error, extensions)


class CostLimit(SchemaExtension):
    """The estimated cost of the operation that runs, with its variables, once the document is
    valid. Place it right after ValidationCache: strawberry returns the errors found by then
    (``pre_execution_errors``) without executing anything."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # [] (not None): validation ran (ValidationCache) and found nothing.
        if context.pre_execution_errors == [] and document is not None:
            limits = Limits.of(_settings_of(context.context))
            errors = cost_errors(context.schema._schema, document, context.operation_name,
                                 context.variables, limits)
            if errors:
                context.pre_execution_errors = errors  # a new list: the cached one stays empty
        yield


class MaskInternalErrors(MaskErrors):
    """MaskErrors whose answer carries a correlation id, logged with the traceback."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        correlation = uuid.uuid4().hex
        original = error.original_error
        log.error("internal error %s at %s: %s", correlation,
                  ".".join(map(str, error.path or ())) or "-", type(original).__name__,
                  exc_info=(type(original), original, original.__traceback__)
                  if original is not None else None)
        return GraphQLError(self.error_message, error.nodes, error.source, error.positions,
                            error.path, None, {"code": "INTERNAL_ERROR",
                                               "correlationId": correlation})


class _AsJSON:
    """A request adapter whose body strawberry parses as JSON (it parses application/json only)."""

    content_type = "application/json"

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


async def parse_body(request: Any, parse: Callable[[Any], Awaitable[Any]]) -> Any:
    """strawberry's ``parse_http_body`` (``parse``), plus the query text as an
    application/graphql body, and application/graphql-response+json read as JSON."""
    media_type, _ = parse_content_type(request.content_type or "")
    if request.method == "POST" and media_type == GRAPHQL_TYPE:
        body = await request.get_body()
        return GraphQLRequestData(query=body.decode() if isinstance(body, bytes) else body,
                                  variables=None, operation_name=None, extensions=None,
                                  protocol="http")
    if request.method == "POST" and media_type in JSON_TYPES:
        request = _AsJSON(request)
    return await parse(request)
