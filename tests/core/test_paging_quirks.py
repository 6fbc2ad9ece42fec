"""The walk against servers that bend the paging rules, over the wire.

A server that caps its pages below ``page_size`` is asked for its cap once
the first short page shows it; a server that ignores ``skip`` ends the walk
with a ``PagingError`` instead of being walked for ever. The pure decisions
are in ``test_planner.py``.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from external_messages_async import ExternalMessagesClient, MessagePager
from external_messages_async.errors import PagingError

from .conftest import (
    FAST_RETRY,
    TOKEN,
    LoopbackServer,
    json_response,
    message,
    serve_collection,
)


def ignore_skip(server: LoopbackServer, count: int) -> None:
    """Answer every page with the first ``top`` messages, whatever its ``skip``."""

    def handler(request: web.Request) -> web.Response:
        top = int(request.query["top"])
        return json_response(
            {"count": count, "items": [message(i) for i in range(top)]}
        )

    server.answer(handler)


async def drain(pager: MessagePager, into: list[str | None]) -> None:
    async for item in pager:
        into.append(item.id)


@pytest.mark.parametrize("count", [10**12, 250])
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_server_ignoring_skip_ends_the_walk_with_paging_error(
    server: LoopbackServer, count: int, concurrency: int
) -> None:
    ignore_skip(server, count)
    got: list[str | None] = []

    async with ExternalMessagesClient(
        server.url, token=TOKEN, retry=FAST_RETRY
    ) as client:
        pager = client.list(page_size=50, concurrency=concurrency)
        with pytest.raises(PagingError) as caught:
            await drain(pager, got)

    assert caught.value.ignored == "skip"
    assert caught.value.resume_skip == 50
    assert pager.stats.next_skip == 50
    assert got == [f"id-{i}" for i in range(50)]
    # The first page, two repeated pages, and what the window had in flight.
    assert len(server.requests) <= 3 + concurrency


@pytest.mark.parametrize("concurrency", [1, 4, 8])
async def test_the_walk_learns_the_server_cap_from_the_first_short_page(
    server: LoopbackServer, concurrency: int
) -> None:
    """200 messages at a cap of 30: one request of 100, then 6 of 30."""
    serve_collection(server, [message(i) for i in range(200)], max_top=30)

    async with ExternalMessagesClient(
        server.url, token=TOKEN, retry=FAST_RETRY
    ) as client:
        got = [m.id async for m in client.list(concurrency=concurrency)]

    assert got == [f"id-{i}" for i in range(200)]
    asked = sorted((int(r.query["skip"]), int(r.query["top"])) for r in server.requests)
    assert asked == [(0, 100), *((skip, 30) for skip in range(30, 200, 30))]
