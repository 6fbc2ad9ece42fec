"""The client against a real loopback HTTP server: what crosses the wire."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import logging
import re
import socket
import sys
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

import external_messages_async
from external_messages_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ExternalMessage,
    ExternalMessagesClient,
    ExternalMessagesError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
)
from tests.conftest import PROMPT_TURNS, cancel_and_count, settle, wait_until

from .conftest import FAST_RETRY, TOKEN, LoopbackServer, json_response, message

PAGE = {"count": 2, "items": [message(1), message(2)]}
COLLECTION = "/api/external_messages"


def ok(request: web.Request) -> web.Response:
    return json_response(PAGE)


def status(
    code: int, body: Any = None, **headers: str
) -> Callable[[web.Request], web.Response]:
    def respond(request: web.Request) -> web.Response:
        if body is None:
            return web.Response(status=code, headers=headers)
        return json_response(body, status=code, **headers)

    return respond


def client_for(server: LoopbackServer, **options: Any) -> ExternalMessagesClient:
    options.setdefault("token", TOKEN)
    options.setdefault("retry", FAST_RETRY)
    return ExternalMessagesClient(server.url, **options)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the package's own sleeps and skip them; other sleeps run as usual."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    def fake_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("external_messages_async"):
            recorded.append(delay)
            return real_sleep(0)
        return real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


# --- base URL, auth header, user agent, scope --------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/"])
async def test_every_base_url_form_reaches_the_api_root(
    server: LoopbackServer, suffix: str
) -> None:
    server.answer(ok)

    async with ExternalMessagesClient(server.url + suffix, token=TOKEN) as client:
        await client.get_page()

    assert server.requests[0].path == COLLECTION


async def test_every_call_sends_the_bearer_token(server: LoopbackServer) -> None:
    server.answer(ok)

    async with client_for(server) as client:
        await client.get_page()
        await client.count()
        async for _ in client.list(page_size=1):
            pass
        server.answer(lambda request: json_response(message(1)))
        await client.get("id-1")

    assert len(server.requests) == 4
    assert {r.headers.get("Authorization") for r in server.requests} == {
        f"Bearer {TOKEN}"
    }


async def test_the_user_agent_names_the_package_aiohttp_and_python(
    server: LoopbackServer,
) -> None:
    server.answer(ok)

    async with client_for(server) as client:
        await client.count()

    agent = server.requests[0].headers["User-Agent"]
    assert re.fullmatch(
        r"external-messages-async/\S+ aiohttp/\S+ python/\d+\.\d+\.\d+\S*", agent
    )
    assert f"external-messages-async/{external_messages_async.__version__} " in agent
    assert f" aiohttp/{aiohttp.__version__} " in agent


async def test_user_scope_targets_the_users_own_messages(
    server: LoopbackServer,
) -> None:
    server.answer(ok)

    async with client_for(server, user_scope=True) as client:
        await client.get_page()
        async for _ in client.list():
            pass
        server.answer(lambda request: json_response(message(1)))
        await client.get("id-1")

    assert [r.path for r in server.requests] == [
        "/api/user/external_messages",
        "/api/user/external_messages",
        "/api/user/external_messages/id-1",
    ]


async def test_repr_shows_the_url_and_never_the_token(server: LoopbackServer) -> None:
    async with client_for(server, user_scope=True) as client:
        text = repr(client)

    assert server.url + "/api" in text
    assert "user_scope=True" in text
    assert TOKEN not in text
    assert TOKEN not in repr(client._http.auth)


def test_base_url_property_ends_in_api() -> None:
    client = ExternalMessagesClient("https://pbx.example.com:8887/", token=TOKEN)

    assert client.base_url == "https://pbx.example.com:8887/api"


async def test_get_page_returns_typed_values(server: LoopbackServer) -> None:
    server.answer(lambda request: json_response({"count": 57, "items": [message(1)]}))

    async with client_for(server) as client:
        page = await client.get_page(skip=40, top=10)

    assert (page.count, page.skip) == (57, 40)
    assert page.items == [ExternalMessage(**_typed(message(1)))]
    assert server.requests[0].query["skip"] == "40"
    assert server.requests[0].query["top"] == "10"


def _typed(item: dict[str, Any]) -> dict[str, Any]:
    from external_messages_async._converter import structure_message

    value = structure_message(item)
    return {name: getattr(value, name) for name in item}


async def test_count_is_one_request_for_one_item(server: LoopbackServer) -> None:
    server.answer(lambda request: json_response({"count": 1234, "items": [message(1)]}))

    async with client_for(server) as client:
        total = await client.count(filter="msg_type eq 'SMS'", search="hi")

    assert total == 1234
    assert len(server.requests) == 1
    assert dict(server.requests[0].query) == {
        "skip": "0",
        "top": "1",
        "filter": "msg_type eq 'SMS'",
        "search": "hi",
    }


# --- get one ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "segment"),
    [
        ("NzAwNTUxOTA5NzczMTQ4MTYw", "NzAwNTUxOTA5NzczMTQ4MTYw"),
        ("ab/cd+ef==", "ab%2Fcd%2Bef%3D%3D"),
        ("..", "%2E%2E"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("what?top=1", "what%3Ftop%3D1"),
        ("x#frag", "x%23frag"),
        ("100%", "100%25"),
        ("with space", "with%20space"),
        ("café", "caf%C3%A9"),
    ],
)
async def test_get_sends_the_id_as_one_encoded_segment(
    server: LoopbackServer, message_id: str, segment: str
) -> None:
    server.answer(lambda request: json_response(message(7, id=message_id)))

    async with client_for(server) as client:
        got = await client.get(message_id)

    assert got.id == message_id
    assert [r.raw_path for r in server.requests] == [f"{COLLECTION}/{segment}"]
    assert server.requests[0].query == {}


@pytest.mark.parametrize(
    ("message_id", "error"), [("", ValueError), (None, TypeError), (7, TypeError)]
)
async def test_get_refuses_an_empty_or_non_string_id_before_any_request(
    server: LoopbackServer, message_id: Any, error: type[Exception]
) -> None:
    server.answer(ok)

    async with client_for(server) as client:
        with pytest.raises(error, match="message_id"):
            await client.get(message_id)

    assert server.requests == []


async def test_get_of_a_missing_id_is_not_found(server: LoopbackServer) -> None:
    server.answer(
        status(404, {"errors": [{"code": "NOT_FOUND", "message": "no such message"}]})
    )

    async with client_for(server) as client:
        with pytest.raises(NotFoundError) as info:
            await client.get("nope")

    assert info.value.code == "NOT_FOUND"
    assert len(server.requests) == 1


# --- errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
    ],
)
async def test_client_errors_are_raised_at_once_without_retrying(
    server: LoopbackServer, code: int, cls: type[APIStatusError]
) -> None:
    server.answer(status(code, {"errors": [{"code": "NOPE", "message": "refused"}]}))

    async with client_for(server) as client:
        with pytest.raises(cls) as info:
            await client.get_page()

    assert len(server.requests) == 1
    assert info.value.status == code
    assert str(info.value) == f"GET {COLLECTION} -> {code} NOPE: refused"


async def test_status_error_carries_details_from_the_wire(
    server: LoopbackServer,
) -> None:
    body = {
        "errors": [
            {"code": "VALIDATE_FAILED", "message": "bad filter", "detail": {"at": 3}}
        ]
    }
    server.answer(status(400, body, **{"X-Request-Id": "abc-123"}))

    async with client_for(server) as client:
        with pytest.raises(BadRequestError) as info:
            await client.get_page(filter="bogus eq")

    error = info.value
    assert (error.status, error.request_id) == (400, "abc-123")
    assert [(e.code, e.message, e.detail) for e in error.errors] == [
        ("VALIDATE_FAILED", "bad filter", {"at": 3})
    ]
    assert "VALIDATE_FAILED" in error.body
    assert "\n" not in str(error)
    assert "bogus" not in str(error)


async def test_the_token_never_appears_in_an_error_even_when_echoed(
    server: LoopbackServer,
) -> None:
    body = {"errors": [{"code": "UNAUTHORIZED", "message": f"bad token {TOKEN}"}]}
    server.answer(status(401, body))

    async with client_for(server) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.count()

    assert TOKEN not in str(info.value)
    assert TOKEN not in info.value.body
    assert TOKEN not in repr(info.value.errors)
    assert "UNAUTHORIZED" in str(info.value)


async def test_a_non_json_success_body_is_a_decode_error(
    server: LoopbackServer,
) -> None:
    server.answer(lambda request: web.Response(text="<html>proxy page</html>"))

    async with client_for(server) as client:
        with pytest.raises(ResponseDecodeError) as info:
            await client.get_page()

    assert info.value.path == "$"
    assert info.value.__cause__ is None


async def test_a_string_where_the_list_belongs_is_a_decode_error(
    server: LoopbackServer,
) -> None:
    server.answer(lambda request: json_response({"count": 1, "items": "nope"}))

    async with client_for(server) as client:
        with pytest.raises(ResponseDecodeError, match=r"\$\.items") as info:
            async for _ in client.list():
                pass

    assert info.value.path == "$.items"


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_larger_than_the_cap_is_refused_and_the_connection_freed(
    server: LoopbackServer, chunked: bool
) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        if request.query.get("top") == "1":
            return json_response({"count": 5, "items": []})
        if not chunked:
            return web.Response(body=b"x" * 5000)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    server.answer(big)

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session,
        client_for(server, session=session, max_response_bytes=1000) as client,
    ):
        with pytest.raises(ResponseDecodeError, match="1000-byte cap"):
            await client.get_page()
        total = await asyncio.wait_for(client.count(), 5)

    assert total == 5


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "GZIP"])
async def test_the_cap_counts_unpacked_bytes_of_a_compressed_body(
    server: LoopbackServer, encoding: str
) -> None:
    """A small packed body that unpacks past the cap is refused (no zip bomb)."""
    body = orjson.dumps({"count": 1, "items": [message(1, content="x" * 200_000)]})
    packed = gzip.compress(body) if encoding.lower() == "gzip" else zlib.compress(body)
    server.answer(
        lambda request: web.Response(
            body=packed,
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        )
    )

    async with client_for(server, max_response_bytes=100_000) as client:
        with pytest.raises(ResponseDecodeError, match="100000-byte cap"):
            await client.get_page()

    assert len(packed) < 100_000 < len(body)


async def test_a_compressed_body_under_the_cap_is_read(server: LoopbackServer) -> None:
    body = orjson.dumps({"count": 1, "items": [message(1, content="x" * 50_000)]})
    server.answer(
        lambda request: web.Response(
            body=gzip.compress(body),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
    )

    async with client_for(server, max_response_bytes=100_000) as client:
        page = await client.get_page()

    assert page.items[0].content == "x" * 50_000


async def test_a_refused_connection_is_a_connection_error(unused_port: int) -> None:
    client = ExternalMessagesClient(
        f"http://127.0.0.1:{unused_port}", token=TOKEN, retry=FAST_RETRY
    )

    async with client:
        with pytest.raises(APIConnectionError, match="cannot connect") as info:
            await client.count()

    assert not isinstance(info.value, APITimeoutError)
    assert TOKEN not in str(info.value)
    assert info.value.path == COLLECTION


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_dropped_connection_is_a_connection_error_after_retries(
    server: LoopbackServer,
) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.answer(drop)

    async with client_for(
        server, retry=RetryPolicy(max_retries=2, backoff_base=0.001)
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.count()

    assert len(server.requests) == 3
    assert type(info.value) is APIConnectionError
    assert "closed the connection" in str(info.value)


async def test_a_dropped_connection_then_an_answer_succeeds(
    server: LoopbackServer,
) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.answer(drop, ok)

    async with client_for(server) as client:
        assert await client.count() == 2

    assert len(server.requests) == 2


async def test_a_malformed_http_answer_is_a_connection_error() -> None:
    async def garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"THIS IS NOT HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    try:
        async with ExternalMessagesClient(
            f"http://127.0.0.1:{port}", token=TOKEN, max_retries=0
        ) as client:
            with pytest.raises(ExternalMessagesError) as info:
                await client.count()
    finally:
        raw.close()
        await raw.wait_closed()

    assert type(info.value) is APIConnectionError
    assert not isinstance(info.value, aiohttp.ClientError)


async def test_a_slow_answer_is_a_timeout_error(server: LoopbackServer) -> None:
    async def slow(request: web.Request) -> web.Response:
        await server.hang()
        return json_response(PAGE)

    server.answer(slow)

    async with client_for(server, timeout=0.2, max_retries=0, retry=None) as client:
        with pytest.raises(APITimeoutError, match=r"timed out after 0\.2s") as info:
            await client.count()

    assert isinstance(info.value, APIConnectionError)
    assert len(server.requests) == 1


async def test_timeout_bounds_each_attempt_not_the_whole_call(
    server: LoopbackServer,
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await server.hang()
        return json_response(PAGE)

    server.answer(slow, slow, ok)

    async with client_for(server, timeout=0.3) as client:
        total = await client.count()

    assert total == 2
    assert len(server.requests) == 3


# --- redirects -------------------------------------------------------------


async def test_a_redirect_is_not_followed_and_the_other_origin_gets_nothing(
    server: LoopbackServer, other_server: LoopbackServer
) -> None:
    target = other_server.url + COLLECTION
    server.answer(status(302, Location=target))
    other_server.answer(ok)

    async with client_for(server) as client:
        with pytest.raises(APIStatusError) as info:
            await client.get_page()

    assert other_server.requests == []
    assert len(server.requests) == 1
    assert info.value.status == 302
    assert "redirects" in str(info.value)
    assert target in str(info.value)
    assert TOKEN not in str(info.value)


# --- retries ---------------------------------------------------------------


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(
    server: LoopbackServer, code: int
) -> None:
    server.answer(status(code), ok)

    async with client_for(server) as client:
        total = await client.count()

    assert total == 2
    assert len(server.requests) == 2


async def test_max_retries_defaults_to_three(
    server: LoopbackServer, sleeps: list[float]
) -> None:
    server.answer(status(503))

    async with ExternalMessagesClient(server.url, token=TOKEN) as client:
        with pytest.raises(ServerError) as info:
            await client.count()

    assert len(server.requests) == 4
    assert len(sleeps) == 3
    assert info.value.status == 503


@pytest.mark.parametrize(
    "options", [{"max_retries": 0}, {"retry": RetryPolicy(max_retries=0)}]
)
async def test_zero_retries_makes_one_attempt(
    server: LoopbackServer, options: dict[str, Any]
) -> None:
    server.answer(status(503))

    async with ExternalMessagesClient(server.url, token=TOKEN, **options) as client:
        with pytest.raises(ServerError):
            await client.count()

    assert len(server.requests) == 1


async def test_retry_after_seconds_is_honoured(
    server: LoopbackServer, sleeps: list[float]
) -> None:
    server.answer(status(503, **{"Retry-After": "2"}), ok)

    async with client_for(server) as client:
        await client.count()

    assert sleeps == [2.0]


async def test_retry_after_http_date_is_honoured(
    server: LoopbackServer, sleeps: list[float]
) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    date = email.utils.format_datetime(when, usegmt=True)
    server.answer(status(503, **{"Retry-After": date}), ok)

    async with client_for(server) as client:
        await client.count()

    assert len(sleeps) == 1
    assert 25.0 < sleeps[0] <= 30.0


async def test_retry_after_beyond_the_cap_raises_at_once_without_sleeping(
    server: LoopbackServer, sleeps: list[float]
) -> None:
    server.answer(status(429, **{"Retry-After": "3600"}))

    async with client_for(server) as client:
        with pytest.raises(RateLimitError) as info:
            await client.count()

    assert info.value.retry_after == 3600.0
    assert len(server.requests) == 1
    assert sleeps == []


async def test_rate_limit_after_the_last_retry_carries_retry_after(
    server: LoopbackServer, sleeps: list[float]
) -> None:
    server.answer(status(429, **{"Retry-After": "1"}))

    async with client_for(server, retry=RetryPolicy(max_retries=1)) as client:
        with pytest.raises(RateLimitError) as info:
            await client.count()

    assert info.value.retry_after == 1.0
    assert len(server.requests) == 2


async def test_discarded_responses_are_released_to_the_pool(
    server: LoopbackServer,
) -> None:
    """With one connection allowed, a retry would wait forever on an unreleased one."""
    server.answer(status(503, {"errors": []}), status(500), status(502), ok)

    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session,
        client_for(server, session=session) as client,
    ):
        total = await asyncio.wait_for(client.count(), 5)

    assert total == 2
    assert len(server.requests) == 4
    assert len({r.peer for r in server.requests}) == 1


async def test_calls_reuse_one_connection(server: LoopbackServer) -> None:
    server.answer(ok)

    async with client_for(server) as client:
        for _ in range(5):
            await client.count()

    assert len({r.peer for r in server.requests}) == 1


async def test_cancelling_during_a_backoff_sleep_is_immediate(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.answer(status(503, **{"Retry-After": "10"}))
    caplog.set_level(logging.DEBUG, logger="external_messages_async")

    async with client_for(server) as client:
        task = asyncio.create_task(client.count())
        await wait_until(lambda: "retrying" in caplog.text)  # about to sleep 10 s
        await settle()
        turns = await cancel_and_count(task)

    assert task.cancelled()
    assert len(server.requests) == 1
    assert turns <= PROMPT_TURNS


async def test_each_retry_is_logged_at_debug_with_reason_and_delay(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server.answer(status(503, **{"Retry-After": "0.001"}), drop, ok)
    caplog.set_level(logging.DEBUG, logger="external_messages_async")

    async with client_for(server) as client:
        await client.count()

    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.DEBUG, logging.DEBUG]
    assert all(r.name == "external_messages_async" for r in retries)
    first, second = (r.getMessage() for r in retries)
    assert f"GET {COLLECTION} in 0.001s" in first
    assert "status 503" in first
    assert "retry 1 of 3" in first
    assert "retry 2 of 3" in second
    assert re.search(r"in \d+\.\d{3}s", second)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
