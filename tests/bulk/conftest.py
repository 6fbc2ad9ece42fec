"""A loopback PBX for the bulk tests, with knobs for what the walk must survive.

`BulkServer` is the package's `FakePortSIPServer` serving a list of dicts on
127.0.0.1, with the knobs below applied through its `on_request` hook. Tests
turn knobs (latency per request, short
pages, failing offsets, scripted 429s, items appended when a page is served)
and read what crossed the wire: every request with its receive time, and the
most requests ever in flight at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async.testing import (
    FakePortSIPServer,
    RecordedRequest,
    ScriptedResponse,
)
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
    """The package's fake PBX with the bulk tests' knobs, set through its on_request hook."""

    def __init__(self, count: int) -> None:
        self.fake = FakePortSIPServer(
            [message(i) for i in range(count)],
            token="t",
            preserialize=False,  # tests edit items in place
            on_request=self._answer,
        )
        self.received: list[Received] = []
        #: Seconds to wait before answering; a callable gets the request.
        self.latency: float | Callable[[Received], float] = 0.0
        #: How many items a page at (skip, top) returns: short pages, or a
        #: server that ignores ``top``; ``None`` for ``top``.
        self.page_size: Callable[[int, int], int] | None = None
        #: Status to answer for a list request at a given skip, if any.
        self.fail_at: dict[int, int] = {}
        #: Answers to give, in order, before the normal one: (status, headers).
        self.script: list[tuple[int, dict[str, str]]] = []
        #: A count to report instead of the real one.
        self.count: int | None = None
        #: Called with the skip of each list request before it is answered.
        self.on_list: Callable[[int], None] = lambda skip: None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The collection, served in list order (the fake's ties keep it)."""
        return self.fake.messages

    @items.setter
    def items(self, items: list[dict[str, Any]]) -> None:
        self.fake.messages[:] = items

    @property
    def url(self) -> str:
        return self.fake.url

    @property
    def in_flight(self) -> int:
        return self.fake.in_flight

    @property
    def max_in_flight(self) -> int:
        return self.fake.max_in_flight

    def list_requests(self) -> list[Received]:
        return [r for r in self.received if r.skip is not None]

    async def _answer(
        self, fake: FakePortSIPServer, request: RecordedRequest
    ) -> ScriptedResponse | None:
        is_list = request.path == "/api/external_messages"
        skip = int(request.query["skip"]) if is_list else None
        top = int(request.query["top"]) if is_list else None
        seen = Received(request.received_at, request.path, skip, top)
        self.received.append(seen)
        latency = self.latency(seen) if callable(self.latency) else self.latency
        if latency:
            await asyncio.sleep(latency)
        if self.script:
            status, headers = self.script.pop(0)
            return ScriptedResponse(status=status, headers=headers, body={})
        if skip is None or top is None:
            return None
        if skip in self.fail_at:
            return ScriptedResponse(status=self.fail_at[skip], body={})
        self.on_list(skip)
        if self.count is None and self.page_size is None:
            return None
        take = top if self.page_size is None else self.page_size(skip, top)
        count = len(self.items) if self.count is None else self.count
        return ScriptedResponse(
            body={"count": count, "items": self.items[skip : skip + take]}
        )

    async def start(self) -> None:
        await self.fake.start()

    async def stop(self) -> None:
        await self.fake.close()


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
