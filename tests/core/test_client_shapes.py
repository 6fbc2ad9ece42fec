"""Exact request shapes and rare failures, with aioresponses."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from external_messages_async import (
    APIConnectionError,
    APITimeoutError,
    ExternalMessagesClient,
    ResponseDecodeError,
)

from .conftest import FAST_RETRY, TOKEN

BASE = "https://pbx.example.com:8887"
COUNT_URL = f"{BASE}/api/external_messages?skip=0&top=1"
COUNT_KEY = ("GET", URL(COUNT_URL))


def _calls(mocked: aioresponses) -> list[Any]:
    return mocked.requests[COUNT_KEY]


@pytest.mark.parametrize(("option", "expected"), [(None, True), (False, False)])
async def test_ssl_verification_setting_reaches_aiohttp(
    mocked: aioresponses, option: bool | None, expected: bool
) -> None:
    mocked.get(COUNT_URL, payload={"count": 0, "items": []})

    async with ExternalMessagesClient(BASE, token=TOKEN, ssl=option) as client:
        await client.count()

    assert _calls(mocked)[0].kwargs["ssl"] is expected


async def test_an_ssl_context_reaches_aiohttp(mocked: aioresponses) -> None:
    context = ssl.create_default_context()
    mocked.get(COUNT_URL, payload={"count": 0, "items": []})

    async with ExternalMessagesClient(BASE, token=TOKEN, ssl=context) as client:
        await client.count()
        connector = client._http.transport.session.connector  # type: ignore[union-attr]  # the session is Optional until the first request, made above

    assert _calls(mocked)[0].kwargs["ssl"] is context
    assert connector is not None
    assert connector._ssl is context  # type: ignore[attr-defined]  # aiohttp's private attribute, the only view of the context used


def test_skipping_verification_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="external_messages_async")

    ExternalMessagesClient(BASE, token=TOKEN, ssl=False)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "verification is disabled" in warnings[0].getMessage()
    assert TOKEN not in warnings[0].getMessage()


async def test_requests_never_follow_redirects_and_carry_the_headers(
    mocked: aioresponses,
) -> None:
    mocked.get(COUNT_URL, payload={"count": 0, "items": []})

    async with ExternalMessagesClient(BASE, token=TOKEN, timeout=12.5) as client:
        await client.count()

    kwargs = _calls(mocked)[0].kwargs
    assert kwargs["allow_redirects"] is False
    assert kwargs["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert kwargs["headers"]["Accept"] == "application/json"
    assert kwargs["headers"]["User-Agent"].startswith("external-messages-async/")
    assert kwargs["timeout"] == aiohttp.ClientTimeout(total=12.5)


async def test_list_sends_skip_top_and_the_options_verbatim(
    mocked: aioresponses,
) -> None:
    options = {
        "filter": "msg_type eq 'SMS' and created_at gt '2024-01-01T00:00:00Z'",
        "search": "café & co",
        "orderby": "created_at desc, sender asc",
    }
    mocked.get(
        URL(f"{BASE}/api/external_messages").with_query(
            {**options, "skip": "5", "top": "20"}
        ),
        payload={"count": 6, "items": [{"id": "a"}]},
    )

    async with ExternalMessagesClient(BASE, token=TOKEN) as client:
        items = [m async for m in client.list(page_size=20, skip=5, **options)]

    assert [m.id for m in items] == ["a"]
    (((_, _url), calls),) = mocked.requests.items()
    assert calls[0].kwargs["params"] == {**options, "skip": "5", "top": "20"}


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (aiohttp.ClientPayloadError("truncated"), APIConnectionError),
        (aiohttp.ClientOSError(104, "reset by peer"), APIConnectionError),
        (aiohttp.ServerDisconnectedError(), APIConnectionError),
        (asyncio.TimeoutError(), APITimeoutError),
    ],
)
async def test_rare_transport_failures_become_the_packages_errors(
    mocked: aioresponses, exception: Exception, expected: type[Exception]
) -> None:
    mocked.get(COUNT_URL, exception=exception, repeat=True)

    async with ExternalMessagesClient(BASE, token=TOKEN, retry=FAST_RETRY) as client:
        with pytest.raises(expected) as info:
            await client.count()

    assert type(info.value) is expected
    assert len(_calls(mocked)) == 4
    assert info.value.method == "GET"  # type: ignore[attr-defined]  # expected is a parametrized type; both kinds have method
    assert info.value.path == "/api/external_messages"  # type: ignore[attr-defined]  # expected is a parametrized type; both kinds have path
    assert "skip=" not in str(info.value)


async def test_a_transient_failure_then_success_returns_the_answer(
    mocked: aioresponses,
) -> None:
    mocked.get(COUNT_URL, exception=aiohttp.ClientPayloadError("truncated"))
    mocked.get(COUNT_URL, payload={"count": 9, "items": []})

    async with ExternalMessagesClient(BASE, token=TOKEN, retry=FAST_RETRY) as client:
        total = await client.count()

    assert total == 9
    assert len(_calls(mocked)) == 2


async def test_an_announced_body_larger_than_the_cap_is_refused_unread(
    mocked: aioresponses,
) -> None:
    mocked.get(
        COUNT_URL,
        body=b"x" * 50,
        headers={"Content-Length": "50"},
    )

    async with ExternalMessagesClient(
        BASE, token=TOKEN, max_response_bytes=10
    ) as client:
        with pytest.raises(ResponseDecodeError, match="10-byte cap"):
            await client.count()


async def test_get_page_sends_only_skip_and_top_without_options(
    mocked: aioresponses,
) -> None:
    url = f"{BASE}/api/external_messages?skip=0&top=100"
    mocked.get(url, payload={"count": 0, "items": []})

    async with ExternalMessagesClient(BASE, token=TOKEN) as client:
        page = await client.get_page()

    assert page.count == 0
    assert mocked.requests[("GET", URL(url))][0].kwargs["params"] == {
        "skip": "0",
        "top": "100",
    }


@pytest.mark.parametrize("option", ["filter", "search", "orderby"])
async def test_a_non_string_option_is_a_type_error_before_any_request(
    mocked: aioresponses, option: str
) -> None:
    async with ExternalMessagesClient(BASE, token=TOKEN) as client:
        with pytest.raises(TypeError, match=option):
            await client.get_page(**{option: 5})  # type: ignore[arg-type]  # wrong on purpose

    assert mocked.requests == {}
