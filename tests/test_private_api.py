"""Every private or unexported API of graphql-core and Strawberry the gateway uses
(`gateway/schema/private_api.py`, the only module touching them) still exists with the
shape used there.

Both libraries are pinned; when an upgrade moves one of these, a test here fails and
its name and message say which, instead of the fast path silently falling back on every
object or a request failing deep inside the executor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any

import graphql.execution.collect_fields
import graphql.language.parser
import pytest
import strawberry.schema.schema
from graphql import (
    Executor,
    GraphQLObjectType,
    GraphQLSchema,
    Lexer,
    OverlappingFieldsCanBeMergedRule,
    Source,
    TypeInfo,
    ValidationContext,
    VariableValues,
    parse,
)
from strawberry.types import ExecutionContext
from strawberry.types.field import StrawberryField

from gateway.schema import private_api
from gateway.schema.build import build_schema
from gateway.schema.fastpath.projection import (
    GatewayExecutionContext,
    ProjectingExecutionContext,
)
from gateway.schema.types import _resolve_unknown_raw
from tests.test_projection import SOURCE_JOBS, context

SCHEMA = build_schema()
GRAPHQL_SCHEMA = private_api.graphql_schema(SCHEMA)
WHERE = "update gateway/schema/private_api.py (and what uses it) for the new version"


def parameters(function: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


# --- graphql-core ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(private_api.COMPLETION_OVERRIDES))
def test_graphql_core_executor_method_we_override(name: str):
    expected = private_api.COMPLETION_OVERRIDES[name]
    method = getattr(private_api.ExecutorBase, name, None)
    assert method is not None, f"graphql-core's Executor has no `{name}` any more: {WHERE}"
    assert parameters(method) == expected, (
        f"graphql-core's Executor.{name} now takes {parameters(method)}, "
        f"the gateway's override takes {expected}: {WHERE}"
    )


@pytest.mark.parametrize("executor", [GatewayExecutionContext, ProjectingExecutionContext])
def test_our_executors_override_only_the_declared_methods_with_their_parameters(
    executor: type[Any],
):
    for name, value in vars(executor).items():
        if name.startswith("__") or not hasattr(private_api.ExecutorBase, name):
            continue
        assert name in private_api.COMPLETION_OVERRIDES, (
            f"{executor.__name__}.{name} overrides graphql-core: declare it in "
            "private_api.COMPLETION_OVERRIDES so that an upgrade is checked"
        )
        function = value.__func__ if isinstance(value, staticmethod) else value
        assert parameters(function) == private_api.COMPLETION_OVERRIDES[name], name


def test_graphql_core_collect_subfields():
    function = graphql.execution.collect_fields.collect_subfields
    assert parameters(function) == (
        "schema",
        "fragments",
        "variable_values",
        "operation",
        "return_type",
        "field_details_list",
        "hide_suggestions",
    ), f"graphql-core's collect_subfields changed its parameters: {WHERE}"
    collected = graphql.execution.collect_fields.CollectedFields
    assert {"grouped_field_set", "new_defer_usages"} <= set(collected._fields), WHERE


def test_graphql_core_field_details():
    fields = graphql.execution.collect_fields.FieldDetails._fields
    assert {"node", "defer_usage", "fragment_variable_values"} <= set(fields), WHERE


def test_graphql_core_variable_values_coerced():
    assert "coerced" in VariableValues._fields, WHERE


class Recording(ProjectingExecutionContext):
    """The served executor, keeping the last instance that completed an object."""

    last: Recording | None = None

    def complete_object_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        Recording.last = self
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )


def test_graphql_core_executor_attributes_read_by_the_fast_path():
    schema = build_schema()
    schema.execution_context_class = Recording
    query = "query Q($on: Boolean!) { jobs(first: 1) { nodes { name @include(if: $on) } } }"
    result = asyncio.run(
        schema.execute(query, variable_values={"on": True}, context_value=context(SOURCE_JOBS))
    )
    assert result.errors is None, result.errors
    executor = Recording.last
    assert executor is not None, "the executor class is no longer what Strawberry runs"
    assert isinstance(executor, Executor)
    for name in ("schema", "fragments", "operation", "variable_values", "hide_suggestions"):
        assert hasattr(executor, name), f"graphql-core's Executor has no `{name}`: {WHERE}"
    assert private_api.coerced_variables(executor) == {"on": True}
    errors = executor.collected_errors
    assert callable(errors.has_nulled_position) and isinstance(errors.errors, list), WHERE
    job = GRAPHQL_SCHEMA.type_map["Job"]
    assert isinstance(job, GraphQLObjectType)
    operation = parse("{ n { name komboId } }").definitions[0]
    (field,) = operation.selection_set.selections  # type: ignore[attr-defined]
    details = [private_api.FieldDetails(field, None)]
    grouped, deferred = private_api.collect_subfields(executor, job, details)
    assert (list(grouped), deferred) == (["name", "komboId"], False)
    assert private_api.plain_details(details)


def test_graphql_core_parser_with_a_lexer_and_token_prev():
    assert "lexer" in parameters(graphql.language.parser.Parser), WHERE
    lexer = Lexer(Source("{ a b }"))
    first = lexer.token
    document = private_api.parser(
        lexer, max_tokens=100, allow_empty_selection_sets=False
    ).parse_document()
    assert document.definitions, WHERE
    assert private_api.unlink_tokens(first) == 6  # <SOF> { a b } <EOF>
    assert first.next is not None and first.next.prev is None


def test_graphql_core_overlap_rule_budget():
    document = parse("{ __typename }")
    validation = ValidationContext(
        GRAPHQL_SCHEMA, document, TypeInfo(GRAPHQL_SCHEMA), lambda error: None
    )
    rule = OverlappingFieldsCanBeMergedRule(validation)
    assert isinstance(rule.rule_context.remaining_complexity_budget, int), WHERE
    private_api.set_overlap_budget(rule, 7)
    assert rule.rule_context.remaining_complexity_budget == 7


# --- Strawberry ----------------------------------------------------------------------------


def test_strawberry_executor_base():
    base = strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext
    assert issubclass(base, Executor), WHERE
    assert private_api.ExecutorBase is base


def test_strawberry_validate_document():
    assert parameters(strawberry.schema.schema.validate_document) == (
        "schema",
        "document",
        "validation_rules",
    ), WHERE
    assert private_api.validate_document(GRAPHQL_SCHEMA, parse("{ __typename }"), ()) == []


def test_strawberry_definition_of_every_field():
    for type_name in ("Job", "ScreeningQuestion", "UnknownQuestionFormat"):
        type_ = GRAPHQL_SCHEMA.type_map[type_name]
        assert isinstance(type_, GraphQLObjectType)
        for name, field in type_.fields.items():
            definition = private_api.strawberry_field(field)
            assert isinstance(definition, StrawberryField), (
                f'{type_name}.{name} has no "strawberry-definition" extension: {WHERE}'
            )


def test_strawberry_resolver_function_and_parameters():
    def field(type_name: str, name: str) -> StrawberryField:
        type_ = GRAPHQL_SCHEMA.type_map[type_name]
        assert isinstance(type_, GraphQLObjectType)
        definition = private_api.strawberry_field(type_.fields[name])
        assert definition is not None
        return definition

    raw = field("UnknownQuestionFormat", "raw")
    assert private_api.parent_only_resolver(raw) is _resolve_unknown_raw, WHERE
    assert private_api.plain_key(raw) is None
    wants_info = field("ScreeningQuestion", "preconditionQuestion")
    assert private_api.parent_only_resolver(wants_info) is None  # compiled code cannot call it
    assert private_api.plain_key(field("Job", "remoteId")) == "remote_id"


def test_strawberry_info_raw_info():
    names = {f.name for f in dataclasses.fields(strawberry.Info)}
    assert "_raw_info" in names, f"strawberry.Info has no `_raw_info`: {WHERE}"
    raw: Any = object()
    info = strawberry.Info(_raw_info=raw, _field=None)  # type: ignore[arg-type]
    assert private_api.graphql_info(info) is raw


def test_strawberry_schema_graphql_schema():
    assert isinstance(GRAPHQL_SCHEMA, GraphQLSchema), f"strawberry.Schema has no `_schema`: {WHERE}"


@pytest.mark.parametrize("name", [None, "Named"])
def test_strawberry_provided_operation_name(name: str | None):
    execution = ExecutionContext(
        query="query Other { __typename }",
        schema=SCHEMA,
        allowed_operations=(),
        provided_operation_name=name,
    )
    assert private_api.provided_operation_name(execution) == name, WHERE
