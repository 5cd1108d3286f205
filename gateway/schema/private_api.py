"""The private and unexported parts of graphql-core and Strawberry the gateway uses: this
module is the only one that touches them.

Why reach below the public APIs at all: for speed, where the public way costs more
than the work (the fast path completes a whole object in compiled code instead of
graphql-core's per-field bookkeeping; `selection` reads graphql-core's nodes instead of
Strawberry's `selected_fields`, which rebuilt the selection on every call: ~1.3 ms for
every field of a job), and
for facts the public APIs do not give (which operation a request named; the parser's
lexer, to free its tokens). Both libraries are pinned exactly (`pyproject.toml`).

Why all here: on an upgrade, `tests/test_private_api.py` checks each of them by name,
with the shape used here (signatures, attributes), and fails saying which moved,
rather than the fast path falling back on every object (correct, ~15x slower and
silent) or an AttributeError in the middle of a request.

    graphql-core
      Executor.complete_{object,abstract,list,leaf}_value,
        handle_field_error                  overridden (`COMPLETION_OVERRIDES`)
      collect_fields.collect_subfields,
        FieldDetails                        `collect_subfields`, `FieldDetails`
      Executor.schema/fragments/operation/variable_values/hide_suggestions
                                            `collect_subfields`
      VariableValues.coerced                `coerced_variables`
      Executor.collected_errors             `report_keeping_value`
      language.parser.Parser(lexer=...),
        Token.prev                          `parser`, `unlink_tokens`
      OverlappingFieldsCanBeMergedRule's
        rule_context.remaining_complexity_budget   `set_overlap_budget`
    Strawberry
      schema.schema.StrawberryGraphQLCoreExecutionContext   `ExecutorBase`
      schema.schema.validate_document       `validate_document`
      a GraphQL field's "strawberry-definition" extension    `strawberry_field`
      StrawberryField.base_resolver, python_name            `plain_key`
      StrawberryResolver.wrapped_func (and its parameters)  `parent_only_resolver`
      Info._raw_info                        `graphql_info`
      Schema._schema                        `graphql_schema`
      ExecutionContext._provided_operation_name             `provided_operation_name`
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Lexer,
    OverlappingFieldsCanBeMergedRule,
    Token,
    located_error,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.collect_fields import collect_subfields as _collect_subfields
from graphql.language.parser import Parser
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document

if TYPE_CHECKING:
    import strawberry
    from strawberry.types import ExecutionContext
    from strawberry.types.field import StrawberryField

__all__ = [
    "COMPLETION_OVERRIDES",
    "ExecutorBase",
    "FieldDetails",
    "coerced_variables",
    "collect_subfields",
    "graphql_info",
    "graphql_schema",
    "parent_only_resolver",
    "parser",
    "plain_details",
    "plain_key",
    "provided_operation_name",
    "report_keeping_value",
    "set_overlap_budget",
    "strawberry_field",
    "unlink_tokens",
    "validate_document",
]

# --- graphql-core's executor, as Strawberry extends it -----------------------------------

#: The executor the gateway's executors subclass: graphql-core's `Executor` (its
#: incremental flavour) with Strawberry's resolve info.
ExecutorBase = StrawberryGraphQLCoreExecutionContext

#: The executor methods the gateway overrides, with their parameters as graphql-core
#: declares them (it marks them `:meta private:`). The overrides in
#: `fastpath/projection.py` take exactly these.
COMPLETION_OVERRIDES: Final[dict[str, tuple[str, ...]]] = {
    "complete_object_value": (
        "self",
        "return_type",
        "field_details_list",
        "info",
        "path",
        "result",
        "position_context",
    ),
    "complete_abstract_value": (
        "self",
        "return_type",
        "field_details_list",
        "info",
        "path",
        "result",
        "position_context",
    ),
    "complete_list_value": (
        "self",
        "return_type",
        "field_details_list",
        "info",
        "path",
        "result",
        "position_context",
    ),
    "complete_leaf_value": ("return_type", "result"),  # a staticmethod
    "handle_field_error": ("self", "raw_error", "return_type", "field_details_list", "path"),
}


def collect_subfields(
    executor: ExecutorBase, type_: GraphQLObjectType, details: list[FieldDetails]
) -> tuple[dict[str, list[FieldDetails]], bool]:
    """The subfields of `type_` these field nodes select, by response key (graphql-core's
    own collection: fragments, `@include`/`@skip` and aliases applied), and whether some
    of them are deferred (`@defer`)."""
    collected = _collect_subfields(
        executor.schema,
        executor.fragments,
        executor.variable_values,
        executor.operation,
        type_,
        details,
        executor.hide_suggestions,
    )
    return collected.grouped_field_set, bool(collected.new_defer_usages)


def plain_details(details: Iterable[FieldDetails]) -> bool:
    """Whether none of these field nodes is deferred or reads fragment variables."""
    return all(
        detail.defer_usage is None and detail.fragment_variable_values is None for detail in details
    )


def coerced_variables(executor: ExecutorBase) -> Mapping[str, Any]:
    """The operation's variables, coerced (what `@skip(if: $var)` reads)."""
    coerced: Mapping[str, Any] = executor.variable_values.coerced
    return coerced


