"""Faults a PBX behind proxies really produces, through the fake server's knobs.

Figures: each walk test counts the faults the server injected (by kind) and
checks that every one was survived: nothing lost, nothing twice, order kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from external_messages_async import RetryPolicy
from external_messages_async.errors import (
    APITimeoutError,
    ResponseDecodeError,
    ServerError,
)
from external_messages_async.testing import (
    FakePortSIPServer,
    Faults,
    ScriptedResponse,
    generate_messages,
)

from .conftest import TOKEN, FaultCounter, acquired, client_for

# 5% each of dropped connections, 500 proxy HTML pages, empty 503s and 429s
# with Retry-After: 0. The server tries the knobs in that order, each on what
# the previous ones left, so rates of 0.05/1, 0.05/0.95, 0.05/0.90 and
# 0.05/0.85 give exactly 5% each and 20% in all.
TWENTY_PERCENT = Faults(
    rate_drop=0.05,
    rate_500=0.05 / 0.95,
    rate_503=0.05 / 0.90,
    rate_429=0.05 / 0.85,
    retry_after="0",
    seed=2024,
)

# With 20% of attempts failing independently, a call exhausts 10 retries (11
# attempts) with probability 0.2**11 ~= 2.0e-8. Over the ~900 calls of the
# tests below (200 pages twice, 500 gets), the chance that any exhausts its
# retries is under 2e-5; and the draws are seeded, so a run is reproducible.
PATIENT = RetryPolicy(max_retries=10, backoff_base=0.0005, backoff_cap=0.002)

FAULT_KINDS = {"drop", "500", "503", "429"}


@pytest.fixture
async def faulty() -> AsyncIterator[FakePortSIPServer]:
    async with FakePortSIPServer(messages=5000, seed=11, token=TOKEN) as server:
        yield server


async def server_order(server: FakePortSIPServer) -> list[str]:
    """Every id in the server's list order, read with plain requests, no faults."""
    faults, server.faults = server.faults, Faults()
    async with client_for(server.url) as client:
        ids = [m.id async for m in client.list(concurrency=1)]
    server.faults = faults
    return ids  # type: ignore[return-value]  # ids are Optional in the model; the fake sets every one


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_walk_of_5000_under_20_percent_faults_yields_each_once_in_order(
    faulty: FakePortSIPServer, fault_counter: FaultCounter, concurrency: int
) -> None:
    truth = await server_order(faulty)
    faulty.faults = TWENTY_PERCENT
    fault_counter.kinds.clear()
    fault_counter.draws = 0

    async with client_for(faulty.url, retry=PATIENT) as client:
        async with client.list(page_size=25, concurrency=concurrency) as pager:
            ids = [m.id async for m in pager]
        stats = pager.stats

    assert len(truth) == 5000
    assert ids == truth
    assert stats.duplicates_dropped == 0
    assert set(fault_counter.kinds) == FAULT_KINDS
    assert fault_counter.total >= 20  # 20% of at least 200 attempts
    print(
        f"walk concurrency={concurrency}: {fault_counter.draws} attempts, "
        f"{fault_counter.total} faults survived {dict(fault_counter.kinds)}"
    )


async def test_get_many_of_500_ids_under_20_percent_faults_returns_all(
    faulty: FakePortSIPServer, fault_counter: FaultCounter
) -> None:
    ids = [m["id"] for m in faulty.messages[::10]]
    faulty.faults = TWENTY_PERCENT

    async with client_for(faulty.url, retry=PATIENT) as client:
        messages = await client.get_many(ids, concurrency=16)

    assert [m.id for m in messages] == ids
    assert len(ids) == 500
    assert set(fault_counter.kinds) == FAULT_KINDS
    assert fault_counter.total >= 50  # 20% of at least 500 attempts
    print(
        f"get_many: {fault_counter.draws} attempts, "
        f"{fault_counter.total} faults survived {dict(fault_counter.kinds)}"
    )


# -- bounded failure ---------------------------------------------------------


async def test_always_failing_server_gets_exactly_max_retries_plus_one_attempts(
    pbx: FakePortSIPServer,
) -> None:
    policy = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_cap=0.02)
    pbx.faults = Faults(rate_503=1.0)
    pbx.script(
        [ScriptedResponse(status=503, body={"errors": [{"code": "BUSY_NOW"}]})] * 5
    )

    async with client_for(pbx.url, retry=policy) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_page()

    # How long the backoff sleeps may be is tested without I/O in
    # tests/core/test_retry.py; here, that the attempts stop.
    assert len(pbx.requests) == policy.max_retries + 1
    assert caught.value.status == 503
    assert caught.value.code == "BUSY_NOW"


