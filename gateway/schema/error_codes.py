"""Schema extension that gives every error its contract code (`gateway.errors.code_error`).

It runs once per operation, after everything else, and only touches errors, so it
adds nothing to the cost of resolving fields. It remembers the phase an error arose
in, since graphql-core's own errors say nothing of their kind.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from gateway.errors import Phase, code_error
from gateway.observability import record_error_codes, set_operation


class ErrorCodes(SchemaExtension):
    """Adds `extensions.code` to every error (and masks unexpected ones)."""

    _phase = Phase.EXECUTION

    def on_parse(self) -> Iterator[None]:
        # graphql-core 3.3 accepts `{ }` by default; the spec (and the depth rule) don't.
        # Strawberry's ParseOptions type lists fewer keys than graphql-core's parse() takes.
        self.execution_context.parse_options["allow_empty_selection_sets"] = False  # type: ignore[typeddict-unknown-key]
        yield
        if self.execution_context.graphql_document is None:
            self._phase = Phase.PARSE

    def on_validate(self) -> Iterator[None]:
        yield
        if self.execution_context.pre_execution_errors:
            self._phase = Phase.VALIDATION

    def on_operation(self) -> Iterator[None]:
        yield
        set_operation(self.execution_context.operation_name)
        result = self.execution_context.result
        errors = result.errors if result is not None else None
        for error in errors or ():
            code_error(error, self._phase)
        if errors:
            record_error_codes(str((error.extensions or {}).get("code")) for error in errors)
