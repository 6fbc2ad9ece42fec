"""client.scan() against the fake PBX: by key, exactly once, in order, checked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from external_messages_async import (
    BadRequestError,
    MessageScan,
    PagingError,
    ServerError,
)
from external_messages_async._keywalk import _all
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import Served, at, other_tasks, wire

Serve = Callable[..., Awaitable[Served]]


def tied(n: int, per_second: int) -> list[dict[str, Any]]:
    """``n`` messages, ``per_second`` in each second, newest second first, ids in order."""
    order = sorted(range(n), key=lambda i: (-(i // per_second), i))
    return [wire(f"m{i:03d}", i // per_second) for i in order]


async def test_scan_yields_every_message_once_oldest_first(serve: Serve) -> None:
    served = await serve(tied(40, 3))

    ids = [m.id async for m in served.client.scan(page_size=7)]

    assert ids == [f"m{i:03d}" for i in range(40)]


async def test_a_tie_larger_than_a_page_neither_loops_nor_skips(serve: Serve) -> None:
    served = await serve([*tied(25, 25), wire("late", 1)])
    scan = served.client.scan(page_size=4)

    ids = [m.id async for m in scan]

    assert sorted(ids[:25]) == [f"m{i:03d}" for i in range(25)]
    assert ids[25:] == ["late"]
    assert scan.stats.pages == 7


async def test_scan_asks_by_key_not_by_offset(serve: Serve) -> None:
    served = await serve(tied(5, 1))

    [m async for m in served.client.scan(page_size=2, filter="direction eq 'IN'")]

    query = served.server.requests[1].query
    assert query == {
        "filter": "created_at ge '2024-05-01T12:00:01Z' and "
        "(id ne 'm001' and (direction eq 'IN'))",
        "orderby": "created_at asc",
        "skip": "0",
        "top": "2",
    }


async def test_scan_keeps_since_and_drops_until(serve: Serve) -> None:
    served = await serve(tied(10, 1))

    ids = [m.id async for m in served.client.scan(since=at(2), until=at(5))]

    assert ids == ["m002", "m003", "m004"]


async def test_scan_applies_filter_and_search(serve: Serve) -> None:
    messages = tied(6, 1)
    messages[0]["direction"] = "OUT"
    messages[1]["content"] = "needle in here"
    served = await serve(messages)

    outgoing = [m.id async for m in served.client.scan(filter="direction eq 'OUT'")]
    found = [m.id async for m in served.client.scan(search="needle")]

    assert outgoing == ["m005"]
    assert found == ["m004"]


async def test_scan_counts_messages_without_created_at(serve: Serve) -> None:
    served = await serve(
        [*tied(3, 1), wire("x", 0, created_at=None), wire("y", 0, created_at="")]
    )
    scan = served.client.scan()

    ids = [m.id async for m in scan]

    assert ids == ["m000", "m001", "m002"]
    assert scan.stats.without_created_at == 2


async def test_without_created_at_is_unknown_when_the_server_cannot_count_it(
    serve: Serve,
) -> None:
    served = await serve(tied(2, 1))
    served.server.script([ScriptedResponse(status=200), ScriptedResponse(status=400)])
    scan = served.client.scan()

    ids = [m.id async for m in scan]

    assert ids == ["m000", "m001"]
    assert scan.stats.without_created_at is None


async def test_scan_skips_and_counts_messages_without_an_id(serve: Serve) -> None:
    served = await serve([*tied(2, 1), wire("x", 5, id=None)])
    scan = served.client.scan()

    ids = [m.id async for m in scan]

    assert ids == ["m000", "m001"]
    assert scan.stats.without_id == 1


@pytest.mark.parametrize(
    ("items", "ignored"),
    [
        ([wire("b", 2), wire("a", 1)], "orderby"),
        ([wire("a", -1)], "filter"),
    ],
)
async def test_scan_refuses_a_page_the_server_got_wrong(
    serve: Serve, items: list[dict[str, Any]], ignored: str
) -> None:
    served = await serve([])
    served.server.script([ScriptedResponse(body={"count": 9, "items": items})])
    yielded = []

    async def consume() -> None:
        async for message in served.client.scan(since=at(0)):
            yielded.append(message)

    with pytest.raises(PagingError) as caught:
        await consume()

    assert caught.value.ignored == ignored
    assert yielded == []


@pytest.mark.parametrize("bad", [datetime(2024, 5, 1), "2024-05-01"])
@pytest.mark.parametrize("name", ["since", "until"])
async def test_scan_refuses_bad_bounds_before_any_request(
    serve: Serve, name: str, bad: object
) -> None:
    served = await serve(tied(2, 1))

    with pytest.raises((TypeError, ValueError), match=name):
        served.client.scan(**{name: bad})

    assert served.server.requests == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"since": at(5), "until": at(5)}, ValueError),
        ({"filter": 5}, TypeError),
        ({"search": 5}, TypeError),
        ({"page_size": 0}, ValueError),
        ({"page_size": 101}, ValueError),
        ({"concurrency": 0}, ValueError),
        ({"concurrency": 1.5}, TypeError),
    ],
)
async def test_scan_refuses_bad_arguments(
    serve: Serve, options: dict[str, Any], error: type[Exception]
) -> None:
    served = await serve([])

    with pytest.raises(error):
        served.client.scan(**options)


@pytest.mark.parametrize(("since", "until"), [(None, None), (at(3), at(50))])
async def test_concurrent_scan_yields_the_same_in_order(
    serve: Serve, since: datetime | None, until: datetime | None
) -> None:
    served = await serve(tied(60, 2))
    sequential = [
        m.id async for m in served.client.scan(since=since, until=until, page_size=5)
    ]

    scan = served.client.scan(since=since, until=until, page_size=5, concurrency=4)
    ids = [m.id async for m in scan]

    assert ids == sequential
    assert scan.stats.slices == 4
    assert scan.stats.items == len(ids)


async def test_concurrent_slices_are_balanced_by_count(serve: Serve) -> None:
    """Most messages in the last second: the boundaries follow the data, not the clock."""
    served = await serve([*tied(40, 40), *[wire(f"z{i}", 1000 + i) for i in range(40)]])
    scan = served.client.scan(page_size=10, concurrency=2)

    pages = [page async for page in scan.pages()]

    assert scan.stats.slices == 2
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 10, 10, 10]


async def test_a_long_range_is_cut_into_slices_of_about_eight_pages(
    serve: Serve,
) -> None:
    """Five slices, two at a time: boundaries are read in two batches."""
    served = await serve(tied(200, 1))
    scan = served.client.scan(page_size=5, concurrency=2)

    ids = [m.id async for m in scan]

    assert ids == [f"m{i:03d}" for i in range(200)]
    assert scan.stats.slices == 5
    assert sorted(int(r.query["skip"]) for r in served.server.requests) == [
        *[0] * (len(served.server.requests) - 4),
        40, 80, 120, 160,
    ]  # fmt: skip


async def test_boundaries_past_the_end_after_deletions_leave_no_gap(
    serve: Serve,
) -> None:
    """The second batch of boundaries finds half the range deleted: the last slice takes the rest."""
    served = await serve(tied(200, 1))

    def delete_newest_half(server: FakePortSIPServer, skip: int, top: int) -> None:
        if skip == 120:
            server.delete_messages([f"m{i:03d}" for i in range(100, 200)])

    served.server.on_list_page = delete_newest_half
    scan = served.client.scan(page_size=5, concurrency=2)

    ids = [m.id async for m in scan]

    assert ids[:100] == [f"m{i:03d}" for i in range(100)]
    assert len(ids) == len(set(ids))
    assert scan.stats.slices == 3


async def test_concurrent_scan_of_few_messages_walks_one_slice(serve: Serve) -> None:
    served = await serve(tied(3, 1))
    scan = served.client.scan(concurrency=8)

    ids = [m.id async for m in scan]

    assert ids == ["m000", "m001", "m002"]
    assert scan.stats.slices == 1


async def test_concurrent_scan_of_one_tie_reads_it_in_one_slice(serve: Serve) -> None:
    """Every boundary falls on the one instant: the slices before it are empty."""
    served = await serve(tied(30, 30))
    scan = served.client.scan(page_size=5, concurrency=4)

    ids = [m.id async for m in scan]

    assert sorted(ids) == [f"m{i:03d}" for i in range(30)]
    assert scan.stats.slices == 2


async def test_an_error_in_one_slice_ends_the_scan_and_stops_the_others(
    serve: Serve,
) -> None:
    served = await serve(tied(40, 1))
    failing = ScriptedResponse(status=400)

    async def fail_later_slice(server: FakePortSIPServer, skip: int, top: int) -> None:
        if len(server.requests) == 6:
            server.script([failing])

    served.server.on_list_page = fail_later_slice

    async def consume() -> None:
        async with served.client.scan(page_size=5, concurrency=4) as scan:
            async for _ in scan:
                pass

    with pytest.raises(BadRequestError):
        await consume()

    assert other_tasks() == set()


async def test_leaving_a_concurrent_scan_stops_every_slice(serve: Serve) -> None:
    """Six setup requests, four first pages: later pages are held in flight."""
    served = await serve(tied(200, 1))
    release = asyncio.Event()
    handled = 0

    async def hold(server: FakePortSIPServer, skip: int, top: int) -> None:
        nonlocal handled
        handled += 1
        if handled > 12:
            await release.wait()

    served.server.on_list_page = hold

    async with served.client.scan(page_size=5, concurrency=4) as scan:
        items = aiter(scan)
        first = await anext(items)
        assert [t for t in other_tasks() if "scan slice" in t.get_name()] != []

    assert first.id == "m000"
    assert other_tasks() == set()
    release.set()
    await items.aclose()


async def test_break_without_async_with_stops_every_slice(serve: Serve) -> None:
    served = await serve(tied(100, 1))
    scan = served.client.scan(page_size=5, concurrency=4)

    async for _ in scan:
        break
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert not [t for t in other_tasks() if "scan slice" in t.get_name()]


async def test_a_closed_page_iterator_stops(serve: Serve) -> None:
    served = await serve(tied(10, 1))
    pages = served.client.scan(page_size=2).pages()

    first = await pages.__anext__()
    await pages.aclose()

    assert [m.id for m in first] == ["m000", "m001"]
    assert pages.closed
    assert [page async for page in pages] == []


async def test_an_item_iterator_can_be_closed(serve: Serve) -> None:
    served = await serve(tied(10, 1))
    items = aiter(served.client.scan(page_size=2, concurrency=2))

    first = await anext(items)
    await items.aclose()  # type: ignore[attr-defined]  # ScanItems has aclose

    assert first.id == "m000"
    assert not [t for t in other_tasks() if "scan slice" in t.get_name()]


async def test_a_sequential_scan_error_propagates(serve: Serve) -> None:
    served = await serve(tied(10, 1))
    served.server.script([ScriptedResponse(status=503)] * 2)

    with pytest.raises(ServerError):
        [m async for m in served.client.scan()]


def test_message_scan_is_exported() -> None:
    import external_messages_async

    assert external_messages_async.MessageScan is MessageScan


async def test_a_sequential_scan_closes_without_tasks(serve: Serve) -> None:
    served = await serve(tied(3, 1))

    async with served.client.scan() as scan:
        items = aiter(scan)
        ids = [m.id async for m in items]

    assert aiter(items) is items
    assert ids == ["m000", "m001", "m002"]
    assert other_tasks() == set()


async def test_a_server_ignoring_orderby_raises_before_yielding(serve: Serve) -> None:
    served = await serve(tied(10, 1), ignore_query={"orderby"})
    yielded: list[str | None] = []

    async def consume() -> None:
        async for message in served.client.scan(page_size=5):
            yielded.append(message.id)

    with pytest.raises(PagingError, match="out of order") as caught:
        await consume()

    assert caught.value.ignored == "orderby"
    assert yielded == []


async def test_a_server_ignoring_filter_raises_before_yielding_a_repeat(
    serve: Serve,
) -> None:
    served = await serve(tied(10, 1), ignore_query={"filter"})
    yielded: list[str | None] = []

    async def consume() -> None:
        async for message in served.client.scan(page_size=5):
            yielded.append(message.id)

    with pytest.raises(PagingError) as caught:
        await consume()

    assert caught.value.ignored == "filter"
    assert yielded == ["m000", "m001", "m002", "m003", "m004"]


async def test_a_server_capping_top_is_read_to_the_end(serve: Serve) -> None:
    """Pages shorter than asked for, with count saying more: the walk goes on."""
    served = await serve(tied(20, 3), max_top=3)

    ids = [m.id async for m in served.client.scan(page_size=10)]

    assert ids == [f"m{i:03d}" for i in range(20)]


async def test_a_server_ignoring_skip_only_unbalances_the_slices(serve: Serve) -> None:
    """Every boundary lands on the first message: fewer slices, same messages."""
    served = await serve(tied(30, 1), ignore_query={"skip"})

    scan = served.client.scan(page_size=5, concurrency=4)
    ids = [m.id async for m in scan]

    assert ids == [f"m{i:03d}" for i in range(30)]
    assert scan.stats.slices == 2


async def test_a_failed_setup_request_cancels_the_others() -> None:
    """The slices' setup requests run at once; one failing cancels the rest."""
    cancelled = asyncio.Event()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ServerError("down", status=503)

    async def waits() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(ServerError):
        await _all(waits(), fails())

    assert cancelled.is_set()
    assert other_tasks() == set()
