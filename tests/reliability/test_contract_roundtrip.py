"""Every documented field crosses the wire and the client unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from external_messages_async._converter import unstructure_message
from external_messages_async.testing import (
    MESSAGE_FIELDS,
    FakePortSIPServer,
    generate_messages,
)

from .conftest import TOKEN, client_for


@pytest.fixture
async def full() -> AsyncIterator[FakePortSIPServer]:
    """Messages with every field set (``sparse=False``)."""
    async with FakePortSIPServer(
        generate_messages(60, seed=9, sparse=False), token=TOKEN
    ) as server:
        yield server


def served_json(server: FakePortSIPServer) -> dict[str, dict[str, Any]]:
    """Each item exactly as the server encodes it, by id."""
    return {m["id"]: orjson.loads(orjson.dumps(m)) for m in server.messages}


async def test_every_field_of_every_item_round_trips_through_get(
    full: FakePortSIPServer,
) -> None:
    served = served_json(full)

    async with client_for(full.url) as client:
        fetched = await client.get_many(list(served), concurrency=8)

    assert all(set(item) == set(MESSAGE_FIELDS) for item in served.values())
    assert {m.id: unstructure_message(m) for m in fetched} == served


async def test_every_field_of_every_item_round_trips_through_list(
    full: FakePortSIPServer,
) -> None:
    served = served_json(full)

    async with client_for(full.url) as client:
        listed = [unstructure_message(m) async for m in client.list(page_size=25)]

    assert {item["id"]: item for item in listed} == served
