"""Fault knobs and scripted responses, seen by a real aiohttp client."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import attrs
import orjson
import pytest

from external_messages_async.testing import FakePortSIPServer, Faults, ScriptedResponse

AUTH = {"Authorization": "Bearer demo-token"}

pytestmark = pytest.mark.portsip_server(messages=20, seed=4)


async def fetch(
    server: FakePortSIPServer,
    session: aiohttp.ClientSession,
    path: str = "/external_messages",
    **kwargs: Any,
) -> tuple[int, dict[str, str], bytes]:
    async with session.get(server.api_url + path, headers=AUTH, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


async def login(server: FakePortSIPServer, session: aiohttp.ClientSession) -> int:
    form = {
        "grant_type": "password",
        "username": "admin",
        "password": "admin-password",
        "scope": "all",
        "client_id": "9d806019-75b2-4b3d-bb8b-f5a3a412cc0a",
    }
    async with session.post(
        server.api_url + "/login/oauth/token", data=form
    ) as response:
        return response.status


@pytest.mark.portsip_server(faults=Faults(rate_429=1.0, retry_after="2"))
async def test_rate_429_answers_too_many_requests_with_retry_after(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, headers, body = await fetch(portsip_server, session)

    assert status == 429
    assert headers["Retry-After"] == "2"
    assert orjson.loads(body)["errors"][0]["code"] == "TOO_MANY_REQUESTS"


@pytest.mark.portsip_server(faults=Faults(rate_429=1.0, retry_after=None))
async def test_retry_after_can_be_omitted(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, headers, _ = await fetch(portsip_server, session)

    assert status == 429
    assert "Retry-After" not in headers


@pytest.mark.portsip_server(faults=Faults(rate_500=1.0))
async def test_rate_500_answers_a_proxy_html_page(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, headers, body = await fetch(portsip_server, session)

    assert status == 500
    assert headers["Content-Type"].startswith("text/html")
    assert body == b"<html><body><h1>500 Internal Server Error</h1></body></html>"


@pytest.mark.portsip_server(faults=Faults(rate_503=1.0))
async def test_rate_503_answers_an_empty_body(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    assert (await fetch(portsip_server, session))[::2] == (503, b"")


@pytest.mark.portsip_server(faults=Faults(rate_malformed=1.0))
async def test_rate_malformed_answers_truncated_json(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, headers, body = await fetch(portsip_server, session)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body.startswith(b'{"count":20,"items":[')
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


@pytest.mark.portsip_server(faults=Faults(rate_drop=1.0))
async def test_rate_drop_closes_the_connection_without_an_answer(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await fetch(portsip_server, session)

    # aiohttp retries an idempotent request once after a disconnect.
    assert len(portsip_server.requests) == 2


@pytest.mark.portsip_server(faults=Faults(latency=5.0))
async def test_latency_delays_answers(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await fetch(portsip_server, session, timeout=aiohttp.ClientTimeout(total=0.2))


@pytest.mark.portsip_server(faults=Faults(rate_503=1.0))
async def test_faults_spare_login_unless_asked(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    spared = await login(portsip_server, session)
    portsip_server.faults = attrs.evolve(portsip_server.faults, apply_to_auth=True)

    hit = await login(portsip_server, session)

    assert (spared, hit) == (200, 503)


async def test_assigning_faults_restarts_the_random_sequence(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    async def statuses() -> list[int]:
        portsip_server.faults = Faults(rate_503=0.5, seed=11)
        return [(await fetch(portsip_server, session))[0] for _ in range(12)]

    first, second = await statuses(), await statuses()

    assert first == second
    assert set(first) == {200, 503}


async def test_scripts_are_served_in_order_then_normal_handling_resumes(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script(
        [
            ScriptedResponse(status=503),
            ScriptedResponse(status=429, headers={"Retry-After": "0"}),
        ]
    )

    first, second, third = [await fetch(portsip_server, session) for _ in range(3)]

    assert first[0] == 503
    assert orjson.loads(first[2])["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert (second[0], second[1]["Retry-After"]) == (429, "0")
    assert third[0] == 200
    assert portsip_server.pending_scripts == 0


@pytest.mark.parametrize(
    ("script", "content_type", "body"),
    [
        (
            ScriptedResponse(body={"count": 0, "items": []}),
            "application/json",
            b'{"count":0,"items":[]}',
        ),
        (
            ScriptedResponse(status=502, body="Bad gateway"),
            "text/plain; charset=utf-8",
            b"Bad gateway",
        ),
        (ScriptedResponse(body=b"\x00\x01"), "application/octet-stream", b"\x00\x01"),
        (ScriptedResponse(body=b"<p>", content_type="text/html"), "text/html", b"<p>"),
    ],
)
async def test_scripted_bodies_choose_a_content_type(
    portsip_server: FakePortSIPServer,
    session: aiohttp.ClientSession,
    script: ScriptedResponse,
    content_type: str,
    body: bytes,
) -> None:
    portsip_server.script([script])

    status, headers, got = await fetch(portsip_server, session)

    assert (status, headers["Content-Type"], got) == (script.status, content_type, body)


async def test_path_scripts_target_other_endpoints_and_wait_their_turn(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(status=500, path="/api/login")])

    data_status = (await fetch(portsip_server, session))[0]
    login_status = await login(portsip_server, session)

    assert (data_status, login_status) == (200, 500)


async def test_scripted_drop_twice_defeats_aiohttps_single_retry(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(drop=True)] * 2)

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await fetch(portsip_server, session)


async def test_scripted_hang_never_answers(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(hang=True)])

    with pytest.raises(asyncio.TimeoutError):
        await fetch(portsip_server, session, timeout=aiohttp.ClientTimeout(total=0.2))


async def test_trickle_is_slow_enough_to_trip_a_read_timeout(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(trickle=0.2)])

    with pytest.raises(asyncio.TimeoutError):
        await fetch(
            portsip_server, session, timeout=aiohttp.ClientTimeout(sock_read=0.05)
        )


async def test_trickle_eventually_sends_the_whole_normal_answer(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script(
        [ScriptedResponse(trickle=0.001, trickle_chunk=4096, headers={"X-Slow": "1"})]
    )

    status, headers, body = await fetch(portsip_server, session, params={"top": "3"})

    assert (status, headers["X-Slow"]) == (200, "1")
    assert orjson.loads(body)["items"] == portsip_server.messages[:3]


async def test_delay_then_normal_answer(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(delay=0.01)])

    status, _, body = await fetch(portsip_server, session)

    assert status == 200
    assert orjson.loads(body)["count"] == 20


async def test_faulted_requests_are_recorded_too(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(status=503)])

    await fetch(portsip_server, session, params={"skip": "5"})

    assert [r.query for r in portsip_server.requests] == [{"skip": "5"}]


async def test_close_interrupts_delays_and_trickles(
    session: aiohttp.ClientSession, wait_until: Any
) -> None:
    server = FakePortSIPServer(messages=5, faults=Faults(latency=30.0))
    await server.start()
    server.script(
        [
            ScriptedResponse(trickle=30.0, path="/api/user"),
            ScriptedResponse(delay=30.0, path="/api/login"),
        ]
    )
    slow = [
        asyncio.ensure_future(fetch(server, session)),
        asyncio.ensure_future(fetch(server, session, "/user/external_messages")),
        asyncio.ensure_future(login(server, session)),
    ]
    await wait_until(lambda: server.in_flight == 3)

    await server.close()
    results = await asyncio.gather(*slow, return_exceptions=True)

    assert all(isinstance(r, aiohttp.ClientError) for r in results)


async def test_trickle_stops_quietly_when_the_client_leaves(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, wait_until: Any
) -> None:
    portsip_server.script([ScriptedResponse(trickle=0.05, trickle_chunk=1)])

    with pytest.raises(asyncio.TimeoutError):
        await fetch(
            portsip_server, session, timeout=aiohttp.ClientTimeout(sock_read=0.02)
        )
    await wait_until(lambda: portsip_server.in_flight == 0)

    assert portsip_server.pending_scripts == 0
