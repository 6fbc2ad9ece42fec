"""The types users see from the client: reads, pages, walks, many-at-once, raw responses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from typing_extensions import assert_type

from external_messages_async import (
    APIResponse,
    APIStatusError,
    ExternalMessage,
    ExternalMessagesClient,
    ExternalMessagesError,
    MessagePager,
    Page,
    WalkStats,
    WithRawResponse,
)


async def check_single_reads(client: ExternalMessagesClient) -> None:
    assert_type(await client.get("m1"), ExternalMessage)
    assert_type(await client.get_page(skip=0, top=10), Page[ExternalMessage])
    assert_type((await client.get_page()).items[0], ExternalMessage)
    assert_type(await client.count(), int)


async def check_get_many_overloads(
    client: ExternalMessagesClient, ids: list[str], flag: bool
) -> None:
    assert_type(await client.get_many(ids), list[ExternalMessage])
    assert_type(
        await client.get_many(ids, return_exceptions=False), list[ExternalMessage]
    )
    assert_type(
        await client.get_many(ids, return_exceptions=True),
        list[ExternalMessage | ExternalMessagesError],
    )
    assert_type(
        await client.get_many(ids, return_exceptions=flag),
        list[ExternalMessage] | list[ExternalMessage | ExternalMessagesError],
    )
    await client.get_many(ids, return_exceptions=1)  # type: ignore[call-overload]  # the flag is a bool
    await client.get_many([1, 2])  # type: ignore[list-item]  # ids are strings


async def check_list_iterators(client: ExternalMessagesClient) -> None:
    pager = client.list(limit=10, filter="msg_type eq 'SMS'")
    assert_type(pager, MessagePager)
    async for message in pager:
        assert_type(message, ExternalMessage)
    async for page in pager.pages():
        assert_type(page, Page[ExternalMessage])
        assert_type(page.next_skip, int)
    async with client.list() as walking:
        assert_type(walking, MessagePager)
    assert_type(pager.stats, WalkStats)
    client.list(limit="10")  # type: ignore[arg-type]  # limit is an int
    client.list(10)  # type: ignore[call-arg]  # every option is keyword-only


def check_status_error_fields(error: APIStatusError) -> None:
    assert_type(error.status, int)
    assert_type(error.request_id, str | None)
    assert_type(error.body, str)


async def check_context_manager(client: ExternalMessagesClient) -> None:
    async with client as entered:
        assert_type(entered, ExternalMessagesClient)


async def check_raw_responses(client: ExternalMessagesClient) -> None:
    raw = client.with_raw_response
    assert_type(raw, WithRawResponse)
    response = await raw.get("m1")
    assert_type(response, APIResponse[ExternalMessage])
    assert_type(response.parse(), ExternalMessage)
    assert_type(response.status, int)
    assert_type(response.request_id, str | None)
    assert_type(response.elapsed, timedelta)
    assert_type(response.attempts, int)
    assert_type(response.headers, Mapping[str, str])
    page = await raw.get_page(skip=0, top=10)
    assert_type(page, APIResponse[Page[ExternalMessage]])
    assert_type(page.parse().items[0], ExternalMessage)
    await raw.get(5)  # type: ignore[arg-type]  # ids are strings


def check_per_call_options(client: ExternalMessagesClient) -> None:
    assert_type(client.with_options(max_retries=0), ExternalMessagesClient)
    client.with_options(timeout="5")  # type: ignore[arg-type]  # seconds as a float
