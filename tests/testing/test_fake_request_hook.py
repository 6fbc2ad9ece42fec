"""The on_request hook: see every request, hold it, or answer it yourself."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from external_messages_async.testing import (
    FakePortSIPServer,
    RecordedRequest,
    ScriptedResponse,
)
from tests.conftest import wait_until


async def fetch(
    session: aiohttp.ClientSession, server: FakePortSIPServer, path: str, **params: str
) -> tuple[int, Any]:
    async with session.get(
        server.api_url + path,
        params=params,
        headers={"Authorization": f"Bearer {server.token}"},
    ) as response:
        return response.status, await response.json()


async def test_a_hook_answer_replaces_the_normal_one(
    session: aiohttp.ClientSession,
) -> None:
    def short_pages(
        server: FakePortSIPServer, request: RecordedRequest
    ) -> ScriptedResponse | None:
        if request.path != "/api/external_messages":
            return None
        skip = int(request.query.get("skip", "0"))
        return ScriptedResponse(
            body={"count": 99, "items": server.messages[skip : skip + 2]}
        )

    async with FakePortSIPServer(messages=10, on_request=short_pages) as server:
        status, page = await fetch(session, server, "/external_messages", skip="4")
        one_id = server.messages[0]["id"]
        _, one = await fetch(session, server, f"/external_messages/{one_id}")

    assert status == 200
    assert page == {"count": 99, "items": server.messages[4:6]}
    assert one == server.messages[0]


async def test_an_async_hook_holds_a_request_until_released(
    session: aiohttp.ClientSession,
) -> None:
    release = asyncio.Event()
    held: list[str] = []

    async def gate(server: FakePortSIPServer, request: RecordedRequest) -> None:
        held.append(request.path)
        await release.wait()

    async with FakePortSIPServer(messages=3, on_request=gate) as server:
        pending = asyncio.ensure_future(fetch(session, server, "/external_messages"))
        await wait_until(lambda: held == ["/api/external_messages"])
        waiting = pending.done()

        release.set()
        status, page = await pending

    assert not waiting
    assert (status, page["count"]) == (200, 3)


async def test_scripts_come_first_and_logins_reach_the_hook_too(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[str] = []

    def watch(server: FakePortSIPServer, request: RecordedRequest) -> None:
        seen.append(request.path)

    async with FakePortSIPServer(messages=3, on_request=watch) as server:
        assert server.on_request is watch
        server.script([ScriptedResponse(status=503)])
        scripted, _ = await fetch(session, server, "/external_messages")
        async with session.post(
            server.api_url + "/auth/sign_in",
            json={"username": "admin", "password": "admin-password"},
        ) as response:
            login = response.status
        server.on_request = None
        await fetch(session, server, "/external_messages")

    assert (scripted, login) == (503, 200)
    assert seen == ["/api/auth/sign_in"]
