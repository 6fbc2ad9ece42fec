"""A loopback PBX for the bulk tests, with knobs for what the walk must survive.

`BulkServer` serves `/api/external_messages` and `/api/external_messages/{id}`
from a list of dicts on 127.0.0.1. Tests turn knobs (latency per request, short
pages, failing offsets, scripted 429s, items appended when a page is served)
and read what crossed the wire: every request with its receive time, and the
most requests ever in flight at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
from aiohttp import web

from external_messages_async import ExternalMessagesClient
from tests.conftest import FAST_RETRY as SHARED_FAST_RETRY

#: Retries that never slow a test down; two, so that failure tests stay short.
FAST_RETRY = attrs.evolve(SHARED_FAST_RETRY, max_retries=2)


def message(index: int) -> dict[str, Any]:
    """Return a valid item as PortSIP would send it."""
    return {
        "id": f"m{index:06d}",
        "sender": "+15550000001",
        "msg_type": "SMS",
        "direction": "IN",
        "content": f"message {index}",
        "created_at": "2024-05-01T12:00:00Z",
    }


@attrs.define
class Received:
    """One request as the server saw it."""

    at: float
    path: str
    skip: int | None = None
    top: int | None = None


class BulkServer:
    """A loopback server with an in-memory collection and a request log."""

    def __init__(self, count: int) -> None:
        self.items: list[dict[str, Any]] = [message(i) for i in range(count)]
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        #: Seconds to wait before answering; a callable gets the request path+query.
        self.latency: float | Callable[[Received], float] = 0.0
        #: How many items a page at (skip, top) returns: short pages, or a
        #: server that ignores ``top``.
        self.page_size: Callable[[int, int], int] = lambda skip, top: top
        #: Status to answer for a list request at a given skip, if any.
        self.fail_at: dict[int, int] = {}
        #: Answers to give, in order, before the normal one: (status, headers).
        self.script: list[tuple[int, dict[str, str]]] = []
        #: A count to report instead of the real one.
        self.count: int | None = None
        #: Called with the skip of each list request before it is answered.
        self.on_list: Callable[[int], None] = lambda skip: None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def list_requests(self) -> list[Received]:
        return [r for r in self.received if r.skip is not None]

    async def _enter(self, seen: Received) -> None:
        self.received.append(seen)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        latency = self.latency(seen) if callable(self.latency) else self.latency
        if latency:
            await asyncio.sleep(latency)

    async def _list(self, request: web.Request) -> web.Response:
        skip = int(request.query["skip"])
        top = int(request.query["top"])
        seen = Received(time.monotonic(), request.path, skip, top)
        try:
            await self._enter(seen)
            if self.script:
                status, headers = self.script.pop(0)
                return web.json_response({}, status=status, headers=headers)
            if skip in self.fail_at:
                return web.json_response({}, status=self.fail_at[skip])
            self.on_list(skip)
            take = self.page_size(skip, top)
            return web.json_response(
                {
                    "count": len(self.items) if self.count is None else self.count,
                    "items": self.items[skip : skip + take],
                }
            )
        finally:
            self.in_flight -= 1

    async def _item(self, request: web.Request) -> web.Response:
        seen = Received(time.monotonic(), request.path)
        try:
            await self._enter(seen)
            if self.script:
                status, headers = self.script.pop(0)
                return web.json_response({}, status=status, headers=headers)
            wanted = request.match_info["id"]
            for item in self.items:
                if item["id"] == wanted:
                    return web.json_response(item)
            return web.json_response(
                {"errors": [{"code": "NOT_FOUND", "message": "no such message"}]},
                status=404,
            )
        finally:
            self.in_flight -= 1

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/external_messages", self._list)
        app.router.add_get("/api/external_messages/{id}", self._item)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # private, Optional before start(); set by start() above

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[BulkServer]:
    bulk = BulkServer(count=0)
    await bulk.start()
    yield bulk
    await bulk.stop()


@pytest.fixture
async def client(server: BulkServer) -> AsyncIterator[ExternalMessagesClient]:
    async with ExternalMessagesClient(
        server.url, token="t", retry=FAST_RETRY
    ) as bulk_client:
        yield bulk_client
