"""The GraphQL schema: `build_schema()` for serving, `client_sdl()` for `schema.graphql`.

Usage::

    schema = build_schema()
    result = await schema.execute(query, context_value=context)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import strawberry
from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    print_schema,
    specified_directives,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.schema.error_codes import ErrorCodes
from gateway.schema.query import Query
from gateway.schema.scalars import SCALAR_MAP

__all__ = ["QueryLimits", "build_schema", "client_sdl", "subgraph_sdl"]


def _read_key(source: Any, name: str) -> object:
    """Default resolver: fields read Kombo's dicts by key; a missing key is null."""
    return source.get(name)


def _config() -> StrawberryConfig:
    return StrawberryConfig(default_resolver=_read_key, scalar_map=SCALAR_MAP)


#: The lowest Federation 2 version that has every directive we use (`@key`, `@shareable`),
#: so that routers older than the newest compose the subgraph.
FEDERATION_VERSION: Final = "2.0"


class GatewaySchema(strawberry.federation.Schema):
    """Strawberry's federation schema, minus its logging of every error.

    Strawberry logs each error with its traceback, including a caller's bad cursor
    or Kombo's 404; `ErrorCodes` logs only the unexpected ones instead.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on one operation, checked while parsing and validating (never per field)."""

    max_depth: int = 15
    max_aliases: int = 500
    max_tokens: int = 20_000
    introspection: bool = True


def build_schema(limits: QueryLimits | None = None) -> GatewaySchema:
    """The schema the gateway serves: the client API plus the Federation 2 subgraph fields.

    Limit violations are validation errors (GRAPHQL_VALIDATION_FAILED) found before any
    resolver runs. Introspection fields don't count toward the depth limit, so GraphiQL's
    introspection query passes whatever the limit.
    """
    limits = limits or QueryLimits()
    # Factories, not instances: Strawberry builds extensions afresh for every operation.
    extensions: list[Any] = [
        ErrorCodes,
        functools.partial(MaxTokensLimiter, limits.max_tokens),
        functools.partial(MaxAliasesLimiter, limits.max_aliases),
        functools.partial(QueryDepthLimiter, limits.max_depth),
    ]
    if not limits.introspection:
        extensions.append(functools.partial(AddValidationRules, [NoSchemaIntrospectionCustomRule]))
    return GatewaySchema(
        query=Query,
        config=_config(),
        extensions=extensions,
        federation_version=FEDERATION_VERSION,
    )


_FEDERATION_FIELDS = frozenset({"_entities", "_service"})


def client_sdl() -> str:
    """The client-facing SDL (`schema.graphql`): plain GraphQL that any tool reads, without
    federation directives or `_entities`/`_service`."""
    served = build_schema()._schema
    query = served.query_type
    assert query is not None
    client_query = GraphQLObjectType(
        query.name,
        {name: field for name, field in query.fields.items() if name not in _FEDERATION_FIELDS},
        description=query.description,
    )
    # Only what the client fields reach is printed: no _Any/_Entity/_Service, no @link.
    client = GraphQLSchema(query=client_query, directives=specified_directives)
    return print_schema(client) + "\n"


def subgraph_sdl() -> str:
    """The Apollo Federation 2 subgraph SDL, exactly what `{ _service { sdl } }` returns."""
    result = build_schema().execute_sync("{ _service { sdl } }")
    if result.errors or result.data is None:
        raise RuntimeError(f"the schema could not print its subgraph SDL: {result.errors}")
    sdl: str = result.data["_service"]["sdl"]
    return sdl if sdl.endswith("\n") else sdl + "\n"
