"""`ProjectorCompiler`: the Python source of one selection's projector, and its function.

Usage (`ProjectingExecutionContext` does this once per selection set)::

    compiler = ProjectorCompiler(collect=..., required_keys=..., strict=..., max_source=65_536)
    project = compiler.compile(job_type, field_details)   # NotProjectable: standard path
    project(job, None)                                    # the completed result dict

What it generates, for `{ jobs { nodes { id name stages { name } } } }`::

    def project_JobStage(source, siblings):
        if type(source.get('id')) is not str: raise TypeError('no string id')
        value_name = source.get('name')
        if value_name is not None: value_name = (value_name if type(value_name) is str ...)
        return {'name': value_name}
    def project_Job(source, siblings):
        if type(source.get('id')) is not str: raise TypeError('no string id')
        value_id = global_id('Job', source["id"])
        ...
        value_stages = source.get('stages')
        if value_stages is None: value_stages = []
        if value_stages is not None: value_stages = [project_JobStage(item, siblings) for ...]
        if value_stages is None: raise TypeError('null in a non-null field')
        return {'id': value_id, 'name': value_name, 'stages': value_stages}

Each field's reading is its spec's code (`fields.field_spec`); completing it is the
compiler's, by its GraphQL type: the same strict scalar checks as the standard path
(`strict`), the same union `is_type_of` order, lists checked to be lists. Where the
standard path would report an error or leave an item out, the generated code raises
instead, and the caller completes that object the standard way.

`siblings` is what a question's `preconditionQuestion` searches: the list of the field
whose spec `lends_siblings` (a job's questions) is passed to the projectors of its items,
and every other projector passes on what it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
)

from gateway.schema.fastpath.fields import field_spec
from gateway.schema.fastpath.specs import TypeTag
from gateway.schema.ids import global_id
from gateway.schema.private_api import FieldDetails

#: A compiled projector: (Kombo's dict, the siblings it may search) -> the completed result.
Projector = Callable[[dict[str, Any], Any], dict[str, Any]]
#: The fields a selection set selects on an object type (graphql-core's field collection:
#: fragments, `@include`/`@skip` and aliases applied), by response key.
Collect = Callable[[GraphQLObjectType, list[FieldDetails]], Mapping[str, list[FieldDetails]]]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

# Fast checks that keep the common case inline; anything else goes through the type's
# strict serializer, which raises where the standard path would (the object falls back).
_FAST_SCALARS = {
    "String": "({v} if type({v}) is str else {s}({v}))",
    "ID": "({v} if type({v}) is str else {s}({v}))",
    "Boolean": "({v} if type({v}) is bool else {s}({v}))",
    "Float": "({v} if type({v}) is float else {s}({v}))",
    "Int": f"({{v}} if type({{v}}) is int and {_INT_MIN} <= {{v}} <= {_INT_MAX} else {{s}}({{v}}))",
}


class NotProjectable(Exception):
    """The selection has something the compiler does not handle: use the standard path."""


def list_items(value: Any) -> Iterable[Any]:
    """The list itself, if it is one (graphql-core would fail on other values)."""
    if type(value) is not list:
        raise TypeError("expected a list")
    return value


class ProjectorCompiler:
    """Generates the source of one selection's projector and of everything below it.

    `collect` is graphql-core's field collection for the execution; `required_keys` the
    keys each type of Kombo's data must hold as strings (`kombo_shapes`); `strict` the
    leaf types' strict serializers; past `max_source` characters of source, the
    selection is not compiled.
    """

    def __init__(
        self,
        *,
        collect: Collect,
        required_keys: Mapping[str, tuple[str, ...]],
        strict: Callable[[GraphQLLeafType], Callable[[Any], Any]],
        max_source: int,
    ) -> None:
        self._collect = collect
        self._required_keys = required_keys
        self._strict = strict
        self._max_source = max_source
        self._lines: list[str] = []
        self._namespace: dict[str, Any] = {"global_id": global_id, "list_items": list_items}
        #: Names taken in the generated module (its functions and tables, the namespace).
        self._taken: set[str] = set(self._namespace)
        #: The constants bound so far and their names, by the name asked for.
        self._constants: dict[str, list[tuple[object, str]]] = {}
        #: Characters of source so far (`max_source` at most).
        self.size = 0

    def compile(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> Projector:
        """The projector of `type_` with these field nodes.

        Raises:
            NotProjectable: the selection has something the compiler does not handle, or
                its source would pass `max_source`.
        """
        name = self._object(type_, details)
        exec(compile(self.source, "<gateway.projection>", "exec"), self._namespace)
        projector: Projector = self._namespace[name]
        return projector

    @property
    def source(self) -> str:
        """The source generated so far (to read: tests, debugging)."""
        return "\n".join(self._lines)

    def constant(self, value: object, name: str) -> str:
        """The name (`name`, made unique) by which the generated code reads `value`;
        asked again for an equal value under the same name, the same name."""
        bound = self._constants.setdefault(name, [])
        for known, known_name in bound:
            if known is value or known == value:
                return known_name
        unique = self._unique(name)
        self._namespace[unique] = value
        bound.append((value, unique))
        return unique

    def _unique(self, name: str) -> str:
        """`name`, or `name_2`, `name_3`, ...: the first not taken yet in the module."""
        candidate, number = name, 1
        while candidate in self._taken:
            number += 1
            candidate = f"{name}_{number}"
        self._taken.add(candidate)
        return candidate

    def _emit(self, lines: list[str]) -> None:
        self._lines += lines
        self.size += sum(len(line) + 1 for line in lines)
        if self.size > self._max_source:
            raise NotProjectable

    def _object(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> str:
        """Emit a projector for `type_` with these field nodes; returns its name."""
        grouped = self._collect(type_, details)
        name = self._unique(f"project_{type_.name}")
        body = self._servable_check(type_)
        items: list[str] = []
        for response_key, field_details in grouped.items():
            node = field_details[0].node
            if node.name.value == "__typename":
                items.append(f"{response_key!r}: {type_.name!r}")
                continue
            field = type_.fields.get(node.name.value)
            spec = None if field is None or node.arguments else field_spec(field)
            if field is None or spec is None:
                raise NotProjectable
            value = f"value_{response_key}"
            body += spec.read(value, self)
            siblings = value if spec.lends_siblings else "siblings"
            body += self._complete(value, field.type, list(field_details), siblings)
            items.append(f"{response_key!r}: {value}")
        self._emit(
            [
                f"def {name}(source, siblings):",
                *["    " + line for line in body],
                "    return {" + ", ".join(items) + "}",
            ]
        )
        return name

    def _servable_check(self, type_: GraphQLObjectType) -> list[str]:
        """Code refusing an object of Kombo's that the standard path would not serve
        (`GatewayExecutionContext.complete_object_value`, and the items its lists leave
        out), whatever the selection reads of it."""
        keys = self._required_keys.get(type_.name)
        if keys is None:
            return []
        if not keys:
            return ["if type(source) is not dict: raise TypeError('not an object')"]
        return [
            f"if type(source.get({key!r})) is not str: raise TypeError('no string {key}')"
            for key in keys
        ]

    def _complete(
        self, value: str, type_: GraphQLOutputType, details: list[FieldDetails], siblings: str
    ) -> list[str]:
        """Code that turns `value` from a resolved value into its completed result;
        objects below it are given `siblings`."""
        if isinstance(type_, GraphQLNonNull):
            inner = self._complete(value, type_.of_type, details, siblings)
            return inner + [f"if {value} is None: raise TypeError('null in a non-null field')"]
        expression = self._completed(value, type_, details, siblings)
        if expression is None:
            return []
        return [f"if {value} is not None: {value} = {expression}"]

    def _completed(
        self, value: str, type_: Any, details: list[FieldDetails], siblings: str, depth: int = 1
    ) -> str | None:
        """An expression completing non-null `value` of `type_` (None: it is complete)."""
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            nullable_items = not isinstance(item_type, GraphQLNonNull)
            inner = item_type if nullable_items else item_type.of_type
            item = "item" if depth == 1 else f"item_{depth}"
            completed = self._completed(item, inner, details, siblings, depth + 1)
            if completed is None:
                return f"list_items({value})"
            if nullable_items:
                completed = f"None if {item} is None else {completed}"
            return f"[{completed} for {item} in list_items({value})]"
        if isinstance(type_, GraphQLScalarType):
            serialize = self.constant(self._strict(type_), f"serialize_{type_.name}")
            fast = _FAST_SCALARS.get(type_.name)
            return fast.format(v=value, s=serialize) if fast else f"{serialize}({value})"
        if isinstance(type_, GraphQLEnumType):
            serialize = self.constant(self._strict(type_), f"serialize_{type_.name}")
            if any(member.value != name for name, member in type_.values.items()):
                return f"{serialize}({value})"
            names = self.constant(frozenset(type_.values), f"names_{type_.name}")
            return f"({value} if {value} in {names} else {serialize}({value}))"
        if isinstance(type_, GraphQLObjectType):
            return f"{self._object(type_, details)}({value}, {siblings})"
        if isinstance(type_, GraphQLUnionType):
            return f"{self._union(type_, details)}({value}, {siblings})"
        raise NotProjectable

    def _union(self, type_: GraphQLUnionType, details: list[FieldDetails]) -> str:
        """A dispatcher: the first member whose `is_type_of` accepts the value, as
        Strawberry's union resolution does for plain values.

        Members whose `is_type_of` are `TypeTag`s covering the union exactly are chosen
        by one dict lookup instead (a question format, by its `type`).
        """
        name = self._unique(f"choose_{type_.name}")
        dispatch = tag_dispatch(type_)
        if dispatch is not None:
            key, tagged, other = dispatch
            projectors = {tag: self._object(member, details) for tag, member in tagged.items()}
            fallback = self._object(other, details)
            table = self._unique(f"members_{type_.name}")
            entries = ", ".join(f"{tag!r}: {projector}" for tag, projector in projectors.items())
            self._emit(
                [
                    f"{table} = {{{entries}}}",
                    f"def {name}(source, siblings):",
                    "    if not isinstance(source, dict): raise TypeError('not an object')",
                    f"    return {table}.get(source.get({key!r}), {fallback})(source, siblings)",
                ]
            )
            return name
        lines = [f"def {name}(source, siblings):"]
        for member in type_.types:
            if member.is_type_of is None:
                raise NotProjectable
            check = self.constant(member.is_type_of, f"is_{member.name}")
            projector = self._object(member, details)
            lines += [
                f"    if {check}(source, None):",
                f"        return {projector}(source, siblings)",
            ]
        lines.append("    raise TypeError('no union member accepts the value')")
        self._emit(lines)
        return name


def tag_dispatch(
    union: GraphQLUnionType,
) -> tuple[str, dict[str, GraphQLObjectType], GraphQLObjectType] | None:
    """When every member's `is_type_of` is a `TypeTag` on one key, each member but one
    has a tag of its own, and that one takes exactly the values no tag names: the key,
    the members by tag, and that other member. Then one member, and only one, accepts
    any object, so a lookup chooses as asking each in turn would. Else None."""
    tags = [member.is_type_of for member in union.types]
    if not all(isinstance(tag, TypeTag) for tag in tags):
        return None
    typed: list[TypeTag] = [tag for tag in tags if isinstance(tag, TypeTag)]
    tagged = {tag.tag: m for tag, m in zip(typed, union.types, strict=True) if tag.tag is not None}
    others = [(tag, m) for tag, m in zip(typed, union.types, strict=True) if tag.tag is None]
    if len({tag.key for tag in typed}) != 1 or len(others) != 1 or len(tagged) != len(typed) - 1:
        return None
    other_tag, other = others[0]
    if other_tag.others != frozenset(tagged):
        return None
    return other_tag.key, tagged, other
