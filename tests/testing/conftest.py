"""Fixtures for the fake server's tests; the server itself comes from our plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tests.conftest import wait_until as shared_wait_until


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


WaitUntil = Callable[[Callable[[], bool]], Awaitable[None]]


@pytest.fixture
def wait_until() -> WaitUntil:
    """Poll until a condition holds, e.g. until a request is in flight."""
    return shared_wait_until
