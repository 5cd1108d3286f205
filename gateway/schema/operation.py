"""The gateway's one schema extension: prepared documents, limits and error codes.

What it does per operation:
- parses with the token limit and without empty selection sets (graphql-core 3.3 accepts
  `{ }`; the spec and the depth rule don't), and validates with the schema's extra rules
  (depth, aliases, introspection switch);
- reuses the parsed document and its validation errors for a query text seen before
  (clients repeat a few queries; the compiled projections are keyed by the document's
  nodes, so reuse also keeps them warm);
- gives every error its contract code (`gateway.errors.code_error`), remembering the
  phase it arose in, since graphql-core's own errors say nothing of their kind, and
  records the codes and the operation name for the request's log line.

Why one extension and not Strawberry's five (ParserCache, ValidationCache,
MaxTokensLimiter, AddValidationRules and ours): Strawberry builds each extension and
drives each of its hooks through per-phase context managers on every request; with five
that machinery alone was ~10% of a job-by-ID request. And Strawberry's ValidationCache is
keyed by the parsed document, whose hash walks the whole tree on every request; here
both caches are keyed by the query text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.errors import Phase, code_error
from gateway.observability import record_error_codes, set_operation
from gateway.schema.document_shape import ShapeLimits, shape_problem


class PreparedDocuments:
    """Parsed documents, and their validation errors, by query text: a bounded LRU.

    One per schema (its rules and limits are fixed), shared by every request's
    extension. Parse errors are not kept: a bad query costs its parse each time, as
    it would uncached.
    """

    def __init__(
        self,
        *,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        size: int,
        shape: ShapeLimits,
    ):
        self.rules = tuple(rules)
        self.max_tokens = max_tokens
        self.shape = shape
        self._size = size
        #: query -> [document, validation errors (None until validated), rules validated with]
        self._entries: OrderedDict[str, list[Any]] = OrderedDict()

    def document(self, query: str) -> DocumentNode:
        """The parsed document of `query`. Raises GraphQLSyntaxError."""
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            document: DocumentNode = entry[0]
            return document
        document = parse(query, max_tokens=self.max_tokens, allow_empty_selection_sets=False)
        self._entries[query] = [document, None, None]
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return document

    def errors(
        self,
        query: str,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        """The validation errors of `document` (parsed from `query`) under `rules`.

        The document's shape (fields after expansion, depth, nesting) is checked first,
        alone: graphql-core's rules (`OverlappingFieldsCanBeMerged` above all) walk every
        expansion of every fragment, recursively, which is exponential in the document's
        size for a document built to be; the shape check is linear and iterative.
        """
        entry = self._entries.get(query)
        if entry is not None and entry[0] is document and entry[2] == rules:
            errors: list[GraphQLError] = entry[1]
            return errors
        problem = shape_problem(document, self.shape)
        if problem is not None:
            errors = [GraphQLError(problem)]
        else:
            errors = validate_document(schema, document, rules)  # Strawberry's rules added
        if entry is not None and entry[0] is document:
            entry[1:] = [errors, rules]
        return errors


class OperationExtension(SchemaExtension):
    """Built per request (Strawberry's factory pattern) around the schema's documents."""

    def __init__(self, documents: PreparedDocuments) -> None:
        self._documents = documents
        self._phase = Phase.EXECUTION

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, *self._documents.rules)
        yield
        set_operation(context.operation_name)
        result = context.result
        errors = result.errors if result is not None else None
        for error in errors or ():
            code_error(error, self._phase)
        if errors:
            record_error_codes(str((error.extensions or {}).get("code")) for error in errors)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                context.graphql_document = self._documents.document(context.query)
            except GraphQLError as error:
                # Strawberry reports a syntax error straight from here: no later hook of
                # this extension runs for it, so it is coded now.
                code_error(error, Phase.PARSE)
                record_error_codes([str((error.extensions or {}).get("code"))])
                raise
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            context.pre_execution_errors = self._documents.errors(
                context.query or "",
                context.schema._schema,
                context.graphql_document,
                tuple(context.validation_rules),
            )
        yield
        if context.pre_execution_errors:
            self._phase = Phase.VALIDATION
