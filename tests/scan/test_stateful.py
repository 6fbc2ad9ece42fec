"""Model-based tests: random inserts, deletes and delivery changes between pages.

Each machine runs a real fake PBX and a client on its own event loop; every
rule is one step of the world (a mutation at the PBX) or of the reader (one
page). The guarantees checked:

- ``scan()``: every message that exists for the whole scan is yielded exactly
  once, none twice, in ascending ``created_at``, whatever the interleaving,
  with many messages per second and pages smaller than a second's messages.
- ``changes()``: runs that crash at any page and runs that complete, with
  mutations between pages, yield every message at least once; after a last
  complete run the consumer's copy (upserted by id) equals the PBX's for
  every message inside the lookback. The PBX's clock is 10 minutes off the
  client's, either way.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from external_messages_async import Checkpoint, ExternalMessagesClient
from external_messages_async._changes import ChangePages
from external_messages_async._keywalk import ScanPages
from external_messages_async.testing import FakePortSIPServer

from .conftest import FAST_RETRY, wire

SETTINGS = settings(max_examples=25, stateful_step_count=30, deadline=None)
DELIVERIES = ("SENT", "DELIVERED", "ERR", "RECV")


class _World(RuleBasedStateMachine):
    """A fake PBX on a private loop, and the mutations a live PBX sees."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.ids = (f"id{n:04d}" for n in itertools.count())
        self.server: FakePortSIPServer | None = None
        self.client: ExternalMessagesClient | None = None

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def start(self, seconds: list[int], base: float) -> None:
        messages = [wire(next(self.ids), base + s) for s in seconds]
        self.server = FakePortSIPServer(messages)
        self.run(self.server.start())
        self.client = ExternalMessagesClient(
            self.server.url, token=self.server.token, retry=FAST_RETRY
        )

    @property
    def messages(self) -> list[dict[str, Any]]:
        assert self.server is not None
        return self.server.messages

    def insert_at(self, seconds: float, position: int) -> str:
        assert self.server is not None
        message_id = next(self.ids)
        at = position % (len(self.messages) + 1)
        self.server.insert_messages([wire(message_id, seconds)], at=at)
        return message_id

    def delete_one(self, index: int) -> str | None:
        assert self.server is not None
        if not self.messages:
            return None
        message_id: str = self.messages[index % len(self.messages)]["id"]
        self.server.delete_messages([message_id])
        return message_id

    def change_delivery(self, index: int, delivery: str) -> None:
        assert self.server is not None
        if self.messages:
            message_id = self.messages[index % len(self.messages)]["id"]
            reason = "blocked" if delivery == "ERR" else ""
            self.server.update_message(message_id, delivery=delivery, reason=reason)

    def teardown(self) -> None:
        async def close() -> None:
            if self.client is not None:
                await self.client.aclose()
            if self.server is not None:
                await self.server.close()

        try:
            self.run(close())
        finally:
            self.loop.close()


class ScanMachine(_World):
    """scan(): exactly once for every message present throughout."""

    @initialize(
        seconds=st.lists(st.integers(0, 4), max_size=25),
        page_size=st.integers(1, 4),
        concurrency=st.sampled_from([1, 1, 3]),
    )
    def begin(self, seconds: list[int], page_size: int, concurrency: int) -> None:
        self.start(seconds, base=0)
        assert self.client is not None
        self.pages: ScanPages = self.client.scan(
            page_size=page_size, concurrency=concurrency
        ).pages()
        self.throughout: set[str] | None = None
        self.yielded: list[str] = []
        self.created: dict[str, datetime] = {}
        self.done = False

    @rule(seconds=st.integers(-1, 5), position=st.integers(0, 50))
    def insert(self, seconds: int, position: int) -> None:
        self.insert_at(seconds, position)

    @rule(index=st.integers(0, 50))
    def delete(self, index: int) -> None:
        deleted = self.delete_one(index)
        if self.throughout is not None:
            self.throughout.discard(deleted)  # type: ignore[arg-type]  # None is never in it

    @rule(index=st.integers(0, 50), delivery=st.sampled_from(DELIVERIES))
    def deliver(self, index: int, delivery: str) -> None:
        self.change_delivery(index, delivery)

    @precondition(lambda self: not self.done)
    @rule()
    def read_page(self) -> None:
        if self.throughout is None:
            self.throughout = {m["id"] for m in self.messages}
        try:
            page = self.run(self.pages.__anext__())
        except StopAsyncIteration:
            self.done = True
            return
        for message in page:
            assert message.id is not None
            assert message.created_at is not None
            self.yielded.append(message.id)
            self.created[message.id] = message.created_at

    @invariant()
    def never_twice_and_in_order(self) -> None:
        if hasattr(self, "yielded"):
            assert len(self.yielded) == len(set(self.yielded))
            times = [self.created[i] for i in self.yielded]
            assert times == sorted(times)

    def teardown(self) -> None:
        try:
            if hasattr(self, "pages"):
                if self.throughout is None:
                    self.throughout = {m["id"] for m in self.messages}
                while not self.done:
                    self.read_page()
                assert self.throughout <= set(self.yielded)
                self.never_twice_and_in_order()
        finally:
            super().teardown()


