"""`schema.operation.PreparedDocuments`: what is reused per query text, and what is not."""

from __future__ import annotations

import pytest
from graphql import GraphQLSyntaxError
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules

from gateway.schema import operation as operation_module
from gateway.schema.build import build_schema
from gateway.schema.document_shape import ShapeLimits
from gateway.schema.operation import PreparedDocuments
from gateway.schema.private_api import graphql_schema

SCHEMA = graphql_schema(build_schema())
RULES = tuple(specified_rules)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the validations `PreparedDocuments` runs (the real validator still runs)."""
    seen: list[str] = []
    real = operation_module.validate_document

    def counting(schema, document, rules):  # type: ignore[no-untyped-def]
        seen.append(document.loc.source.body)
        return real(schema, document, rules)

    monkeypatch.setattr(operation_module, "validate_document", counting)
    return seen


def prepared_documents(*, size: int = 4, max_tokens: int = 1000) -> PreparedDocuments:
    """A document cache with no validation rules of its own and the default limits."""
    return PreparedDocuments(
        rules=(),
        max_tokens=max_tokens,
        size=size,
        shape=ShapeLimits(max_fields=2_000, max_depth=15),
        max_document_bytes=48 * 1024,
    )


def test_a_repeated_query_is_parsed_and_validated_once(validations: list[str]):
    documents = prepared_documents()
    query = "{ jobs { nodes { name } } }"
    first = documents.document(query)
    assert documents.errors(query, SCHEMA, first, RULES) == []
    again = documents.document(query)
    assert again is first
    assert documents.errors(query, SCHEMA, again, RULES) == []
    assert validations == [query]


def test_validation_errors_are_kept_and_other_rules_validate_again(validations: list[str]):
    documents = prepared_documents()
    query = "{ __schema { queryType { name } } }"
    document = documents.document(query)
    assert documents.errors(query, SCHEMA, document, RULES) == []
    stricter = (*RULES, NoSchemaIntrospectionCustomRule)
    refused = documents.errors(query, SCHEMA, document, stricter)
    assert refused and all("introspection" in error.message for error in refused)
    assert documents.errors(query, SCHEMA, document, stricter) is refused
    assert validations == [query, query]


def test_the_least_recently_used_query_leaves_first():
    documents = prepared_documents(size=2)
    a, b, c = "{ a: jobs { pageInfo { hasNextPage } } }", "{ b: __typename }", "{ c: __typename }"
    kept_a = documents.document(a)
    documents.document(b)
    assert documents.document(a) is kept_a  # a is now the most recent
    documents.document(c)  # evicts b
    assert documents.document(a) is kept_a
    assert documents.document(b) is not documents.document(c)


def test_parse_limits_apply_and_syntax_errors_are_not_kept():
    documents = prepared_documents(max_tokens=10)
    with pytest.raises(GraphQLSyntaxError, match="more than 10 tokens"):
        documents.document("{ jobs { nodes { id name status postUrl remoteId } } }")
    with pytest.raises(GraphQLSyntaxError, match="Syntax Error"):
        documents.document("{ }")  # empty selection sets are refused, as the spec says
    assert len(documents.cache) == 0
