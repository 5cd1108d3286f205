"""The projector compiler and the field specs it reads.

Whether compiled and standard completion agree is `tests/test_projection.py`'s job;
here: every field of Kombo's types can be compiled (a field without a spec sends its
whole type down the standard path, silently), and a question's format is chosen by one
lookup only when the members' tags say exactly what asking each in turn would.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLString,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    parse,
)

from gateway.schema.build import build_schema
from gateway.schema.fastpath.compiler import Projector, ProjectorCompiler, tag_dispatch
from gateway.schema.fastpath.fields import field_spec
from gateway.schema.fastpath.projection import kombo_shapes, strict_serializer
from gateway.schema.fastpath.specs import KeySpec, ListSpec, QuestionsSpec, TypeTag
from gateway.schema.private_api import FieldDetails, graphql_schema

SCHEMA = graphql_schema(build_schema())


def test_every_field_of_kombos_types_has_a_spec():
    for name in kombo_shapes(SCHEMA):
        type_ = SCHEMA.type_map[name]
        if isinstance(type_, GraphQLObjectType):
            for field_name, field in type_.fields.items():
                assert field_spec(field) is not None, f"{name}.{field_name}"


def test_specs_name_the_key_they_read():
    job = SCHEMA.type_map["Job"]
    assert isinstance(job, GraphQLObjectType)
    specs = {name: field_spec(field) for name, field in job.fields.items()}
    assert specs["remoteId"] == KeySpec("remote_id")
    assert specs["stages"] == ListSpec("stages")
    assert specs["screeningQuestions"] == QuestionsSpec("screening_questions")
    assert {spec.source_key for spec in specs.values() if spec} >= {"id", "employment_type"}


def collect(type_: GraphQLObjectType, details: list[FieldDetails]) -> dict[str, list[Any]]:
    """graphql-core's field collection for what these tests select (fields and inline
    fragments on a type, no directives)."""
    grouped: dict[str, list[Any]] = {}

    def visit(selections: Any) -> None:
        for selection in selections:
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                grouped.setdefault(key, []).append(FieldDetails(selection, None))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or condition.name.value == type_.name:
                    visit(selection.selection_set.selections)

    for detail in details:
        if detail.node.selection_set is not None:
            visit(detail.node.selection_set.selections)
    return grouped


def compiled(type_name: str, selection: str) -> tuple[ProjectorCompiler, Projector]:
    operation = parse("{ root {" + selection + "} }").definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    (root,) = operation.selection_set.selections
    assert isinstance(root, FieldNode)
    compiler = ProjectorCompiler(
        collect=collect,
        required_keys=kombo_shapes(SCHEMA),
        strict=strict_serializer,
        max_source=64 * 1024,
    )
    type_ = SCHEMA.type_map[type_name]
    assert isinstance(type_, GraphQLObjectType)
    return compiler, compiler.compile(type_, [FieldDetails(root, None)])


@pytest.mark.parametrize(
    ("format_type", "member"),
    [
        ("TEXT", "TextQuestionFormat"),
        ("MULTI_SELECT", "MultiSelectQuestionFormat"),
        ("UNKNOWN", "UnknownQuestionFormat"),
        ("NEW_KIND", "UnknownQuestionFormat"),
    ],
)
def test_a_question_format_is_chosen_by_one_lookup(format_type: str, member: str):
    compiler, project = compiled("ScreeningQuestion", "format { __typename }")
    assert "members_ScreeningQuestionFormat = {" in compiler.source
    question = {"id": "q1", "format": {"type": format_type}}
    assert project(question, None) == {"format": {"__typename": member}}


def test_a_question_finds_its_precondition_among_the_questions_of_its_job():
    _, project = compiled("Job", "screeningQuestions { komboId preconditionQuestion { komboId } }")
    questions = [
        {"id": "q1"},
        {"id": "q2", "precondition_question_id": "q1"},
        {"id": "q3", "precondition_question_id": "missing"},
    ]
    result = project({"id": "j1", "screening_questions": questions}, None)
    assert [q["preconditionQuestion"] for q in result["screeningQuestions"]] == [
        None,
        {"komboId": "q1"},
        None,
    ]


def union(*tags: TypeTag) -> GraphQLUnionType:
    members = [
        GraphQLObjectType(f"M{n}", {"x": GraphQLField(GraphQLString)}, is_type_of=tag)
        for n, tag in enumerate(tags)
    ]
    return GraphQLUnionType("U", members)


def test_tags_covering_the_union_exactly_dispatch_by_lookup():
    found = tag_dispatch(union(TypeTag("type", "A"), TypeTag("type", None, frozenset({"A"}))))
    assert found is not None
    key, tagged, other = found
    assert (key, list(tagged), other.name) == ("type", ["A"], "M1")


@pytest.mark.parametrize(
    "tags",
    [
        # The other member claims a tag no member has, or misses one a member has.
        (TypeTag("type", "A"), TypeTag("type", None, frozenset({"A", "B"}))),
        (TypeTag("type", "A"), TypeTag("type", "B"), TypeTag("type", None, frozenset({"A"}))),
        # Two keys, two others, no other.
        (TypeTag("type", "A"), TypeTag("kind", None, frozenset({"A"}))),
        (TypeTag("type", None, frozenset()), TypeTag("type", None, frozenset())),
        (TypeTag("type", "A"), TypeTag("type", "B")),
    ],
)
def test_other_tags_are_asked_in_turn(tags: tuple[TypeTag, ...]):
    assert tag_dispatch(union(*tags)) is None


def gateway_imports(module: str) -> set[str]:
    """The gateway modules `module` imports, transitively (from the source; the packages'
    own `__init__` modules, which import everything below them, are not followed)."""
    root = Path(__file__).resolve().parent.parent
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        path = root / (name.replace(".", "/") + ".py")
        if name in seen or not path.exists():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                pending.append(node.module)
            elif isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
    return {name for name in seen if name.startswith("gateway.")} - {module}


@pytest.mark.parametrize("module", ["gateway.schema.types", "gateway.schema.enums"])
def test_the_data_types_declare_specs_without_importing_the_executor(module: str):
    imported = gateway_imports(module)
    assert "gateway.schema.fastpath.specs" in imported
    assert not imported & {
        "gateway.schema.fastpath.projection",
        "gateway.schema.fastpath.compiler",
        "gateway.schema.private_api",
    }, imported
