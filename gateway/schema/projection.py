"""The fast path: whole subtrees of Kombo data completed by code compiled per selection.

graphql-core completes an object by resolving each selected field through its
resolver, wrapping every value in bookkeeping (paths, awaitable checks, error
handling). Our objects below the root fields are plain data already: Kombo's dicts.
So `ProjectingExecutionContext.complete_object_value` compiles, once per selection
set (after fragments, `@include`/`@skip` and aliases are applied by graphql-core's own
`collect_subfields`), a Python function that builds the result dict directly, and
uses it for every object of that selection:

    def p3(src, sib):
        v0 = src.get("name")
        if v0 is not None and type(v0) is not str: v0 = S_String(v0)
        ...
        return {"name": v0, "status": v1, "__typename": "Job", ...}

Exactness: the code does what the resolvers and graphql-core's completion do (the
same resolver functions where a field has one, the same scalar serializers, the
same union `is_type_of` order). Anything unusual, a null in a non-null field, a value
a serializer refuses, a shape it did not expect, raises inside the compiled code;
the object is then completed again the standard way, which produces graphql-core's
own errors and null propagation. `tests/test_projection.py` checks the two paths
agree on generated queries and data.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLUnionType,
)
from graphql.execution.collect_fields import FieldDetails, collect_subfields
from graphql.language import (
    DirectiveNode,
    OperationDefinitionNode,
    VariableNode,
    visit,
)
from graphql.language.visitor import Visitor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.ids import global_id

Projector = Callable[[dict[str, Any], Any], dict[str, Any]]
_CACHE_SIZE = 2048
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

#: Set on a strawberry field (`metadata={PROJECTION: spec}`) whose resolver needs more
#: than its parent dict, so that compiled code can do the same without `info`.
PROJECTION = "gateway.projection"


class _NotProjectable(Exception):
    """The selection has something the compiler does not handle: use the standard path."""


class ProjectingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, completing plain-data objects with compiled projections."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is dict and (
            return_type.is_type_of is None or return_type.is_type_of(result, info)
        ):
            project = self._projector(return_type, field_details_list)
            if project is not None:
                try:
                    return project(result, None)
                except Exception:
                    pass
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _projector(self, return_type: GraphQLObjectType, details: Any) -> Projector | None:
        nodes = tuple(detail.node for detail in details)
        if any(
            detail.defer_usage is not None or detail.fragment_variable_values is not None
            for detail in details
        ):
            return None
        key = (return_type.name, tuple(map(id, nodes)), self._directive_values())
        return _CACHE.get_or_compile(key, nodes, lambda: self._compile(return_type, details))

    def _directive_values(self) -> tuple[Any, ...]:
        names = _directive_variables(self.operation, self.fragments)
        coerced = self.variable_values.coerced
        return tuple(coerced.get(name) for name in names)

    def _compile(self, return_type: GraphQLObjectType, details: Any) -> Projector | None:
        compiler = _Compiler(self)
        try:
            name = compiler.object(return_type, list(details))
        except _NotProjectable:
            return None
        return compiler.build(name)


class _ProjectorCache:
    """LRU of compiled projectors. It keeps the AST nodes of each key alive, so that the
    ids in the key can never be reused by other nodes while the entry exists."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[Any, tuple[Projector | None, tuple[Any, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compile(
        self, key: Any, nodes: tuple[Any, ...], compile_: Callable[[], Projector | None]
    ) -> Projector | None:
        entry = self._entries.get(key)
        if entry is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
                self._entries.move_to_end(key)
            return entry[0]
        projector = compile_()
        with self._lock:
            self._entries[key] = (projector, nodes)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return projector


_CACHE = _ProjectorCache(_CACHE_SIZE)
_DIRECTIVE_VARIABLES: dict[int, tuple[Any, tuple[str, ...]]] = {}