class ChangesMachine(_World):
    """changes(): at least once across crashed and complete runs."""

    @initialize(
        seconds=st.lists(st.integers(0, 3), max_size=15),
        lookback=st.sampled_from([timedelta(0), timedelta(days=3)]),
        skew=st.sampled_from([timedelta(minutes=10), timedelta(minutes=-10)]),
    )
    def begin(self, seconds: list[int], lookback: timedelta, skew: timedelta) -> None:
        # The PBX's clock: 10 minutes off the client's; data seconds count from it.
        self.base = (datetime.now(timezone.utc) + skew).replace(microsecond=0)
        epoch = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
        self.offset = (self.base - epoch).total_seconds()
        self.start(seconds, base=self.offset)
        self.clock = max(seconds, default=0)
        self.lookback = lookback
        self.checkpoint: Checkpoint | None = None
        self.run_pages: ChangePages | None = None
        self.copy: dict[str, dict[str, Any]] = {}

    def _feed_pages(self) -> ChangePages:
        if self.run_pages is None:
            assert self.client is not None
            self.feed = self.client.changes(
                self.checkpoint, lookback=self.lookback, page_size=2
            )
            self.run_pages = self.feed.pages()
        return self.run_pages

    @rule(ahead=st.integers(0, 2), position=st.integers(0, 50))
    def insert(self, ahead: int, position: int) -> None:
        """A new message, stamped by the PBX's clock (which never goes back)."""
        self.clock += ahead
        self.insert_at(self.offset + self.clock, position)

    @rule(index=st.integers(0, 50))
    def delete(self, index: int) -> None:
        deleted = self.delete_one(index)
        self.copy.pop(deleted, None)  # type: ignore[arg-type]  # pop(None) is harmless

    @rule(index=st.integers(0, 50), delivery=st.sampled_from(DELIVERIES))
    def deliver(self, index: int, delivery: str) -> None:
        self.change_delivery(index, delivery)

    @rule()
    def read_page(self) -> None:
        pages = self._feed_pages()
        try:
            page = self.run(pages.__anext__())
        except StopAsyncIteration:
            self.checkpoint = self.feed.checkpoint
            assert self.checkpoint is not None
            self.run_pages = None
            return
        for message in page:
            assert message.id is not None
            self.copy[message.id] = {
                "delivery": str(message.delivery),
                "reason": message.reason,
            }

    @precondition(lambda self: self.run_pages is not None)
    @rule()
    def crash(self) -> None:
        """The consumer dies mid-run: its checkpoint is never saved."""
        assert self.feed.checkpoint is None
        self.run(self.feed.aclose())
        self.run_pages = None

    def teardown(self) -> None:
        try:
            if hasattr(self, "copy"):
                while self.run_pages is not None:
                    self.read_page()
                self.read_page()
                while self.run_pages is not None:
                    self.read_page()
                present = {m["id"]: m for m in self.messages}
                assert set(present) <= set(self.copy)
                if self.lookback:
                    for message_id, message in present.items():
                        assert self.copy[message_id] == {
                            "delivery": message["delivery"],
                            "reason": message["reason"],
                        }
        finally:
            super().teardown()


TestScanExactlyOnce = ScanMachine.TestCase
TestScanExactlyOnce.settings = SETTINGS
TestChangesAtLeastOnce = ChangesMachine.TestCase
TestChangesAtLeastOnce.settings = SETTINGS
