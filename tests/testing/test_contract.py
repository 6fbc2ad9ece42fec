"""The fake server against PortSIP's published OpenAPI document (tests/contract/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from external_messages_async.testing import (
    MESSAGE_FIELDS,
    FakePortSIPServer,
    generate_messages,
)
from tests.conftest import SPEC

AUTH = {"Authorization": "Bearer demo-token"}
schema = schemathesis.openapi.from_path(str(SPEC))


def item_properties(path: str) -> set[str]:
    document = json.loads(SPEC.read_text())
    response = document["paths"][path]["get"]["responses"]["200"]
    body = response["content"]["application/json"]["schema"]
    if "items" in body["properties"]:
        body = body["properties"]["items"]["items"]
    return set(body["properties"])


@pytest.fixture(scope="module")
def live_server() -> Iterator[FakePortSIPServer]:
    server = FakePortSIPServer(generate_messages(40, seed=1, sparse=False))
    with server.run_in_thread() as running:
        yield running


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_responses_conform_to_the_spec(
    case: Any, live_server: FakePortSIPServer
) -> None:
    # Made-up credentials and refresh tokens fit the schema yet must be refused.
    excluded = (
        [positive_data_acceptance] if case.operation.path.startswith("/auth") else []
    )

    case.call_and_validate(
        base_url=live_server.api_url, headers=AUTH, excluded_checks=excluded
    )


@pytest.mark.parametrize(
    "path",
    [
        "/external_messages",
        "/external_messages/{id}",
        "/user/external_messages",
        "/user/external_messages/{id}",
    ],
)
def test_spec_item_fields_are_exactly_the_served_fields(path: str) -> None:
    assert item_properties(path) == set(MESSAGE_FIELDS)


async def test_served_items_carry_every_spec_field_and_no_other() -> None:
    spec_fields = item_properties("/external_messages")

    async with (
        FakePortSIPServer(messages=300, seed=2) as server,
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(server.api_url + "/external_messages") as response,
    ):
        items = (await response.json())["items"]

    assert set().union(*items) == spec_fields
    assert all(set(item) <= spec_fields for item in items)