def _directive_variables(operation: OperationDefinitionNode, fragments: Any) -> tuple[str, ...]:
    """Names of the variables that `@skip`/`@include` read: they change what is selected."""
    cached = _DIRECTIVE_VARIABLES.get(id(operation))
    if cached is not None and cached[0] is operation:
        return cached[1]
    names: set[str] = set()

    class Collect(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value in ("skip", "include"):
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names.add(argument.value.name.value)

    visit(operation, Collect())
    for fragment in fragments.values():
        visit(fragment.definition, Collect())
    result = tuple(sorted(names))
    if len(_DIRECTIVE_VARIABLES) > _CACHE_SIZE:
        _DIRECTIVE_VARIABLES.clear()
    _DIRECTIVE_VARIABLES[id(operation)] = (operation, result)
    return result


class _Compiler:
    """Generates the source of one selection's projector and of everything below it."""

    def __init__(self, executor: ProjectingExecutionContext) -> None:
        self._executor = executor
        self._lines: list[str] = []
        self._namespace: dict[str, Any] = {"_gid": global_id}
        self._counter = 0

    def build(self, name: str) -> Projector:
        source = "\n".join(self._lines)
        exec(compile(source, "<gateway.projection>", "exec"), self._namespace)
        projector: Projector = self._namespace[name]
        return projector

    def _name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def _constant(self, value: Any, prefix: str = "K") -> str:
        name = self._name(prefix)
        self._namespace[name] = value
        return name

    def object(self, type_: GraphQLObjectType, details: list[FieldDetails]) -> str:
        """Compile a projector for `type_` with these field nodes; returns its name."""
        executor = self._executor
        collected = collect_subfields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            type_,
            details,
            executor.hide_suggestions,
        )
        if collected.new_defer_usages:
            raise _NotProjectable
        name = self._name("p")
        body: list[str] = []
        items: list[str] = []
        for index, (response_key, field_details) in enumerate(collected.grouped_field_set.items()):
            local = f"v{index}"
            node = field_details[0].node
            if node.name.value == "__typename":
                items.append(f"{response_key!r}: {type_.name!r}")
                continue
            if node.arguments:
                raise _NotProjectable
            field = type_.fields.get(node.name.value)
            if field is None:
                raise _NotProjectable
            body += self._read(local, field)
            body += self._complete(local, field.type, list(field_details))
            items.append(f"{response_key!r}: {local}")
        self._lines.append(f"def {name}(src, sib):")
        self._lines += ["    " + line for line in body]
        self._lines.append("    return {" + ", ".join(items) + "}")
        return name

    def _read(self, local: str, field: Any) -> list[str]:
        """Code that puts the field's resolved (not yet completed) value in `local`."""
        definition = field.extensions.get("strawberry-definition")
        if definition is None:
            raise _NotProjectable
        spec = (definition.metadata or {}).get(PROJECTION)
        if spec is not None:
            return self._read_spec(local, spec)
        resolver = definition.base_resolver
        if resolver is None:
            return [f"{local} = src.get({definition.python_name!r})"]
        # A resolver of its parent dict alone can be called as is; one wanting `info`
        # must declare what it does (PROJECTION) or its type takes the standard path.
        if resolver.arguments or resolver.info_parameter or resolver.root_parameter is None:
            raise _NotProjectable
        function = self._constant(resolver.wrapped_func, "r")
        return [f"{local} = {function}(src)"]

    def _read_spec(self, local: str, spec: tuple[Any, ...]) -> list[str]:
        kind = spec[0]
        if kind == "kombo_id":
            return [f'{local} = str(src["id"])']
        if kind == "global_id":
            return [f'{local} = _gid({spec[1]!r}, src["id"])']
        if kind == "key":
            return [f"{local} = src.get({spec[1]!r})"]
        if kind == "list":
            return [f"{local} = src.get({spec[1]!r}) or []"]
        if kind == "enum":
            allowed = self._constant(spec[2], "A")
            return [
                f"{local} = src.get({spec[1]!r})",
                f"if not (isinstance({local}, str) and {local} in {allowed}): {local} = None",
            ]
        if kind == "questions":
            # The job's question list travels as `sib` to the questions below it.
            return [f'{local} = src.get("screening_questions") or []', f"qsib = {local}"]
        if kind == "precondition":
            return [
                f"{local} = None",
                'w = src.get("precondition_question_id")',
                "if w is not None and sib:",
                "    for q in sib:",
                '        if q.get("id") == w:',
                f"            {local} = q",
                "            break",
            ]
        raise _NotProjectable

    def _complete(
        self, local: str, type_: GraphQLOutputType, details: list[FieldDetails]
    ) -> list[str]:
        """Code that turns `local` from a resolved value into its completed result."""
        if isinstance(type_, GraphQLNonNull):
            inner = self._complete(local, type_.of_type, details)
            return inner + [f"if {local} is None: raise TypeError('null in a non-null field')"]
        expression = self._value(local, type_, details)
        if expression is None:
            return []
        return [f"if {local} is not None: {local} = {expression}"]

    def _value(self, local: str, type_: Any, details: list[FieldDetails]) -> str | None:
        """An expression completing non-null `local` of `type_` (None: it is complete)."""
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            nullable_items = not isinstance(item_type, GraphQLNonNull)
            inner = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
            item = self._value("x", inner, details)
            sibling = "qsib" if self._carries_questions(details) else "sib"
            if item is not None:
                item = item.replace(", sib)", f", {sibling})")
            check = self._constant(_list_items, "L")
            if item is None:
                return f"{check}({local})"
            if nullable_items:
                return f"[None if x is None else {item} for x in {check}({local})]"
            return f"[{item} for x in {check}({local})]"
        if isinstance(type_, GraphQLScalarType):
            return self._scalar(local, type_)
        if isinstance(type_, GraphQLEnumType):
            names = frozenset(type_.values)
            if any(value.value != name for name, value in type_.values.items()):
                serialize = self._constant(type_.serialize, "E")
                return f"{serialize}({local})"
            known = self._constant(names, "N")
            serialize = self._constant(type_.serialize, "E")
            return f"({local} if {local} in {known} else {serialize}({local}))"
        if isinstance(type_, GraphQLObjectType):
            projector = self.object(type_, details)
            return f"{projector}({local}, sib)"
        if isinstance(type_, GraphQLUnionType):
            return f"{self._union(type_, details)}({local}, sib)"
        raise _NotProjectable

    def _carries_questions(self, details: list[FieldDetails]) -> bool:
        return any(detail.node.name.value == "screeningQuestions" for detail in details)

    def _scalar(self, local: str, type_: GraphQLScalarType) -> str | None:
        serialize = self._constant(type_.serialize, "S")
        fast = _FAST_SCALARS.get(type_.name)
        if fast is not None:
            return fast.format(v=local, s=serialize)
        return f"{serialize}({local})"

    def _union(self, type_: GraphQLUnionType, details: list[FieldDetails]) -> str:
        """A dispatcher: the first member whose `is_type_of` accepts the value, as
        Strawberry's union resolution does for plain values.

        Members whose `is_type_of` declares the Kombo `format.type` it accepts (and one
        that accepts every other type) are chosen by one dict lookup instead.
        """
        name = self._name("u")
        tags = [getattr(member.is_type_of, "format_type", "?") for member in type_.types]
        if "?" not in tags and tags.count(None) == 1:
            table = {
                tag: self.object(member, details)
                for tag, member in zip(tags, type_.types, strict=True)
                if tag is not None
            }
            other = self.object(type_.types[tags.index(None)], details)
            self._lines += [
                f"def {name}(src, sib):",
                "    if not isinstance(src, dict): raise TypeError('not an object')",
                "    return {"
                + ", ".join(f"{tag!r}: {projector}" for tag, projector in table.items())
                + f'}}.get(src.get("type"), {other})(src, sib)',
            ]
            return name
        lines = [f"def {name}(src, sib):"]
        for member in type_.types:
            if member.is_type_of is None:
                raise _NotProjectable
            check = self._constant(member.is_type_of, "T")
            projector = self.object(member, details)
            lines += [f"    if {check}(src, None):", f"        return {projector}(src, sib)"]
        lines.append("    raise TypeError('no union member accepts the value')")
        self._lines += lines
        return name


