"""Helpers for the key-walk tests: messages with chosen ids and timestamps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from external_messages_async import ExternalMessage, ExternalMessagesClient, RetryPolicy
from external_messages_async._converter import format_datetime
from external_messages_async.testing import FakePortSIPServer

#: Retries that never slow a test down.
FAST_RETRY = RetryPolicy(max_retries=1, backoff_base=0.001, backoff_cap=0.002)

#: The instant the tests' data starts at.
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """Return the instant ``seconds`` after :data:`T0`."""
    return T0 + timedelta(seconds=seconds)


def wire(message_id: str, seconds: float, **fields: Any) -> dict[str, Any]:
    """Return a message dict as PortSIP sends it, created ``seconds`` after T0."""
    return {
        "id": message_id,
        "msg_type": "SMS",
        "direction": "IN",
        "delivery": "RECV",
        "reason": "",
        "content": f"hello {message_id}",
        "created_at": format_datetime(at(seconds)),
        **fields,
    }


def model(message_id: str | None, seconds: float | None) -> ExternalMessage:
    """Return a message model as the client decodes it."""
    created = None if seconds is None else at(seconds)
    return ExternalMessage(id=message_id, created_at=created)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    """Start fake servers with given messages, each with a client; close them all."""
    stack = contextlib.AsyncExitStack()

    async def start(messages: list[dict[str, Any]], **options: Any) -> Served:
        server = await stack.enter_async_context(FakePortSIPServer(messages, **options))
        client = await stack.enter_async_context(
            ExternalMessagesClient(server.url, token=server.token, retry=FAST_RETRY)
        )
        return Served(server, client)

    async with stack:
        yield start


@attrs.frozen
class Served:
    """A fake server and a client talking to it."""

    server: FakePortSIPServer
    client: ExternalMessagesClient


def other_tasks() -> set[asyncio.Task[Any]]:
    """The client-side tasks of the running loop but the current one.

    The fake server's connection handlers (aiohttp's ``RequestHandler``) are
    left out: they serve keep-alive connections until the server closes.
    """
    return {
        task
        for task in asyncio.all_tasks()
        if task is not asyncio.current_task()
        and not getattr(task.get_coro(), "__qualname__", "").startswith(
            "RequestHandler."
        )
    }
