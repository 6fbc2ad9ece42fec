"""The types users see from the client: reads, pages, walks and many-at-once."""

from __future__ import annotations

from typing_extensions import assert_type

from external_messages_async import (
    APIStatusError,
    ExternalMessage,
    ExternalMessagesClient,
    ExternalMessagesError,
    MessagePager,
    Page,
    WalkStats,
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
