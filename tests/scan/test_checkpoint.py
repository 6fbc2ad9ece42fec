"""Checkpoints and the pure decisions of a change feed: where to start, where to stop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from external_messages_async import Checkpoint
from external_messages_async._changes import feed_start, next_checkpoint
from external_messages_async._scan import EPOCH, KeyWalk

from .conftest import at


def test_checkpoint_round_trips_through_versioned_json() -> None:
    checkpoint = Checkpoint(high_water=at(1.5), ids_at_high_water={"b", "a"})

    text = checkpoint.to_json()

    assert text == (
        '{"version":1,"high_water":"2024-05-01T12:00:01.500Z",'
        '"ids_at_high_water":["a","b"]}'
    )
    assert Checkpoint.from_json(text) == checkpoint
    assert Checkpoint.from_json(text.encode()) == checkpoint


def test_checkpoint_keeps_the_offset_as_an_instant() -> None:
    plus_two = datetime(2024, 5, 1, 14, tzinfo=timezone(timedelta(hours=2)))

    restored = Checkpoint.from_json(Checkpoint(high_water=plus_two).to_json())

    assert restored.high_water == at(0)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"version": 2}', "version 2"),
        (
            '{"high_water": "2024-05-01T12:00:00Z", "ids_at_high_water": []}',
            "version None",
        ),
        (
            '{"version": 1, "high_water": 5, "ids_at_high_water": []}',
            "needs high_water",
        ),
        ('{"version": 1, "high_water": "2024-05-01T12:00:00Z"}', "needs high_water"),
        (
            '{"version": 1, "high_water": "soon", "ids_at_high_water": []}',
            "not a checkpoint",
        ),
        (
            '{"version": 1, "high_water": "2024-05-01T12:00:00Z", "ids_at_high_water": [1]}',
            "hold str",
        ),
    ],
)
def test_from_json_refuses_what_is_not_a_checkpoint(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Checkpoint.from_json(text)


def test_from_json_refuses_another_type() -> None:
    with pytest.raises(TypeError, match="str or bytes"):
        Checkpoint.from_json(None)  # type: ignore[arg-type]  # the point of the test


def test_checkpoint_refuses_a_naive_or_missing_high_water() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Checkpoint(high_water=datetime(2024, 5, 1))
    with pytest.raises(TypeError, match="high_water must be a datetime"):
        Checkpoint(high_water=None)  # type: ignore[arg-type]  # the point of the test


def test_checkpoint_refuses_one_string_as_its_ids() -> None:
    with pytest.raises(TypeError, match="not one str"):
        Checkpoint(high_water=at(0), ids_at_high_water="abc")


def test_a_first_run_starts_at_since_or_the_epoch() -> None:
    assert feed_start(None, at(3), timedelta(days=3)) == KeyWalk(lower=at(3))
    assert feed_start(None, None, timedelta(days=3)) == KeyWalk(lower=EPOCH)


def test_a_later_run_starts_a_lookback_before_the_high_water() -> None:
    checkpoint = Checkpoint(high_water=at(100), ids_at_high_water={"a"})

    walk = feed_start(checkpoint, at(0), timedelta(seconds=40))

    assert walk == KeyWalk(lower=at(60))


def test_without_lookback_a_run_skips_the_ids_read_at_the_high_water() -> None:
    checkpoint = Checkpoint(high_water=at(100), ids_at_high_water={"a"})

    walk = feed_start(checkpoint, None, timedelta(0))

    assert walk == KeyWalk(lower=at(100), seen=frozenset({"a"}))


def test_a_lookback_past_the_first_datetime_starts_at_the_first_datetime() -> None:
    walk = feed_start(Checkpoint(high_water=at(0)), None, timedelta.max)

    assert walk.lower == datetime.min.replace(tzinfo=timezone.utc)


def test_the_first_checkpoint_is_where_the_walk_ended() -> None:
    end = KeyWalk(lower=at(9), seen=frozenset({"x"}), done=True)

    assert next_checkpoint(None, end) == Checkpoint(at(9), frozenset({"x"}))


def test_the_checkpoint_moves_forward_with_newer_data() -> None:
    previous = Checkpoint(at(5), frozenset({"a"}))

    after = next_checkpoint(previous, KeyWalk(lower=at(9), seen=frozenset({"x"})))

    assert after == Checkpoint(at(9), frozenset({"x"}))


def test_the_checkpoint_merges_the_ids_of_the_same_instant() -> None:
    previous = Checkpoint(at(5), frozenset({"a"}))

    after = next_checkpoint(previous, KeyWalk(lower=at(5), seen=frozenset({"b"})))

    assert after == Checkpoint(at(5), frozenset({"a", "b"}))


def test_the_checkpoint_never_moves_backwards() -> None:
    """The newest message was deleted: the walk ended earlier, the checkpoint stays."""
    previous = Checkpoint(at(5), frozenset({"a"}))

    assert next_checkpoint(previous, KeyWalk(lower=at(2))) is previous
