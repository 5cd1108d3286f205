"""`gateway.upstream.retry` and the Kombo client's retry decisions, with a fake clock (no
sleeping)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.upstream.kombo import KomboAPIError, KomboTransportError, retry_delay
from gateway.upstream.retry import DeadlineExceeded, RetryPolicy


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(time: FakeTime, **kwargs: Any) -> RetryPolicy:
    settings = {"attempts": 4, "attempt_timeout": 30.0, **kwargs}
    return RetryPolicy(clock=time.clock, sleep=time.sleep, rng=random.Random(1), **settings)


class Flaky:
    """Fails with the given errors in turn, then answers "ok"; records each timeout."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.timeouts: list[float] = []

    async def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


UNAVAILABLE = KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE")


async def test_retries_until_success_with_growing_jittered_backoff():
    time = FakeTime()
    attempt = Flaky(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    result = await policy(time, attempts=4).run(attempt, deadline=200, retry_after=retry_delay)
    assert result == "ok"
    assert len(attempt.timeouts) == 4
    assert len(time.sleeps) == 3
    for retry, slept in enumerate(time.sleeps):
        assert 0 <= slept <= 0.2 * 2**retry


async def test_gives_up_after_the_attempts_with_the_last_error():
    time = FakeTime()
    attempt = Flaky(*[UNAVAILABLE] * 5)
    with pytest.raises(KomboAPIError):
        await policy(time, attempts=3).run(attempt, deadline=200, retry_after=retry_delay)
    assert len(attempt.timeouts) == 3


async def test_waits_as_long_as_kombo_asks():
    time = FakeTime()
    limited = KomboAPIError(429, code="PLATFORM.RATE_LIMIT_EXCEEDED", retry_after=2.5)
    await policy(time).run(Flaky(limited), deadline=200, retry_after=retry_delay)
    assert time.sleeps and time.sleeps[0] >= 2.5


async def test_a_wait_past_the_deadline_ends_at_once_with_the_error():
    time = FakeTime()
    limited = KomboAPIError(429, code="PLATFORM.RATE_LIMIT_EXCEEDED", retry_after=30)
    attempt = Flaky(limited)
    with pytest.raises(KomboAPIError) as raised:
        await policy(time).run(attempt, deadline=time.now + 5, retry_after=retry_delay)
    assert raised.value.retry_after == 30
    assert time.sleeps == [] and len(attempt.timeouts) == 1


async def test_each_attempt_gets_at_most_the_time_left():
    time = FakeTime()
    attempt = Flaky()
    await policy(time, attempt_timeout=30).run(
        attempt, deadline=time.now + 4, retry_after=retry_delay
    )
    assert attempt.timeouts == [4]


async def test_no_time_left_raises_deadline_exceeded():
    time = FakeTime()
    with pytest.raises(DeadlineExceeded):
        await policy(time).run(Flaky(), deadline=time.now, retry_after=retry_delay)


async def test_retries_are_reported():
    time = FakeTime()
    seen: list[BaseException] = []
    await policy(time).run(
        Flaky(UNAVAILABLE), deadline=200, retry_after=retry_delay, on_retry=seen.append
    )
    assert seen == [UNAVAILABLE]


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        pytest.param(KomboTransportError("reset"), True, id="transport"),
        pytest.param(
            KomboAPIError(429, code="PLATFORM.RATE_LIMIT_EXCEEDED"), True, id="rate-limit"
        ),
        pytest.param(KomboAPIError(429, code="REMOTE.RATE_LIMIT_EXCEEDED"), True, id="remote-rate"),
        pytest.param(KomboAPIError(503, code="REMOTE.SERVICE_UNAVAILABLE"), True, id="remote-503"),
        pytest.param(
            KomboAPIError(429, code="PLATFORM.CONCURRENCY_LIMIT_EXCEEDED"), True, id="concurrency"
        ),
        pytest.param(KomboAPIError(503), True, id="bare-503-load-balancer"),
        pytest.param(KomboAPIError(502), True, id="bare-502"),
        pytest.param(KomboAPIError(429), True, id="bare-429"),
        pytest.param(
            KomboAPIError(503, code="INTEGRATION.SETUP_SYNC_PENDING"), False, id="legacy-setup-503"
        ),
        pytest.param(KomboAPIError(409, code="INTEGRATION.SETUP_SYNC_PENDING"), False, id="setup"),
        pytest.param(
            KomboAPIError(401, code="PLATFORM.AUTHENTICATION_INVALID"), False, id="auth-never"
        ),
        pytest.param(KomboAPIError(400, code="PLATFORM.INPUT_INVALID"), False, id="input-never"),
        pytest.param(KomboAPIError(404, code="PLATFORM.INPUT_INVALID"), False, id="404"),
        pytest.param(KomboAPIError(500, code="PLATFORM.UNKNOWN_ERROR"), False, id="unknown-500"),
        pytest.param(KomboAPIError(401), False, id="bare-401"),
        pytest.param(ValueError("bug"), False, id="not-a-kombo-error"),
    ],
)
def test_what_is_retried(error: Exception, retried: bool):
    assert (retry_delay(error) is not None) is retried
