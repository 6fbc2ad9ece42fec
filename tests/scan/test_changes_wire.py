"""client.changes() against the fake PBX: at least once, checkpoints, crash safety."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from external_messages_async import (
    ChangeFeed,
    Checkpoint,
    DeliveryStatus,
    ExternalMessage,
    ServerError,
)
from external_messages_async.testing import ScriptedResponse, ServerClock

from .conftest import Served, at, wire

Serve = Callable[..., Awaitable[Served]]


def spread(n: int, prefix: str = "m", start: int = 0) -> list[dict[str, Any]]:
    """``n`` messages one second apart, newest first."""
    return [wire(f"{prefix}{i:03d}", start + i) for i in reversed(range(n))]


async def drain(feed: ChangeFeed) -> list[str | None]:
    async with feed:
        return [message.id async for message in feed]


async def test_a_first_run_yields_everything_and_then_a_checkpoint(
    serve: Serve,
) -> None:
    served = await serve(spread(5))
    feed = served.client.changes()

    assert feed.checkpoint is None
    ids = await drain(feed)

    assert ids == ["m000", "m001", "m002", "m003", "m004"]
    assert feed.checkpoint == Checkpoint(at(4), frozenset({"m004"}))


async def test_a_first_run_starts_at_since(serve: Serve) -> None:
    served = await serve(spread(5))

    ids = await drain(served.client.changes(since=at(3)))

    assert ids == ["m003", "m004"]


async def test_a_later_run_reads_the_lookback_window_again(serve: Serve) -> None:
    served = await serve(spread(10))
    checkpoint = Checkpoint(at(9), frozenset({"m009"}))

    ids = await drain(served.client.changes(checkpoint, lookback=timedelta(seconds=2)))

    assert ids == ["m007", "m008", "m009"]


async def test_without_lookback_a_later_run_yields_only_new_messages(
    serve: Serve,
) -> None:
    served = await serve(spread(3))
    first = served.client.changes(lookback=timedelta(0))
    await drain(first)
    served.server.insert_messages([wire("new1", 2), wire("new2", 7)])

    second = served.client.changes(first.checkpoint, lookback=timedelta(0))
    ids = await drain(second)

    assert ids == ["new1", "new2"]
    assert second.checkpoint == Checkpoint(at(7), frozenset({"new2"}))


async def test_a_run_with_nothing_new_keeps_the_checkpoint(serve: Serve) -> None:
    served = await serve(spread(3))
    checkpoint = Checkpoint(at(2), frozenset({"m002"}))

    feed = served.client.changes(checkpoint, lookback=timedelta(0))
    ids = await drain(feed)

    assert ids == []
    assert feed.checkpoint == checkpoint


async def test_a_delivery_change_inside_the_lookback_is_read_again(
    serve: Serve,
) -> None:
    served = await serve(spread(3))
    first = served.client.changes()
    await drain(first)
    served.server.messages[0]["delivery"] = "DELIVERED"
    served.server.messages_changed()

    second = served.client.changes(first.checkpoint, lookback=timedelta(minutes=1))
    async with second:
        latest = {m.id: m async for m in second}

    assert latest["m002"].delivery is DeliveryStatus.DELIVERED


async def test_pages_yield_one_list_per_server_page(serve: Serve) -> None:
    served = await serve(spread(5))
    feed = served.client.changes(page_size=2)

    pages = [[m.id for m in page] async for page in feed.pages()]

    assert pages == [["m000", "m001"], ["m002", "m003"], ["m004"]]
    assert feed.checkpoint == Checkpoint(at(4), frozenset({"m004"}))
    assert feed.stats.pages == 3


@pytest.mark.parametrize("crash_at", [0, 1, 2, 3])
async def test_a_crash_at_any_page_leaves_the_previous_checkpoint_valid(
    serve: Serve, crash_at: int
) -> None:
    """Crash mid-feed, run again from the old checkpoint: both runs cover everything."""
    served = await serve(spread(12))
    previous = Checkpoint(at(-100))
    first = served.client.changes(previous, lookback=timedelta(0), page_size=3)
    seen: list[str | None] = []

    async def consume_then_crash() -> None:
        async with first:
            async for page in first.pages():
                if len(seen) == 3 * crash_at:
                    raise RuntimeError("crash")
                seen.extend(m.id for m in page)

    with pytest.raises(RuntimeError, match="crash"):
        await consume_then_crash()
    served.server.insert_messages([wire("during", 20)])
    second = served.client.changes(first.checkpoint or previous, lookback=timedelta(0))
    seen += await drain(second)

    assert first.checkpoint is None
    assert set(seen) == {m["id"] for m in served.server.messages}


async def test_a_server_error_mid_feed_leaves_no_checkpoint(serve: Serve) -> None:
    served = await serve(spread(5))
    feed = served.client.changes(page_size=2)
    served.server.script(
        [ScriptedResponse(status=200)] + [ScriptedResponse(status=503)] * 2
    )
    seen = []

    async def consume() -> None:
        async for message in feed:
            seen.append(message.id)

    with pytest.raises(ServerError):
        await consume()

    assert seen == ["m000", "m001"]
    assert feed.checkpoint is None
    assert [m async for m in feed] != []


async def test_a_closed_run_stops_and_sets_no_checkpoint(serve: Serve) -> None:
    served = await serve(spread(5))
    feed = served.client.changes()
    items = aiter(feed)

    first = await anext(items)
    await items.aclose()

    assert first.id == "m000"
    assert [m async for m in items] == []
    assert feed.checkpoint is None


@pytest.mark.parametrize("skew", [timedelta(minutes=10), timedelta(minutes=-10)])
async def test_clock_skew_between_client_and_pbx_loses_nothing(
    serve: Serve, skew: timedelta
) -> None:
    """The PBX stamps messages by its own clock, 10 minutes off the client's."""
    clock = ServerClock((datetime.now(timezone.utc) + skew).replace(microsecond=0))
    served = await serve([], clock=clock)
    before = served.server.add_messages(3)
    first = served.client.changes(lookback=timedelta(0))
    await drain(first)
    same_second = served.server.add_message()
    clock.advance(1)
    later = served.server.add_messages(2)

    second = served.client.changes(first.checkpoint, lookback=timedelta(0))
    ids = await drain(second)

    assert first.checkpoint is not None
    assert first.checkpoint.high_water == clock.now() - timedelta(seconds=1)
    assert first.checkpoint.ids_at_high_water == {m["id"] for m in before}
    assert ids == [same_second["id"], *(m["id"] for m in later)]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"checkpoint": "x"}, TypeError),
        ({"since": datetime(2024, 1, 1)}, ValueError),
        ({"lookback": 5}, TypeError),
        ({"lookback": timedelta(seconds=-1)}, ValueError),
        ({"page_size": 0}, ValueError),
    ],
)
async def test_changes_refuses_bad_arguments_before_any_request(
    serve: Serve, arguments: dict[str, Any], error: type[Exception]
) -> None:
    served = await serve([])

    with pytest.raises(error):
        served.client.changes(**arguments)

    assert served.server.requests == []


def test_an_external_message_is_what_a_feed_yields() -> None:
    assert ExternalMessage(id="a").id == "a"
