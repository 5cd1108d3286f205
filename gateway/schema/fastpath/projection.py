"""The schema's executor: Kombo's data checked where graphql-core would fail on it, and
the fast path, whole subtrees completed by code compiled per selection.

**Kombo's data** (`GatewayExecutionContext`, both paths). Every value below `Job` is
Kombo's JSON as sent, and the contract makes bad data Kombo's fault, field by field
(api-contract.md §7), never a bug of ours (INTERNAL_SERVER_ERROR) and never a whole
page lost to one record:

- a leaf value of the wrong JSON type (`weeklyHours: "forty"`, `name: 42`, a
  `DateTime` that is not an ISO 8601 string, an enum field holding a number) is null
  with an `UPSTREAM_ERROR` at its path naming the field. The check is on JSON types, not
  graphql-core's coercion, which would turn `"40"` into 40.0 and `1` into true;
- an object field (`location`, `format`) whose value is not an object, or lacks a string
  where its type has a non-null string (the `id` behind `id`/`komboId`, a format's
  `type`), is null with an `UPSTREAM_ERROR`: no ID is ever invented;
- a list of non-null items (`stages`, `screeningQuestions`, `options`,
  `hiringTeamRolesRaw`, ...) never fails its field, let alone its job or the page:
  a value that is not a list reads as an empty list (a nullable list, e.g.
  `acceptedMimeTypes`, reads as null), and items that cannot be served (not an object,
  an object without a string `id`, a string list item that is not a string) are left
  out. Either way one `UPSTREAM_ERROR` is reported at the list field's path while the
  field keeps its data: GraphQL allows an error whose path holds a value. graphql-core
  has no call for that; `report` appends to the executor's collected errors without
  marking the path as nulled (so errors further down still count).

An error raised by a resolver or serializer of a field outside Kombo's data
(`pageInfo`, `cursor`) is still a bug, coded INTERNAL_SERVER_ERROR.

**The fast path** (`ProjectingExecutionContext`). graphql-core completes an object by
resolving each selected field through its resolver, wrapping every value in bookkeeping
(paths, awaitable checks, error handling). Our objects below the root fields are plain
data already: Kombo's dicts. So `complete_object_value` compiles, once per selection
set (after fragments, `@include`/`@skip` and aliases are applied by graphql-core's own
field collection), a Python function that builds the result dict directly, and uses
it for every object of that selection (`compiler.ProjectorCompiler`):

    def project_Job(source, siblings):
        if type(source.get('id')) is not str: raise TypeError('no string id')
        value_name = source.get('name')
        if value_name is not None: value_name = (value_name if type(value_name) is str ...)
        ...
        return {'name': value_name, 'status': value_status, '__typename': 'Job', ...}

How each field reads its dict is the field's spec (`specs`, found by `fields.field_spec`):
declared on the field where its resolver does more than `source.get(name)`, so the
compiled code, the keys a type requires (`kombo_shapes`) and the keys a `jobs` page
keeps (`selection`) cannot disagree.

What this takes of graphql-core's and Strawberry's internals (the completion methods
overridden here, graphql-core's field collection, the coerced variables, Strawberry's
field definitions) goes through `gateway.schema.private_api`, checked by
`tests/test_private_api.py`.

Exactness: the code does what the resolvers and `GatewayExecutionContext` do on good
data (the same resolver functions where a field has one, the same strict scalar
checks, the same union `is_type_of` order). Anything unusual, a null in a non-null
field, a value of the wrong type, an item that would be left out, a shape it did not
expect, raises inside the compiled code; the object is then completed again the
standard way, which reports the errors and leaves out what cannot be served. So bad
data costs its own object the fast path, nothing more. Each such fallback, and each
object of a selection the compiler refused, counts in
`gateway_fastpath_fallbacks_total{reason="raised"|"not_compiled"}` when the request's
`Context` carries the app's metrics. `tests/test_projection.py` checks the two paths
agree on generated queries and damaged data, and that the sandbox's data never falls
back.

**What projections cost.** Compiled projectors are kept per schema, at most 2,048 and
16 MiB by estimate (`PROJECTOR_CACHE_*`), keyed by a digest of the document's text and
the offsets of the selection's nodes in it: an entry holds no node, so nothing here
keeps a document (or its text) alive once the document cache has let it go; they held
documents of 1 MB each before. Compiling costs the worker ~2.5 us per character of
source, and each new selection needs it, so it is bounded twice: a selection whose
source would pass `MAX_PROJECTOR_SOURCE` is not compiled, and compiling gets
`COMPILE_SHARE` of the worker's time (`CompileBudget`); past that, new selections take
the standard path, correct and slower, until the budget has refilled.
"""

