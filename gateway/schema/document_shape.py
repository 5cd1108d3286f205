"""What an operation costs before it runs: fields after fragment expansion, depth and
nesting, computed without expanding anything.

Usage::

    problem = shape_problem(document, ShapeLimits(max_fields=2_000, max_depth=15))
    if problem is not None:
        ...  # refuse with GRAPHQL_VALIDATION_FAILED, before any other validation rule

Why: a document whose fragments each spread the previous one twice is ~850 bytes, yet
expands to 2^21 fields; graphql-core's validation (`OverlappingFieldsCanBeMerged`
above all), Strawberry's depth limiter and execution all walk the expansion, freezing a
worker for seconds to minutes. Here each fragment's figures are computed once and
reused wherever it is spread, so the cost is linear in the document's size whatever it
expands to.

No recursion on the document's depth either: a chain of a few hundred fragments made the
recursive walkers (Strawberry's depth limiter, graphql-core's rules) raise RecursionError.
Every walk here uses an explicit stack, and `max_nesting` refuses documents whose
selections and fragment spreads nest deeper than those walkers can go. Figures are capped
just past their limits, so numbers stay small. A fragment cycle is over every limit
(graphql-core's `NoFragmentCycles` would name it, but spreading a cycle never ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

#: Selection sets and fragment spreads nested in one another, at most. GraphiQL's
#: introspection query nests 14 deep; graphql-core's recursive rules fail near 200.
MAX_NESTING: Final = 64


@dataclass(frozen=True, slots=True)
class ShapeLimits:
    """The limits `shape_problem` checks."""

    #: Fields one operation may select after fragment expansion (`GATEWAY_MAX_FIELDS`).
    max_fields: int
    #: Fields with selections nested in one another (introspection fields not counted).
    max_depth: int
    max_nesting: int = MAX_NESTING


@dataclass(frozen=True, slots=True)
class _Figures:
    """A selection set's figures, fragments expanded: fields selected, depth (nested
    fields with selections, introspection left out), nesting (selection sets and
    fragment spreads, everything counted)."""

    fields: int
    depth: int
    nesting: int


def shape_problem(document: DocumentNode, limits: ShapeLimits) -> str | None:
    """Why an operation of `document` is over a limit, or None when all fit.

    A fragment the document spreads but does not define counts as empty (validation
    reports it).
    """
    measure = _Measure(document, limits)
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        figures = measure.selection(definition.selection_set)
        name = f"`{definition.name.value}`" if definition.name else "The anonymous operation"
        if figures.nesting > limits.max_nesting:
            return (
                f"{name} nests selections and fragment spreads more than {limits.max_nesting} deep"
            )
        if figures.fields > limits.max_fields:
            return (
                f"{name} selects more than {limits.max_fields} fields once its fragments "
                f"are expanded (GATEWAY_MAX_FIELDS)"
            )
        if figures.depth > limits.max_depth:
            return f"{name} exceeds the maximum depth of {limits.max_depth} (GATEWAY_MAX_DEPTH)"
    return None


class _Measure:
    """Figures of a document's fragments, each computed once."""

    def __init__(self, document: DocumentNode, limits: ShapeLimits) -> None:
        self._cap = _Figures(limits.max_fields + 1, limits.max_depth + 1, limits.max_nesting + 1)
        self._fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._known: dict[str, _Figures] = {}

    def selection(self, selection_set: SelectionSetNode) -> _Figures:
        """Figures of `selection_set`, its fragment spreads expanded."""
        self._measure_fragments(_spreads(selection_set))
        return self._direct(selection_set)

    def _direct(self, selection_set: SelectionSetNode) -> _Figures:
        """Figures of `selection_set`, every fragment it spreads already measured."""
        cap = self._cap
        fields = depth = nesting = 0
        # (selection set, fields with selections above it, nesting above it, introspection?)
        stack: list[tuple[SelectionSetNode, int, int, bool]] = [(selection_set, 0, 1, False)]
        while stack:
            current, above, level, ignored = stack.pop()
            nesting = max(nesting, level)
            for selection in current.selections:
                if isinstance(selection, FieldNode):
                    fields += 1
                    if selection.selection_set is not None:
                        skip = ignored or selection.name.value.startswith("__")
                        inner = above if skip else above + 1
                        depth = max(depth, inner)
                        stack.append((selection.selection_set, inner, level + 1, skip))
                elif isinstance(selection, InlineFragmentNode):
                    stack.append((selection.selection_set, above, level + 1, ignored))
                elif isinstance(selection, FragmentSpreadNode):
                    known = self._known.get(selection.name.value)
                    if known is not None:
                        fields += known.fields
                        nesting = max(nesting, level + known.nesting)
                        if not ignored:
                            depth = max(depth, above + known.depth)
            if fields >= cap.fields or depth >= cap.depth or nesting >= cap.nesting:
                return _Figures(
                    min(fields, cap.fields), min(depth, cap.depth), min(nesting, cap.nesting)
                )
        return _Figures(fields, depth, nesting)

    def _measure_fragments(self, names: list[str]) -> None:
        """Measure the named fragments and all they spread, dependencies first (an
        explicit stack: a chain of fragments is as long as the attacker likes)."""
        visiting: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False) for name in names]
        while stack:
            name, dependencies_done = stack.pop()
            if name in self._known:
                continue
            fragment = self._fragments.get(name)
            if fragment is None:
                self._known[name] = _Figures(0, 0, 0)
            elif dependencies_done:
                visiting.discard(name)
                self._known[name] = self._direct(fragment.selection_set)
            elif name in visiting:
                # A cycle: spreading it never ends, so it is over every limit.
                self._known[name] = self._cap
            else:
                visiting.add(name)
                stack.append((name, True))
                stack.extend((spread, False) for spread in _spreads(fragment.selection_set))


def _spreads(selection_set: SelectionSetNode) -> list[str]:
    """Names of the fragments spread anywhere below `selection_set` (not inside them)."""
    names: list[str] = []
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                if selection.selection_set is not None:
                    stack.append(selection.selection_set)
    return names
