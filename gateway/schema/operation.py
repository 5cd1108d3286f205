"""The gateway's one schema extension: prepared documents, limits and error codes.

    PreparedDocuments              one per schema: documents by digest of their text
    ├── document(query)            the size check (GATEWAY_MAX_DOCUMENT_BYTES), then parse
    ├── errors(query, ...)         shape check, then validation (overlap checks bounded)
    ├── cost(query)                what a request carrying `query` owes the rate limit
    ├── keep(query, schema)        a trusted document: prepared once, kept for good
    └── valid(query, schema)       whether it would run (an APQ registration's check)
    OperationExtension             per request: drives the above, codes every error

What it does per operation:
- refuses a document longer than `max_document_bytes` before lexing it (a megabyte of
  text took ~350 ms to lex, valid or not), with GRAPHQL_PARSE_FAILED like any other
  document that cannot be parsed;
- parses with the token limit and without empty selection sets (graphql-core 3.3 accepts
  `{ }`; the spec and the depth rule don't), and validates with the schema's extra rules
  (depth, aliases, introspection switch);
- reuses the parsed document and its validation errors for a query text seen before
  (clients repeat a few queries; compiled projections are keyed by the document's
  digest, so reuse also keeps them warm);
- gives every error its contract code (`gateway.schema.error_codes.code_error`), remembering the
  phase it arose in, since graphql-core's own errors say nothing of their kind, and
  records the codes and the operation name for the request's log line.

Memory: a parsed document takes ~500 bytes per lexical token (its nodes, their
locations and the tokens they point to), so 20,000 tokens of text are ~10 MB. The
documents are bounded in entries and in those estimated bytes, keyed by a digest of
their text: nothing here keeps a text or a document once it has left. Trusted documents
(`keep`, from the operator's persisted-documents file) are the exception: held for the
process's life, outside those bounds, as many as the file lists.

CPU: preparing a document (parse, shape check, validation) costs ~10 us per byte of a
dense one. `cost` lets admission charge a document not prepared yet by its size, so that
a caller sending new documents spends its rate limit as fast as it spends the worker;
the one part that is not linear in the size, graphql-core's check that fields with the
same response name can be merged, gets a budget of its own (`OVERLAP_BUDGET`).

Why one extension and not Strawberry's five (ParserCache, ValidationCache,
MaxTokensLimiter, AddValidationRules and ours): Strawberry builds each extension and
drives each of its hooks through per-phase context managers on every request; with five
that machinery alone was ~10% of a job-by-ID request. And Strawberry's ValidationCache is
keyed by the parsed document, whose hash walks the whole tree on every request; here
both caches are keyed by a digest of the query text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Final

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OverlappingFieldsCanBeMergedRule,
    Source,
    ValidationContext,
    specified_rules,
)
from graphql.language import Lexer
from strawberry.extensions import SchemaExtension

from gateway.observability.request_stats import record_error_codes, set_operation
from gateway.schema.bounded_cache import BoundedCache
from gateway.schema.document_shape import ShapeLimits, shape_problem
from gateway.schema.error_codes import Phase, code_error
from gateway.schema.private_api import (
    graphql_schema,
    parser,
    provided_operation_name,
    set_overlap_budget,
    unlink_tokens,
    validate_document,
)

#: Memory the kept documents may take, by estimate (see the module docstring).
DOCUMENT_CACHE_BYTES: Final = 32 * 1024 * 1024
#: Bytes of a document not prepared yet that cost one request of its caller's rate limit
#: (a full burst at most, so ~25 KB and more cost 100 by default): preparing 256 bytes
#: of the densest document took ~3 ms, about what a cached request costs.
COST_BYTES: Final = 256
#: Units of graphql-core's budget for comparing fields of the same response name
#: (`OverlappingFieldsCanBeMergedRule`; its default, 500,000, let an 8 KB document of
#: conflicting fields take ~3 s). Every query of the tests, bench and README takes
#: under 900; past the budget, validation fails with "Validation aborted".
OVERLAP_BUDGET: Final = 5_000

#: Estimated bytes per lexical token (comments included) of a parsed document, and per
#: validation error kept with it (message aside). Measured with tracemalloc: 450-560.
_BYTES_PER_TOKEN: Final = 600
_BYTES_PER_ERROR: Final = 1_000


class DocumentTooLarge(GraphQLError):
    """A document over `GATEWAY_MAX_DOCUMENT_BYTES`, refused before it is read."""


class _BoundedOverlaps(OverlappingFieldsCanBeMergedRule):
    """graphql-core's rule with `OVERLAP_BUDGET` (its own is a module global)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        set_overlap_budget(self, OVERLAP_BUDGET)


def _bounded(rules: Sequence[type[ASTValidationRule]]) -> tuple[type[ASTValidationRule], ...]:
    return tuple(
        _BoundedOverlaps if rule is OverlappingFieldsCanBeMergedRule else rule for rule in rules
    )


