"""Key walks send the next page's request as soon as a page is accepted.

The walk stays sequential (one request in flight); the read-ahead only lets
the server work while the caller handles the page it has. A walk left early
cancels that request, and leaves no task and no unretrieved failure behind.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from external_messages_async.testing import ScriptedResponse
from tests.conftest import wait_until

from .conftest import Served, other_tasks, wire

Serve = Callable[..., Awaitable[Served]]

AHEAD = "external_messages_async key page"


def spread(n: int) -> list[dict[str, Any]]:
    """``n`` messages one second apart, newest first."""
    return [wire(f"m{i:03d}", i) for i in reversed(range(n))]


def list_requests(served: Served) -> int:
    return sum(
        1 for r in served.server.requests if r.path.endswith("/external_messages")
    )


def ahead_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in other_tasks() if t.get_name() == AHEAD]


@pytest.mark.parametrize(("walk", "requests"), [("changes", 3), ("scan", 4)])
async def test_a_key_walk_asks_for_the_next_page_before_it_is_wanted(
    serve: Serve, walk: str, requests: int
) -> None:
    served = await serve(spread(6))
    async with getattr(served.client, walk)(page_size=2) as reader:
        pages = reader.pages()
        first = await anext(pages)
        # Nothing more is asked of the walk: the second request goes anyway.
        await wait_until(lambda: list_requests(served) == 2)
        assert len(ahead_tasks()) <= 1
        assert [m.id for m in first] == ["m000", "m001"]
        rest = [[m.id for m in page] async for page in pages]

    assert rest == [["m002", "m003"], ["m004", "m005"]]
    # Nothing asked past the end: the page whose count says it is the last
    # sends no request ahead (a scan then counts the messages without
    # created_at, its one request more).
    assert list_requests(served) == requests


@pytest.mark.parametrize("walk", ["changes", "scan"])
async def test_leaving_a_walk_cancels_the_request_sent_ahead(
    serve: Serve, walk: str
) -> None:
    served = await serve(spread(6))
    served.server.script([ScriptedResponse(status=200), ScriptedResponse(delay=30)])
    async with getattr(served.client, walk)(page_size=2) as reader:
        async for _ in reader.pages():
            await wait_until(lambda: len(ahead_tasks()) == 1)
            break

    assert other_tasks() == set()
    if walk == "changes":
        assert reader.checkpoint is None


async def test_a_feed_dropped_without_closing_cancels_its_request(
    serve: Serve,
) -> None:
    served = await serve(spread(6))
    served.server.script([ScriptedResponse(status=200), ScriptedResponse(delay=30)])
    feed = served.client.changes(page_size=2)
    pages = feed.pages()
    await anext(pages)
    await wait_until(lambda: len(ahead_tasks()) == 1)
    task = ahead_tasks()[0]

    del pages
    feed._runs.clear()
    gc.collect()
    await asyncio.gather(task, return_exceptions=True)

    assert task.cancelled()


async def test_a_failed_request_sent_ahead_fails_the_next_page(serve: Serve) -> None:
    served = await serve(spread(6))
    served.server.script([ScriptedResponse(status=200), ScriptedResponse(status=404)])
    async with served.client.changes(page_size=2) as feed:
        pages = feed.pages()
        await anext(pages)
        with pytest.raises(Exception, match="404"):
            await anext(pages)
    assert feed.checkpoint is None


async def test_a_failure_ahead_that_nobody_reads_is_not_reported(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    served = await serve(spread(6))
    served.server.script([ScriptedResponse(status=200), ScriptedResponse(status=404)])
    async with served.client.changes(page_size=2) as feed:
        pages = feed.pages()
        await anext(pages)
        await wait_until(lambda: ahead_tasks() == [])
    # The request failed before the feed was left: its error was dropped
    # with it, not logged as "never retrieved" when the task is collected.
    gc.collect()
    await asyncio.sleep(0)

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert other_tasks() == set()
