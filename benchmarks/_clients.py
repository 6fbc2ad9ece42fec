"""The ways of walking the collection that the benchmark compares.

Each ``walk_*`` coroutine walks every message from ``skip=0`` and returns how
many it got; each ``get_*`` fetches ids; ``export_cli`` runs the CLI's
``list`` in this process. They share nothing but the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections import deque
from datetime import datetime
from typing import Optional
from urllib.parse import quote

import aiohttp
import httpx
import orjson
from pydantic import BaseModel, field_validator
from yarl import URL

from external_messages_async import ExternalMessagesClient

TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}


async def raw_page(
    session: aiohttp.ClientSession, url: str, skip: int
) -> tuple[list[object], int]:
    """One page of 100 as dicts, and the server's ``count``."""
    async with session.get(
        f"{url}/api/external_messages",
        params={"skip": str(skip), "top": "100"},
    ) as response:
        response.raise_for_status()
        data = orjson.loads(await response.read())
    return data["items"], data["count"]


async def walk_raw(url: str) -> int:
    """(a) The floor: raw aiohttp + orjson, sequential pages of 100, dicts only."""
    total = 0
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        while True:
            items, count = await raw_page(session, url, total)
            total += len(items)
            if not items or total >= count:
                return total


async def walk_raw_window(url: str, in_flight: int = 8) -> int:
    """(a8) Raw aiohttp + orjson with ``in_flight`` pages requested at once.

    The first page alone gives ``count``; then a sliding window of requests,
    taken in order, as the SDK's pager does. Dicts only.
    """
    async with aiohttp.ClientSession(headers=HEADERS) as session:
        items, count = await raw_page(session, url, 0)
        total = frontier = len(items)
        window: deque[asyncio.Future[tuple[list[object], int]]] = deque()
        while total < count:
            while len(window) < in_flight and frontier < count:
                window.append(asyncio.ensure_future(raw_page(session, url, frontier)))
                frontier += 100
            items, count = await window.popleft()
            if not items:
                break
            total += len(items)
        for task in window:
            task.cancel()
    return total


async def walk_sdk(url: str, concurrency: int | None = None) -> int:
    """(b)/(c) The SDK: typed messages; ``None`` means its defaults."""
    total = 0
    async with ExternalMessagesClient(url, token=TOKEN) as client:
        pager = (
            client.list()
            if concurrency is None
            else client.list(concurrency=concurrency)
        )
        async with pager:
            async for _message in pager:
                total += 1
    return total


class Message(BaseModel):
    """What a user writes for PortSIP's message schema."""

    id: Optional[str] = None  # noqa: UP045 - written the way users write it
    config_id: Optional[str] = None  # noqa: UP045
    sender: Optional[str] = None  # noqa: UP045
    sender_name: Optional[str] = None  # noqa: UP045
    receiver: Optional[str] = None  # noqa: UP045
    receiver_name: Optional[str] = None  # noqa: UP045
    channel_name: Optional[str] = None  # noqa: UP045
    channel_number: Optional[str] = None  # noqa: UP045
    brand: Optional[str] = None  # noqa: UP045
    did: Optional[str] = None  # noqa: UP045
    msg_type: Optional[str] = None  # noqa: UP045
    direction: Optional[str] = None  # noqa: UP045
    content: Optional[str] = None  # noqa: UP045
    reason: Optional[str] = None  # noqa: UP045
    delivery: Optional[str] = None  # noqa: UP045
    provider_msg_id: Optional[str] = None  # noqa: UP045
    created_at: Optional[datetime] = None  # noqa: UP045

    @field_validator("created_at", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value


class MessagePage(BaseModel):
    count: int
    items: list[Message]


async def walk_httpx(url: str) -> int:
    """(d) httpx + pydantic, sequential, written the way a user would."""
    total = 0
    skip = 0
    async with httpx.AsyncClient(base_url=url, headers=HEADERS) as client:
        while True:
            response = await client.get(
                "/api/external_messages", params={"skip": skip, "top": 100}
            )
            response.raise_for_status()
            page = MessagePage.model_validate(response.json())
            total += len(page.items)
            skip += len(page.items)
            if not page.items or skip >= page.count:
                return total


async def get_many_sdk(url: str, ids: list[str], concurrency: int) -> int:
    """The SDK's ``get_many`` with ``concurrency`` requests in flight."""
    async with ExternalMessagesClient(url, token=TOKEN) as client:
        messages = await client.get_many(ids, concurrency=concurrency)
    return len(messages)


async def get_many_raw(url: str, ids: list[str], concurrency: int) -> int:
    """Raw aiohttp + orjson: ``concurrency`` workers GET one id at a time."""
    queue = iter(ids)
    found = 0
    async with aiohttp.ClientSession(headers=HEADERS) as session:

        async def worker() -> None:
            nonlocal found
            for message_id in queue:
                item = f"{url}/api/external_messages/{quote(message_id, safe='')}"
                async with session.get(URL(item, encoded=True)) as response:
                    response.raise_for_status()
                    orjson.loads(await response.read())
                found += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return found


async def first_ids(url: str, count: int) -> list[str]:
    """Read ``count`` ids from the start of the collection."""
    async with ExternalMessagesClient(url, token=TOKEN) as client:
        return [m.id async for m in client.list(limit=count) if m.id is not None]


def export_cli(url: str, fmt: str, path: str) -> None:
    """The CLI's ``list --format FMT -o PATH``, run in this process."""
    from external_messages_async.cli._app import cli

    args = ["list", "--url", url, "--token", TOKEN, "--format", fmt, "-o", path]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        cli.main(args, prog_name="external-messages")


def rows_written(fmt: str, path: str) -> int:
    """How many messages an export wrote (CSV rows may span lines)."""
    with open(path, newline="", encoding="utf-8") as written:
        if fmt == "csv":
            return sum(1 for _ in csv.reader(written)) - 1
        return sum(1 for _ in written)
