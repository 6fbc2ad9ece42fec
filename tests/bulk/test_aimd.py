"""Specification of the limiter's pure decisions: additive increase, multiplicative decrease."""

from __future__ import annotations

import attrs

from external_messages_async._limiter import (
    AimdState,
    after_rate_limited,
    after_success,
)


def rate_limited(state: AimdState, **kwargs: object) -> AimdState:
    options: dict[str, object] = {
        "now": 100.0,
        "retry_after": None,
        "in_flight": 8,
        "attempt_epoch": state.epoch,
    }
    options.update(kwargs)
    return after_rate_limited(state, **options)  # type: ignore[arg-type]  # options holds mixed values; the function checks them


def test_a_fresh_state_caps_at_the_ceiling():
    state = AimdState.start(8)

    assert state.limit == 8
    assert state.admits(7)
    assert not state.admits(8)


def test_no_ceiling_admits_everything():
    assert AimdState.start(None).admits(10_000)


def test_a_429_halves_the_cap():
    assert rate_limited(AimdState.start(8)).limit == 4


def test_the_cap_never_falls_below_one():
    state = AimdState.start(1)

    state = rate_limited(state)

    assert state.limit == 1


def test_a_429_pauses_until_retry_after_has_passed():
    state = rate_limited(AimdState.start(8), now=100.0, retry_after=2.5)

    assert state.paused_until == 102.5


def test_a_429_without_retry_after_does_not_pause():
    state = rate_limited(AimdState.start(8), now=100.0, retry_after=None)

    assert state.paused_until == 0.0


def test_a_shorter_retry_after_never_shortens_a_pause():
    state = rate_limited(AimdState.start(8), now=100.0, retry_after=5.0)

    state = rate_limited(state, now=101.0, retry_after=1.0)

    assert state.paused_until == 105.0


def test_429s_to_one_round_of_requests_lower_the_cap_once():
    """Attempts sent before the decrease carry the old epoch: one signal."""
    start = AimdState.start(8)
    first = rate_limited(start, attempt_epoch=start.epoch)

    second = rate_limited(first, attempt_epoch=start.epoch)

    assert first.limit == second.limit == 4


def test_a_429_to_a_request_sent_after_the_decrease_lowers_it_again():
    state = rate_limited(AimdState.start(8))

    state = rate_limited(state, attempt_epoch=state.epoch)

    assert state.limit == 2


def test_a_stale_429_still_extends_the_pause():
    start = AimdState.start(8)
    first = rate_limited(start, now=100.0, retry_after=1.0)

    second = rate_limited(first, now=100.5, retry_after=3.0, attempt_epoch=0)

    assert second.paused_until == 103.5
    assert second.limit == 4


def test_the_cap_grows_by_one_after_limit_successes():
    state = rate_limited(AimdState.start(8))

    for _ in range(3):
        state = after_success(state)
    before = state.limit
    state = after_success(state)

    assert before == 4
    assert state.limit == 5
    assert state.successes == 0


def test_the_cap_stops_growing_at_the_ceiling():
    state = rate_limited(AimdState.start(8))

    for _ in range(1000):
        state = after_success(state)

    assert state.limit == 8


def test_successes_change_nothing_at_the_ceiling():
    state = AimdState.start(8)

    assert after_success(state) is state


def test_without_a_ceiling_a_429_caps_at_half_the_concurrency_seen():
    state = rate_limited(AimdState.start(None), in_flight=10)

    assert state.limit == 5
    assert state.recover_to == 10


def test_without_a_ceiling_the_cap_is_lifted_once_it_has_recovered():
    state = rate_limited(AimdState.start(None), in_flight=4)
    limits = []

    for _ in range(10):
        state = after_success(state)
        limits.append(state.limit)

    assert limits[:4] == [2, 3, 3, 3]
    assert state.limit is None
    assert state.recover_to is None


def test_a_second_decrease_without_a_ceiling_keeps_the_first_recovery_target():
    state = rate_limited(AimdState.start(None), in_flight=16)

    state = rate_limited(state, attempt_epoch=state.epoch, in_flight=8)

    assert (state.limit, state.recover_to) == (4, 16)


def test_states_are_values():
    state = AimdState.start(4)

    assert attrs.evolve(state) == state
    assert hash(state) == hash(AimdState.start(4))
