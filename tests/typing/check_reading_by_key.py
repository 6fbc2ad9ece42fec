"""The types users see from reading by key: scan(), changes() and watch()."""

from __future__ import annotations

from datetime import datetime, timezone

from typing_extensions import assert_type

from external_messages_async import (
    ChangeFeed,
    Checkpoint,
    ExternalMessage,
    ExternalMessagesClient,
    MessageScan,
    MessageWatch,
    ScanStats,
)


async def check_scan_iterators(client: ExternalMessagesClient) -> None:
    scan = client.scan(since=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert_type(scan, MessageScan)
    async for message in scan:
        assert_type(message, ExternalMessage)
    async for page in scan.pages():
        assert_type(page, list[ExternalMessage])
    async with client.scan() as scanning:
        assert_type(scanning, MessageScan)
    assert_type(scan.stats, ScanStats)
    client.scan(since="2024-01-01")  # type: ignore[arg-type]  # since is a datetime


async def check_change_feed(
    client: ExternalMessagesClient, saved: Checkpoint | None
) -> None:
    feed = client.changes(saved)
    assert_type(feed, ChangeFeed)
    async for message in feed:
        assert_type(message, ExternalMessage)
    async for page in feed.pages():
        assert_type(page, list[ExternalMessage])
    async with client.changes() as feeding:
        assert_type(feeding, ChangeFeed)
    assert_type(feed.checkpoint, Checkpoint | None)
    assert_type(Checkpoint.from_json("{}"), Checkpoint)
    assert_type(Checkpoint.from_json("{}").to_json(), str)


async def check_watch(client: ExternalMessagesClient) -> None:
    watch = client.watch(poll_interval=1.0)
    assert_type(watch, MessageWatch)
    async for message in watch:
        assert_type(message, ExternalMessage)
