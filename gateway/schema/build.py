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
from strawberry.extensions import MaxAliasesLimiter
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.config import Settings
from gateway.errors import BadUserInput
from gateway.schema.context import Context
from gateway.schema.document_shape import ShapeLimits
from gateway.schema.fastpath.projection import GatewayExecutionContext, ProjectingExecutionContext
from gateway.schema.operation import (
    OperationExtension,
    PreparedDocuments,
)
from gateway.schema.private_api import graphql_schema
from gateway.schema.query import Query
from gateway.schema.scalars import SCALAR_MAP

__all__ = ["QueryLimits", "build_schema", "client_sdl", "subgraph_sdl"]


def _read_key(source: Any, name: str) -> object:
    """Default resolver: fields read Kombo's dicts by key; a missing key is null."""
    return source.get(name)


def _config(max_batch: int) -> StrawberryConfig:
    """Dict-reading default resolver, our scalars, and batching when more than one
    operation per HTTP request is allowed."""
    return StrawberryConfig(
        default_resolver=_read_key,
        scalar_map=SCALAR_MAP,
        batching_config={"max_operations": max_batch} if max_batch > 1 else None,
    )


#: The lowest Federation 2 version that has every directive we use (`@key`, `@shareable`),
#: so that routers older than the newest compose the subgraph.
FEDERATION_VERSION: Final = "2.0"
DOCUMENT_CACHE_SIZE: Final = 512


class GatewaySchema(strawberry.federation.Schema):
    """Strawberry's federation schema, minus its logging of every error.

    Strawberry logs each error with its traceback, including a caller's bad cursor
    or Kombo's 404; `OperationExtension` logs only the unexpected ones instead.
    """

    #: The schema's prepared documents (set by `build_schema`).
    documents: PreparedDocuments

    # The annotations are the field's GraphQL types: Strawberry reads them from here.
    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's `_entities`, after checking the representations (Strawberry would
        fail on a missing or foreign `__typename` with an internal error).

        Their number is capped like `nodes(ids:)` (`GATEWAY_MAX_IDS`), counted before
        duplicates are removed: duplicates cost no upstream call, but each is resolved
        and serialised, and a router never needs more than a page of them at once.
        """
        context = info.context
        if isinstance(context, Context):
            context.check_id_count(len(representations), "representations")
        checked = [FederationAny(item) for item in _representations(representations)]
        return super().entities_resolver(info, checked)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing: `OperationExtension` codes every error and logs the unexpected ones."""


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on one operation, checked while parsing and validating (never per field)."""

    max_depth: int
    max_aliases: int
    max_tokens: int
    introspection: bool
    #: Operations one HTTP request may carry as a JSON list (1: no batching).
    max_batch: int
    #: Fields one operation may select after fragment expansion.
    max_fields: int
    #: Bytes of one document's text, checked before it is lexed.
    max_document_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            introspection=settings.introspection,
            max_batch=settings.max_batch,
            max_fields=settings.max_fields,
            max_document_bytes=settings.max_document_bytes,
        )


_REFERENCE_KEYS = frozenset({"id", "komboId"})


def _representations(representations: Any) -> list[dict[str, Any]]:
    """Federation representations reduced to what a Job reference needs.

    Raises:
        BadUserInput: one is not a Job representation with a key.
    """
    checked = []
    for index, representation in enumerate(representations):
        if not isinstance(representation, dict) or representation.get("__typename") != "Job":
            raise BadUserInput(f"representations[{index}] is not a Job representation")
        keys = {key: representation[key] for key in _REFERENCE_KEYS if key in representation}
        if not keys or not all(isinstance(value, str) for value in keys.values()):
            raise BadUserInput(f"representations[{index}] needs `id` or `komboId` as a string")
        checked.append({"__typename": "Job", **keys})
    return checked


def build_schema(limits: QueryLimits | None = None, *, fast_path: bool = True) -> GatewaySchema:
    """The schema the gateway serves: the client API plus the Federation 2 subgraph fields.

    Limit violations are validation errors (GRAPHQL_VALIDATION_FAILED) found before any
    resolver runs. Introspection fields don't count toward the depth limit, so GraphiQL's
    introspection query passes whatever the limit.
    """
    limits = limits or QueryLimits.from_settings(Settings())
    # Parsed and validated documents are reused per query text: clients repeat the
    # same few queries, and compiled projections are keyed by the document's nodes.
    documents = PreparedDocuments(
        rules=_validation_rules(limits),
        max_tokens=limits.max_tokens,
        size=DOCUMENT_CACHE_SIZE,
        shape=ShapeLimits(max_fields=limits.max_fields, max_depth=limits.max_depth),
        max_document_bytes=limits.max_document_bytes,
    )
    # A factory, not an instance: Strawberry builds extensions afresh for every operation.
    extensions: list[Any] = [functools.partial(OperationExtension, documents)]
    schema = GatewaySchema(
        query=Query,
        config=_config(limits.max_batch),
        extensions=extensions,
        federation_version=FEDERATION_VERSION,
        execution_context_class=ProjectingExecutionContext
        if fast_path
        else GatewayExecutionContext,
    )
    # For admission: what a request's documents cost its caller (`PreparedDocuments.cost`).
    schema.documents = documents
    return schema


def _validation_rules(limits: QueryLimits) -> list[Any]:
    """Alias and (optionally) introspection rules, built once per schema. Depth is checked
    with the document's shape (`document_shape`), before these: Strawberry's depth limiter
    recurses through fragments, once per spread."""
    rules = [*MaxAliasesLimiter(limits.max_aliases).validation_rules]
    if not limits.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


_FEDERATION_FIELDS = frozenset({"_entities", "_service"})


def client_sdl() -> str:
    """The client-facing SDL (`schema.graphql`): plain GraphQL that any tool reads, without
    federation directives or `_entities`/`_service`."""
    served = graphql_schema(build_schema())
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
