"""A small loopback HTTP server for the core tests, and data helpers.

`LoopbackServer` is a real aiohttp.web server on 127.0.0.1 whose answer the
test sets (`server.handler = ...`), and which records every request it saw
with its raw path, so tests can assert on what crossed the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aioresponses.core as aioresponses_core
import attrs
import pytest
from aiohttp import ClientResponse, web
from aioresponses import aioresponses
from multidict import CIMultiDict, MultiDict

from tests.conftest import (
    FAST_RETRY as FAST_RETRY,
)  # the core tests import it from here

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN = "s3cr3t-token-value"


@attrs.frozen
class Seen:
    """One request as the server saw it."""

    method: str
    raw_path: str
    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]
    peer: Any


def message(index: int, **fields: Any) -> dict[str, Any]:
    """Return a valid item as PortSIP would send it."""
    item: dict[str, Any] = {
        "id": f"id-{index}",
        "sender": "+15550000001",
        "receiver": "+15550000002",
        "msg_type": "SMS",
        "direction": "IN",
        "content": f"message {index}",
        "delivery": "DELIVERED",
        "created_at": "2024-05-01T12:00:00Z",
    }
    item.update(fields)
    return item


def json_response(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


class _SentRequest:
    """What aiohttp >= 3.14 reads from a finished request's writer."""

    output_size = 0


class _CompatResponse(ClientResponse):
    """A response aioresponses 0.7.9 can build under aiohttp >= 3.14.

    aiohttp 3.14 made ``stream_writer`` a required argument, which
    aioresponses 0.7.9 (the latest release) does not pass.
    """

    def __init__(self, *args: Any, stream_writer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, stream_writer=stream_writer or _SentRequest(), **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, working around its incompatibility with aiohttp 3.14."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mock:
        yield mock


class LoopbackServer:
    """An aiohttp.web app on 127.0.0.1 with a settable handler and a request log."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.handler: Handler = self._not_set
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The origin, such as ``http://127.0.0.1:PORT`` (no ``/api``)."""
        return f"http://127.0.0.1:{self.port}"

    async def _not_set(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=599, text="no handler set")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Seen(
                method=request.method,
                raw_path=request.raw_path,
                path=request.path,
                query=MultiDict(request.query),
                headers=CIMultiDict(request.headers),
                peer=request.transport.get_extra_info("peername")
                if request.transport
                else None,
            )
        )
        return await self.handler(request)

    def answer(self, *responses: Callable[[], web.StreamResponse] | Handler) -> None:
        """Answer requests in turn with these handlers; the last one repeats."""
        queue = list(responses)

        async def scripted(request: web.Request) -> web.StreamResponse:
            handler = queue.pop(0) if len(queue) > 1 else queue[0]
            result = handler(request)  # type: ignore[call-arg]  # handlers take the request or nothing; this branch is the former
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[return-value]  # handlers return aiohttp responses

        self.handler = scripted

    async def hang(self) -> None:
        """Block a handler until the test ends (for timeouts and cancellation)."""
        await self.release.wait()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # private, Optional before start(); set by start() above

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    loopback = LoopbackServer()
    await loopback.start()
    yield loopback
    await loopback.close()


@pytest.fixture
async def other_server() -> AsyncIterator[LoopbackServer]:
    loopback = LoopbackServer()
    await loopback.start()
    yield loopback
    await loopback.close()


def serve_collection(
    server: LoopbackServer,
    store: list[dict[str, Any]],
    *,
    max_top: int | None = None,
    before_page: Callable[[int], None] | None = None,
) -> None:
    """Serve ``store`` as the collection, honouring ``skip`` and ``top``.

    Args:
        server: The server to configure.
        store: The items; the test may change it between pages.
        max_top: Return at most this many items per page (a short-page server).
        before_page: Called with the page number (from 0) before each answer.
    """
    pages = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal pages
        if before_page is not None:
            before_page(pages)
        pages += 1
        skip = int(request.query.get("skip", "0"))
        top = int(request.query.get("top", "100"))
        if max_top is not None:
            top = min(top, max_top)
        return web.json_response(
            {"count": len(store), "items": store[skip : skip + top]}
        )

    server.handler = handler
