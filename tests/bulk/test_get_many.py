"""Specification of ``client.get_many(ids, concurrency=K, return_exceptions=...)``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from external_messages_async import ExternalMessage, NotFoundError
from tests.conftest import wait_until


def _messages(count: int) -> list[dict[str, Any]]:
    return [{"id": f"m{i:06d}", "content": f"message {i}"} for i in range(count)]


def worker_tasks() -> list[asyncio.Task[Any]]:
    """``get_many``'s worker tasks that are not finished yet."""
    return [
        task
        for task in asyncio.all_tasks()
        if "fetch_many" in task.get_coro().__qualname__  # type: ignore[union-attr]  # get_coro() is typed Optional; tasks here run coroutines
        and not task.done()
    ]


async def test_results_come_back_in_input_order(server, client):
    server.items = _messages(50)
    server.latency = lambda seen: 0.02 if seen.path.endswith("3") else 0.0
    wanted = [f"m{i:06d}" for i in (13, 2, 49, 0, 23, 7)]

    got = await client.get_many(wanted, concurrency=4)

    assert [message.id for message in got] == wanted
    assert all(isinstance(message, ExternalMessage) for message in got)


async def test_duplicate_ids_are_fetched_once(server, client):
    server.items = _messages(10)

    got = await client.get_many(["m000001", "m000002", "m000001", "m000001"])

    assert [message.id for message in got] == ["m000001", "m000002"] + ["m000001"] * 2
    assert sorted(seen.path.rsplit("/", 1)[1] for seen in server.received) == [
        "m000001",
        "m000002",
    ]


async def test_at_most_k_requests_are_in_flight(server, client):
    server.items = _messages(40)
    server.latency = 0.01

    await client.get_many([f"m{i:06d}" for i in range(40)], concurrency=5)

    assert server.max_in_flight == 5


async def test_return_exceptions_puts_each_error_in_its_slot(server, client):
    server.items = _messages(5)

    got = await client.get_many(
        ["m000001", "missing", "m000003"], return_exceptions=True
    )

    assert isinstance(got[0], ExternalMessage)
    assert got[0].id == "m000001"
    assert isinstance(got[1], NotFoundError)
    assert got[1].status == 404
    assert isinstance(got[2], ExternalMessage)
    assert got[2].id == "m000003"


async def test_first_error_is_raised_and_the_rest_cancelled(server, client):
    server.items = _messages(100)
    server.latency = lambda seen: 0.0 if seen.path.endswith("missing") else 0.2
    wanted = ["missing"] + [f"m{i:06d}" for i in range(100)]

    with pytest.raises(NotFoundError):
        await client.get_many(wanted, concurrency=4)
    sent = len(server.received)
    pending = worker_tasks()
    await wait_until(lambda: server.in_flight == 0)

    assert pending == []
    assert sent == 4
    assert len(server.received) == sent


async def test_cancelling_get_many_cancels_its_requests(server, client):
    server.items = _messages(100)
    server.latency = 0.05
    task = asyncio.create_task(
        client.get_many([f"m{i:06d}" for i in range(100)], concurrency=4)
    )
    await wait_until(lambda: server.in_flight == 4)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sent = len(server.received)
    await wait_until(lambda: server.in_flight == 0)

    assert worker_tasks() == []
    assert sent == 4
    assert len(server.received) == sent


async def test_empty_ids_give_an_empty_list_without_requests(server, client):
    got = await client.get_many([])

    assert got == []
    assert server.received == []


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ("m000001", TypeError),
        (b"m000001", TypeError),
        (42, TypeError),
        (["m000001", 7], TypeError),
        (["m000001", ""], ValueError),
    ],
)
async def test_ids_are_checked_before_any_request(server, client, ids, error):
    server.items = _messages(5)

    with pytest.raises(error):
        await client.get_many(ids)

    assert server.received == []


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (True, TypeError)])
async def test_concurrency_is_checked(server, client, bad, error):
    with pytest.raises(error, match="concurrency"):
        await client.get_many(["m000001"], concurrency=bad)

    assert server.received == []


async def test_ids_can_be_any_iterable(server, client):
    server.items = _messages(5)

    got = await client.get_many(f"m00000{i}" for i in (4, 1))

    assert [message.id for message in got] == ["m000004", "m000001"]