from __future__ import annotations

import enum
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

from graphql import (
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)
from graphql.language import (
    DirectiveNode,
    OperationDefinitionNode,
    VariableNode,
    visit,
)
from graphql.language.visitor import Visitor
from graphql.pyutils import Path

from gateway.errors import UpstreamDataError
from gateway.schema.bounded_cache import BoundedCache
from gateway.schema.fastpath.compiler import NotProjectable, Projector, ProjectorCompiler
from gateway.schema.fastpath.fields import field_spec
from gateway.schema.ids import JOB_TYPE
from gateway.schema.kombo_values import WrongValueType, json_kind
from gateway.schema.operation import text_digest
from gateway.schema.private_api import (
    ExecutorBase,
    FieldDetails,
    coerced_variables,
    collect_subfields,
    plain_details,
    report_keeping_value,
)

#: The JSON types Kombo sends for each built-in scalar (bool is not an int here: a
#: `type()` check, not `isinstance`). DateTime and JSON: their serializers decide.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str,),
    "ID": (str,),
    "Boolean": (bool,),
    "Float": (int, float),
    "Int": (int, float),  # 3.0 is an integer in JSON; the coercion refuses 3.5
}


def _wrong_type(field: str, detail: str) -> str:
    return f"Kombo sent a value of the wrong type for `{field}`: {detail}"


def kombo_shapes(schema: GraphQLSchema) -> dict[str, tuple[str, ...]]:
    """The types holding Kombo's data (`Job` and every type below it), each with the keys
    that must hold a string for an object to be served at all: the sources of its
    non-null `String`/`ID` fields (the `id` behind `id` and `komboId`, a format's
    `type`). A union maps to the keys all its members require. Computed once per schema."""
    entry = _SHAPES.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    shapes: dict[str, tuple[str, ...]] = {}
    root = schema.type_map.get(JOB_TYPE)
    pending: list[Any] = [root] if root is not None else []
    while pending:
        type_ = pending.pop()
        if type_.name in shapes:
            continue
        if isinstance(type_, GraphQLUnionType):
            shapes[type_.name] = ()
            pending += type_.types
            continue
        keys: list[str] = []
        for field in type_.fields.values():
            inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else None
            if isinstance(inner, GraphQLScalarType) and inner.name in ("String", "ID"):
                spec = field_spec(field)
                key = spec.source_key if spec is not None else None
                if key is not None and key not in keys:
                    keys.append(key)
            named = get_named_type(field.type)
            if isinstance(named, GraphQLObjectType | GraphQLUnionType):
                pending.append(named)
        shapes[type_.name] = tuple(keys)
    for name in list(shapes):
        union = schema.type_map[name]
        if isinstance(union, GraphQLUnionType):
            first, *others = [shapes[member.name] for member in union.types]
            shapes[name] = tuple(k for k in first if all(k in other for other in others))
    _SHAPES[id(schema)] = (schema, shapes)
    return shapes


_SHAPES: dict[int, tuple[GraphQLSchema, dict[str, tuple[str, ...]]]] = {}


def servable(value: Any, keys: tuple[str, ...]) -> bool:
    """Whether `value` can be served as an object of a type with these required keys."""
    if type(value) is not dict:
        return False
    return all(type(value.get(key)) is str for key in keys)


def _object_shape(keys: tuple[str, ...]) -> str:
    if not keys:
        return "an object"
    return "an object with a string " + " and ".join(f"`{key}`" for key in keys)