class _Prepared:
    """A parsed document, its validation errors (None until validated) and the rules
    they are for."""

    __slots__ = ("document", "errors", "rules", "weight")

    def __init__(self, document: DocumentNode, weight: int) -> None:
        self.document = document
        self.errors: list[GraphQLError] | None = None
        self.rules: tuple[type[ASTValidationRule], ...] | None = None
        self.weight = weight


class PreparedDocuments:
    """Parsed documents, and their validation errors, by digest of their text: an LRU
    bounded in entries and in estimated bytes, plus the trusted documents kept for good.

    Usage::

        documents = PreparedDocuments(rules=(), max_tokens=20_000, size=512,
                                      shape=ShapeLimits(max_fields=2_000, max_depth=15),
                                      max_document_bytes=32_768)
        document = documents.document(query)     # GraphQLError: too large, or no GraphQL
        errors = documents.errors(query, schema, document, rules)

    One per schema (its rules and limits are fixed), shared by every request's
    extension. Parse errors are not kept: a bad query costs its parse each time, as
    it would uncached (and `cost` charges it by its size each time).
    """

    def __init__(
        self,
        *,
        rules: Sequence[type[ASTValidationRule]],
        max_tokens: int,
        size: int,
        shape: ShapeLimits,
        max_document_bytes: int,
        max_bytes: int = DOCUMENT_CACHE_BYTES,
    ):
        self.rules = tuple(rules)
        self.max_tokens = max_tokens
        self.shape = shape
        self.max_document_bytes = max_document_bytes
        #: Documents prepared for requests, by digest of their text (read `len(cache)`,
        #: `cache.bytes`).
        self.cache: BoundedCache[bytes, _Prepared] = BoundedCache(entries=size, max_bytes=max_bytes)
        #: Documents kept for the process's life (trusted documents, `keep`): never
        #: evicted, so a request naming one never parses or validates it again.
        self._kept: dict[bytes, _Prepared] = {}
        #: The rules a request's validation runs: graphql-core's, then the schema's.
        #: Strawberry starts each request's list from `specified_rules` and
        #: `OperationExtension` adds `rules`: the same tuple, so errors found here are
        #: the ones a request reuses.
        self.request_rules: tuple[type[ASTValidationRule], ...] = (
            *specified_rules,
            *self.rules,
        )

    def keep(self, query: str, schema: GraphQLSchema) -> DocumentNode:
        """Parse and validate `query` as a request's document, and keep it prepared for
        the process's life (a trusted document, read at start-up).

        Raises:
            GraphQLError: the first reason it cannot run (size, syntax, shape, validation).
        """
        key, entry = self._prepare(query)
        errors = self.errors(query, schema, entry.document, self.request_rules)
        if errors:
            raise errors[0]
        self._kept[key] = entry
        self.cache.discard(key)  # held here now: no slot of the LRU for it
        return entry.document

    def valid(self, query: str, schema: GraphQLSchema) -> bool:
        """Whether `query` parses and validates as a request's document (what an APQ
        registration must before it is stored). Prepared as a request would have it."""
        try:
            document = self.document(query)
        except GraphQLError:
            return False
        return not self.errors(query, schema, document, self.request_rules)

    def _entry(self, key: bytes | None) -> _Prepared | None:
        if key is None:
            return None
        kept = self._kept.get(key)
        return kept if kept is not None else self.cache.get(key)

    def document(self, query: str) -> DocumentNode:
        """The parsed document of `query`.

        Raises:
            DocumentTooLarge: `query` is over `max_document_bytes`; nothing was lexed.
            GraphQLSyntaxError: `query` is not GraphQL, or is over the token limit.
        """
        return self._prepare(query)[1].document

    def _prepare(self, query: str) -> tuple[bytes, _Prepared]:
        """The key and entry of `query`: kept, cached, or parsed now (and cached, if it
        fits). Raises as `document` does."""
        key, size = self._digest(query)
        if key is None:
            raise DocumentTooLarge(
                f"The document is larger than GATEWAY_MAX_DOCUMENT_BYTES={self.max_document_bytes}"
                " bytes: pass values as variables rather than writing them into it"
            )
        entry = self._entry(key)
        if entry is None:
            document, tokens = _parse(query, self.max_tokens)
            entry = _Prepared(document, size + _BYTES_PER_TOKEN * tokens)
            self.cache.put(key, entry, entry.weight)
        return key, entry

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
        key, _ = self._digest(query)
        entry = self._entry(key)
        if entry is not None and entry.document is document and entry.rules == rules:
            assert entry.errors is not None
            return entry.errors
        problem = shape_problem(document, self.shape)
        if problem is not None:
            errors = [GraphQLError(problem)]
        else:
            # Strawberry's rules added
            errors = validate_document(schema, document, _bounded(rules))
        if key is not None and entry is not None and entry.document is document:
            if entry.errors is None:  # weighed once: a validation for other rules is alike
                entry.weight += sum(_BYTES_PER_ERROR + 2 * len(e.message) for e in errors)
            entry.errors, entry.rules = errors, rules
            if key not in self._kept:
                self.cache.put(key, entry, entry.weight)  # evicts if it grew too heavy
        return errors

    def cost(self, query: str | None) -> int:
        """Requests a caller's rate limit is charged for `query`: one for a document
        prepared already (or refused for its size, which costs nothing), else one per
        started `COST_BYTES` of its text. A batch pays for each of its operations."""
        if not query:
            return 1
        key, size = self._digest(query)
        if key is None or self._entry(key) is not None:
            return 1
        return max(1, -(-size // COST_BYTES))

    def _digest(self, query: str) -> tuple[bytes | None, int]:
        """The cache key of `query` and its size in bytes; no key when it is too large.

        Code points first: there are never more of them than bytes, and counting them
        costs nothing, so a document far too large is refused without being encoded.
        """
        limit = self.max_document_bytes
        if len(query) > limit:
            return None, len(query)
        size = len(query) if query.isascii() else len(_encoded(query))
        if size > limit:
            return None, size
        return text_digest(query), size


#: The last text digested, and its digest (see `text_digest`).
_last_digest: tuple[str, bytes] | None = None


def text_digest(text: str) -> bytes:
    """The digest caches key a document's text by, so that no cache keeps the text.

    One request asks for its document's digest several times (the rate charge, the
    document cache, the projections, each `jobs` selection), always of the same string
    object: the last answer is remembered by identity, so the text is hashed once. That
    keeps one text (at most `GATEWAY_MAX_DOCUMENT_BYTES`) alive, no more.
    """
    global _last_digest
    last = _last_digest
    if last is not None and last[0] is text:
        return last[1]
    digest = hashlib.blake2b(_encoded(text), digest_size=16).digest()
    _last_digest = (text, digest)
    return digest


def _encoded(text: str) -> bytes:
    # surrogatepass: a lone surrogate (JSON allows `\\ud800`) still has a digest; the
    # parser then refuses it as it would have.
    return text.encode("utf-8", "surrogatepass")


def _parse(query: str, max_tokens: int) -> tuple[DocumentNode, int]:
    """`graphql.parse(query, max_tokens=max_tokens, allow_empty_selection_sets=False)`,
    and the number of lexical tokens (comments included) the document keeps alive.

    Whatever the outcome, nothing of the parse is left for the cycle collector, which
    the gateway runs rarely (`app.tune_garbage_collector`): graphql-core links its tokens
    both ways, so each document, parsed or refused half-way, was a reference cycle. A
    worker refusing documents of 20,000 tokens swung between 85 and 176 MB; one keeping
    parsed ones held 50 MB more. A syntax error loses the parser's frames too, which
    would keep every node and token made so far for as long as the error lives.

    Raises:
        GraphQLSyntaxError: as `graphql.parse` (its traceback starts here).
    """
    lexer = Lexer(Source(query))
    first = lexer.token
    document_parser = parser(lexer, max_tokens=max_tokens, allow_empty_selection_sets=False)
    document = None
    try:
        document = document_parser.parse_document()
    except RecursionError:
        pass  # raised below, without the frames of the recursion
    except GraphQLError as error:
        error.__traceback__ = None
        raise
    finally:
        tokens = unlink_tokens(first)
    if document is None:
        position = lexer.token.start
        raise GraphQLSyntaxError(
            lexer.source, position, "Document is nested too deeply. Parsing aborted."
        )
    return document, tokens


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
                graphql_schema(context.schema),
                context.graphql_document,
                tuple(context.validation_rules),
            )
            # `operation_name` falls back to the first operation's name: what the request
            # named only Strawberry's private attribute says (`provided_operation_name`).
            if not context.pre_execution_errors and provided_operation_name(context) is None:
                context.pre_execution_errors = _unnamed_choice(context.graphql_document)
        yield
        if context.pre_execution_errors:
            self._phase = Phase.VALIDATION


def _unnamed_choice(document: DocumentNode) -> list[GraphQLError]:
    """An error when `document` defines several operations and the request names none.

    The spec requires `operationName` then; Strawberry would silently run the first,
    so a client that forgot it got an answer to a question it may not have meant.
    """
    names = [name[:50] for name in operation_names(document)]
    if len(names) < 2:
        return []
    return [
        GraphQLError(
            f"The document defines {len(names)} operations ({', '.join(names[:10])}): "
            "set `operationName` to the one to run"
        )
    ]


def operation_names(document: DocumentNode) -> list[str]:
    """The names of the operations `document` defines, "(anonymous)" for one without."""
    return [
        definition.name.value if definition.name else "(anonymous)"
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
