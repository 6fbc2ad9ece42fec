"""client.watch(): live inserts seen once, transient errors outlived, prompt stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from external_messages_async import (
    AuthenticationError,
    DeliveryStatus,
    ExternalMessage,
    MessageWatch,
    PermissionDeniedError,
)
from external_messages_async._watch import RecentMessages, next_delay
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import Served, at, model, other_tasks, wire

Serve = Callable[..., Awaitable[Served]]


def spread(n: int, prefix: str = "m", start: int = 0) -> list[dict[str, Any]]:
    """``n`` messages one second apart, newest first."""
    return [wire(f"{prefix}{i:03d}", start + i) for i in reversed(range(n))]


def test_recent_messages_yield_a_new_id_once() -> None:
    recent = RecentMessages()

    assert recent.observe(model("a", 1), updates=False)
    assert not recent.observe(model("a", 1), updates=False)
    assert len(recent) == 1


def test_recent_messages_yield_a_changed_delivery_only_with_updates() -> None:
    recent = RecentMessages()
    sent = ExternalMessage(id="a", delivery=DeliveryStatus.SENT)
    delivered = ExternalMessage(id="a", delivery=DeliveryStatus.DELIVERED)
    failed = ExternalMessage(id="a", delivery=DeliveryStatus.ERR, reason="blocked")
    recent.observe(sent, updates=True)

    assert not recent.observe(delivered, updates=False)
    assert recent.observe(delivered, updates=True)
    assert not recent.observe(delivered, updates=True)
    assert recent.observe(failed, updates=True)


def test_recent_messages_forget_the_oldest_beyond_their_size() -> None:
    recent = RecentMessages(size=2)
    for name in "abc":
        recent.observe(model(name, 1), updates=False)

    assert len(recent) == 2
    assert recent.observe(model("a", 1), updates=False)
    assert not recent.observe(model("c", 1), updates=False)


@pytest.mark.parametrize(
    ("delay", "found", "expected"),
    [
        (0.0, True, 1.0),
        (4.0, True, 1.0),
        (0.0, False, 1.0),
        (1.0, False, 2.0),
        (6.0, False, 8.0),
    ],
)
def test_next_delay_backs_off_while_nothing_comes(
    delay: float, found: bool, expected: float
) -> None:
    assert next_delay(delay, found, poll_interval=8.0) == expected


def after_requests(server: FakePortSIPServer, count: int) -> asyncio.Event:
    """An event set once the server has received ``count`` list requests."""
    reached = asyncio.Event()

    def hook(server: FakePortSIPServer, skip: int, top: int) -> None:
        if len(server.requests) >= count:
            reached.set()

    server.on_list_page = hook
    return reached


def hold_requests(server: FakePortSIPServer) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold every list request until the second event is set; the first says one arrived."""
    arrived, release = asyncio.Event(), asyncio.Event()

    async def hold(server: FakePortSIPServer, skip: int, top: int) -> None:
        arrived.set()
        await release.wait()

    server.on_list_page = hold
    return arrived, release


async def test_watch_yields_each_live_insert_once(serve: Serve) -> None:
    """Old messages are not yielded; each new one is, once, in order of creation."""
    served = await serve(spread(5))
    got: list[str | None] = []
    inserted: list[str] = []
    # The newest message, the window before it, then the first poll.
    polling = after_requests(served.server, 3)

    async with served.client.watch(poll_interval=0.01) as watch:
        items = aiter(watch)
        first = asyncio.create_task(anext(items))
        await polling.wait()
        served.server.insert_messages([wire("first", 5)])
        got.append((await first).id)
        inserted.append("first")
        for batch in range(4):
            new = [wire(f"new{batch}{i}", 10 + batch) for i in range(3)]
            served.server.insert_messages(new, at=batch)
            inserted += [m["id"] for m in new]
            got += [(await anext(items)).id for _ in new]
        served.server.insert_messages([wire("last", 20)])
        got.append((await anext(items)).id)

    assert got == [*inserted, "last"]
    assert other_tasks() == set()


async def test_watch_from_since_yields_what_exists_from_then(serve: Serve) -> None:
    served = await serve(spread(5))

    async with served.client.watch(since=at(3), poll_interval=0.01) as watch:
        items = aiter(watch)
        first = [(await anext(items)).id for _ in range(2)]

    assert first == ["m003", "m004"]


async def test_watch_on_an_empty_pbx_yields_the_first_messages(serve: Serve) -> None:
    served = await serve([])
    polling = after_requests(served.server, 2)

    async with served.client.watch(poll_interval=0.01) as watch:
        pending = asyncio.create_task(anext(aiter(watch)))
        await polling.wait()
        served.server.insert_messages([wire("a", 1)])
        first = await pending

    assert first.id == "a"