def strict_serializer(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    """The type's output coercion, refusing (WrongValueType) a value whose JSON type is
    not the scalar's, and turning any refusal of the coercion into WrongValueType."""
    coerce = type_.coerce_output_value
    allowed = _JSON_TYPES.get(type_.name) if isinstance(type_, GraphQLScalarType) else None
    name = type_.name

    def serialize(value: Any) -> Any:
        if allowed is not None and type(value) not in allowed:
            raise WrongValueType(value, name)
        try:
            coerced = coerce(value)
        except Exception as exc:
            raise WrongValueType(value, name) from exc
        if coerced is None:
            raise WrongValueType(value, name)
        return coerced

    return serialize


_STRICT: dict[GraphQLLeafType, Callable[[Any], Any]] = {}


def _strict(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    serialize = _STRICT.get(type_)
    if serialize is None:
        serialize = _STRICT[type_] = strict_serializer(type_)
    return serialize


class GatewayExecutionContext(ExecutorBase):
    """graphql-core's executor, checking Kombo's data where graphql-core would fail on
    it (see the module docstring). Costs nothing on values that are right, beyond one
    type check per leaf, object and list: the work is where they are wrong."""

    @property
    def kombo_types(self) -> dict[str, tuple[str, ...]]:
        return kombo_shapes(self.schema)

    @staticmethod
    def complete_leaf_value(return_type: GraphQLLeafType, result: Any) -> Any:
        return _strict(return_type)(result)

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        self._check_object(return_type, info, result)
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_abstract_value(
        self,
        return_type: GraphQLAbstractType,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        self._check_object(return_type, info, result)
        return super().complete_abstract_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _check_object(self, type_: GraphQLNamedType, info: Any, result: Any) -> None:
        """Raises UpstreamDataError when `result` cannot be served as Kombo's `type_`."""
        keys = self.kombo_types.get(type_.name)
        if keys is not None and not servable(result, keys):
            got = "an object without it" if type(result) is dict else json_kind(result)
            detail = f"expected {_object_shape(keys)}, got {got}"
            raise UpstreamDataError(_wrong_type(info.field_name, detail))

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if info.parent_type.name in self.kombo_types:
            result = self._servable_items(return_type, field_details_list, info, path, result)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _servable_items(
        self, return_type: GraphQLList[Any], details: Any, info: Any, path: Path, result: Any
    ) -> Any:
        """The items of Kombo's list that can be served; reports what it leaves out."""
        name = info.field_name
        if type(result) is not list:
            message = _wrong_type(name, f"expected a list, got {json_kind(result)}")
            field_type = info.return_type
            if not (isinstance(field_type, GraphQLNonNull) and field_type.of_type is return_type):
                raise UpstreamDataError(message)
            self.report(details, path, message + "; it reads as an empty list")
            return []
        item_type = return_type.of_type
        if not isinstance(item_type, GraphQLNonNull):
            return result  # a bad item is null with its own error
        check, shape = self._item_check(item_type.of_type)
        kept = [item for item in result if check(item)]
        left_out = len(result) - len(kept)
        if left_out:
            items = "1 item" if left_out == 1 else f"{left_out} items"
            self.report(
                details,
                path,
                f"Kombo sent {items} in `{name}` that cannot be served (each must be "
                f"{shape}); left out",
            )
        return kept

    def _item_check(self, type_: Any) -> tuple[Callable[[Any], bool], str]:
        if isinstance(type_, GraphQLObjectType):
            keys = self.kombo_types.get(type_.name, ())
            return (lambda item: servable(item, keys)), _object_shape(keys)
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            serialize = _strict(type_)

            def check(item: Any) -> bool:
                try:
                    serialize(item)
                except WrongValueType:
                    return False
                return True

            article = "an" if type_.name[0] in "AEIOU" else "a"
            return check, f"{article} {type_.name}"
        return (lambda item: type(item) is dict), "an object"

    def report(self, field_details_list: Any, path: Path, message: str) -> None:
        """Add an UPSTREAM_ERROR at `path` without nulling the field: its value stands."""
        report_keeping_value(self, UpstreamDataError(message), field_details_list, path)

    def handle_field_error(
        self,
        raw_error: Exception,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        path: Path,
    ) -> None:
        if isinstance(raw_error, WrongValueType) and self._in_kombo_data(path):
            name = field_details_list[0].node.name.value
            raw_error = UpstreamDataError(_wrong_type(name, str(raw_error)))
        super().handle_field_error(raw_error, return_type, field_details_list, path)

    def _in_kombo_data(self, path: Path | None) -> bool:
        """Whether the field at `path` (or the list item) belongs to a type of Kombo's."""
        while path is not None and path.typename is None:
            path = path.prev
        return path is not None and path.typename in self.kombo_types


class ProjectingExecutionContext(GatewayExecutionContext):
    """`GatewayExecutionContext`, completing plain-data objects with compiled projections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What this execution knows of its document, learnt at its first projection.
        self._document: _Document | None = None

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
            if project is None:
                self._count_fallback("not_compiled")
            else:
                # A question completed on its own (its job took the standard path) finds
                # its siblings where the standard `screeningQuestions` resolver left them.
                siblings = getattr(self.context_value, "question_siblings", None)
                try:
                    return project(result, siblings.get(id(result)) if siblings else None)
                except Exception:
                    self._count_fallback("raised")
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _count_fallback(self, reason: str) -> None:
        metrics = getattr(self.context_value, "metrics", None)
        if metrics is not None:
            metrics.fastpath_fallbacks.labels(reason=reason).inc()

    def _projector(self, return_type: GraphQLObjectType, details: Any) -> Projector | None:
        if not plain_details(details):
            return None
        document = self._document or self._learn_document()
        coerced = coerced_variables(self)
        values = tuple(coerced.get(name) for name in document.directive_variables)
        positions = _positions(details) if document.digest is not None else None
        if positions is None:
            # No text to name the nodes by: ids, valid while this execution holds them.
            key: Any = (return_type.name, tuple(id(detail.node) for detail in details), values)
            if document.local is None:
                document.local = BoundedCache(
                    entries=PROJECTOR_CACHE_SIZE, max_bytes=PROJECTOR_CACHE_BYTES
                )
            cache = document.local
        else:
            key = (return_type.name, document.digest, positions, values)
            cache = document.shared.cache
        projector = cache.get(key, _Missing.MISSING)
        if projector is not _Missing.MISSING:
            return projector
        budget = document.shared.budget
        if not budget.allows():
            return None  # not kept: compiled once the budget allows
        started = time.perf_counter()
        compiled, size = self._compile(return_type, details)
        budget.spend(time.perf_counter() - started)
        cache.put(key, compiled, _PROJECTOR_BYTES + _BYTES_PER_SOURCE_CHAR * size)
        return compiled

    def _learn_document(self) -> _Document:
        """The digest of the operation's text, the variables its `@skip`/`@include`
        read, and the schema's projectors: computed once per execution."""
        operation = self.operation
        loc = operation.loc
        digest = None
        if loc is not None:
            digest = text_digest(loc.source.body)
        names = _directive_variables(operation, self.fragments, digest)
        self._document = _Document(digest, names, _projectors_of(self.schema))
        return self._document

    def _compile(
        self, return_type: GraphQLObjectType, details: Any
    ) -> tuple[Projector | None, int]:
        """The projector of this selection (None: the standard path serves it) and the
        size of its source."""
        compiler = ProjectorCompiler(
            collect=self._collect_subfields,
            required_keys=self.kombo_types,
            strict=_strict,
            max_source=MAX_PROJECTOR_SOURCE,
        )
        try:
            return compiler.compile(return_type, list(details)), compiler.size
        except NotProjectable:
            return None, compiler.size

    def _collect_subfields(
        self, type_: GraphQLObjectType, details: list[FieldDetails]
    ) -> dict[str, list[FieldDetails]]:
        """graphql-core's field collection of `type_`'s subfields in these field nodes.

        Raises:
            NotProjectable: the selection defers some of its fields (`@defer`).
        """
        grouped, deferred = collect_subfields(self, type_, details)
        if deferred:
            raise NotProjectable
        return grouped


class _Missing(enum.Enum):
    """Not in the cache (None there means: not compiled)."""

    MISSING = enum.auto()


#: Compiled projectors of one schema, at most, and the memory they may take by
#: estimate: a projector takes 3.5-5 times its source (code object, namespace), measured.
PROJECTOR_CACHE_SIZE: Final = 2048
PROJECTOR_CACHE_BYTES: Final = 16 * 1024 * 1024
_BYTES_PER_SOURCE_CHAR: Final = 5
_PROJECTOR_BYTES: Final = 1024
#: Source of one projector at most: past it, the selection takes the standard path.
#: Every field of `Job`, nested objects and union members included, is ~21 KB; compiling
#: 64 KB takes ~0.1 s, and a selection built to (an alias per union member) reached 636 KB.
MAX_PROJECTOR_SOURCE: Final = 64 * 1024
#: The share of a worker's time compiling may take, and what it may take at once: each
#: new selection costs a compilation, so a caller sending new documents could otherwise
#: keep the worker compiling (a 2.4 KB document spreading one fragment under 15 aliases
#: compiled 300 KB of source, ~0.6 s). Past it, new selections take the standard path
#: until the budget has refilled; compiled ones are unaffected.
COMPILE_SHARE: Final = 0.05
COMPILE_BURST: Final = 1.0


class CompileBudget:
    """Seconds of compiling allowed: `share` of every second, `burst` at most at once.

    Usage::

        budget = CompileBudget(share=0.05, burst=1.0)
        if budget.allows():           # something left (a compilation may overdraw it)
            ...                       # compile
            budget.spend(seconds)

    A compilation's time is only known afterwards, so the budget may go below zero;
    nothing is compiled until it is above zero again.
    """

    def __init__(
        self, share: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.share = share
        self.burst = burst
        self._clock = clock
        self._left = burst
        self._updated = clock()

    def allows(self) -> bool:
        now = self._clock()
        self._left = min(self.burst, self._left + (now - self._updated) * self.share)
        self._updated = now
        return self._left > 0

    def spend(self, seconds: float) -> None:
        self._left -= seconds


class _Projectors:
    """One schema's compiled projectors and compile budget."""

    def __init__(self) -> None:
        self.cache: BoundedCache[Any, Projector | None] = BoundedCache(
            entries=PROJECTOR_CACHE_SIZE, max_bytes=PROJECTOR_CACHE_BYTES
        )
        self.budget = CompileBudget(COMPILE_SHARE, COMPILE_BURST)


#: Per schema, so that schemas (tests build many) neither share projectors compiled for
#: another's types nor spend one another's budget.
_PROJECTORS: weakref.WeakKeyDictionary[GraphQLSchema, _Projectors] = weakref.WeakKeyDictionary()


def _projectors_of(schema: GraphQLSchema) -> _Projectors:
    projectors = _PROJECTORS.get(schema)
    if projectors is None:
        projectors = _PROJECTORS[schema] = _Projectors()
    return projectors


class _Document:
    """What one execution knows of its document (`ProjectingExecutionContext`)."""

    __slots__ = ("digest", "directive_variables", "local", "shared")

    def __init__(
        self, digest: bytes | None, directive_variables: tuple[str, ...], shared: _Projectors
    ) -> None:
        #: Of the document's text: with the nodes' offsets in it, names a selection
        #: without keeping the document alive. None: the document has no source.
        self.digest = digest
        self.directive_variables = directive_variables
        self.shared = shared
        #: Projectors of this execution only (nodes without offsets), made when needed.
        self.local: BoundedCache[Any, Projector | None] | None = None


def _positions(details: Any) -> tuple[int, ...] | None:
    """Where the selection's field nodes start in the document's text (None: unknown)."""
    positions = []
    for detail in details:
        loc = detail.node.loc
        if loc is None:
            return None
        positions.append(loc.start)
    return tuple(positions)


#: (digest of a document's text, offset of an operation in it) -> the variables its
#: `@skip`/`@include` read. Keys hold no document; values are a few names.
_DIRECTIVE_VARIABLES: BoundedCache[tuple[bytes, int], tuple[str, ...]] = BoundedCache(
    entries=PROJECTOR_CACHE_SIZE, max_bytes=4 * 1024 * 1024
)


def _directive_variables(
    operation: OperationDefinitionNode, fragments: Any, digest: bytes | None
) -> tuple[str, ...]:
    """Names of the variables that `@skip`/`@include` read: they change what is selected."""
    key = (digest, operation.loc.start) if digest is not None and operation.loc else None
    if key is not None:
        cached = _DIRECTIVE_VARIABLES.get(key)
        if cached is not None:
            return cached
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
    if key is not None:
        _DIRECTIVE_VARIABLES.put(key, result, 200 + sum(60 + len(name) for name in result))
    return result
