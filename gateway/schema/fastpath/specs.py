"""Field specs: how a field of Kombo's data reads its parent dict, said once, for both
the compiled fast path and what a `jobs` selection decodes.

Usage (the data types declare them; `gateway.schema.fastpath.fields` finds them)::

    strawberry.field(resolver=resolve, metadata=spec_metadata(ListSpec("stages")))

Why: a field whose resolver needs more than `source.get(name)` (an ID, an enum, a
non-null list, a question's precondition) must tell the compiled projectors what it does,
or its whole type takes the standard path. Its spec is the one place that knows it: the
key of its parent dict it reads (`source_key`: which keys a `jobs` page keeps when pruned,
which keys a type requires), and the code that reads it (`read`), which the compiler
places in a projector::

    def project_JobStage(source, siblings):
        value_id = global_id('JobStage', source["id"])      # GlobalIdSpec("JobStage")
        value_name = source.get('name')                       # no spec: a plain field
        ...

The code a spec emits assigns the field's resolved (not yet completed) value to the local
variable it is given. It may read `source` (the parent dict), `siblings` (see
`QuestionsSpec`), `global_id` (`gateway.schema.ids.global_id`) and the names
`ProjectorCode.constant` binds. Where the resolver would not return a value (it would
raise), the code raises too: its object then takes the standard path, which reports it.

This module imports nothing of the gateway: the data types import it without loading the
executor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

#: The key of a Strawberry field's `metadata` that holds its spec.
PROJECTION: Final = "gateway.projection"


class ProjectorCode(Protocol):
    """What a spec may ask of the projector its code is placed in."""

    def constant(self, value: object, name: str) -> str:
        """The name (`name`, made unique) by which the generated code reads `value`."""
        ...


class FieldSpec(ABC):
    """How one field reads its parent dict: the key it reads and the code that reads it."""

    __slots__ = ()

    #: Whether the field's value is a list whose objects each see the whole list as
    #: their `siblings` (what `PreconditionSpec` searches).
    lends_siblings: ClassVar[bool] = False

    @property
    @abstractmethod
    def source_key(self) -> str | None:
        """The one key of the parent dict the field reads; None when it reads more than
        one key, or none the gateway can name."""

    @abstractmethod
    def read(self, value: str, code: ProjectorCode) -> list[str]:
        """Lines of code assigning the field's resolved value to the local `value`."""


def spec_metadata(spec: FieldSpec) -> dict[str, FieldSpec]:
    """A Strawberry field's `metadata` declaring `spec`."""
    return {PROJECTION: spec}


@dataclass(frozen=True, slots=True)
class KeySpec(FieldSpec):
    """The value at `key`, as sent; null when missing (a plain field, a `...Raw` field)."""

    key: str

    @property
    def source_key(self) -> str:
        return self.key

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        return [f"{value} = source.get({self.key!r})"]


@dataclass(frozen=True, slots=True)
class ListSpec(FieldSpec):
    """A non-null list at `key`: an empty list when missing or null. Any other value goes
    on as sent, for the completion to refuse (the standard path reports it)."""

    key: str

    @property
    def source_key(self) -> str:
        return self.key

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        return [f"{value} = source.get({self.key!r})", f"if {value} is None: {value} = []"]


@dataclass(frozen=True, slots=True)
class QuestionsSpec(ListSpec):
    """A job's screening questions (a `ListSpec`): each question finds its precondition
    among them, so the list is every question's `siblings`."""

    lends_siblings: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class PreconditionSpec(FieldSpec):
    """The sibling whose `id` is the value at `key` (the question a question depends on);
    null when there is none."""

    key: str

    @property
    def source_key(self) -> None:
        return None  # the key, and the siblings

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        return [
            f"{value} = None",
            f"wanted = source.get({self.key!r})",
            "if wanted is not None and siblings:",
            "    for sibling in siblings:",
            '        if type(sibling) is dict and sibling.get("id") == wanted:',
            f"            {value} = sibling",
            "            break",
        ]


@dataclass(frozen=True, slots=True)
class KomboIdSpec(FieldSpec):
    """Kombo's `id`, a string: every type holding it requires it (the projector's first
    check, and the standard path's, refuse an object without it)."""

    @property
    def source_key(self) -> str:
        return "id"

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        return [f'{value} = source["id"]']


@dataclass(frozen=True, slots=True)
class GlobalIdSpec(FieldSpec):
    """The global ID of Kombo's `id` as an object of `type_name` (`ids.global_id`)."""

    type_name: str

    @property
    def source_key(self) -> str:
        return "id"

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        return [f'{value} = global_id({self.type_name!r}, source["id"])']


@dataclass(frozen=True, slots=True)
class EnumSpec(FieldSpec):
    """Kombo's string at `key` when it is one of `allowed`, else null; a value that is no
    string raises (the standard path reports it)."""

    key: str
    allowed: frozenset[str]

    @property
    def source_key(self) -> str:
        return self.key

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        allowed = code.constant(self.allowed, f"allowed_{self.key}")
        return [
            f"{value} = source.get({self.key!r})",
            f"if not (type({value}) is str and {value} in {allowed}):",
            f"    if {value} is not None and type({value}) is not str:",
            "        raise TypeError('not a string')",
            f"    {value} = None",
        ]


@dataclass(frozen=True, slots=True)
class ResolverSpec(FieldSpec):
    """A resolver of the parent dict alone, called as is (`fields.field_spec` derives it:
    no field declares it)."""

    function: Callable[[Any], Any]

    @property
    def source_key(self) -> None:
        return None  # the resolver may read any key

    def read(self, value: str, code: ProjectorCode) -> list[str]:
        function = code.constant(self.function, self.function.__name__.lstrip("_"))
        return [f"{value} = {function}(source)"]


@dataclass(frozen=True, slots=True)
class TypeTag:
    """`is_type_of` of a union member that Kombo's object names by the string at `key`
    (a question format's `type`): the member whose `tag` it holds, or, for the member
    with no tag, any value not among `others` (the other members' tags) or no string.

    The compiler dispatches on the tags with one dict lookup instead of asking each
    member in turn, when the members' tags cover the union exactly like that.
    """

    key: str
    tag: str | None
    others: frozenset[str] = frozenset()

    def __call__(self, obj: object, _info: object) -> bool:
        if not isinstance(obj, dict):
            return False
        value = obj.get(self.key)
        if self.tag is not None:
            return bool(value == self.tag)
        return type(value) is not str or value not in self.others
