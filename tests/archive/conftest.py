"""Helpers for the archive tests: messages, pages, and what a database file holds."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from external_messages_async import (
    DeliveryStatus,
    ExternalMessage,
    ExternalMessagesClient,
)
from external_messages_async._converter import parse_datetime, structure_message
from external_messages_async.testing import FakePortSIPServer, generate_messages

#: The repository, the working directory of child processes.
ROOT = Path(__file__).resolve().parents[2]
#: The environment of child processes: no asyncio debug mode (it logs slow
#: steps on stderr, which the tests read) and no PORTSIP_* settings.
CHILD_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")
    and not name.startswith("PORTSIP_")
}

#: The fixed clock the tests give sync runs, so that runs compare exactly.
FIXED_NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def fixed_now() -> datetime:
    return FIXED_NOW


def make_messages(
    count: int, seed: int = 3, *, prefix: str = ""
) -> list[ExternalMessage]:
    """Generated messages; a ``prefix`` gives ids no other prefix shares."""
    messages = [structure_message(item) for item in generate_messages(count, seed)]
    if prefix:
        messages = [attrs.evolve(m, id=f"{prefix}{m.id}") for m in messages]
    return messages


async def pages_of(
    messages: Sequence[ExternalMessage], size: int = 100
) -> AsyncIterator[list[ExternalMessage]]:
    for start in range(0, len(messages), size):
        yield list(messages[start : start + size])


def with_delivery(message: ExternalMessage, delivery: str) -> ExternalMessage:
    return attrs.evolve(message, delivery=DeliveryStatus(delivery))


def table(path: str, name: str) -> list[tuple[Any, ...]]:
    """Every row of a table, sorted, read through a fresh connection."""
    with sqlite3.connect(path) as db:
        return sorted(db.execute(f"SELECT * FROM {name}").fetchall(), key=repr)


def current_checkpoint(path: str) -> str | None:
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT checkpoint FROM sync_state WHERE checkpoint IS NOT NULL "
            "ORDER BY run DESC LIMIT 1"
        ).fetchone()
    return None if row is None else str(row[0])


def runs(path: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT new, updated, unchanged, pages, outcome FROM sync_state ORDER BY run"
        ).fetchall()


@pytest.fixture
async def pbx() -> AsyncIterator[FakePortSIPServer]:
    """A fake PBX with 1,000 generated messages (seed 1) on the test's loop."""
    async with FakePortSIPServer(messages=1000, seed=1) as server:
        yield server


@pytest.fixture
async def client(pbx: FakePortSIPServer) -> AsyncIterator[ExternalMessagesClient]:
    async with ExternalMessagesClient(pbx.url, token=pbx.token) as client:
        yield client


def newest(server: FakePortSIPServer) -> datetime:
    return max(parse_datetime(m["created_at"]) for m in server.messages)


def list_requests(server: FakePortSIPServer) -> int:
    return sum(1 for r in server.requests if r.path.endswith("/external_messages"))


def files_in(folder: Path) -> list[str]:
    return sorted(item.name for item in folder.iterdir())


class Pbx:
    """The fake PBX on its own thread, able to hold the k-th list request."""

    def __init__(self, server: FakePortSIPServer) -> None:
        self.server = server
        self.hold_at: int | None = None
        self.seen = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        server.on_list_page = self._on_list_page

    async def _on_list_page(
        self, server: FakePortSIPServer, skip: int, top: int
    ) -> None:
        self.seen += 1
        if self.seen == self.hold_at:
            # This hold's own event: a later arm() makes new ones, so a
            # release set before the worker thread starts waiting still counts.
            release = self.release
            self.reached.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)

    def arm(self, hold_at: int | None) -> None:
        self.hold_at, self.seen = hold_at, 0
        self.reached = threading.Event()
        self.release = threading.Event()


def foreign_database(path: Path, table_name: str) -> None:
    """Make another application's SQLite database, with one table and one row."""
    with sqlite3.connect(path) as other:
        other.execute(f"CREATE TABLE {table_name} (id INTEGER)")
        other.execute(f"INSERT INTO {table_name} VALUES (1)")
    other.close()
