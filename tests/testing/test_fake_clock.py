"""The server clock, without I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from external_messages_async.testing import ServerClock

UTC = dt.timezone.utc
START = dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


def test_the_clock_stands_still_until_told() -> None:
    clock = ServerClock(START)

    assert clock.now() == clock.now() == START


def test_advance_takes_seconds_or_a_timedelta_and_may_go_back() -> None:
    clock = ServerClock(START)

    clock.advance(1.5)
    clock.advance(dt.timedelta(minutes=1))
    clock.advance(-0.5)

    assert clock.now() == START + dt.timedelta(seconds=61)


def test_set_moves_to_any_time_and_keeps_it_in_utc() -> None:
    clock = ServerClock(START)
    paris = dt.timezone(dt.timedelta(hours=2))

    clock.set(dt.datetime(2024, 1, 1, 2, 0, tzinfo=paris))

    assert clock.now() == dt.datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_the_default_start_is_now_in_whole_seconds() -> None:
    before = dt.datetime.now(UTC).replace(microsecond=0)

    now = ServerClock().now()

    assert now.microsecond == 0
    assert before <= now <= dt.datetime.now(UTC)


@pytest.mark.parametrize("bad", [dt.datetime(2024, 7, 1), "2024-07-01T00:00:00Z"])
def test_naive_or_non_datetime_times_are_refused(bad: object) -> None:
    error = ValueError if isinstance(bad, dt.datetime) else TypeError

    with pytest.raises(error, match="start"):
        ServerClock(bad)  # type: ignore[arg-type]  # the wrong type on purpose
    with pytest.raises(error, match="when"):
        ServerClock(START).set(bad)  # type: ignore[arg-type]  # on purpose


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_advance_refuses_what_is_not_a_finite_step(step: object, error: type) -> None:
    clock = ServerClock(START)

    with pytest.raises(error):
        clock.advance(step)  # type: ignore[arg-type]  # the wrong type on purpose

    assert clock.now() == START


def test_repr_shows_the_time() -> None:
    assert repr(ServerClock(START)) == "ServerClock('2024-07-01T12:00:00+00:00')"
