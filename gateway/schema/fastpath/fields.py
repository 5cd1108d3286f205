"""`field_spec`: how a GraphQL field of the schema reads its parent dict, as a `FieldSpec`.

Usage::

    spec = field_spec(job_type.fields["stages"])   # ListSpec(key="stages")
    spec.source_key                                # "stages"

The one answer the compiler (the code it emits), the data checks (the keys a type
requires) and `selection` (the keys a `jobs` page keeps) all ask: a field reading its
dict differently cannot be read one way by one of them and another way by another.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import GraphQLField

from gateway.schema.fastpath.specs import PROJECTION, FieldSpec, KeySpec, ResolverSpec
from gateway.schema.private_api import parent_only_resolver, plain_key, strawberry_field


def field_spec(field: GraphQLField) -> FieldSpec | None:
    """The field's spec: declared on it (`spec_metadata`), else a `KeySpec` of its Python
    name for a field without a resolver, else a `ResolverSpec` for a resolver of the
    parent dict alone. None: a field compiled code cannot read (one of another schema, a
    resolver wanting arguments or `info`, which must declare a spec instead); its type
    takes the standard path."""
    definition = strawberry_field(field)
    if definition is None:
        return None
    metadata: Mapping[str, object] = definition.metadata or {}
    declared = metadata.get(PROJECTION)
    if isinstance(declared, FieldSpec):
        return declared
    key = plain_key(definition)
    if key is not None:
        return KeySpec(key)
    function = parent_only_resolver(definition)
    return None if function is None else ResolverSpec(function)
