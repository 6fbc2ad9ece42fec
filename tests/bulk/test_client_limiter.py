"""Specification of the client-wide limiter: one cap and one pause for every job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from external_messages_async import ExternalMessagesClient, RateLimitError
from external_messages_async._limiter import Limiter
from tests.conftest import FAST_RETRY, wait_until


def _messages(count: int) -> list[dict[str, Any]]:
    return [{"id": f"m{i:06d}", "content": f"message {i}"} for i in range(count)]


async def test_the_cap_holds_across_pagers_and_get_many(server):
    server.items = _messages(300)
    server.latency = 0.005
    async with ExternalMessagesClient(
        server.url, token="t", retry=FAST_RETRY, max_concurrency=3
    ) as client:

        async def walk() -> int:
            return len([m async for m in client.list(page_size=10, concurrency=8)])

        walked_a, walked_b, fetched = await asyncio.gather(
            walk(),
            walk(),
            client.get_many([f"m{i:06d}" for i in range(60)], concurrency=8),
        )

    assert (walked_a, walked_b, len(fetched)) == (300, 300, 60)
    assert server.max_in_flight == 3


async def test_a_429_pauses_every_task_of_the_client(server):
    """One task's 429 with Retry-After holds back the other tasks' requests."""
    server.items = _messages(200)
    server.latency = 0.002
    async with ExternalMessagesClient(
        server.url, token="t", retry=FAST_RETRY
    ) as client:
        await client.get_many(["m000000"])  # open the pool before timing
        server.received.clear()
        server.script = [(429, {"Retry-After": "0.4"})]

        got = await client.get_many([f"m{i:06d}" for i in range(200)], concurrency=4)
        paused_until = client._http.limiter.state.paused_until

    # The server stamps requests with the clock the client's loop reads.
    rate_limited_at = server.received[0].at
    early = [seen for seen in server.received[1:] if seen.at < paused_until]
    assert len(got) == 200
    assert paused_until > rate_limited_at
    # Only the requests already on the wire when the 429 was sent may land
    # before the pause ends; everything else waits for Retry-After.
    assert len(early) <= 3
    assert len(server.received) == 201


async def test_a_retry_after_past_the_cap_does_not_park_the_other_calls(server):
    """The call told to wait an hour fails at once; the next one goes ahead."""
    server.items = _messages(5)
    async with ExternalMessagesClient(
        server.url, token="t", retry=FAST_RETRY
    ) as client:
        server.script = [(429, {"Retry-After": "3600"})]
        with pytest.raises(RateLimitError) as refused:
            await client.get("m000000")

        got = await asyncio.wait_for(client.get("m000001"), timeout=5)

    assert refused.value.retry_after == 3600
    assert got.id == "m000001"


async def test_a_429_lowers_the_clients_cap_until_it_recovers(server):
    server.items = _messages(100)
    server.latency = 0.002
    async with ExternalMessagesClient(
        server.url, token="t", retry=FAST_RETRY, max_concurrency=8
    ) as client:
        limiter = client._http.limiter
        server.script = [(429, {"Retry-After": "0"})]

        await client.get_many(["m000000"])
        lowered = limiter.limit
        await client.get_many([f"m{i:06d}" for i in range(100)], concurrency=8)

    assert lowered == 4
    assert limiter.limit == 8


async def test_limiter_serves_waiters_first_come_first_served():
    limiter = Limiter(1)
    order: list[int] = []
    release = asyncio.Event()

    async def job(number: int) -> None:
        async with limiter.slot():
            order.append(number)
            await release.wait()

    tasks = [asyncio.create_task(job(n)) for n in range(4)]
    await wait_until(lambda: len(limiter._waiters) == 3)
    release.set()
    await asyncio.gather(*tasks)

    assert order == [0, 1, 2, 3]
    assert limiter.in_flight == 0


async def test_a_cancelled_waiter_gives_its_turn_to_the_next():
    limiter = Limiter(1)
    entered: list[str] = []

    async def waiter(name: str) -> None:
        async with limiter.slot():
            entered.append(name)

    held = limiter.slot()
    await held.__aenter__()
    doomed = asyncio.create_task(waiter("doomed"))
    patient = asyncio.create_task(waiter("patient"))
    await wait_until(lambda: len(limiter._waiters) == 2)
    await held.__aexit__(None, None, None)  # wakes `doomed`...
    doomed.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(patient, 1.0)

    assert entered == ["patient"]
    assert limiter.in_flight == 0


async def test_a_waiter_cancelled_while_parked_leaves_the_queue():
    limiter = Limiter(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot():
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    parked = asyncio.create_task(holder())
    await wait_until(lambda: len(limiter._waiters) == 1)

    parked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await parked
    release.set()
    await first

    assert limiter.waiting == 0


async def test_a_pause_holds_back_new_slots():
    limiter = Limiter(None)
    loop = asyncio.get_running_loop()
    limiter.on_rate_limited(0.2)
    asked = loop.time()

    async with limiter.slot():
        started = loop.time()

    assert started - asked >= 0.19


async def test_a_grown_cap_wakes_waiters():
    limiter = Limiter(2)
    limiter.on_rate_limited(None)  # cap 2 -> 1
    inside = 0
    most = 0
    gate = asyncio.Event()

    async def job() -> None:
        nonlocal inside, most
        async with limiter.slot():
            inside += 1
            most = max(most, inside)
            await gate.wait()
            inside -= 1

    tasks = [asyncio.create_task(job()) for _ in range(3)]
    await wait_until(lambda: inside == 1 and len(limiter._waiters) == 2)
    limiter.on_success()  # one success at cap 1 -> cap 2: a second job may start
    await wait_until(lambda: inside == 2)
    gate.set()
    await asyncio.gather(*tasks)

    assert most == 2


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (1.5, TypeError)])
def test_max_concurrency_is_checked(bad, error):
    with pytest.raises(error, match="max_concurrency"):
        Limiter(bad)


@pytest.mark.parametrize(("max_concurrency", "concurrency"), [(1, 3), (4, 16)])
async def test_a_429_pause_under_max_concurrency_does_not_deadlock(
    max_concurrency: int, concurrency: int
) -> None:
    """Tasks back from the pause no longer queue behind waiters nobody wakes."""
    from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

    async with FakePortSIPServer(concurrency) as pbx:
        ids = [m["id"] for m in pbx.messages]
        pbx.script(
            [ScriptedResponse(status=429, headers={"Retry-After": "0.2"})]
            + [ScriptedResponse(delay=0.05)] * concurrency
        )
        async with ExternalMessagesClient(
            pbx.url,
            token="demo-token",
            retry=FAST_RETRY,
            max_concurrency=max_concurrency,
        ) as client:
            # wait_for only turns a hang into a failure; nothing here is timed.
            got = await asyncio.wait_for(
                client.get_many(ids, concurrency=concurrency), timeout=30
            )
            limiter = client._http.limiter

    assert [m.id for m in got] == ids
    assert (limiter.in_flight, limiter.waiting) == (0, 0)