# Fast checks that keep the common case inline; anything else goes through the type's
# own serializer, which raises where graphql-core would (and the object falls back).
_FAST_SCALARS = {
    "String": "({v} if type({v}) is str else {s}({v}))",
    "ID": "({v} if type({v}) is str else {s}({v}))",
    "Boolean": "({v} if type({v}) is bool else {s}({v}))",
    "Float": "({v} if type({v}) is float else {s}({v}))",
    "Int": f"({{v}} if type({{v}}) is int and {_INT_MIN} <= {{v}} <= {_INT_MAX} else {{s}}({{v}}))",
}


#: The parent key each `PROJECTION` spec kind reads (None: the spec says which, at [1]).
_SPEC_KEYS: dict[str, str | None] = {
    "kombo_id": "id",
    "global_id": "id",
    "key": None,
    "list": None,
    "enum": None,
    "questions": "screening_questions",
}


def source_key(field: Any) -> str | None:
    """The one key of its parent dict a GraphQL field reads, or None when that is not
    known (a resolver of its own, or a field reading more than one key).

    The same knowledge `_Compiler._read` turns into code, so a field whose reading
    changes there must change here too: `tests/test_selection.py` checks every field
    of `Job` against the full record.
    """
    definition = field.extensions.get("strawberry-definition")
    if definition is None:
        return None
    spec = (definition.metadata or {}).get(PROJECTION)
    if spec is None:
        return definition.python_name if definition.base_resolver is None else None
    if spec[0] not in _SPEC_KEYS:
        return None
    key = _SPEC_KEYS[spec[0]]
    return key if key is not None else str(spec[1])


def _list_items(value: Any) -> Iterable[Any]:
    """The list itself, if it is one (graphql-core would fail on other values)."""
    if type(value) is not list:
        raise TypeError("expected a list")
    return value