async def test_bounded_failure_keeps_the_last_status_not_the_first(
    pbx: FakePortSIPServer,
) -> None:
    pbx.script(
        [
            ScriptedResponse(status=503),
            ScriptedResponse(status=502, body={"errors": [{"code": "BAD_GATEWAY"}]}),
        ]
    )

    async with client_for(
        pbx.url, retry=RetryPolicy(max_retries=1, backoff_base=0.001)
    ) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_page()

    assert (caught.value.status, caught.value.code) == (502, "BAD_GATEWAY")
    assert len(pbx.requests) == 2


# -- timeouts ----------------------------------------------------------------


async def test_server_that_never_answers_times_out_within_the_budget(
    pbx: FakePortSIPServer,
) -> None:
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.01)
    pbx.script([ScriptedResponse(hang=True)] * 3)
    # The order in which attempts start and end, seen by the client.
    attempts: list[str] = []
    tracing = aiohttp.TraceConfig()

    async def started(*_: object) -> None:
        attempts.append("start")

    async def failed(*_: object) -> None:
        attempts.append("end")

    tracing.on_request_start.append(started)
    tracing.on_request_exception.append(failed)

    async with client_for(
        pbx.url, retry=policy, timeout=0.2, trace_configs=[tracing]
    ) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.get_page()
        assert acquired(client) == 0

    assert len(pbx.requests) == 3
    assert "timed out after 0.2s" in str(caught.value)
    # Each attempt ended (timed out: the hung answers never came) before the
    # next one started.
    assert attempts == ["start", "end"] * 3
    assert pbx.pending_scripts == 0


async def test_trickled_body_times_out(pbx: FakePortSIPServer) -> None:
    pbx.script([ScriptedResponse(trickle=0.05, trickle_chunk=8)])

    async with client_for(
        pbx.url, retry=RetryPolicy(max_retries=0), timeout=0.3
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.get_page()
        assert acquired(client) == 0

    assert len(pbx.requests) == 1


# -- bad bodies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param(
            ScriptedResponse(
                body=b'{"count": 3, "items": [{"id": "a"',
                content_type="application/json",
            ),
            "not JSON",
            id="truncated-json",
        ),
        pytest.param(
            ScriptedResponse(body="count=3&items=", content_type="text/plain"),
            "not JSON",
            id="wrong-content-type",
        ),
        pytest.param(
            ScriptedResponse(
                body="<html><form action='/login'><input name=password></form></html>",
                content_type="text/html",
            ),
            "not JSON",
            id="html-login-page-200",
        ),
        pytest.param(
            ScriptedResponse(body={"count": "3", "items": []}),
            "$.count",
            id="count-not-int",
        ),
        pytest.param(
            ScriptedResponse(body={"count": 1, "items": [{"created_at": 5}]}),
            "created_at",
            id="item-wrong-type",
        ),
    ],
)
async def test_bad_bodies_raise_response_decode_error(
    pbx: FakePortSIPServer, script: ScriptedResponse, expected: str
) -> None:
    pbx.script([script])

    async with client_for(pbx.url) as client:
        with pytest.raises(ResponseDecodeError) as caught:
            await client.get_page()

    assert expected in str(caught.value)
    assert len(pbx.requests) == 1  # a bad body is not retried


async def test_truncated_json_from_the_fault_knob_is_a_decode_error(
    pbx: FakePortSIPServer,
) -> None:
    pbx.faults = Faults(rate_malformed=1.0)

    async with client_for(pbx.url) as client:
        with pytest.raises(ResponseDecodeError, match="not JSON"):
            await client.get(pbx.messages[0]["id"])


async def test_html_error_page_from_a_proxy_is_a_status_error(
    pbx: FakePortSIPServer,
) -> None:
    pbx.faults = Faults(rate_500=1.0)

    async with client_for(pbx.url, retry=RetryPolicy(max_retries=0)) as client:
        with pytest.raises(ServerError) as caught:
            await client.get_page()

    assert caught.value.status == 500
    assert caught.value.code is None
    assert "<h1>500" in caught.value.body


async def test_walk_survives_dropped_connections_without_losing_pages(
    pbx: FakePortSIPServer,
) -> None:
    pbx.script([ScriptedResponse(drop=True)] * 2)

    async with client_for(pbx.url) as client:
        ids = [m.id async for m in client.list(page_size=50, concurrency=1)]

    assert len(ids) == len(set(ids)) == 300
    assert len(pbx.requests) == 6 + 2


class HugeBody:
    """A loopback server streaming a body of several hundred MB, made lazily.

    It never holds more than one 1 MiB chunk, and notes how many bytes it
    managed to hand to the socket before the client hung up.
    """

    SIZE = 512 * 1024 * 1024
    CHUNK = b"x" * (1024 * 1024)

    def __init__(self, *, declare_length: bool) -> None:
        self.declare_length = declare_length
        self.sent = 0
        self.finished = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.declare_length:
            response.content_length = self.SIZE
        else:
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            while self.sent < self.SIZE:
                await response.write(self.CHUNK)
                self.sent += len(self.CHUNK)
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the client hung up, which is what the test wants
        finally:
            self.finished.set()
        return response


