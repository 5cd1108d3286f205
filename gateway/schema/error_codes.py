"""Every GraphQL error gets its contract code (`extensions.code`), in place.

The table is in `gateway.errors`; graphql-core's own errors get theirs from the phase
of the request they arose in, and anything unexpected is logged and masked.
"""

from __future__ import annotations

import enum
import logging

from graphql import GraphQLError

from gateway.errors import INTERNAL_MESSAGE, BadUserInput, Code, GatewayError
from gateway.upstream.budget import CallBudgetSpent
from gateway.upstream.failures import UpstreamFailure
from gateway.upstream.kombo import KomboError

logger = logging.getLogger("gateway.errors")


class Phase(enum.Enum):
    """Where in a GraphQL request an error arose; decides codes for graphql-core's own errors."""

    PARSE = "parse"
    VALIDATION = "validation"
    EXECUTION = "execution"


def code_error(error: GraphQLError, phase: Phase) -> None:
    """Give `error` its contract code (and mask it if it is a bug), in place."""
    original = _root_cause(error)
    if isinstance(original, CallBudgetSpent):
        original = BadUserInput(str(original))
        error.message = str(original)
    if isinstance(original, KomboError):
        original = UpstreamFailure(original)
        error.message = str(original)
    if isinstance(original, GatewayError):
        error.extensions = {**(error.extensions or {}), **original.extensions()}
        return
    if error.path is None:
        # Not raised while resolving a field: the request itself is at fault (its text,
        # its variables, a literal a scalar refused), whatever exception says so.
        code = {
            Phase.PARSE: Code.GRAPHQL_PARSE_FAILED,
            Phase.VALIDATION: Code.GRAPHQL_VALIDATION_FAILED,
            Phase.EXECUTION: Code.BAD_USER_INPUT,
        }[phase]
        error.extensions = {**(error.extensions or {}), "code": str(code)}
        return
    # Raised while resolving a field, and not by us on purpose: a bug. Log it, mask it.
    if original is not None:
        exc_info = (type(original), original, original.__traceback__)
        logger.error("unexpected error at %s", error.path, exc_info=exc_info)
    else:
        logger.error("unexpected error at %s: %s", error.path, error.message)
    error.message = INTERNAL_MESSAGE
    error.extensions = {"code": str(Code.INTERNAL_SERVER_ERROR)}


def _root_cause(error: GraphQLError) -> BaseException | None:
    """The first non-GraphQL exception behind `error` (graphql-core wraps errors in errors)."""
    cause = error.original_error
    while isinstance(cause, GraphQLError):
        cause = cause.original_error
    return cause
