"""The pure key-walk planner: requests planned, pages checked, no event loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs
import pytest

from external_messages_async import PagingError, ScanStats
from external_messages_async._scan import (
    EPOCH,
    SLICE_PAGES,
    KeyRequest,
    KeyWalk,
    Step,
    accept,
    check_instant,
    next_bound,
    plan,
    slice_count,
    split_offsets,
)

from .conftest import at, model


def test_plan_asks_for_the_range_oldest_first() -> None:
    walk = KeyWalk(lower=at(0), upper=at(60), page_size=10)

    request = plan(walk)

    assert request == KeyRequest(
        filter="created_at ge '2024-05-01T12:00:00Z' and created_at lt '2024-05-01T12:01:00Z'",
        top=10,
        orderby="created_at asc",
    )


def test_plan_excludes_the_ids_seen_at_the_high_water_and_ands_the_filter() -> None:
    walk = KeyWalk(
        lower=at(0), seen=frozenset({"b", "O'a"}), filter="msg_type eq 'SMS'"
    )

    request = plan(walk)

    assert request.filter == (
        "created_at ge '2024-05-01T12:00:00Z' and "
        "(id ne 'O''a' and id ne 'b' and (msg_type eq 'SMS'))"
    )


def test_plan_without_since_starts_at_the_epoch() -> None:
    assert plan(KeyWalk()).filter == "created_at ge '1970-01-01T00:00:00Z'"
    assert datetime(1970, 1, 1, tzinfo=timezone.utc) == EPOCH


def test_accept_moves_the_high_water_to_the_last_instant_read() -> None:
    walk = KeyWalk(lower=at(0), page_size=3)
    items = [model("a", 1), model("b", 2), model("c", 2)]

    step = accept(walk, items, count=10)

    assert step == Step(
        attrs.evolve(walk, lower=at(2), seen=frozenset({"b", "c"})), items
    )


def test_accept_adds_to_the_ids_seen_when_the_page_stays_in_one_instant() -> None:
    walk = KeyWalk(lower=at(5), seen=frozenset({"a"}), page_size=2)

    step = accept(walk, [model("b", 5), model("c", 5)], count=7)

    assert step.walk.seen == {"a", "b", "c"}
    assert step.walk.lower == at(5)
    assert not step.walk.done


def test_a_tie_larger_than_a_page_is_read_to_its_end() -> None:
    """Thirty messages in one second, three per page: ten pages, each new."""
    tie = [model(f"m{i:02d}", 0) for i in range(30)]
    walk = KeyWalk(lower=at(0), page_size=3)
    yielded = []

    while not walk.done:
        request = plan(walk)
        left = [m for m in tie if f"id ne '{m.id}'" not in request.filter]
        step = accept(walk, left[: request.top], count=len(left))
        yielded += step.items
        walk = step.walk

    assert yielded == tie


def test_accept_ends_the_walk_on_an_empty_page() -> None:
    step = accept(KeyWalk(page_size=5), [], count=0)

    assert step.walk.done
    assert step.items == []


def test_accept_ends_the_walk_on_a_short_page_holding_every_match() -> None:
    step = accept(KeyWalk(page_size=5), [model("a", 1)], count=1)

    assert step.walk.done


def test_accept_goes_on_after_a_short_page_when_count_says_more_match() -> None:
    """A server that caps ``top`` below what was asked is read to the end."""
    step = accept(KeyWalk(page_size=5), [model("a", 1)], count=9)

    assert not step.walk.done


def test_accept_goes_on_after_a_full_page_when_more_match() -> None:
    step = accept(KeyWalk(page_size=1), [model("a", 1)], count=2)

    assert not step.walk.done


def test_accept_ends_the_walk_on_a_full_page_holding_every_match() -> None:
    """No request for an empty page when the last one was exactly full."""
    step = accept(KeyWalk(page_size=1), [model("a", 1)], count=1)

    assert step.walk.done


def test_accept_refuses_a_page_out_of_order() -> None:
    with pytest.raises(PagingError, match="out of order") as caught:
        accept(KeyWalk(), [model("a", 2), model("b", 1)], count=2)

    assert caught.value.ignored == "orderby"


@pytest.mark.parametrize(
    ("walk", "message", "why"),
    [
        (KeyWalk(lower=at(5)), model("a", 4), "outside the requested range"),
        (
            KeyWalk(lower=at(0), upper=at(5)),
            model("a", 5),
            "outside the requested range",
        ),
        (KeyWalk(), model("a", None), "no created_at"),
        (KeyWalk(lower=at(1), seen=frozenset({"a"})), model("a", 1), "already read"),
    ],
)
def test_accept_refuses_a_message_the_filter_excludes(
    walk: KeyWalk, message: object, why: str
) -> None:
    with pytest.raises(PagingError, match=why) as caught:
        accept(walk, [message], count=1)  # type: ignore[list-item]  # a model

    assert caught.value.ignored == "filter"


def test_accept_skips_and_counts_messages_without_an_id() -> None:
    step = accept(KeyWalk(page_size=5), [model(None, 1), model("a", 2)], count=2)

    assert step.items == [model("a", 2)]
    assert step.without_id == 1


def test_accept_drops_an_id_repeated_on_one_page() -> None:
    step = accept(KeyWalk(page_size=5), [model("a", 1), model("a", 2)], count=2)

    assert step.items == [model("a", 1)]
    assert step.repeated == 1


def test_accept_refuses_a_full_page_that_cannot_move_the_walk() -> None:
    """Messages without ids at the high-water cannot be excluded: no endless walk."""
    walk = KeyWalk(lower=at(1), page_size=2)

    with pytest.raises(PagingError, match="cannot move on") as caught:
        accept(walk, [model(None, 1), model(None, 1)], count=5)

    assert caught.value.ignored == "filter"


@pytest.mark.parametrize(
    ("count", "slices", "offsets"),
    [(100, 4, [25, 50, 75]), (10, 3, [3, 6]), (2, 4, [1]), (0, 8, []), (50, 1, [])],
)
def test_split_offsets_cuts_the_count_evenly(
    count: int, slices: int, offsets: list[int]
) -> None:
    assert split_offsets(count, slices) == offsets


def test_split_offsets_refuses_zero_slices() -> None:
    with pytest.raises(ValueError, match="slices"):
        split_offsets(10, 0)


@pytest.mark.parametrize(
    ("count", "page_size", "concurrency", "slices"),
    [
        (5000, 100, 1, 1),
        (100, 100, 8, 1),
        (0, 100, 8, 1),
        (300, 100, 8, 3),
        (2000, 100, 8, 8),
        (20000, 100, 8, 25),
        (20001, 100, 8, 26),
    ],
)
def test_slice_count_keeps_slices_near_eight_pages_and_at_least_concurrency(
    count: int, page_size: int, concurrency: int, slices: int
) -> None:
    assert slice_count(count, page_size, concurrency) == slices
    assert SLICE_PAGES == 8


def test_next_bound_is_the_message_read_at_the_offset() -> None:
    assert next_bound(at(0), at(5), at(10)) == at(5)
    assert next_bound(at(0), at(5), None) == at(5)


def test_next_bound_never_goes_back_nor_past_the_end() -> None:
    """Deletions between two batches can move a later boundary earlier."""
    assert next_bound(at(4), at(2), None) == at(4)
    assert next_bound(at(4), None, at(10)) == at(4)
    assert next_bound(at(4), at(12), at(10)) == at(10)


def test_check_instant_accepts_aware_datetimes_and_none() -> None:
    check_instant("since", None)
    check_instant("since", datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2))))


def test_check_instant_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        check_instant("since", datetime(2024, 1, 1))


def test_check_instant_refuses_another_type() -> None:
    with pytest.raises(TypeError, match="until must be a datetime"):
        check_instant("until", "2024-01-01")


def test_stats_add_counts_a_page() -> None:
    stats = ScanStats()

    stats.add(Step(KeyWalk(), [model("a", 1), model("b", 3)], without_id=2, repeated=1))
    stats.add(Step(KeyWalk(), []))

    assert stats == ScanStats(
        pages=2, items=2, without_id=2, repeated=1, high_water=at(3)
    )


def test_stats_keep_the_newest_high_water_across_slices() -> None:
    stats = ScanStats()

    stats.add(Step(KeyWalk(), [model("b", 9)]))
    stats.add(Step(KeyWalk(), [model("a", 1)]))

    assert stats.high_water == at(9)
