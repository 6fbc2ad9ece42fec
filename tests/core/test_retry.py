"""Retry decisions, backoff and Retry-After: pure, no event loop."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from external_messages_async import RetryPolicy
from external_messages_async._retry import (
    RETRYABLE_STATUSES,
    backoff_delay,
    decide_retry,
    parse_retry_after,
    rate_limit_pause,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_defaults_are_three_retries_with_a_half_second_base_and_8s_cap() -> None:
    policy = RetryPolicy()

    assert policy.max_retries == 3
    assert (policy.backoff_base, policy.backoff_cap) == (0.5, 8.0)
    assert policy.max_retry_after == 60.0


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_these_statuses_are_retried(status: int) -> None:
    decision = decide_retry(
        retries_done=0, policy=RetryPolicy(), status=status, rand=lambda: 0.5
    )

    assert decision.retry is True
    assert decision.delay == 0.25
    assert str(status) in decision.reason


def test_the_retryable_set_is_exactly_these() -> None:
    assert frozenset({408, 429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501, 505])
def test_these_statuses_are_not_retried(status: int) -> None:
    decision = decide_retry(retries_done=0, policy=RetryPolicy(), status=status)

    assert decision.retry is False
    assert decision.delay == 0.0
    assert "not retryable" in decision.reason


def test_a_connection_error_or_timeout_is_retried() -> None:
    decision = decide_retry(
        retries_done=0, policy=RetryPolicy(), status=None, rand=lambda: 1.0
    )

    assert decision.retry is True
    assert decision.delay == 0.5
    assert decision.reason == "connection error"


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_retries_stop_after_max_retries(max_retries: int) -> None:
    policy = RetryPolicy(max_retries=max_retries)

    retried = [
        decide_retry(retries_done=n, policy=policy, status=503).retry
        for n in range(max_retries + 2)
    ]

    assert retried == [True] * max_retries + [False, False]


def test_zero_retries_disables_retrying() -> None:
    decision = decide_retry(
        retries_done=0, policy=RetryPolicy(max_retries=0), status=None
    )

    assert decision.retry is False
    assert "used up" in decision.reason


@pytest.mark.parametrize(
    ("retry", "ceiling"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (200, 8.0)],
)
def test_full_jitter_ceiling_doubles_up_to_the_cap(retry: int, ceiling: float) -> None:
    policy = RetryPolicy()

    assert backoff_delay(retry, policy, rand=lambda: 0.0) == 0.0
    assert backoff_delay(retry, policy, rand=lambda: 0.5) == ceiling / 2
    assert backoff_delay(retry, policy, rand=lambda: 0.999) == pytest.approx(
        ceiling * 0.999
    )


def test_backoff_base_and_cap_are_configurable() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_cap=0.3)

    ceilings = [backoff_delay(n, policy, rand=lambda: 1.0) for n in range(4)]

    assert ceilings == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_default_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_cap=2.0)

    delays = [backoff_delay(3, policy) for _ in range(200)]

    assert all(0.0 <= d <= 2.0 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),
        ("Wed, 01 May 2024 12:01:00 -0000", 60.0),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "Wed, 99 Foo 2024"])
def test_unreadable_retry_after_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_http_date_retry_after_defaults_to_the_current_time() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


def test_retry_after_replaces_the_backoff() -> None:
    decision = decide_retry(
        retries_done=0,
        policy=RetryPolicy(),
        status=429,
        headers={"Retry-After": "3"},
        rand=lambda: 0.0,
    )

    assert (decision.retry, decision.delay, decision.retry_after) == (True, 3.0, 3.0)
    assert "Retry-After 3s" in decision.reason


def test_http_date_retry_after_replaces_the_backoff() -> None:
    decision = decide_retry(
        retries_done=0,
        policy=RetryPolicy(),
        status=503,
        headers={"Retry-After": "Wed, 01 May 2024 12:00:05 GMT"},
        now=NOW,
    )

    assert (decision.retry, decision.delay) == (True, 5.0)


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    decision = decide_retry(
        retries_done=0,
        policy=RetryPolicy(max_retry_after=60.0),
        status=429,
        headers={"Retry-After": "3600"},
    )

    assert decision.retry is False
    assert decision.delay == 0.0
    assert decision.retry_after == 3600.0
    assert "exceeds" in decision.reason


def test_retry_after_is_reported_when_retries_are_used_up() -> None:
    decision = decide_retry(
        retries_done=3,
        policy=RetryPolicy(),
        status=429,
        headers={"Retry-After": "2"},
    )

    assert (decision.retry, decision.retry_after) == (False, 2.0)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("max_retries", -1, ValueError),
        ("max_retries", 1.5, TypeError),
        ("max_retries", True, TypeError),
        ("backoff_base", -0.1, ValueError),
        ("backoff_cap", -1.0, ValueError),
        ("max_retry_after", -1.0, ValueError),
    ],
)
def test_policy_refuses_bad_settings(field: str, value: object, error: type) -> None:
    with pytest.raises(error, match=field):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]  # wrong on purpose


def test_policy_is_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(3)  # type: ignore[misc]  # positional on purpose: the options are keyword-only


@pytest.mark.parametrize(
    ("header", "retried"), [("4.999", True), ("5", True), ("5.001", False)]
)
def test_the_retry_after_cap_is_inclusive(header: str, retried: bool) -> None:
    """Only a Retry-After longer than max_retry_after fails the call at once."""
    decision = decide_retry(
        retries_done=0,
        policy=RetryPolicy(max_retry_after=5.0),
        status=429,
        headers={"Retry-After": header},
    )

    assert decision.retry is retried
    assert decision.retry_after == float(header)


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [(None, None), (0.0, 0.0), (4.5, 4.5), (5.0, 5.0), (5.001, None), (3600.0, None)],
)
def test_a_429_pauses_the_client_up_to_and_including_the_cap(
    retry_after: float | None, pause: float | None
) -> None:
    assert rate_limit_pause(retry_after, RetryPolicy(max_retry_after=5.0)) == pause
