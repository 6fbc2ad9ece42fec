"""Retry decisions: which answers to retry, how long to wait. Pure, no I/O."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import attrs

from ._checks import check_int, check_number

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryDecision",
    "RetryPolicy",
    "backoff_delay",
    "check_retry",
    "decide_retry",
    "parse_retry_after",
    "rate_limit_pause",
]

#: Statuses worth another attempt: every call the SDK makes is a safe GET.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _non_negative(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    check_number(attribute.name, value)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the client retries failed attempts.

    The wait before retry ``n`` (counting from 0) is drawn uniformly from
    ``[0, min(backoff_cap, backoff_base * 2**n)]`` ("full jitter"), unless the
    server sent ``Retry-After``, which is honoured up to ``max_retry_after``.

    Attributes:
        max_retries: Retries after the first attempt; 0 disables retrying.
        backoff_base: The first backoff ceiling, in seconds.
        backoff_cap: The largest backoff ceiling, in seconds.
        max_retry_after: The longest ``Retry-After`` the client will sleep
            for; a longer one raises :class:`~external_messages_async.errors.RateLimitError`
            at once.
    """

    max_retries: int = attrs.field(default=3)
    backoff_base: float = attrs.field(default=0.5, validator=_non_negative)
    backoff_cap: float = attrs.field(default=8.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)

    @max_retries.validator
    def _check_max_retries(self, attribute: attrs.Attribute[int], value: int) -> None:
        check_int("max_retries", value, 0)


def check_retry(value: object) -> None:
    """Refuse a ``retry=`` that is neither ``None`` nor a :class:`RetryPolicy`.

    Args:
        value: What the caller passed.

    Raises:
        TypeError: ``value`` has another type.
    """
    if value is not None and not isinstance(value, RetryPolicy):
        raise TypeError(
            f"retry must be a RetryPolicy or None, got {type(value).__name__}"
        )


def backoff_delay(
    retry: int,
    policy: RetryPolicy,
    rand: Callable[[], float] = random.random,
) -> float:
    """Return the full-jitter backoff before retry number ``retry`` (from 0).

    Args:
        retry: How many retries came before this one.
        policy: The retry settings.
        rand: A source of floats in ``[0, 1)``; tests pass a fixed one.

    Returns:
        Seconds to wait.
    """
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** min(retry, 62))
    return float(rand() * ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Args:
        value: The header value, or ``None`` when absent.
        now: The current time, for HTTP-dates; defaults to now in UTC.

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@attrs.frozen
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        retry: Whether to make another attempt.
        delay: Seconds to wait first (0 when not retrying).
        reason: A short description for the debug log.
        retry_after: The server's parsed ``Retry-After``, when it sent one.
    """

    retry: bool
    delay: float = 0.0
    reason: str = ""
    retry_after: float | None = None


def decide_retry(
    *,
    retries_done: int,
    policy: RetryPolicy,
    status: int | None,
    headers: Mapping[str, str] | None = None,
    rand: Callable[[], float] = random.random,
    now: datetime | None = None,
) -> RetryDecision:
    """Decide whether a failed attempt is retried, and after how long.

    Args:
        retries_done: Retries already made for this call.
        policy: The retry settings.
        status: The response status, or ``None`` for a connection error or timeout.
        headers: The response headers (for ``Retry-After``).
        rand: A source of floats in ``[0, 1)``.
        now: The current time, for an HTTP-date ``Retry-After``.

    Returns:
        The decision. ``retry`` is ``False`` when the status is not retryable,
        the retries are used up, or ``Retry-After`` exceeds ``max_retry_after``.
    """
    reason = "connection error" if status is None else f"status {status}"
    if status is not None and status not in RETRYABLE_STATUSES:
        return RetryDecision(False, reason=f"{reason} is not retryable")
    retry_after = parse_retry_after((headers or {}).get("Retry-After"), now)
    if retries_done >= policy.max_retries:
        return RetryDecision(
            False, reason=f"{reason}; retries used up", retry_after=retry_after
        )
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return RetryDecision(
                False,
                reason=f"{reason}; Retry-After {retry_after:g}s exceeds the "
                f"{policy.max_retry_after:g}s cap",
                retry_after=retry_after,
            )
        return RetryDecision(
            True, retry_after, f"{reason}; Retry-After {retry_after:g}s", retry_after
        )
    return RetryDecision(True, backoff_delay(retries_done, policy, rand), reason)


def rate_limit_pause(retry_after: float | None, policy: RetryPolicy) -> float | None:
    """Return how long a 429 pauses every attempt of the client.

    A ``Retry-After`` past ``max_retry_after`` fails the rate-limited call at
    once (see :func:`decide_retry`); it must not park every other call of the
    client for that long either, so it pauses nothing.

    Args:
        retry_after: The server's parsed ``Retry-After`` in seconds, or ``None``.
        policy: The retry settings.

    Returns:
        Seconds to pause, or ``None`` for no pause.
    """
    if retry_after is None or retry_after > policy.max_retry_after:
        return None
    return retry_after
