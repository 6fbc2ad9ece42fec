"""The client's connection pool: made lazily, closed once, borrowed ones left alone."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aioresponses import aioresponses

from external_messages_async import (
    ClientStateError,
    ExternalMessagesClient,
    RetryPolicy,
)

from .conftest import TOKEN, LoopbackServer, json_response, message

PAGE = {"count": 1, "items": [message(1)]}


@pytest.fixture
def ok(server: LoopbackServer) -> LoopbackServer:
    server.answer(lambda request: json_response(PAGE))
    return server


def test_the_client_can_be_built_outside_an_event_loop() -> None:
    """No aiohttp session is made in the constructor (it would need a loop)."""
    client = ExternalMessagesClient("https://pbx.example.com:8887", token=TOKEN)

    assert client._http.transport.session is None
    assert client.closed is False


async def test_the_own_session_is_made_on_first_use(ok: LoopbackServer) -> None:
    client = ExternalMessagesClient(ok.url, token=TOKEN)
    assert client._http.transport.session is None

    await client.count()

    assert isinstance(client._http.transport.session, aiohttp.ClientSession)
    await client.aclose()


async def test_aclose_closes_the_own_session(ok: LoopbackServer) -> None:
    client = ExternalMessagesClient(ok.url, token=TOKEN)
    await client.count()
    session = client._http.transport.session
    assert session is not None

    await client.aclose()

    assert session.closed
    assert client.closed


async def test_async_with_exit_closes_the_own_session(ok: LoopbackServer) -> None:
    async with ExternalMessagesClient(ok.url, token=TOKEN) as client:
        await client.count()
        session = client._http.transport.session
        assert session is not None

    assert session.closed
    assert client.closed


async def test_async_with_exit_closes_on_an_exception(ok: LoopbackServer) -> None:
    client = ExternalMessagesClient(ok.url, token=TOKEN)

    async def fail_inside() -> None:
        async with client:
            await client.count()
            raise KeyError("boom")

    with pytest.raises(KeyError):
        await fail_inside()

    assert client.closed
    assert client._http.transport.session is None


async def test_closing_twice_is_harmless(ok: LoopbackServer) -> None:
    client = ExternalMessagesClient(ok.url, token=TOKEN)
    await client.count()

    await client.aclose()
    await client.aclose()

    assert client.closed


async def test_closing_an_unused_client_makes_no_session() -> None:
    client = ExternalMessagesClient("https://pbx.example.com:8887", token=TOKEN)

    await client.aclose()

    assert client._http.transport.session is None
    assert client.closed


@pytest.mark.parametrize("call", ["get", "get_page", "count", "list"])
async def test_a_call_on_a_closed_client_raises_client_state_error(
    ok: LoopbackServer, call: str
) -> None:
    client = ExternalMessagesClient(ok.url, token=TOKEN)
    await client.count()
    await client.aclose()
    requests_before = len(ok.requests)

    async def make_the_call() -> None:
        if call == "get":
            await client.get("id-1")
        elif call == "get_page":
            await client.get_page()
        elif call == "count":
            await client.count()
        else:
            async for _ in client.list():
                pass

    with pytest.raises(ClientStateError, match="closed"):
        await make_the_call()

    assert len(ok.requests) == requests_before


async def test_client_state_error_is_also_a_runtime_error() -> None:
    client = ExternalMessagesClient("https://pbx.example.com:8887", token=TOKEN)
    await client.aclose()

    with pytest.raises(RuntimeError):
        await client.count()


async def test_a_borrowed_session_is_never_closed(ok: LoopbackServer) -> None:
    async with aiohttp.ClientSession() as borrowed:
        async with ExternalMessagesClient(
            ok.url, token=TOKEN, session=borrowed
        ) as client:
            await client.count()
        await client.aclose()

        assert not borrowed.closed
        async with borrowed.get(ok.url + "/still-usable") as response:
            assert response.status == 200
        assert client._http.transport.session is None


async def test_a_borrowed_session_carries_the_requests(ok: LoopbackServer) -> None:
    async with aiohttp.ClientSession() as borrowed:
        client = ExternalMessagesClient(ok.url, token=TOKEN, session=borrowed)

        await client.count()

        assert client._http.transport.session is borrowed
        await client.aclose()


def test_a_session_that_is_not_an_aiohttp_session_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ClientSession"):
        ExternalMessagesClient(
            "https://pbx:8887",
            token=TOKEN,
            session=object(),  # type: ignore[arg-type]  # wrong on purpose
        )


def test_using_the_client_from_another_event_loop_is_refused(
    mocked: aioresponses,
) -> None:
    client = ExternalMessagesClient("https://pbx:8887", token=TOKEN)
    mocked.get(
        "https://pbx:8887/api/external_messages?skip=0&top=1",
        payload={"count": 3, "items": []},
    )

    async def first() -> None:
        assert await client.count() == 3

    async def second() -> None:
        with pytest.raises(ClientStateError, match="another event loop"):
            await client.count()
        await client.aclose()

    asyncio.run(first())
    asyncio.run(second())

    assert client.closed


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": "30"}, TypeError),
        ({"timeout": True}, TypeError),
        ({"ssl": "no"}, TypeError),
        ({"ssl": True}, TypeError),
        ({"max_response_bytes": 0}, ValueError),
        ({"max_response_bytes": 1.5}, TypeError),
        ({"max_retries": -1}, ValueError),
    ],
)
def test_bad_options_are_refused_in_the_constructor(
    options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ExternalMessagesClient("https://pbx:8887", token=TOKEN, **options)  # type: ignore[arg-type]  # wrong on purpose


def test_the_retry_settings_come_from_max_retries_or_retry() -> None:
    policy = RetryPolicy(max_retries=5, backoff_base=0.1)

    assert ExternalMessagesClient("https://pbx", token=TOKEN).retry == RetryPolicy()
    assert ExternalMessagesClient(
        "https://pbx", token=TOKEN, max_retries=1
    ).retry == RetryPolicy(max_retries=1)
    assert (
        ExternalMessagesClient("https://pbx", token=TOKEN, retry=policy).retry is policy
    )
