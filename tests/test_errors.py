"""`gateway.upstream.failures` and `gateway.schema.error_codes`: Kombo failures to contract
codes, `extensions`, and `code_error`.

`code_error` is exercised on the errors graphql-core itself produces (parse, validate,
execute over a tiny schema), so the shapes are the real ones, not hand-made guesses.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    execute_sync,
    parse,
    validate,
)

from gateway.errors import (
    INTERNAL_MESSAGE,
    BadUserInput,
    Code,
    Forbidden,
    GatewayError,
    Unauthenticated,
)
from gateway.schema.error_codes import Phase, code_error
from gateway.upstream.failures import UpstreamFailure, upstream_code
from gateway.upstream.kombo import KomboAPIError, KomboError, KomboTransportError

SECRET_DETAIL = "db password hunter2 at /srv/gateway/internal.py"


# --- upstream_code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        # The Kombo code decides whenever it is present and specific.
        pytest.param(503, "INTEGRATION.SETUP_SYNC_PENDING", Code.UPSTREAM_ERROR, id="sync-503"),
        pytest.param(409, "INTEGRATION.SETUP_SYNC_PENDING", Code.UPSTREAM_ERROR, id="sync-409"),
        pytest.param(503, "INTEGRATION.SETUP_INCOMPLETE", Code.UPSTREAM_ERROR, id="setup-503"),
        pytest.param(429, "PLATFORM.RATE_LIMIT_EXCEEDED", Code.RATE_LIMITED, id="rate-429"),
        pytest.param(400, "PLATFORM.RATE_LIMIT_EXCEEDED", Code.RATE_LIMITED, id="rate-400"),
        pytest.param(429, "REMOTE.RATE_LIMIT_EXCEEDED", Code.RATE_LIMITED, id="remote-rate"),
        pytest.param(
            429, "PLATFORM.CONCURRENCY_LIMIT_EXCEEDED", Code.RATE_LIMITED, id="concurrency"
        ),
        pytest.param(401, "PLATFORM.AUTHENTICATION_INVALID", Code.UNAUTHENTICATED, id="auth-401"),
        pytest.param(400, "PLATFORM.AUTHENTICATION_INVALID", Code.UNAUTHENTICATED, id="auth-400"),
        pytest.param(
            502, "REMOTE.SERVICE_UNAVAILABLE", Code.UPSTREAM_UNAVAILABLE, id="remote-down-502"
        ),
        pytest.param(
            400, "REMOTE.SERVICE_UNAVAILABLE", Code.UPSTREAM_UNAVAILABLE, id="remote-down-400"
        ),
        pytest.param(504, "PLATFORM.TASK_TIMED_OUT", Code.UPSTREAM_UNAVAILABLE, id="timed-out"),
        pytest.param(404, "PLATFORM.INTEGRATION_NOT_FOUND", Code.FORBIDDEN, id="no-integration"),
        pytest.param(500, "PLATFORM.INTEGRATION_NOT_FOUND", Code.FORBIDDEN, id="no-integ-500"),
        pytest.param(401, "INTEGRATION.AUTHENTICATION_INVALID", Code.UPSTREAM_ERROR, id="ats-auth"),
        pytest.param(403, "INTEGRATION.PERMISSION_MISSING", Code.UPSTREAM_ERROR, id="ats-perm"),
        pytest.param(400, "PLATFORM.INPUT_INVALID", Code.UPSTREAM_ERROR, id="input-invalid"),
        pytest.param(500, "REMOTE.UNKNOWN_HTTP_ERROR", Code.UPSTREAM_ERROR, id="remote-unknown"),
        pytest.param(503, "SOME.FUTURE_CODE", Code.UPSTREAM_ERROR, id="unknown-code-503"),
        # No code: the HTTP status decides.
        pytest.param(401, None, Code.UNAUTHENTICATED, id="401"),
        pytest.param(403, None, Code.FORBIDDEN, id="403"),
        pytest.param(429, None, Code.RATE_LIMITED, id="429"),
        pytest.param(500, None, Code.UPSTREAM_UNAVAILABLE, id="500"),
        pytest.param(502, None, Code.UPSTREAM_UNAVAILABLE, id="502"),
        pytest.param(503, None, Code.UPSTREAM_UNAVAILABLE, id="503"),
        pytest.param(504, None, Code.UPSTREAM_UNAVAILABLE, id="504"),
        pytest.param(404, None, Code.UPSTREAM_ERROR, id="404"),
        pytest.param(400, None, Code.UPSTREAM_ERROR, id="400"),
        pytest.param(409, None, Code.UPSTREAM_ERROR, id="409"),
        # A generic code decides nothing: the HTTP status does.
        pytest.param(503, "PLATFORM.UNKNOWN_ERROR", Code.UPSTREAM_UNAVAILABLE, id="unknown-503"),
        pytest.param(500, "PLATFORM.UNKNOWN_ERROR", Code.UPSTREAM_UNAVAILABLE, id="unknown-500"),
        pytest.param(429, "PLATFORM.UNKNOWN_ERROR", Code.RATE_LIMITED, id="unknown-429"),
        pytest.param(401, "PLATFORM.UNKNOWN_ERROR", Code.UNAUTHENTICATED, id="unknown-401"),
        pytest.param(400, "PLATFORM.UNKNOWN_ERROR", Code.UPSTREAM_ERROR, id="unknown-400"),
    ],
)
def test_upstream_code(status: int, code: str | None, expected: Code) -> None:
    assert upstream_code(KomboAPIError(status, code=code)) is expected


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            KomboTransportError("Kombo did not answer in time (ReadTimeout)"), id="timeout"
        ),
        pytest.param(KomboTransportError("could not reach Kombo (ConnectError)"), id="connect"),
        pytest.param(KomboError("something else"), id="base-class"),
    ],
)
def test_transport_failures_are_upstream_unavailable(error: KomboError) -> None:
    assert upstream_code(error) is Code.UPSTREAM_UNAVAILABLE


# --- UpstreamFailure -----------------------------------------------------------------------


def test_extensions_carry_kombos_error_exactly_as_sent() -> None:
    error = KomboAPIError(
        409,
        code="INTEGRATION.SETUP_SYNC_PENDING",
        title="Setup sync pending",
        message="The initial sync of this integration has not finished yet.",
        log_url="https://app.kombo.dev/acme/logs?id=req_9",
        retry_after=30.0,
    )

    assert UpstreamFailure(error).extensions() == {
        "code": "UPSTREAM_ERROR",
        "kombo": {
            "code": "INTEGRATION.SETUP_SYNC_PENDING",
            "title": "Setup sync pending",
            "message": "The initial sync of this integration has not finished yet.",
            "logUrl": "https://app.kombo.dev/acme/logs?id=req_9",
            "httpStatus": 409,
        },
    }


def test_extensions_of_a_bare_load_balancer_503_keep_nulls() -> None:
    assert UpstreamFailure(KomboAPIError(503)).extensions() == {
        "code": "UPSTREAM_UNAVAILABLE",
        "kombo": {"code": None, "title": None, "message": None, "logUrl": None, "httpStatus": 503},
    }


def test_extensions_of_a_transport_failure_have_no_kombo_part() -> None:
    failure = UpstreamFailure(KomboTransportError("could not reach Kombo (ConnectError)"))

    assert failure.extensions() == {"code": "UPSTREAM_UNAVAILABLE"}
    assert "Kombo is unavailable" in str(failure)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(0.0, 0, id="zero"),
        pytest.param(0.2, 1, id="fraction-rounds-up"),
        pytest.param(2.0, 2, id="whole"),
        pytest.param(2.0001, 3, id="just-over-rounds-up"),
        pytest.param(57.5, 58, id="reset-window"),
    ],
)
def test_retry_after_is_whole_seconds_rounded_up_when_rate_limited(
    retry_after: float, expected: int
) -> None:
    error = KomboAPIError(429, code="PLATFORM.RATE_LIMIT_EXCEEDED", retry_after=retry_after)

    extensions = UpstreamFailure(error).extensions()

    assert extensions["code"] == "RATE_LIMITED"
    assert extensions["retryAfter"] == expected
    assert type(extensions["retryAfter"]) is int


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(KomboAPIError(429, code="PLATFORM.RATE_LIMIT_EXCEEDED"), id="unknown-delay"),
        pytest.param(
            KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE", retry_after=5.0), id="503"
        ),
        pytest.param(
            KomboAPIError(409, code="INTEGRATION.SETUP_SYNC_PENDING", retry_after=5.0),
            id="sync-pending",
        ),
    ],
)
def test_retry_after_is_absent_unless_rate_limited_with_a_known_delay(
    error: KomboAPIError,
) -> None:
    assert "retryAfter" not in UpstreamFailure(error).extensions()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        pytest.param(
            KomboAPIError(401, code="PLATFORM.AUTHENTICATION_INVALID", message="Invalid API key."),
            "Invalid API key.",
            id="message",
        ),
        pytest.param(
            KomboAPIError(409, code="INTEGRATION.SETUP_SYNC_PENDING", title="Sync pending"),
            "Sync pending",
            id="title-when-no-message",
        ),
        pytest.param(KomboAPIError(503), "HTTP 503", id="status-when-nothing-else"),
    ],
)
def test_upstream_failure_message_tells_the_caller_what_kombo_said(
    error: KomboAPIError, shown: str
) -> None:
    message = str(UpstreamFailure(error))

    assert shown in message
    assert "None" not in message


@pytest.mark.parametrize(
    ("error", "code"),
    [
        pytest.param(BadUserInput("bad"), "BAD_USER_INPUT", id="bad-user-input"),
        pytest.param(Unauthenticated("who?"), "UNAUTHENTICATED", id="unauthenticated"),
        pytest.param(Forbidden("no"), "FORBIDDEN", id="forbidden"),
        pytest.param(GatewayError("?"), "INTERNAL_SERVER_ERROR", id="base-class"),
    ],
)
def test_gateway_error_extensions_are_just_the_code(error: GatewayError, code: str) -> None:
    assert error.extensions() == {"code": code}


# --- code_error on graphql-core's own errors -----------------------------------------------


def _reject(value: Any) -> Any:
    raise ValueError(f"not a date: {value!r}")


_REJECTING = GraphQLScalarType("When", parse_value=_reject)


def _raise(_source: Any, info: Any, **_args: Any) -> Any:
    raise info.context


SCHEMA = GraphQLSchema(
    GraphQLObjectType(
        "Query",
        {
            "ok": GraphQLField(GraphQLString, resolve=lambda *_: "ok"),
            "boom": GraphQLField(GraphQLString, resolve=_raise),
            "count": GraphQLField(GraphQLInt, resolve=lambda *_: "not a number"),
            "since": GraphQLField(
                GraphQLString,
                args={"when": GraphQLArgument(_REJECTING), "n": GraphQLArgument(GraphQLInt)},
                resolve=lambda *_, **__: "ok",
            ),
        },
    )
)


def parse_error(source: str) -> GraphQLError:
    with pytest.raises(GraphQLError) as info:
        parse(source)
    return info.value


def validation_error(source: str) -> GraphQLError:
    errors = validate(SCHEMA, parse(source))
    assert len(errors) == 1, errors
    return errors[0]


def execution_error(
    source: str, variables: dict[str, Any] | None = None, raises: Exception | None = None
) -> GraphQLError:
    result = execute_sync(SCHEMA, parse(source), variable_values=variables, context_value=raises)
    errors = result.errors
    assert errors is not None and len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize(
    ("make", "phase", "code"),
    [
        pytest.param(lambda: parse_error("{ ok "), Phase.PARSE, "GRAPHQL_PARSE_FAILED", id="parse"),
        pytest.param(
            lambda: validation_error("{ nope }"),
            Phase.VALIDATION,
            "GRAPHQL_VALIDATION_FAILED",
            id="unknown-field",
        ),
        pytest.param(
            lambda: validation_error('{ since(n: "x") }'),
            Phase.VALIDATION,
            "GRAPHQL_VALIDATION_FAILED",
            id="bad-int-literal",
        ),
        pytest.param(
            lambda: validation_error('{ since(when: "yesterday") }'),
            Phase.VALIDATION,
            "GRAPHQL_VALIDATION_FAILED",
            id="custom-scalar-rejects-literal",
        ),
        pytest.param(
            lambda: execution_error("query($n: Int) { since(n: $n) }", {"n": "x"}),
            Phase.EXECUTION,
            "BAD_USER_INPUT",
            id="bad-int-variable",
        ),
        pytest.param(
            lambda: execution_error("query($n: Int!) { since(n: $n) }", {}),
            Phase.EXECUTION,
            "BAD_USER_INPUT",
            id="missing-variable",
        ),
        pytest.param(
            lambda: execution_error("query($w: When) { since(when: $w) }", {"w": "yesterday"}),
            Phase.EXECUTION,
            "BAD_USER_INPUT",
            id="custom-scalar-rejects-variable",
        ),
    ],
)
def test_graphql_core_errors_get_the_code_of_their_phase(
    make: Any, phase: Phase, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    error: GraphQLError = make()
    message = error.message

    code_error(error, phase)

    assert error.extensions == {"code": code}
    assert error.message == message  # the caller's mistake is explained, not masked
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_existing_extensions_are_kept_beside_the_code() -> None:
    error = GraphQLError("bad", extensions={"hint": "use first <= 250"})

    code_error(error, Phase.VALIDATION)

    assert error.extensions == {"hint": "use first <= 250", "code": "GRAPHQL_VALIDATION_FAILED"}


@pytest.mark.parametrize(
    ("raised", "message", "extensions"),
    [
        pytest.param(
            BadUserInput("`first` must be between 0 and 250, got 251"),
            "`first` must be between 0 and 250, got 251",
            {"code": "BAD_USER_INPUT"},
            id="bad-user-input",
        ),
        pytest.param(Forbidden("no"), "no", {"code": "FORBIDDEN"}, id="forbidden"),
        pytest.param(
            KomboAPIError(
                429,
                code="PLATFORM.RATE_LIMIT_EXCEEDED",
                title="Rate limit exceeded",
                message="Slow down",
                log_url="https://app.kombo.dev/logs/1",
                retry_after=1.2,
            ),
            "Kombo's rate limit was exceeded: Slow down",
            {
                "code": "RATE_LIMITED",
                "retryAfter": 2,
                "kombo": {
                    "code": "PLATFORM.RATE_LIMIT_EXCEEDED",
                    "title": "Rate limit exceeded",
                    "message": "Slow down",
                    "logUrl": "https://app.kombo.dev/logs/1",
                    "httpStatus": 429,
                },
            },
            id="kombo-api-error",
        ),
        pytest.param(
            KomboTransportError("Kombo did not answer in time (ReadTimeout)"),
            "Kombo is unavailable: Kombo did not answer in time (ReadTimeout)",
            {"code": "UPSTREAM_UNAVAILABLE"},
            id="kombo-transport-error",
        ),
        pytest.param(
            UpstreamFailure(KomboAPIError(401, code="PLATFORM.AUTHENTICATION_INVALID")),
            "Kombo rejected the gateway's credentials: HTTP 401",
            {
                "code": "UNAUTHENTICATED",
                "kombo": {
                    "code": "PLATFORM.AUTHENTICATION_INVALID",
                    "title": None,
                    "message": None,
                    "logUrl": None,
                    "httpStatus": 401,
                },
            },
            id="upstream-failure",
        ),
    ],
)
def test_a_resolver_error_gets_its_code_and_a_safe_message(
    raised: Exception,
    message: str,
    extensions: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = execution_error("{ ok boom }", raises=raised)

    code_error(error, Phase.EXECUTION)

    assert error.message == message
    assert error.extensions == extensions
    assert error.path == ["boom"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unexpected_resolver_exception_is_masked_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = execution_error("{ boom }", raises=RuntimeError(SECRET_DETAIL))

    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        code_error(error, Phase.EXECUTION)

    assert error.message == INTERNAL_MESSAGE
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert SECRET_DETAIL not in str(error.formatted)
    [record] = [r for r in caplog.records if r.name == "gateway.errors"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert SECRET_DETAIL in caplog.text  # the operator can see what went wrong


def test_a_value_that_fails_to_serialize_is_masked_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = execution_error("{ count }")
    assert isinstance(error.original_error, GraphQLError)  # graphql-core wraps its own error

    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        code_error(error, Phase.EXECUTION)

    assert error.message == INTERNAL_MESSAGE
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert [r.levelno for r in caplog.records if r.name == "gateway.errors"] == [logging.ERROR]


@pytest.mark.parametrize(
    ("inner", "message", "code"),
    [
        pytest.param(
            GraphQLError("inner", original_error=BadUserInput("bad cursor")),
            "outer",
            "BAD_USER_INPUT",
            id="wrapping-gateway-error",
        ),
        pytest.param(
            GraphQLError("inner", original_error=KomboAPIError(503)),
            "Kombo is unavailable: HTTP 503",
            "UPSTREAM_UNAVAILABLE",
            id="wrapping-kombo-error",
        ),
        pytest.param(
            GraphQLError("inner", original_error=GraphQLError("x", original_error=Forbidden("x"))),
            "outer",
            "FORBIDDEN",
            id="three-deep",
        ),
        pytest.param(
            GraphQLError("inner", original_error=RuntimeError(SECRET_DETAIL)),
            INTERNAL_MESSAGE,
            "INTERNAL_SERVER_ERROR",
            id="wrapping-runtime-error",
        ),
    ],
)
def test_a_graphql_error_wrapping_a_graphql_error_is_coded_by_the_root_cause(
    inner: GraphQLError, message: str, code: str
) -> None:
    error = GraphQLError("outer", original_error=inner, path=["jobs"])

    code_error(error, Phase.EXECUTION)

    assert error.message == message
    assert error.extensions is not None
    assert error.extensions["code"] == code
