"""Cancellation at every await point, and what is left behind afterwards.

A cancelled call must end within a few turns of the event loop (the work it
drops is a socket close and a few callbacks; it waits for no timer and no
answer), and after it, and after ``aclose()``:
no task of ours still running, no connection checked out of the pool, no
``ResourceWarning`` and no coroutine that was never awaited.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from external_messages_async import ExternalMessagesClient, RetryPolicy
from external_messages_async.errors import ClientStateError
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse
from tests.conftest import PROMPT_TURNS, cancel_and_count, settle, wait_until

from .conftest import PASSWORD, USERNAME, acquired, client_for, other_tasks


async def assert_nothing_left(
    client: ExternalMessagesClient, before: set[asyncio.Task[Any]]
) -> None:
    """Check the pool, the tasks, then close the client and check for warnings."""
    await settle()
    assert acquired(client) == 0
    assert other_tasks(before) == set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await client.aclose()
        await settle()
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert client._http.transport.session is None
    assert other_tasks(before) == set()


async def cancel_during(
    client: ExternalMessagesClient,
    call: Callable[[], Awaitable[Any]],
    reached: Callable[[], bool],
) -> int:
    """Start ``call``, wait until ``reached()``, cancel it; return the loop turns it took."""
    task = asyncio.create_task(call())
    await wait_until(reached)
    await settle()  # let it reach the await that follows
    assert not task.done()
    return await cancel_and_count(task)


def retrying(caplog: pytest.LogCaptureFixture) -> Callable[[], bool]:
    """A condition: the client logged that it is about to sleep before a retry."""
    return lambda: any("retrying" in r.getMessage() for r in caplog.records)


async def test_cancel_in_a_request_to_a_hanging_server(pbx: FakePortSIPServer) -> None:
    before = asyncio.all_tasks()
    pbx.script([ScriptedResponse(hang=True)])
    client = client_for(pbx.url)

    took = await cancel_during(client, client.get_page, lambda: pbx.in_flight == 1)

    assert took <= PROMPT_TURNS
    await assert_nothing_left(client, before)


async def test_cancel_in_a_backoff_sleep(
    pbx: FakePortSIPServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = asyncio.all_tasks()
    pbx.script([ScriptedResponse(status=503, headers={"Retry-After": "30"})])
    client = client_for(pbx.url, retry=RetryPolicy(max_retries=3))

    # The 503 is answered at once; the client then sleeps the 30 s it was told.
    took = await cancel_during(client, client.get_page, retrying(caplog))

    assert took <= PROMPT_TURNS
    assert len(pbx.requests) == 1
    await assert_nothing_left(client, before)


async def test_cancel_while_waiting_for_a_429_pause(
    pbx: FakePortSIPServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = asyncio.all_tasks()
    pbx.script([ScriptedResponse(status=429, headers={"Retry-After": "30"})])
    client = client_for(pbx.url, retry=RetryPolicy(max_retries=3))
    first = asyncio.create_task(client.get_page())
    await wait_until(retrying(caplog))

    # A second call queues behind the client-wide pause the 429 set.
    took = await cancel_during(client, client.get_page, lambda: True)

    assert took <= PROMPT_TURNS
    assert len(pbx.requests) == 1
    assert await cancel_and_count(first) <= PROMPT_TURNS
    await assert_nothing_left(client, before)


async def test_cancel_in_a_token_login(pbx: FakePortSIPServer) -> None:
    before = asyncio.all_tasks()
    pbx.script([ScriptedResponse(hang=True, path="/api/login")])
    client = client_for(pbx.url, username=USERNAME, password=PASSWORD)

    took = await cancel_during(client, client.get_page, lambda: pbx.in_flight == 1)

    assert took <= PROMPT_TURNS
    # The single-flight lock was released: the next call logs in and succeeds.
    page = await client.get_page(top=1)
    assert page.count == 300
    await assert_nothing_left(client, before)


async def test_cancel_in_a_token_refresh(pbx: FakePortSIPServer) -> None:
    before = asyncio.all_tasks()
    client = client_for(pbx.url, username=USERNAME, password=PASSWORD)
    await client.get_page(top=1)
    pbx.expire_tokens()
    pbx.script([ScriptedResponse(hang=True, path="/api/login")])

    # The 401 makes the client refresh; the token endpoint never answers.
    took = await cancel_during(client, client.get_page, lambda: pbx.in_flight == 1)

    assert took <= PROMPT_TURNS
    assert pbx.refresh_count == 0
    await assert_nothing_left(client, before)


@pytest.mark.parametrize("concurrency", [1, 6])
async def test_cancel_inside_a_concurrent_walk(
    pbx: FakePortSIPServer, concurrency: int
) -> None:
    before = asyncio.all_tasks()
    client = client_for(pbx.url)
    seen: list[str | None] = []

    async def walk() -> None:
        async for message in client.list(page_size=20, concurrency=concurrency):
            seen.append(message.id)

    # The first page is answered; every later one hangs.
    pbx.script([ScriptedResponse(), *[ScriptedResponse(hang=True)] * 20])

    took = await cancel_during(
        client, walk, lambda: len(seen) == 20 and pbx.in_flight == concurrency
    )

    assert took <= PROMPT_TURNS
    await assert_nothing_left(client, before)


async def test_cancel_a_get_many_with_requests_in_flight(
    pbx: FakePortSIPServer,
) -> None:
    before = asyncio.all_tasks()
    client = client_for(pbx.url)
    pbx.script([ScriptedResponse(hang=True)] * 8)
    ids = [m["id"] for m in pbx.messages[:50]]

    took = await cancel_during(
        client,
        lambda: client.get_many(ids, concurrency=8),
        lambda: pbx.in_flight == 8,
    )

    assert took <= PROMPT_TURNS
    await assert_nothing_left(client, before)


async def test_aclose_during_a_walk_leaves_nothing_behind(
    pbx: FakePortSIPServer,
) -> None:
    before = asyncio.all_tasks()
    client = client_for(pbx.url)
    pbx.script([ScriptedResponse(), *[ScriptedResponse(hang=True)] * 20])

    async with client.list(page_size=20, concurrency=4) as pager:
        async for _ in pager:
            break

    await assert_nothing_left(client, before)


async def test_breaking_out_of_a_walk_leaves_no_request_running(
    pbx: FakePortSIPServer,
) -> None:
    before = asyncio.all_tasks()
    client = client_for(pbx.url)
    pbx.script([ScriptedResponse(), *[ScriptedResponse(hang=True)] * 20])

    async for _ in client.list(page_size=20, concurrency=4):
        break
    gc.collect()

    await assert_nothing_left(client, before)


# -- the wrong event loop ----------------------------------------------------


def test_client_used_from_a_second_loop_raises_client_state_error() -> None:
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    server = FakePortSIPServer(messages=10, token="t-loop")
    try:
        first.run_until_complete(server.start())
        client = ExternalMessagesClient(server.url, token="t-loop")
        page = first.run_until_complete(client.get_page(top=2))

        with pytest.raises(ClientStateError, match="another event loop"):
            second.run_until_complete(
                asyncio.wait_for(client.get_page(top=2), timeout=5)
            )

        first.run_until_complete(client.aclose())
        assert len(page.items) == 2
        assert len(server.requests) == 1
    finally:
        first.run_until_complete(server.close())
        first.close()
        second.close()


async def test_client_used_from_a_thread_running_another_loop_raises(
    pbx: FakePortSIPServer,
) -> None:
    async with client_for(pbx.url) as client:
        await client.get_page(top=1)
        errors: list[BaseException] = []

        def use_elsewhere() -> None:
            try:
                asyncio.run(asyncio.wait_for(client.get_page(top=1), timeout=5))
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=use_elsewhere)
        thread.start()
        await asyncio.to_thread(thread.join, 10)

        assert [type(e) for e in errors] == [ClientStateError]
        assert len(pbx.requests) == 1
        assert (await client.get_page(top=1)).count == 300


async def test_aclose_from_another_loop_raises_instead_of_hanging(
    pbx: FakePortSIPServer,
) -> None:
    client = client_for(pbx.url)
    await client.get_page(top=1)
    errors: list[BaseException] = []

    def close_elsewhere() -> None:
        try:
            asyncio.run(asyncio.wait_for(client.aclose(), timeout=5))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=close_elsewhere)
    thread.start()
    await asyncio.to_thread(thread.join, 10)

    assert [type(e) for e in errors] == [ClientStateError]
    await client.aclose()
    assert client.closed


def test_aclose_after_the_opening_loop_ended_closes_without_warnings() -> None:
    first = asyncio.new_event_loop()
    server = FakePortSIPServer(messages=10, token="t-loop")
    first.run_until_complete(server.start())
    client = ExternalMessagesClient(server.url, token="t-loop")
    first.run_until_complete(client.get_page(top=2))
    first.run_until_complete(server.close())
    first.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(client.aclose())
        gc.collect()

    assert client.closed
    assert [str(w.message) for w in caught] == []
    with pytest.raises(ClientStateError, match="closed"):
        asyncio.run(client.get_page())
