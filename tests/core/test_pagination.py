"""The page walk: skip/top arithmetic, its end, duplicates, limit, laziness.

The walk is tested strictly one page at a time (``concurrency=1``); the
concurrent window has its own tests. At the end, servers that bend the paging
rules (a page cap, an ignored ``skip``), sequential and concurrent; the pure
decisions behind them are in ``test_planner.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from external_messages_async import (
    ExternalMessage,
    ExternalMessagesClient,
    MessagePager,
    Page,
)
from external_messages_async._pagination import RecentIds
from external_messages_async._planner import next_top, walk_done
from external_messages_async.errors import PagingError
from external_messages_async.testing import FakePortSIPServer

from .conftest import (
    FAST_RETRY,
    TOKEN,
    LoopbackServer,
    json_response,
    message,
    serve_collection,
)


def client_for(server: LoopbackServer) -> ExternalMessagesClient:
    return ExternalMessagesClient(server.url, token=TOKEN, retry=FAST_RETRY)


def store_of(n: int) -> list[dict[str, Any]]:
    return [message(i) for i in range(n)]


def asked(server: LoopbackServer) -> list[tuple[int, int]]:
    return [(int(r.query["skip"]), int(r.query["top"])) for r in server.requests]


async def walk(server: LoopbackServer, **options: Any) -> list[str | None]:
    options.setdefault("concurrency", 1)
    async with client_for(server) as client:
        return [m.id async for m in client.list(**options)]


# --- pure decisions --------------------------------------------------------


@pytest.mark.parametrize(
    ("page_size", "limit", "yielded", "top"),
    [
        (100, None, 10**6, 100),
        (10, 25, 20, 5),
        (10, 25, 25, 0),
        (10, 25, 0, 10),
        (10, 0, 0, 0),
    ],
)
def test_next_top_asks_only_for_what_is_still_needed(
    page_size: int, limit: int | None, yielded: int, top: int
) -> None:
    assert next_top(page_size, limit, yielded) == top


@pytest.mark.parametrize(
    ("next_skip", "count", "returned", "done"),
    [(10, 30, 10, False), (30, 30, 10, True), (35, 30, 10, True), (10, 30, 0, True)],
)
def test_walk_done_when_skip_reaches_count_or_a_page_is_empty(
    next_skip: int, count: int, returned: int, done: bool
) -> None:
    assert walk_done(next_skip, count, returned) is done


def test_recent_ids_drop_repeats_and_keep_items_without_id() -> None:
    seen = RecentIds(window=2)
    a, b, c, anonymous = (ExternalMessage(id=x) for x in ("a", "b", "c", None))

    assert seen.fresh([a, b, anonymous]) == [a, b, anonymous]
    assert seen.fresh([b, c, anonymous]) == [c, anonymous]
    assert "a" not in seen  # forgotten: the window holds 2
    assert "c" in seen


# --- the walk over the wire ------------------------------------------------


async def test_the_walk_yields_every_item_once_in_order(server: LoopbackServer) -> None:
    serve_collection(server, store_of(25))

    ids = await walk(server, page_size=10)

    assert ids == [f"id-{i}" for i in range(25)]
    assert asked(server) == [(0, 10), (10, 10), (20, 10)]


async def test_the_walk_sends_the_options_verbatim_on_every_page(
    server: LoopbackServer,
) -> None:
    serve_collection(server, store_of(3))
    options = {
        "filter": "msg_type eq 'SMS' and startswith(sender,'+1')",
        "search": "hello world",
        "orderby": "created_at desc",
    }

    await walk(server, page_size=2, **options)

    assert len(server.requests) == 2
    for request in server.requests:
        assert {k: request.query[k] for k in options} == options


async def test_options_left_out_are_not_sent(server: LoopbackServer) -> None:
    serve_collection(server, store_of(1))

    await walk(server)

    assert set(server.requests[0].query) == {"skip", "top"}


async def test_the_default_page_size_is_100(server: LoopbackServer) -> None:
    serve_collection(server, store_of(150))

    await walk(server)

    assert asked(server) == [(0, 100), (100, 100)]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 101}, ValueError),
        ({"page_size": 2.5}, TypeError),
        ({"limit": -1}, ValueError),
        ({"skip": -1}, ValueError),
        ({"skip": "0"}, TypeError),
        ({"filter": 3}, TypeError),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    server: LoopbackServer, options: dict[str, Any], error: type[Exception]
) -> None:
    serve_collection(server, store_of(3))

    async with client_for(server) as client:
        with pytest.raises(error):
            client.list(**options)

    assert server.requests == []


async def test_next_skip_adds_the_items_actually_returned(
    server: LoopbackServer,
) -> None:
    """A server may answer fewer than `top`; the walk must not skip the rest."""
    serve_collection(server, store_of(20), max_top=7)

    ids = await walk(server, page_size=10)

    assert ids == [f"id-{i}" for i in range(20)]
    assert asked(server) == [(0, 10), (7, 7), (14, 7)]


async def test_no_request_past_the_end_when_count_is_a_multiple_of_the_page(
    server: LoopbackServer,
) -> None:
    serve_collection(server, store_of(30))

    ids = await walk(server, page_size=10)

    assert len(ids) == 30
    assert len(server.requests) == 3


async def test_an_empty_collection_is_one_request(server: LoopbackServer) -> None:
    serve_collection(server, [])

    assert await walk(server) == []
    assert len(server.requests) == 1


async def test_the_walk_ends_on_an_empty_page_even_if_count_says_more(
    server: LoopbackServer,
) -> None:
    def lying(request: web.Request) -> web.Response:
        skip = int(request.query["skip"])
        items = [message(i) for i in range(skip, skip + 10)] if skip < 20 else []
        return json_response({"count": 1000, "items": items})

    server.answer(lying)

    ids = await walk(server, page_size=10)

    assert len(ids) == 20
    assert asked(server) == [(0, 10), (10, 10), (20, 10)]


async def test_the_walk_starts_at_skip(server: LoopbackServer) -> None:
    serve_collection(server, store_of(25))

    ids = await walk(server, page_size=10, skip=12)

    assert ids == [f"id-{i}" for i in range(12, 25)]
    assert asked(server) == [(12, 10), (22, 10)]


async def test_a_growing_count_is_followed_to_the_new_end(
    server: LoopbackServer,
) -> None:
    store = store_of(20)

    def grow(page: int) -> None:
        if page == 1:
            store.extend(message(i) for i in range(20, 25))

    serve_collection(server, store, before_page=grow)

    ids = await walk(server, page_size=10)

    assert ids == [f"id-{i}" for i in range(25)]
    assert len(server.requests) == 3


async def test_no_id_is_yielded_twice_when_items_shift(server: LoopbackServer) -> None:
    """Messages inserted at the front between pages push seen items forward."""
    store = store_of(30)

    def insert_front(page: int) -> None:
        if page in (1, 2):
            store[0:0] = [message(100 + page * 10 + i) for i in range(3)]

    serve_collection(server, store, before_page=insert_front)

    async with client_for(server) as client:
        pager = client.list(page_size=10, concurrency=1)
        ids = [m.id async for m in pager]

    assert ids == [f"id-{i}" for i in range(30)]
    assert pager.stats.duplicates_dropped == 6


async def test_a_falling_count_is_reported(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_of(30)

    def delete(page: int) -> None:
        if page == 1:
            del store[0:5]

    serve_collection(server, store, before_page=delete)
    caplog.set_level(logging.WARNING, logger="external_messages_async")

    async with client_for(server) as client:
        pager = client.list(page_size=10, concurrency=1)
        ids = [m.id async for m in pager]

    assert pager.stats.count_decreased is True
    assert (pager.stats.first_count, pager.stats.last_count) == (30, 25)
    assert len(ids) == len(set(ids)) == 25  # 10 to 14 shifted past the walk
    assert any("count fell from 30 to 25" in r.getMessage() for r in caplog.records)


async def test_limit_stops_and_the_last_request_asks_only_for_the_rest(
    server: LoopbackServer,
) -> None:
    serve_collection(server, store_of(100))

    ids = await walk(server, page_size=10, limit=25)

    assert ids == [f"id-{i}" for i in range(25)]
    assert asked(server) == [(0, 10), (10, 10), (20, 5)]


async def test_limit_cuts_a_page_that_overshoots(server: LoopbackServer) -> None:
    """A server that ignores `top` must not make the walk exceed `limit`."""
    server.answer(lambda request: json_response({"count": 50, "items": store_of(50)}))

    ids = await walk(server, page_size=10, limit=3)

    assert ids == ["id-0", "id-1", "id-2"]
    assert len(server.requests) == 1


async def test_limit_zero_makes_no_request(server: LoopbackServer) -> None:
    serve_collection(server, store_of(10))

    assert await walk(server, limit=0) == []
    assert server.requests == []


async def test_the_walk_is_lazy(server: LoopbackServer) -> None:
    serve_collection(server, store_of(500))

    async with client_for(server) as client:
        async for message_ in client.list(page_size=10, concurrency=1):
            first = message_
            break

    assert first.id == "id-0"
    assert len(server.requests) == 1


async def test_nothing_is_requested_before_iteration(server: LoopbackServer) -> None:
    serve_collection(server, store_of(5))

    async with client_for(server) as client:
        client.list()

    assert server.requests == []


async def test_pages_yields_pages_with_count_and_skip(server: LoopbackServer) -> None:
    serve_collection(server, store_of(25))

    async with client_for(server) as client:
        pages = [p async for p in client.list(page_size=10, concurrency=1).pages()]

    assert [(p.skip, p.count, len(p.items)) for p in pages] == [
        (0, 25, 10),
        (10, 25, 10),
        (20, 25, 5),
    ]
    assert all(isinstance(p, Page) for p in pages)
    assert pages[2].items[-1].id == "id-24"


async def test_each_iteration_starts_a_new_walk(server: LoopbackServer) -> None:
    serve_collection(server, store_of(3))

    async with client_for(server) as client:
        pager = client.list(concurrency=1)
        first = [m.id async for m in pager]
        second = [m.id async for m in pager]

    assert first == second == ["id-0", "id-1", "id-2"]
    assert len(server.requests) == 2
    assert pager.stats.items == 3
    assert pager.stats.next_skip == 3


async def test_the_default_walk_yields_every_item_once(server: LoopbackServer) -> None:
    """Whatever the default concurrency, the walk is complete and in order."""
    serve_collection(server, store_of(45))

    async with client_for(server) as client:
        ids = [m.id async for m in client.list(page_size=10)]

    assert ids == [f"id-{i}" for i in range(45)]


# --- servers that bend the paging rules --------------------------------------


def ignore_skip(server: LoopbackServer, count: int) -> None:
    """Answer every page with the first ``top`` messages and a fixed ``count``."""

    def handler(request: web.Request) -> web.Response:
        top = int(request.query["top"])
        return json_response(
            {"count": count, "items": [message(i) for i in range(top)]}
        )

    server.answer(handler)


async def drain(pager: MessagePager, into: list[str | None]) -> None:
    async for item in pager:
        into.append(item.id)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_server_ignoring_skip_with_a_huge_count_is_not_walked_for_ever(
    server: LoopbackServer, concurrency: int
) -> None:
    ignore_skip(server, 10**12)
    got: list[str | None] = []

    async with client_for(server) as client:
        pager = client.list(page_size=50, concurrency=concurrency)
        with pytest.raises(PagingError) as caught:
            await drain(pager, got)

    assert caught.value.ignored == "skip"
    assert caught.value.resume_skip == pager.stats.next_skip == 50
    assert "appears to ignore skip" in str(caught.value)
    assert got == [f"id-{i}" for i in range(50)]
    # The first page, two repeated pages, and what the window had in flight.
    assert len(server.requests) <= 3 + concurrency


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_fake_server_ignoring_skip_ends_the_walk_with_paging_error(
    concurrency: int,
) -> None:
    """250 messages: the walk no longer "succeeds" with 100 of them."""
    got: list[str | None] = []

    async with (
        FakePortSIPServer(messages=250, ignore_query={"skip"}) as pbx,
        ExternalMessagesClient(pbx.url, token=pbx.token, retry=FAST_RETRY) as client,
    ):
        pager = client.list(concurrency=concurrency)
        with pytest.raises(PagingError) as caught:
            await drain(pager, got)

    assert caught.value.ignored == "skip"
    assert caught.value.resume_skip == 100
    assert got == [m["id"] for m in pbx.messages[:100]]


@pytest.mark.parametrize("concurrency", [1, 4, 8])
async def test_the_walk_learns_the_server_cap_from_the_first_short_page(
    concurrency: int,
) -> None:
    """200 messages at a cap of 30: one request of 100, then 6 of 30."""
    async with (
        FakePortSIPServer(messages=200, max_top=30) as pbx,
        ExternalMessagesClient(pbx.url, token=pbx.token, retry=FAST_RETRY) as client,
    ):
        got = [m.id async for m in client.list(concurrency=concurrency)]

    assert got == [m["id"] for m in pbx.messages]
    asked = sorted((int(r.query["skip"]), int(r.query["top"])) for r in pbx.requests)
    assert asked == [(0, 100), *((skip, 30) for skip in range(30, 200, 30))]
