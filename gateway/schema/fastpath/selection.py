"""What a `jobs` field's selection reads, from graphql-core's nodes, once per document.

Why: before it calls Kombo, `Query.jobs` wants two facts about its selection: whether
`edges` is selected (a cursor per edge costs time) and which keys of Kombo's job records
the selected fields read (when no cache keeps a page, only those are decoded: see
`kombo.parse_jobs_page`). Strawberry's public `info.selected_fields` rebuilds the whole
selection on every call, about 1.3 ms for every field of a job; parsed documents are
cached, so the answer is computed once per document from graphql-core's nodes (reached
through Strawberry's private `_raw_info`: `private_api.graphql_info`) and remembered.

Fragments count whatever their type condition or `@include`/`@skip`: reading a key too
many is harmless, one too few is not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
)

from gateway.schema.bounded_cache import BoundedCache
from gateway.schema.fastpath.fields import field_spec
from gateway.schema.operation import text_digest
from gateway.schema.private_api import graphql_info

_MEMO_SIZE = 1024
#: A memo entry's size by estimate (key, a frozenset of a dozen keys), for the byte bound.
_ENTRY_BYTES = 2_048
_MEMO_BYTES = _MEMO_SIZE * _ENTRY_BYTES
_TYPENAME = "__typename"


@dataclass(frozen=True, slots=True)
class ConnectionReads:
    """What one `jobs` field's selection reads."""

    #: Whether `edges` is selected (else per-edge cursors need not be computed).
    edges: bool
    #: The job keys any selected field reads; None when some field's keys are unknown.
    job_keys: frozenset[str] | None


#: Reads by (digest of the document's text, where the `jobs` field nodes start in it):
#: names a selection without holding its nodes, whose document would stay alive (and
#: its text) long after the prepared-document cache let it go.
_memo: BoundedCache[tuple[bytes, tuple[int, ...]], ConnectionReads] = BoundedCache(
    entries=_MEMO_SIZE, max_bytes=_MEMO_BYTES
)


def connection_reads(info: Any) -> ConnectionReads:
    """`ConnectionReads` of the `jobs` field `info` resolves (a `strawberry.Info`)."""
    raw = graphql_info(info)
    nodes = tuple(raw.field_nodes)
    key = _memo_key(nodes)
    if key is not None:
        memo = _memo.get(key)
        if memo is not None:
            return memo
    reads = _compute(nodes, raw.fragments, raw.schema)
    if key is not None:
        _memo.put(key, reads, _ENTRY_BYTES)
    return reads


def _memo_key(nodes: tuple[FieldNode, ...]) -> tuple[bytes, tuple[int, ...]] | None:
    """Where `nodes` are in their document's text (None: a document without text)."""
    locations = [node.loc for node in nodes]
    if not locations or any(loc is None for loc in locations):
        return None
    return text_digest(locations[0].source.body), tuple(loc.start for loc in locations)  # type: ignore[union-attr]


def _compute(
    nodes: tuple[FieldNode, ...],
    fragments: Mapping[str, FragmentDefinitionNode],
    schema: GraphQLSchema,
) -> ConnectionReads:
    job_type = schema.get_type("Job")
    assert isinstance(job_type, GraphQLObjectType)
    edges = False
    job_sets: list[SelectionSetNode] = []
    for field in _fields_below(nodes, fragments):
        name = field.name.value
        if name == "edges":
            edges = True
            job_sets += [
                node.selection_set
                for node in _fields_below((field,), fragments)
                if node.name.value == "node" and node.selection_set is not None
            ]
        elif name == "nodes" and field.selection_set is not None:
            job_sets.append(field.selection_set)
    keys: set[str] = set()
    for selection_set in job_sets:
        for field in _fields_in(selection_set, fragments, set()):
            name = field.name.value
            if name == _TYPENAME:
                continue
            graphql_field = job_type.fields.get(name)
            spec = None if graphql_field is None else field_spec(graphql_field)
            key = None if spec is None else spec.source_key
            if key is None:
                return ConnectionReads(edges=edges, job_keys=None)
            keys.add(key)
    return ConnectionReads(edges=edges, job_keys=frozenset(keys))


def _fields_below(
    nodes: tuple[FieldNode, ...], fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    for node in nodes:
        if node.selection_set is not None:
            yield from _fields_in(node.selection_set, fragments, set())


def _fields_in(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    spread: set[str],
) -> Iterator[FieldNode]:
    """The fields of a selection set, through inline fragments and fragment spreads."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields_in(selection.selection_set, fragments, spread)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in spread:
                spread.add(name)
                yield from _fields_in(fragment.selection_set, fragments, spread)
