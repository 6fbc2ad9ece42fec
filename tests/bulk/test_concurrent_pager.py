"""Specification of ``client.list(concurrency=K)``: the sliding window of pages."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pytest

from external_messages_async import (
    APIStatusError,
    ExternalMessagesClient,
    RetryPolicy,
    ServerError,
)
from tests.conftest import settle, wait_until

WINDOW_TASK = "external_messages_async skip="


def ids(count: int, start: int = 0) -> list[str]:
    return [f"m{i:06d}" for i in range(start, count)]


def window_tasks() -> list[asyncio.Task[Any]]:
    """The pager's window tasks that are not finished yet."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(WINDOW_TASK) and not task.done()
    ]


def _messages(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"m{i:06d}", "content": f"message {i}", "msg_type": "SMS"}
        for i in range(count)
    ]


def slow_after_two_pages(seen: Any) -> float:
    """The window's later pages are still in flight when the consumer leaves."""
    return 0.0 if seen.skip is not None and seen.skip < 20 else 0.5


async def collect(pager: Any) -> list[str]:
    return [message.id async for message in pager]


async def drain(pager: Any, into: list[str]) -> None:
    async for message in pager:
        into.append(message.id)


async def fail_at_item(pager: Any, message_id: str) -> None:
    async for message in pager:
        if message.id == message_id:
            raise KeyError(message.id)


async def test_items_come_in_order_when_pages_finish_out_of_order(server, client):
    server.items = _messages(500)
    rng = random.Random(5)
    server.latency = lambda seen: rng.random() * 0.01

    got = await collect(client.list(page_size=10, concurrency=8))

    assert got == ids(500)


async def test_window_never_has_more_than_k_pages_in_flight(server, client):
    server.items = _messages(300)
    server.latency = 0.01

    got = await collect(client.list(page_size=10, concurrency=3))

    assert len(got) == 300
    assert server.max_in_flight == 3


async def test_concurrency_one_walks_one_page_at_a_time(server, client):
    server.items = _messages(100)
    server.latency = 0.002

    got = await collect(client.list(page_size=10, concurrency=1))

    assert got == ids(100)
    assert server.max_in_flight == 1