async def test_watch_with_updates_yields_a_delivery_change(serve: Serve) -> None:
    served = await serve(spread(2))

    async with served.client.watch(
        since=at(0), poll_interval=0.01, updates=True
    ) as watch:
        items = aiter(watch)
        before = [await anext(items) for _ in range(2)]
        served.server.messages[0]["delivery"] = "DELIVERED"
        served.server.messages_changed()
        again = await anext(items)

    assert [m.id for m in before] == ["m000", "m001"]
    assert again.id == "m001"
    assert again.delivery is DeliveryStatus.DELIVERED


async def test_watch_without_updates_ignores_a_delivery_change(serve: Serve) -> None:
    served = await serve(spread(2))

    async with served.client.watch(since=at(0), poll_interval=0.01) as watch:
        items = aiter(watch)
        [await anext(items) for _ in range(2)]
        served.server.messages[0]["delivery"] = "DELIVERED"
        served.server.messages_changed()
        served.server.insert_messages([wire("next", 5)])
        following = await anext(items)

    assert following.id == "next"


async def test_watch_logs_and_outlives_a_server_error(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(spread(2))
    caplog.set_level(logging.WARNING, logger="external_messages_async")

    polling = after_requests(served.server, 3)

    async with served.client.watch(poll_interval=0.01) as watch:
        pending = asyncio.create_task(anext(aiter(watch)))
        await polling.wait()
        served.server.script([ScriptedResponse(status=503)] * 4)
        served.server.insert_messages([wire("after", 9)])
        after = await pending

    assert after.id == "after"
    assert "watch: a poll failed (ServerError" in caplog.text
    assert served.server.pending_scripts == 0


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (403, PermissionDeniedError)]
)
async def test_watch_raises_on_authentication_and_permission_errors(
    serve: Serve, status: int, error: type[Exception]
) -> None:
    served = await serve(spread(2))
    served.server.script([ScriptedResponse(status=status)])

    async with served.client.watch(poll_interval=0.01) as watch:
        with pytest.raises(error):
            await anext(aiter(watch))

    assert other_tasks() == set()


async def test_break_leaves_no_task(serve: Serve) -> None:
    served = await serve([])

    async with served.client.watch(since=at(0), poll_interval=0.01) as watch:
        served.server.insert_messages([wire("a", 1)])
        async for _ in watch:
            break

    assert other_tasks() == set()
    assert [m async for m in watch] == []


async def test_aclose_from_another_task_ends_a_long_wait(serve: Serve) -> None:
    """poll_interval is an hour: only aclose() can end the consumer's wait."""
    served = await serve(spread(1))
    watch = served.client.watch(since=at(0), poll_interval=3600)
    first = await anext(aiter(watch))
    consumer = asyncio.create_task(anext(aiter(watch), None))
    await asyncio.sleep(0)  # the consumer runs until it waits
    waiting = [
        task
        for task in other_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "sleep"
    ]

    await watch.aclose()
    await watch.aclose()

    assert first.id == "m000"
    assert len(waiting) == 1
    assert await consumer is None
    assert watch.closed
    assert other_tasks() == set()


async def test_aclose_ends_a_poll_in_flight(serve: Serve) -> None:
    served = await serve([])
    watch = served.client.watch(poll_interval=0.01)
    arrived, release = hold_requests(served.server)
    consumer = asyncio.create_task(anext(aiter(watch), None))
    await arrived.wait()

    await watch.aclose()

    assert await consumer is None
    assert other_tasks() == set()
    release.set()


async def test_cancelling_the_consumer_leaves_no_task(serve: Serve) -> None:
    served = await serve([])
    watch = served.client.watch(poll_interval=0.01)
    arrived, release = hold_requests(served.server)
    consumer = asyncio.create_task(anext(aiter(watch)))
    await arrived.wait()

    consumer.cancel()

    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert other_tasks() == set()
    release.set()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"since": datetime(2024, 1, 1)}, ValueError),
        ({"poll_interval": 0}, ValueError),
        ({"poll_interval": float("inf")}, ValueError),
        ({"poll_interval": "5"}, TypeError),
        ({"poll_interval": True}, TypeError),
        ({"updates": 1}, TypeError),
    ],
)
async def test_watch_refuses_bad_arguments_before_any_request(
    serve: Serve, options: dict[str, Any], error: type[Exception]
) -> None:
    served = await serve([])

    with pytest.raises(error):
        served.client.watch(**options)

    assert served.server.requests == []


def test_message_watch_is_exported() -> None:
    import external_messages_async

    assert external_messages_async.MessageWatch is MessageWatch