def report_keeping_value(
    executor: ExecutorBase, error: Exception, details: Iterable[FieldDetails], path: Path
) -> None:
    """Add `error` at `path` without nulling the field there: its value stands.
    graphql-core has no call for that; nothing is added below a nulled position."""
    errors = executor.collected_errors
    if errors.has_nulled_position(path):
        return
    nodes = [detail.node for detail in details]
    errors.errors.append(located_error(error, nodes, path.as_list()))


# --- graphql-core's parser and validation ---------------------------------------------------


def parser(lexer: Lexer, *, max_tokens: int, allow_empty_selection_sets: bool) -> Parser:
    """graphql-core's parser over `lexer`, which the caller keeps (its first token is
    where `unlink_tokens` starts)."""
    return Parser(
        lexer.source,
        max_tokens=max_tokens,
        allow_empty_selection_sets=allow_empty_selection_sets,
        lexer=lexer,
    )


def unlink_tokens(first: Token) -> int:
    """Counts the tokens from `first` on, unlinking each from the one before it (nothing
    reads `Token.prev`), so that they are freed as soon as nothing uses them."""
    count = 0
    token: Token | None = first
    while token is not None:
        count += 1
        token.prev = None
        token = token.next
    return count


def set_overlap_budget(rule: OverlappingFieldsCanBeMergedRule, budget: int) -> None:
    """Give one validation's `OverlappingFieldsCanBeMergedRule` `budget` units of
    comparisons (graphql-core's own budget is a module global)."""
    rule.rule_context.remaining_complexity_budget = budget


# --- Strawberry ----------------------------------------------------------------------------


def strawberry_field(field: GraphQLField) -> StrawberryField | None:
    """The Strawberry field a GraphQL field was built from (None: not built by Strawberry)."""
    definition: StrawberryField | None = field.extensions.get("strawberry-definition")
    return definition


def plain_key(definition: StrawberryField) -> str | None:
    """The key of its parent dict a field without a resolver reads (its Python name: the
    schema's default resolver reads `source.get(python_name)`); None for a resolver."""
    return definition.python_name if definition.base_resolver is None else None


def parent_only_resolver(definition: StrawberryField) -> Callable[[Any], Any] | None:
    """The field's resolver function itself, when it takes its parent alone (no
    arguments, no `info`); None otherwise, or when the field has no resolver."""
    resolver = definition.base_resolver
    if resolver is None:
        return None
    if resolver.arguments or resolver.info_parameter or resolver.root_parameter is None:
        return None
    function = resolver.wrapped_func
    if isinstance(function, classmethod):
        return None
    if isinstance(function, staticmethod):
        function = function.__func__
    return function


def graphql_info(info: strawberry.Info[Any, Any]) -> GraphQLResolveInfo[Any]:
    """graphql-core's resolve info behind Strawberry's (field nodes, fragments, schema)."""
    raw: GraphQLResolveInfo[Any] = info._raw_info
    return raw


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built."""
    return schema._schema


def provided_operation_name(context: ExecutionContext) -> str | None:
    """The operation name the request gave (Strawberry's `operation_name` falls back to
    the document's first operation)."""
    name: str | None = context._provided_operation_name
    return name
