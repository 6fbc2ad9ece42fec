"""Fixtures for the fake server's tests; the server itself comes from our plugin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


async def _wait_until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - the server's counters have no event
        await asyncio.sleep(0.005)


@pytest.fixture
def wait_until() -> WaitUntil:
    """Poll until a condition holds, e.g. until a request is in flight."""
    return _wait_until
