"""Property tests: the models against the spec's schema, and the page walk against a model server."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from external_messages_async import ExternalMessage, MessagePager, Page
from external_messages_async._converter import (
    format_datetime,
    structure_message,
    structure_page,
    unstructure_message,
)
from external_messages_async.errors import ResponseDecodeError
from tests.conftest import SPEC

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))


def item_schema() -> dict[str, Any]:
    """The item schema of ``GET /external_messages/{id}``, ``allOf`` merged."""
    document = json.loads(SPEC.read_text())
    operation = document["paths"]["/external_messages/{id}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    properties = {}
    for name, prop in schema["properties"].items():
        merged = dict(prop)
        for part in merged.pop("allOf", []):
            merged.update(part)
        properties[name] = merged
    return properties


timezones = st.one_of(
    st.just(timezone.utc),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
# PortSIP sends whole seconds, milliseconds or microseconds; format_datetime
# writes each back the same way, so its output is the canonical text.
canonical_times = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9998, 12, 31),
    timezones=timezones,
).map(format_datetime)


def strategy_for(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    assert prop["type"] == "string", prop
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if prop.get("format") in ("date_time", "date-time"):
        return canonical_times
    return st.text()


def spec_items() -> st.SearchStrategy[dict[str, Any]]:
    properties = item_schema()
    return st.fixed_dictionaries(
        {}, optional={name: strategy_for(p) for name, p in properties.items()}
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def test_the_schema_strategy_covers_every_field_of_the_model() -> None:
    assert set(item_schema()) == set(ExternalMessage.__annotations__)


@given(spec_items())
@settings(max_examples=EXAMPLES, deadline=None)
def test_any_spec_item_round_trips_to_the_same_json(item: dict[str, Any]) -> None:
    message = structure_message(item)

    assert unstructure_message(message) == item


@given(spec_items(), st.sampled_from(sorted(item_schema())), json_values)
@settings(max_examples=EXAMPLES, deadline=None)
def test_any_json_value_in_any_field_structures_or_raises_decode_error(
    item: dict[str, Any], field: str, value: Any
) -> None:
    item[field] = value

    try:
        message: object = structure_message(item)
    except ResponseDecodeError as exc:
        message = exc

    if isinstance(message, ResponseDecodeError):
        assert field in message.path or field in str(message)
    else:
        assert isinstance(message, ExternalMessage)


@given(json_values)
@settings(max_examples=EXAMPLES, deadline=None)
def test_any_json_document_is_a_page_or_a_decode_error(data: Any) -> None:
    try:
        page = structure_page(data, skip=0)
    except ResponseDecodeError:
        return
    assert isinstance(page, Page)
    assert all(isinstance(m, ExternalMessage) for m in page.items)


# -- the page walk against a model server ------------------------------------


class ModelServer:
    """An in-memory collection whose pages may be short, which may grow, and
    which may serve concurrent requests in any order.

    Each request draws, from the test's plan: how many scheduler turns to
    wait before taking its snapshot (so a later offset may be served first),
    a cap on the page length (a short page), and how many new messages to
    insert at the front and append at the end just before it is served.
    """

    def __init__(self, size: int, plan: list[tuple[int, int, int, int]]) -> None:
        self.items = [f"m{i}" for i in range(size)]
        self.initial = list(self.items)
        self.plan = plan
        self.requests = 0
        self.created = 0

    def _new(self, n: int) -> list[str]:
        ids = [f"n{self.created + i}" for i in range(n)]
        self.created += n
        return ids

    async def fetch_page(self, skip: int, top: int) -> Page[ExternalMessage]:
        step = self.plan[self.requests] if self.requests < len(self.plan) else None
        self.requests += 1
        assert self.requests < 5000, "the walk does not end"
        cap = top
        if step is not None:
            delay, short, front, back = step
            for _ in range(delay):
                await asyncio.sleep(0)
            self.items[:0] = self._new(front)
            self.items.extend(self._new(back))
            cap = max(1, min(top, short))
        ids = self.items[skip : skip + cap]
        return Page(
            count=len(self.items),
            items=[ExternalMessage(id=i) for i in ids],
            skip=skip,
        )


plans = st.lists(
    st.tuples(
        st.integers(0, 6),  # scheduler turns before the snapshot
        st.integers(1, 100),  # page length cap
        st.integers(0, 5),  # inserted at the front
        st.integers(0, 5),  # appended at the end
    ),
    max_size=40,
)


@given(
    size=st.integers(0, 400),
    page_size=st.integers(1, 100),
    concurrency=st.integers(1, 6),
    plan=plans,
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_walk_ends_without_duplicates_and_yields_every_message_present_throughout(
    size: int, page_size: int, concurrency: int, plan: list[tuple[int, int, int, int]]
) -> None:
    server = ModelServer(size, plan)

    async def walk() -> tuple[list[str | None], MessagePager]:
        pager = MessagePager(
            server.fetch_page, page_size=page_size, concurrency=concurrency
        )
        async with pager:
            return [m.id async for m in pager], pager

    ids, pager = asyncio.run(walk())

    assert len(ids) == len(set(ids))
    assert set(server.initial) <= set(ids)
    assert pager.stats.count_decreased is False
