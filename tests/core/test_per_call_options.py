"""Per-call options (with_options) and response metadata (with_raw_response)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from external_messages_async import (
    APIResponse,
    ExternalMessage,
    ExternalMessagesClient,
    Page,
    RetryPolicy,
)
from external_messages_async.errors import ServerError
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from .conftest import FAST_RETRY


def _data_requests(pbx: FakePortSIPServer) -> int:
    return len([r for r in pbx.requests if "external_messages" in r.path])


async def test_a_view_without_retries_fails_on_the_first_503_while_the_parent_retries() -> (
    None
):
    async with (
        FakePortSIPServer(5) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token", retry=FAST_RETRY) as client,
    ):
        await client.get_page(top=1)  # the pool is open
        pool = client._http.transport.session
        view = client.with_options(max_retries=0)

        pbx.script([ScriptedResponse(status=503)])
        with pytest.raises(ServerError):
            await view.get_page(top=1)
        pbx.script([ScriptedResponse(status=503)])
        page = await client.get_page(top=1)

        assert view._http.transport.session is pool
        assert view._http.limiter is client._http.limiter
        assert view._http.auth is client._http.auth

    assert len(page.items) == 1
    assert _data_requests(pbx) == 1 + 1 + 2


async def test_closing_a_view_leaves_the_parent_open() -> None:
    async with (
        FakePortSIPServer(5) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token") as client,
    ):
        async with client.with_options(timeout=5) as view:
            await view.get_page(top=1)

        page = await client.get_page(top=2)

        assert not client.closed
        assert not view.closed

    assert len(page.items) == 2
    assert view.closed  # closing the parent closes what the view shares


def test_a_view_keeps_what_it_does_not_override() -> None:
    client = ExternalMessagesClient(
        "https://pbx.example.com",
        token="t",
        timeout=12.0,
        retry=RetryPolicy(max_retries=5, backoff_base=0.1),
    )

    view = client.with_options(max_retries=1)
    other = client.with_options(retry=RetryPolicy(max_retries=2), max_retries=7)

    assert (view._http.timeout, view.retry.max_retries) == (12.0, 1)
    assert view.retry.backoff_base == 0.1
    assert other.retry == RetryPolicy(max_retries=2)
    assert client.retry.max_retries == 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": "1"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"retry": 3}, TypeError),
    ],
)
def test_with_options_checks_its_arguments(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    client = ExternalMessagesClient("https://pbx.example.com", token="t")

    with pytest.raises(error):
        client.with_options(**kwargs)  # type: ignore[arg-type]  # wrong on purpose


async def test_a_raw_get_carries_status_headers_request_id_and_attempts() -> None:
    async with FakePortSIPServer(3) as pbx:
        wanted = pbx.messages[1]["id"]
        pbx.script(
            [
                ScriptedResponse(status=503),
                ScriptedResponse(headers={"X-Request-Id": "req-42"}),
            ]
        )
        async with ExternalMessagesClient(
            pbx.url, token="demo-token", retry=FAST_RETRY
        ) as client:
            raw = await client.with_raw_response.get(wanted)

    assert isinstance(raw, APIResponse)
    assert raw.status == 200
    assert raw.request_id == "req-42"
    assert raw.headers["X-Request-Id"] == "req-42"
    assert raw.attempts == 2
    assert isinstance(raw.elapsed, timedelta)
    assert raw.elapsed > timedelta(0)
    message = raw.parse()
    assert isinstance(message, ExternalMessage)
    assert message.id == wanted


async def test_a_raw_page_parses_to_the_same_page_as_get_page() -> None:
    async with (
        FakePortSIPServer(30) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token") as client,
    ):
        raw = await client.with_raw_response.get_page(skip=5, top=10)
        plain = await client.get_page(skip=5, top=10)

    page = raw.parse()
    assert isinstance(page, Page)
    assert page == plain
    assert (raw.attempts, raw.request_id) == (1, None)


async def test_raw_calls_check_their_arguments_before_sending() -> None:
    async with (
        FakePortSIPServer(3) as pbx,
        ExternalMessagesClient(pbx.url, token="demo-token") as client,
    ):
        with pytest.raises(ValueError, match="page_size"):
            await client.with_raw_response.get_page(top=500)
        with pytest.raises(TypeError, match="message_id"):
            await client.with_raw_response.get(5)  # type: ignore[arg-type]  # wrong on purpose

    assert pbx.requests == []
