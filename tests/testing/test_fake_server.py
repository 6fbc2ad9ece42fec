"""The fake server over loopback: listing, paging, get by id, records, lifecycle."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from external_messages_async.testing import FakePortSIPServer, ScriptedResponse
from external_messages_async.testing._odata import parse_rfc3339

AUTH = {"Authorization": "Bearer demo-token"}
pytestmark = pytest.mark.portsip_server(messages=250, seed=3)


async def get_json(
    session: aiohttp.ClientSession, url: str | URL, **params: str
) -> tuple[int, Any]:
    async with session.get(url, params=params or None, headers=AUTH) as response:
        return response.status, await response.json()


async def list_page(
    server: FakePortSIPServer, session: aiohttp.ClientSession, **params: str
) -> tuple[int, Any]:
    return await get_json(session, server.api_url + "/external_messages", **params)


def message_url(
    server: FakePortSIPServer, message_id: str, *, user: bool = False
) -> URL:
    prefix = "/user" if user else ""
    path = f"{server.api_url}{prefix}/external_messages/{quote(message_id, safe='')}"
    return URL(path, encoded=True)


async def test_default_page_is_the_first_hundred_newest_first(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, page = await list_page(portsip_server, session)

    assert status == 200
    assert page["count"] == 250
    assert page["items"] == portsip_server.messages[:100]


async def test_skip_and_top_select_a_window_and_count_stays_total(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, page = await list_page(portsip_server, session, skip="240", top="20")

    assert status == 200
    assert page["count"] == 250
    assert page["items"] == portsip_server.messages[240:]


async def test_walking_pages_yields_every_message_once(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    skip = 0
    while True:
        _, page = await list_page(portsip_server, session, skip=str(skip), top="37")
        if not page["items"]:
            break
        seen.extend(item["id"] for item in page["items"])
        skip += len(page["items"])

    assert seen == [m["id"] for m in portsip_server.messages]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"top": "0"}, "top must be between 1 and 100"),
        ({"top": "101"}, "top must be between 1 and 100"),
        ({"skip": "x"}, "skip must be a non-negative integer"),
        ({"top": "1.5"}, "top must be a non-negative integer"),
    ],
)
async def test_out_of_range_paging_is_a_validation_error(
    portsip_server: FakePortSIPServer,
    session: aiohttp.ClientSession,
    params: dict[str, str],
    fragment: str,
) -> None:
    status, body = await list_page(portsip_server, session, **params)

    assert status == 400
    assert body["errors"][0]["code"] == "VALIDATE_FAILED"
    assert fragment in body["errors"][0]["message"]


async def test_filter_selects_matching_messages_and_counts_them(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    text = "msg_type eq 'WHATSAPP' and (delivery eq 'ERR' or direction eq 'IN')"
    expected = [
        m
        for m in portsip_server.messages
        if m.get("msg_type") == "WHATSAPP"
        and (m.get("delivery") == "ERR" or m.get("direction") == "IN")
    ]

    _, page = await list_page(portsip_server, session, filter=text)

    assert page["count"] == len(expected) > 0
    assert page["items"] == expected[:100]


async def test_created_at_filter_compares_instants(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    cutoff = "2024-05-01T00:00:00Z"
    expected = [
        m
        for m in portsip_server.messages
        if parse_rfc3339(m["created_at"]) > parse_rfc3339(cutoff)  # type: ignore[operator]  # parse_rfc3339 is Optional; these stamps all parse
    ]

    _, page = await list_page(
        portsip_server, session, filter=f"created_at gt '{cutoff}'", top="100"
    )

    assert page["count"] == len(expected) > 0


@pytest.mark.parametrize(
    "text",
    ["sender eq", "nope eq 'x'", "((", "sender eq 'x' or", "contains(sender)", "'"],
)
async def test_malformed_filters_are_400_not_500(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, text: str
) -> None:
    status, body = await list_page(portsip_server, session, filter=text)

    assert status == 400
    assert body["errors"][0]["code"] == "VALIDATE_FAILED"


async def test_search_is_case_insensitive_and_anded_with_filter(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    expected = [
        m
        for m in portsip_server.messages
        if "привет" in str(m.get("content")).casefold() and m["direction"] == "OUT"
    ]

    _, page = await list_page(
        portsip_server, session, search="ПРИВЕТ", filter="direction eq 'OUT'"
    )

    assert page["count"] == len(expected) > 0
    assert page["items"] == expected[:100]


async def test_orderby_sorts_by_several_fields(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    _, page = await list_page(
        portsip_server, session, orderby="msg_type asc, created_at desc", top="100"
    )
    keys = [(m["msg_type"], parse_rfc3339(m["created_at"])) for m in page["items"]]

    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    for (type_a, at_a), (type_b, at_b) in itertools.pairwise(keys):
        assert type_a != type_b or at_a >= at_b  # type: ignore[operator]  # Optional datetimes; every generated stamp parses


async def test_orderby_unknown_field_is_400(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    status, body = await list_page(portsip_server, session, orderby="size desc")

    assert status == 400
    assert "unknown field 'size'" in body["errors"][0]["message"]


@pytest.mark.parametrize("user", [False, True])
async def test_get_by_id_decodes_slash_plus_and_equals(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, user: bool
) -> None:
    message = next(m for m in portsip_server.messages if "/" in m["id"])
    assert "+" in message["id"]
    assert "=" in message["id"]

    status, body = await get_json(
        session, message_url(portsip_server, message["id"], user=user)
    )

    assert status == 200
    assert body == message


async def test_get_by_plain_id(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    message = next(m for m in portsip_server.messages if m["id"].isalnum())

    status, body = await get_json(
        session, portsip_server.api_url + "/external_messages/" + message["id"]
    )

    assert (status, body) == (200, message)


@pytest.mark.parametrize("suffix", ["nope", "a%2Fb", "a/b"])
async def test_unknown_id_is_404_in_portsip_shape(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession, suffix: str
) -> None:
    url = URL(portsip_server.api_url + "/external_messages/" + suffix, encoded=True)

    status, body = await get_json(session, url)

    assert status == 404
    assert body["errors"][0]["code"] == "NOT_FOUND"


async def test_unknown_route_and_method_answer_portsip_errors(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    async with session.get(portsip_server.api_url + "/nothing") as missing:
        missing_body = await missing.json()
    async with session.delete(portsip_server.api_url + "/external_messages") as wrong:
        wrong_body = await wrong.json()

    assert (missing.status, missing_body["errors"][0]["code"]) == (404, "NOT_FOUND")
    assert (wrong.status, wrong_body["errors"][0]["code"]) == (
        405,
        "METHOD_NOT_ALLOWED",
    )


@pytest.mark.portsip_server(max_body_bytes=10)
async def test_oversized_bodies_are_413_and_recorded(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    async with session.post(
        portsip_server.api_url + "/auth/sign_in", data=b"x" * 100
    ) as response:
        body = await response.json()

    assert response.status == 413
    assert body["errors"][0]["code"] == "REQUEST_ENTITY_TOO_LARGE"
    assert portsip_server.requests[-1].body == b""


async def test_requests_are_recorded_with_headers_query_and_body(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    await list_page(portsip_server, session, top="5", filter="sender eq 'x'")
    async with session.post(
        portsip_server.api_url + "/auth/sign_in", json={"username": "u"}
    ):
        pass

    listing, sign_in = portsip_server.requests

    assert (listing.method, listing.path) == ("GET", "/api/external_messages")
    assert listing.query == {"top": "5", "filter": "sender eq 'x'"}
    assert listing.headers["authorization"] == "Bearer demo-token"
    assert sign_in.json() == {"username": "u"}
    assert sign_in.received_at >= listing.received_at


async def test_raw_path_keeps_percent_encoding(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    await get_json(session, message_url(portsip_server, "a/b"))

    record = portsip_server.requests[-1]

    assert (record.path, record.raw_path) == (
        "/api/external_messages/a/b",
        "/api/external_messages/a%2Fb",
    )


async def test_in_flight_counts_concurrent_requests(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    portsip_server.script([ScriptedResponse(delay=0.2)] * 5)

    await asyncio.gather(
        *(list_page(portsip_server, session, top="1") for _ in range(5))
    )

    assert portsip_server.max_in_flight == 5
    assert portsip_server.in_flight == 0


async def test_hook_can_insert_and_delete_while_a_client_pages(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    newest = {
        **portsip_server.messages[0],
        "id": "new",
        "created_at": "2030-01-01T00:00:00Z",
    }
    doomed = portsip_server.messages[150]["id"]
    calls: list[tuple[int, int]] = []

    async def hook(server: FakePortSIPServer, skip: int, top: int) -> None:
        calls.append((skip, top))
        if skip == 100:
            server.insert_messages([newest])
            assert server.delete_messages([doomed, "absent"]) == 1

    portsip_server.on_list_page = hook
    _, first = await list_page(portsip_server, session, top="100")
    _, second = await list_page(portsip_server, session, skip="100", top="100")

    assert calls == [(0, 100), (100, 100)]
    assert (first["count"], second["count"]) == (250, 250)
    assert second["items"][0]["id"] == first["items"][-1]["id"]
    assert doomed not in {m["id"] for m in second["items"]}


async def test_sync_hook_and_messages_changed(
    portsip_server: FakePortSIPServer, session: aiohttp.ClientSession
) -> None:
    def hook(server: FakePortSIPServer, skip: int, top: int) -> None:
        server.messages[0]["content"] = "edited"
        server.messages_changed()

    await list_page(portsip_server, session, top="1")
    portsip_server.on_list_page = hook

    _, page = await list_page(portsip_server, session, top="1")

    assert page["items"][0]["content"] == "edited"


async def test_lifecycle_errors_and_restart() -> None:
    server = FakePortSIPServer(messages=[{"id": "x"}])
    with pytest.raises(RuntimeError, match="not started"):
        server.url  # noqa: B018

    async with server:
        with pytest.raises(RuntimeError, match="already started"):
            await server.start()
        first_url = server.url
    await server.close()

    assert first_url.startswith("http://127.0.0.1:")
    assert server.messages == [{"id": "x"}]


async def test_start_fails_cleanly_when_the_port_is_taken() -> None:
    async with FakePortSIPServer(messages=0) as taken:
        clash = FakePortSIPServer(messages=0, port=taken.port)

        with pytest.raises(OSError, match="address already in use"):
            await clash.start()


async def test_close_cuts_off_a_hung_request(
    session: aiohttp.ClientSession, wait_until: Any
) -> None:
    server = FakePortSIPServer(messages=1)
    await server.start()
    server.script([ScriptedResponse(hang=True)])
    pending = asyncio.ensure_future(list_page(server, session))
    await wait_until(lambda: server.in_flight == 1)

    await server.close()

    # aiohttp retries a dropped GET once, and the retry finds the port closed.
    with pytest.raises(aiohttp.ClientConnectionError):
        await pending


async def test_serve_forever_returns_after_close(wait_until: Any) -> None:
    server = FakePortSIPServer(messages=0)
    task = asyncio.ensure_future(server.serve_forever())

    def started() -> bool:
        try:
            return server.port > 0
        except RuntimeError:
            return False

    await wait_until(started)

    await server.close()
    await task

    with pytest.raises(RuntimeError):
        server.port  # noqa: B018


async def test_serve_forever_closes_when_cancelled() -> None:
    server = FakePortSIPServer(messages=0)
    await server.start()

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(server.serve_forever(), 0.05)

    with pytest.raises(RuntimeError):
        server.url  # noqa: B018


def test_run_in_thread_serves_synchronous_clients() -> None:
    server = FakePortSIPServer(messages=3, auth_required=False)

    with (
        server.run_in_thread() as running,
        urllib.request.urlopen(
            running.api_url + "/external_messages?top=2"
        ) as response,
    ):
        page = json.load(response)

    assert page["count"] == 3
    assert len(page["items"]) == 2
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