@pytest.mark.parametrize("declare_length", [True, False], ids=["length", "chunked"])
async def test_huge_body_is_refused_by_the_size_cap_without_reading_it(
    declare_length: bool,
) -> None:
    huge = HugeBody(declare_length=declare_length)
    app = web.Application()
    app.router.add_get("/api/external_messages", huge.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    cap = 2 * 1024 * 1024
    try:
        async with client_for(
            f"http://127.0.0.1:{port}", max_response_bytes=cap
        ) as client:
            with pytest.raises(ResponseDecodeError, match="max_response_bytes"):
                await client.get_page()
            assert acquired(client) == 0
        await asyncio.wait_for(huge.finished.wait(), 5)
    finally:
        await runner.cleanup()

    # Only socket buffers' worth beyond the cap left the server: the client
    # hung up instead of reading 512 MB (or, with a declared length, at once).
    assert huge.sent < 64 * 1024 * 1024
    print(
        f"huge body ({'length' if declare_length else 'chunked'}): server sent {huge.sent} bytes of {huge.SIZE}"
    )


async def test_default_size_cap_is_a_few_megabytes() -> None:
    client = client_for("http://127.0.0.1:9")

    assert 1024 * 1024 <= client._http.transport.max_response_bytes <= 16 * 1024 * 1024
    await client.aclose()


# -- changing data -----------------------------------------------------------


def fresh(n: int, seed: int) -> list[dict[str, object]]:
    """New messages, newer than every seeded one, with ids no seeded one has."""
    items = generate_messages(n, seed=seed)
    for index, item in enumerate(items):
        item["id"] = f"new-{seed}-{index}"
        item["created_at"] = f"2030-01-01T00:00:{index:02d}Z"
    return items


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_inserts_at_the_front_during_a_walk_yield_nothing_twice(
    pbx: FakePortSIPServer, concurrency: int
) -> None:
    original = {m["id"] for m in pbx.messages}
    served = 0

    def insert(server: FakePortSIPServer, skip: int, top: int) -> None:
        nonlocal served
        served += 1
        if served <= 5:
            server.insert_messages(fresh(7, seed=served), at=0)

    pbx.on_list_page = insert

    async with (
        client_for(pbx.url) as client,
        client.list(page_size=25, concurrency=concurrency) as pager,
    ):
        ids = [m.id async for m in pager]

    assert len(ids) == len(set(ids))
    assert original <= set(ids)
    assert pager.stats.duplicates_dropped > 0
    assert pager.stats.count_decreased is False


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_deletion_during_a_walk_is_reported(
    pbx: FakePortSIPServer,
    caplog: pytest.LogCaptureFixture,
    concurrency: int,
) -> None:
    served = 0

    def delete(server: FakePortSIPServer, skip: int, top: int) -> None:
        nonlocal served
        served += 1
        if served == 3:
            server.delete_messages([m["id"] for m in server.messages[:10]])

    pbx.on_list_page = delete

    async with (
        client_for(pbx.url) as client,
        client.list(page_size=25, concurrency=concurrency) as pager,
    ):
        ids = [m.id async for m in pager]

    assert len(ids) == len(set(ids))
    assert pager.stats.count_decreased is True
    assert (pager.stats.first_count, pager.stats.last_count) == (300, 290)
    warnings = [
        r for r in caplog.records
        if r.levelno == logging.WARNING and "count fell from 300 to 290" in r.getMessage()
    ]  # fmt: skip
    assert len(warnings) == 1


async def test_walk_ends_when_the_server_keeps_growing(
    pbx: FakePortSIPServer,
) -> None:
    """A collection that grows by a page per page served still ends: count is chased, not the inserts."""
    original = {m["id"] for m in pbx.messages}
    served = 0

    def grow(server: FakePortSIPServer, skip: int, top: int) -> None:
        nonlocal served
        served += 1
        if served <= 40:
            server.insert_messages(fresh(25, seed=100 + served), at=0)

    pbx.on_list_page = grow

    async with client_for(pbx.url) as client:
        ids = await asyncio.wait_for(
            _collect(client.list(page_size=25, concurrency=1)), timeout=20
        )

    assert len(ids) == len(set(ids))
    assert original <= set(ids)
    assert served > 40


async def _collect(pager: object) -> list[str | None]:
    return [m.id async for m in pager]  # type: ignore[attr-defined]  # any async iterable of messages


async def test_a_json_body_is_read_whatever_its_content_type_says(
    pbx: FakePortSIPServer,
) -> None:
    """The body decides, not the label: proxies relabel JSON, and a non-JSON body fails above."""
    pbx.script(
        [ScriptedResponse(body=b'{"count": 0, "items": []}', content_type="text/plain")]
    )

    async with client_for(pbx.url) as client:
        page = await client.get_page()

    assert (page.count, list(page.items)) == (0, [])
