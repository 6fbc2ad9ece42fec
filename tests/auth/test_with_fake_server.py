"""Password login against the package's own ``FakePortSIPServer``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async.testing import FakePortSIPServer, Faults

from .conftest import FAST_RETRY, PASSWORD, USERNAME, SecretWatch


@pytest.fixture
async def fake(secret_watch: SecretWatch) -> AsyncIterator[FakePortSIPServer]:
    """One-second tokens; every token it saw is a secret for the logs check."""
    async with FakePortSIPServer(
        messages=60,
        seed=3,
        token=None,
        users={USERNAME: PASSWORD},
        token_lifetime=1.0,
    ) as server:
        yield server
        for request in server.requests:
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            form = dict(parse_qsl(request.body.decode(errors="replace")))
            secret_watch.add(bearer, form.get("refresh_token", ""))


def password_client(server: FakePortSIPServer) -> ExternalMessagesClient:
    return ExternalMessagesClient(
        server.url, username=USERNAME, password=PASSWORD, retry=FAST_RETRY
    )


async def test_fifty_concurrent_gets_log_in_once(fake: FakePortSIPServer) -> None:
    ids = [message["id"] for message in fake.messages[:50]]

    async with password_client(fake) as client:
        messages = await asyncio.gather(*(client.get(i) for i in ids))

    assert [m.id for m in messages] == ids
    assert fake.login_count == 1


async def test_fifty_calls_meeting_expired_tokens_refresh_once(
    fake: FakePortSIPServer,
) -> None:
    ids = [message["id"] for message in fake.messages[:50]]
    async with password_client(fake) as client:
        await client.get(ids[0])
        fake.expire_tokens()

        messages = await asyncio.gather(*(client.get(i) for i in ids))

    assert len(messages) == 50
    assert fake.login_count == 1
    assert fake.refresh_count == 1


async def test_walk_outlives_one_second_tokens(fake: FakePortSIPServer) -> None:
    fake.faults = Faults(latency=0.1)

    async with password_client(fake) as client:
        ids = [m.id async for m in client.list(page_size=4, concurrency=1)]

    assert ids == [message["id"] for message in fake.messages]
    assert fake.login_count == 1
    assert fake.refresh_count >= 1


async def test_close_revokes_the_last_token(fake: FakePortSIPServer) -> None:
    async with password_client(fake) as client:
        await client.count()
        token = fake.requests[-1].headers["Authorization"].removeprefix("Bearer ")

    assert fake.revoked_tokens == {token}
    assert fake.requests[-1].path == "/api/login/oauth/revoke"
