"""Changing the fake server's data at run time: add, update, the clock, and knobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

import aiohttp
import pytest

from external_messages_async.testing import (
    MESSAGE_FIELDS,
    FakePortSIPServer,
    Faults,
    ServerClock,
    _server,
    generate_messages,
)

UTC = dt.timezone.utc
START = dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


async def list_page(
    session: aiohttp.ClientSession, server: FakePortSIPServer, **params: str
) -> Any:
    async with session.get(
        server.api_url + "/external_messages",
        params=params,
        headers={"Authorization": f"Bearer {server.token}"},
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def get_one(
    session: aiohttp.ClientSession, server: FakePortSIPServer, message_id: str
) -> Any:
    async with session.get(
        server.api_url + "/external_messages/" + message_id,
        headers={"Authorization": f"Bearer {server.token}"},
    ) as response:
        return await response.json()


def test_add_message_makes_a_full_message_stamped_by_the_clock() -> None:
    server = FakePortSIPServer(
        messages=5, clock=ServerClock(START.replace(microsecond=7))
    )

    added = server.add_message()

    assert set(added) == set(MESSAGE_FIELDS)
    assert added["created_at"] == "2024-07-01T12:00:00Z"
    assert added["id"] not in {m["id"] for m in server.messages[:5]}
    assert server.messages[-1] == added
    assert server.messages[-1] is not added  # a copy


def test_added_messages_join_the_generated_channels_and_are_reproducible() -> None:
    channels = {m["config_id"] for m in generate_messages(200, seed=4)}

    first = FakePortSIPServer(messages=0, seed=4, clock=ServerClock(START))
    second = FakePortSIPServer(messages=0, seed=4, clock=ServerClock(START))

    batch = first.add_messages(20)
    assert batch == second.add_messages(20)
    assert {m["config_id"] for m in batch} <= channels


def test_fields_override_the_drawn_values() -> None:
    server = FakePortSIPServer(messages=0, clock=ServerClock(START))
    paris = dt.timezone(dt.timedelta(hours=2))

    added = server.add_message(
        direction="IN",
        delivery="RECV",
        sender_name=None,
        created_at=dt.datetime(2024, 7, 1, 14, 0, 0, 250000, tzinfo=paris),
    )
    raw = server.add_message(created_at="2024-07-01T14:00:00+02:00")

    assert (added["direction"], added["delivery"], added["sender_name"]) == (
        "IN",
        "RECV",
        None,
    )
    assert added["created_at"] == "2024-07-01T12:00:00.250000Z"
    assert raw["created_at"] == "2024-07-01T14:00:00+02:00"


def test_add_messages_can_share_one_second() -> None:
    server = FakePortSIPServer(messages=3, clock=ServerClock(START))

    batch = server.add_messages(250, created_at=START)

    assert len({m["id"] for m in batch}) == 250
    assert {m["created_at"] for m in batch} == {"2024-07-01T12:00:00Z"}
    assert server.messages[3:] == batch


def test_an_id_that_collides_is_skipped() -> None:
    # The next id add_messages would draw, taken by a message of the test's own.
    next_id = FakePortSIPServer(messages=0).add_message()["id"]
    server = FakePortSIPServer(messages=[{"id": next_id}])

    added = server.add_message()

    assert added["id"] != next_id


def test_an_explicit_id_must_be_free_and_single() -> None:
    server = FakePortSIPServer(messages=[{"id": "a"}])

    assert server.add_message(id="b")["id"] == "b"
    with pytest.raises(ValueError, match="'a' is taken"):
        server.add_message(id="a")
    with pytest.raises(ValueError, match="given for 2 messages"):
        server.add_messages(2, id="c")
    assert [m["id"] for m in server.messages] == ["a", "b"]


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda s: s.add_message(colour="red"), TypeError, "unknown message field"),
        (lambda s: s.add_messages(-1), ValueError, "n must be >= 0"),
        (lambda s: s.add_messages(1.0), TypeError, "n must be an int"),
        (lambda s: s.add_messages(True), TypeError, "n must be an int"),
        (
            lambda s: s.add_message(created_at=dt.datetime(2024, 1, 1)),
            ValueError,
            "timezone-aware",
        ),
        (lambda s: s.update_message("x", id="y"), ValueError, "cannot be changed"),
        (lambda s: s.update_message("x", colour="red"), TypeError, "colour"),
    ],
)
def test_wrong_arguments_are_refused_before_any_change(
    call: Any, error: type[Exception], fragment: str
) -> None:
    server = FakePortSIPServer(messages=[{"id": "x"}])

    with pytest.raises(error, match=fragment):
        call(server)

    assert server.messages == [{"id": "x"}]


async def test_added_messages_are_served_at_once(
    session: aiohttp.ClientSession,
) -> None:
    async with FakePortSIPServer(messages=10, clock=ServerClock(START)) as server:
        before = await list_page(session, server)
        added = server.add_message(content="hello")

        after = await list_page(session, server)
        fetched = await get_one(session, server, added["id"])

    assert after["count"] == before["count"] + 1
    assert after["items"][0] == added  # the newest, in the default order
    assert fetched == added


async def test_update_message_changes_what_is_served(
    session: aiohttp.ClientSession,
) -> None:
    async with FakePortSIPServer(messages=10) as server:
        target = server.messages[4]["id"]
        await get_one(session, server, target)  # cached before the change

        changed = server.update_message(target, delivery="ERR", reason="expired")
        fetched = await get_one(session, server, target)
        failed = await list_page(session, server, filter="reason eq 'expired'")

    assert (changed["delivery"], changed["reason"]) == ("ERR", "expired")
    assert fetched == changed
    assert [m["id"] for m in failed["items"]] == [target]


def test_update_message_raises_key_error_for_an_unknown_id() -> None:
    server = FakePortSIPServer(messages=3)

    with pytest.raises(KeyError, match="nope"):
        server.update_message("nope", delivery="ERR")


async def test_created_at_filters_and_order_compare_instants(
    session: aiohttp.ClientSession,
) -> None:
    data = [
        {"id": "b", "created_at": "2024-07-01T12:00:00.500Z"},
        {"id": "tie-1", "created_at": "2024-07-01T12:00:00Z"},
        {"id": "a", "created_at": "2024-07-01T13:59:59+02:00"},
        {"id": "tie-2", "created_at": "2024-07-01T14:00:00+02:00"},
        {"id": "c", "created_at": "2024-07-01T12:00:01.000001Z"},
        {"id": "none", "created_at": None},
    ]
    async with FakePortSIPServer(data) as server:
        ascending = await list_page(session, server, orderby="created_at asc")
        descending = await list_page(session, server, orderby="created_at desc")
        window = await list_page(
            session,
            server,
            filter="created_at ge '2024-07-01T14:00:00+02:00' "
            "and created_at lt '2024-07-01T12:00:01.000001Z'",
            orderby="created_at asc",
        )
        exact = await list_page(
            session, server, filter="created_at eq '2024-07-01T12:00:00.000Z'"
        )

    def ids(page: Any) -> list[str]:
        return [m["id"] for m in page["items"]]

    assert ids(ascending) == ["a", "tie-1", "tie-2", "b", "c", "none"]
    assert ids(descending) == ["c", "b", "tie-1", "tie-2", "a", "none"]
    assert ids(window) == ["tie-1", "tie-2", "b"]
    assert ids(exact) == ["tie-1", "tie-2"]


async def test_ignored_options_are_dropped_silently(
    session: aiohttp.ClientSession,
) -> None:
    async with FakePortSIPServer(
        messages=30, ignore_query={"skip", "filter"}
    ) as server:
        first = await list_page(session, server, top="5")
        skipped = await list_page(session, server, top="5", skip="10")
        filtered = await list_page(session, server, filter="not valid at all")
        server.ignore_query.add("orderby")
        unordered = await list_page(session, server, orderby="sender asc")
        server.ignore_query = set()
        honoured = await list_page(session, server, top="5", skip="10")

    assert skipped == first
    assert filtered["count"] == 30
    assert unordered["items"] == server.messages[:30]
    assert honoured["items"] == server.messages[10:15]


def test_unknown_ignored_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown options \\['page'\\]"):
        FakePortSIPServer(messages=0, ignore_query=["page"])
    server = FakePortSIPServer(messages=0, ignore_query="skip")
    assert server.ignore_query == {"skip"}
    with pytest.raises(ValueError, match="unknown options"):
        server.ignore_query = {"skip", "limit"}


async def test_max_top_caps_the_page_but_not_the_accepted_top(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[int, int]] = []

    def hook(server: FakePortSIPServer, skip: int, top: int) -> None:
        seen.append((skip, top))

    async with FakePortSIPServer(messages=50, max_top=7, on_list_page=hook) as server:
        capped = await list_page(session, server, top="100", skip="3")
        smaller = await list_page(session, server, top="4")
        server.max_top = 100
        full = await list_page(session, server, top="20")

    assert capped["items"] == server.messages[3:10]
    assert capped["count"] == 50
    assert len(smaller["items"]) == 4
    assert len(full["items"]) == 20
    assert seen == [(3, 7), (0, 4), (0, 20)]


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (101, ValueError), ("7", TypeError), (True, TypeError)],
)
def test_max_top_must_be_a_page_size(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_top"):
        FakePortSIPServer(messages=0, max_top=value)  # type: ignore[arg-type]  # on purpose
    server = FakePortSIPServer(messages=0)
    with pytest.raises(error, match="max_top"):
        server.max_top = value  # type: ignore[assignment]  # on purpose
    assert server.max_top == 100


def test_latency_keyword_is_the_faults_latency() -> None:
    plain = FakePortSIPServer(messages=0, latency=0.25)
    combined = FakePortSIPServer(
        messages=0, faults=Faults(rate_503=0.5, latency=9.0), latency=0.25
    )

    assert plain.faults == Faults(latency=0.25)
    assert combined.faults == Faults(rate_503=0.5, latency=0.25)
    with pytest.raises(ValueError, match="latency"):
        FakePortSIPServer(messages=0, latency=-1.0)


def test_the_default_seed_is_one() -> None:
    assert FakePortSIPServer(messages=20).messages == generate_messages(20, seed=1)
    assert generate_messages(20) == generate_messages(20, seed=1)


def test_a_negative_message_count_is_refused() -> None:
    with pytest.raises(ValueError, match="messages must be >= 0"):
        FakePortSIPServer(messages=-1)


async def test_start_generates_messages_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []

    def spy(n: int, seed: int) -> list[dict[str, Any]]:
        threads.append(threading.get_ident())
        return generate_messages(n, seed)

    monkeypatch.setattr(_server, "generate_messages", spy)

    async with FakePortSIPServer(messages=40, seed=3) as server:
        served = server.messages

    assert served == generate_messages(40, seed=3)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


def test_reading_messages_before_start_generates_them_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def spy(n: int, seed: int) -> list[dict[str, Any]]:
        calls.append(n)
        return generate_messages(n, seed)

    monkeypatch.setattr(_server, "generate_messages", spy)
    server = FakePortSIPServer(messages=12)
    assert calls == []

    first = server.messages
    asyncio.run(_start_and_close(server))

    assert calls == [12]
    assert server.messages is first


async def _start_and_close(server: FakePortSIPServer) -> None:
    async with server:
        pass


async def test_messages_read_while_start_generates_them_are_the_ones_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_thread = threading.get_ident()
    generating, release = threading.Event(), threading.Event()

    def spy(n: int, seed: int) -> list[dict[str, Any]]:
        if threading.get_ident() != loop_thread:
            generating.set()
            release.wait(10)
        return generate_messages(n, seed)

    monkeypatch.setattr(_server, "generate_messages", spy)
    server = FakePortSIPServer(messages=5)
    starting = asyncio.ensure_future(server.start())
    await asyncio.to_thread(generating.wait, 10)

    early = server.messages
    release.set()
    await starting
    try:
        assert server.messages is early
    finally:
        await server.close()


async def test_knobs_can_be_turned_while_serving(
    session: aiohttp.ClientSession,
) -> None:
    def hook(server: FakePortSIPServer, skip: int, top: int) -> None:
        pass

    async with FakePortSIPServer(messages=3, on_list_page=hook) as server:
        assert server.on_list_page is hook
        server.on_list_page = None
        server.auth_required = False
        server.requests = []
        async with session.get(server.api_url + "/external_messages") as response:
            status = response.status

    assert status == 200
    assert server.auth_required is False
    assert [r.path for r in server.requests] == ["/api/external_messages"]