async def test_short_pages_under_concurrency_lose_nothing(server, client):
    """Pages at some offsets come back short: the gap is requested again."""
    server.items = _messages(400)
    server.page_size = lambda skip, top: min(top, 3) if (skip // 10) % 3 == 1 else top

    pager = client.list(page_size=10, concurrency=4)
    got = await collect(pager)

    assert got == ids(400)
    gap_fills = [r for r in server.list_requests() if r.skip % 10 != 0]
    assert gap_fills
    assert pager.stats.next_skip == 400


async def test_a_short_last_page_of_the_window_is_completed(server, client):
    server.items = _messages(30)
    server.page_size = lambda skip, top: 4 if skip == 20 else top

    got = await collect(client.list(page_size=10, concurrency=4))

    assert got == ids(30)


async def test_growing_count_is_followed(server, client):
    """Messages appended during the walk raise count; the window extends."""
    server.items = _messages(50)

    def grow(skip: int) -> None:
        if skip == 40 and len(server.items) == 50:
            server.items.extend(
                {"id": f"m{i:06d}", "content": "late"} for i in range(50, 90)
            )

    server.on_list = grow

    pager = client.list(page_size=10, concurrency=3)
    got = await collect(pager)

    assert got == ids(90)
    assert pager.stats.last_count == 90


async def test_items_shifted_by_an_insert_at_the_front_are_not_repeated(server, client):
    server.items = _messages(100)

    def insert(skip: int) -> None:
        if skip == 50 and server.items[0]["id"] != "new":
            server.items[:0] = [{"id": "new", "content": "x"}]

    server.on_list = insert

    pager = client.list(page_size=10, concurrency=2)
    got = await collect(pager)

    assert len(got) == len(set(got))
    assert set(ids(100)) <= set(got)
    assert pager.stats.duplicates_dropped >= 1


async def test_walk_ends_on_an_empty_page_even_if_count_says_more(server, client):
    server.items = _messages(20)
    server.count = 60

    pager = client.list(page_size=10, concurrency=3)
    got = await collect(pager)
    await settle()

    assert got == ids(20)
    assert window_tasks() == []


async def test_limit_requests_only_what_it_needs(server, client):
    server.items = _messages(500)

    got = await collect(client.list(page_size=10, limit=25, concurrency=8))

    assert got == ids(25)
    assert [(r.skip, r.top) for r in server.list_requests()] == [
        (0, 10),
        (10, 10),
        (20, 5),
    ]


async def test_skip_starts_the_window_there(server, client):
    server.items = _messages(100)

    got = await collect(client.list(page_size=10, skip=35, concurrency=4))

    assert got == ids(100, start=35)


async def test_pages_are_yielded_in_order_with_their_skip(server, client):
    server.items = _messages(55)

    pages = [page async for page in client.list(page_size=10, concurrency=4).pages()]

    assert [page.skip for page in pages] == [0, 10, 20, 30, 40, 50]
    assert [len(page.items) for page in pages] == [10, 10, 10, 10, 10, 5]


async def test_stats_describe_a_concurrent_walk(server, client):
    server.items = _messages(95)

    pager = client.list(page_size=10, concurrency=4)
    await collect(pager)

    assert (pager.stats.pages, pager.stats.items, pager.stats.next_skip) == (
        10,
        95,
        95,
    )
    assert pager.stats.first_count == pager.stats.last_count == 95


async def test_break_cancels_the_window_and_no_request_follows(server, client):
    """CPython drops the iterator at `break`; its cleanup cancels the window."""
    server.items = _messages(1000)
    server.latency = slow_after_two_pages

    async for message in client.list(page_size=10, concurrency=4):
        if message.id == "m000015":
            break
    still_running = window_tasks()
    await settle()
    sent = len(server.received)
    await wait_until(lambda: server.in_flight == 0)

    assert len(still_running) == 3
    assert all(task.cancelling() for task in still_running)
    assert window_tasks() == []
    assert len(server.received) == sent
    assert sent <= 1 + 1 + 4


async def test_an_exception_in_the_loop_body_cancels_the_window(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages

    with pytest.raises(KeyError):
        await fail_at_item(client.list(page_size=10, concurrency=4), "m000015")
    await settle()
    sent = len(server.received)
    await wait_until(lambda: server.in_flight == 0)

    assert window_tasks() == []
    assert len(server.received) == sent


async def test_async_with_waits_for_the_window_to_end(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages

    async with client.list(page_size=10, concurrency=4) as pager:
        async for message in pager:
            if message.id == "m000015":
                break
    left = window_tasks()
    sent = len(server.received)
    await wait_until(lambda: server.in_flight == 0)

    assert left == []
    assert len(server.received) == sent


async def test_aclosing_the_pages_iterator_ends_the_window(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages

    async with contextlib.aclosing(
        client.list(page_size=10, concurrency=4).pages()
    ) as pages:
        async for page in pages:
            assert page.skip == 0
            break

    assert window_tasks() == []


async def test_aclose_on_the_pages_iterator_cancels_the_requests_in_flight(
    server, client
):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages
    pages = client.list(page_size=10, concurrency=4).pages()
    await anext(pages)
    await anext(pages)
    in_flight = window_tasks()

    await pages.aclose()

    assert in_flight
    assert all(task.cancelled() for task in in_flight)
    assert window_tasks() == []
    assert pages.closed


async def test_aclose_on_the_item_iterator_ends_the_window(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages
    items = aiter(client.list(page_size=10, concurrency=4))

    first = await anext(items)
    second = await anext(items)
    await items.aclose()

    assert (first.id, second.id) == ("m000000", "m000001")
    assert window_tasks() == []
    with pytest.raises(StopAsyncIteration):
        await anext(items)


async def test_cancelling_the_consumer_cancels_the_window(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages
    seen: list[str] = []
    fifteen = asyncio.Event()

    async def consume() -> None:
        async for message in client.list(page_size=10, concurrency=4):
            seen.append(message.id)
            if len(seen) == 15:
                fifteen.set()

    task = asyncio.create_task(consume())
    await fifteen.wait()
    await settle()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sent = len(server.received)
    await wait_until(lambda: server.in_flight == 0)

    assert task.cancelled()
    assert window_tasks() == []
    assert len(server.received) == sent
    assert seen == ids(len(seen))


async def test_a_failing_page_raises_with_the_skip_to_resume_from(server):
    server.items = _messages(100)
    server.fail_at = {40: 500}
    async with ExternalMessagesClient(
        server.url, token="t", retry=RetryPolicy(max_retries=0)
    ) as client:
        pager = client.list(page_size=10, concurrency=4)
        got: list[str] = []

        with pytest.raises(APIStatusError) as caught:
            await drain(pager, got)
        await settle()

    assert isinstance(caught.value, ServerError)
    assert caught.value.resume_skip == 40
    assert pager.stats.next_skip == 40
    assert got == ids(40)
    assert window_tasks() == []


async def test_resuming_from_resume_skip_completes_the_walk(server, client):
    server.items = _messages(60)
    server.fail_at = {20: 503}
    got: list[str] = []

    with pytest.raises(ServerError) as caught:
        await drain(client.list(page_size=10, concurrency=3), got)
    server.fail_at = {}
    async for message in client.list(
        page_size=10, concurrency=3, skip=caught.value.resume_skip
    ):
        got.append(message.id)

    assert got == ids(60)


async def test_the_sequential_walk_also_reports_resume_skip(server, client):
    server.items = _messages(60)
    server.fail_at = {30: 404}

    with pytest.raises(APIStatusError) as caught:
        await collect(client.list(page_size=10, concurrency=1))

    assert caught.value.resume_skip == 30


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_resume_skip_counts_from_where_the_walk_started(
    server, client, concurrency
):
    """A walk started at skip=20 that fails at 40 resumes at 40, not at 20."""
    server.items = _messages(60)
    server.fail_at = {40: 503}
    got: list[str] = []

    with pytest.raises(ServerError) as caught:
        await drain(client.list(page_size=10, skip=20, concurrency=concurrency), got)

    assert got == ids(60)[20:40]
    assert caught.value.resume_skip == 40


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_next_skip_after_a_limit_cut_resumes_after_the_last_item_yielded(
    server, client, concurrency
):
    """A server sending more than asked: the items cut by ``limit`` are not skipped."""
    server.items = _messages(40)
    server.page_size = lambda skip, top: top + 5 if skip == 10 else top

    pager = client.list(page_size=10, limit=15, concurrency=concurrency)
    first = await collect(pager)
    rest = await collect(client.list(page_size=10, skip=pager.stats.next_skip))

    assert first == ids(40)[:15]
    assert pager.stats.next_skip == 15
    assert first + rest == ids(40)


async def test_a_later_page_failing_first_does_not_hide_earlier_pages(server, client):
    """The window's third page fails before the second arrives: order still wins."""
    server.items = _messages(100)
    server.fail_at = {30: 400}
    server.latency = lambda seen: 0.03 if seen.skip == 10 else 0.0
    got: list[str] = []

    with pytest.raises(APIStatusError) as caught:
        await drain(client.list(page_size=10, concurrency=4), got)

    assert got == ids(30)
    assert caught.value.resume_skip == 30


@pytest.mark.parametrize("bad", [0, -1])
def test_concurrency_below_one_is_refused(client, bad):
    with pytest.raises(ValueError, match="concurrency"):
        client.list(concurrency=bad)


def test_concurrency_must_be_an_int(client):
    with pytest.raises(TypeError, match="concurrency"):
        client.list(concurrency=2.0)  # type: ignore[arg-type]  # wrong on purpose


async def test_concurrent_and_sequential_walks_agree(server, client):
    server.items = _messages(237)

    sequential = await collect(client.list(page_size=7, concurrency=1))
    concurrent = await collect(client.list(page_size=7, concurrency=5))

    assert sequential == concurrent == ids(237)


async def test_a_server_answering_more_than_top_repeats_nothing(server, client):
    """Items beyond ``top`` overlap the next page: they are yielded once."""
    server.items = _messages(100)
    server.page_size = lambda skip, top: top + 5 if skip == 20 else top

    got = await collect(client.list(page_size=10, concurrency=4))

    assert got == ids(100)


async def test_a_falling_count_is_reported_under_concurrency(server, client, caplog):
    server.items = _messages(60)

    def shrink(skip: int) -> None:
        if skip == 30:
            server.count = 55

    server.on_list = shrink

    pager = client.list(page_size=10, concurrency=2)
    await collect(pager)

    assert pager.stats.count_decreased
    assert "count fell from 60 to 55" in caplog.text


async def test_leaving_the_pager_block_stops_a_walk_still_referenced(server, client):
    server.items = _messages(1000)
    server.latency = slow_after_two_pages

    async with client.list(page_size=10, concurrency=4) as pager:
        items = aiter(pager)
        first = await anext(items)
        assert aiter(items) is items

    assert first.id == "m000000"
    assert window_tasks() == []
    with pytest.raises(StopAsyncIteration):
        await anext(items)
