"""`field_spec`: how a GraphQL field of the schema reads its parent dict, as a `FieldSpec`.

Usage::

    spec = field_spec(job_type.fields["stages"])   # ListSpec(key="stages")
    spec.source_key                                # "stages"

The one answer the compiler (the code it emits), the data checks (the keys a type
requires) and `selection` (the keys a `jobs` page keeps) all ask: a field reading its
dict differently cannot be read one way by one of them and another way by another.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField

from gateway.schema.fastpath.specs import PROJECTION, FieldSpec, KeySpec, ResolverSpec


def field_spec(field: GraphQLField) -> FieldSpec | None:
    """The field's spec: declared on it (`spec_metadata`), else a `KeySpec` of its Python
    name for a field without a resolver, else a `ResolverSpec` for a resolver of the
    parent dict alone. None: a field compiled code cannot read (one of another schema, a
    resolver wanting arguments or `info`); its type takes the standard path."""
    definition: Any = field.extensions.get("strawberry-definition")
    if definition is None:
        return None
    declared = (definition.metadata or {}).get(PROJECTION)
    if isinstance(declared, FieldSpec):
        return declared
    resolver = definition.base_resolver
    if resolver is None:
        return KeySpec(definition.python_name)
    # A resolver of its parent dict alone can be called as is; one wanting `info`
    # must declare what it does (a spec) or its type takes the standard path.
    if resolver.arguments or resolver.info_parameter or resolver.root_parameter is None:
        return None
    return ResolverSpec(resolver.wrapped_func)
