"""ArchiveWriter: pages from any async source into the file, on a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from external_messages_async import ExternalMessage
from external_messages_async._archive import ArchiveWriter
from external_messages_async._archive_rows import RunCounts, message_row
from external_messages_async.errors import APIConnectionError, ArchiveError

from .conftest import (
    FIXED_NOW,
    current_checkpoint,
    fixed_now,
    make_messages,
    pages_of,
    runs,
    table,
    with_delivery,
)


async def _write(
    path: Path, messages: list[ExternalMessage], checkpoint: str | None = "{}"
) -> RunCounts:
    async with await ArchiveWriter.open(str(path)) as archive:
        return await archive.write(
            pages_of(messages), final_checkpoint=lambda: checkpoint, now=fixed_now
        )


async def test_first_run_stores_every_message_as_new(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    messages = make_messages(250)

    counts = await _write(path, messages, '{"high": 1}')

    assert counts == RunCounts(new=250, pages=3)
    assert len(table(str(path), "external_messages")) == 250
    assert current_checkpoint(str(path)) == '{"high": 1}'
    assert runs(str(path)) == [(250, 0, 0, 3, "ok")]


async def test_second_run_counts_changes_and_keeps_first_seen(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    messages = make_messages(120)
    await _write(path, messages)
    to_change = [m.id for m in messages if m.delivery != "DELIVERED"][:7]
    later = [
        with_delivery(m, "DELIVERED") if m.id in to_change else m for m in messages
    ]
    later += make_messages(5, prefix="new-")

    counts = await _write(path, later)

    assert counts == RunCounts(new=5, updated=7, unchanged=113, pages=2)
    stored = {row[0]: row for row in table(str(path), "external_messages")}
    changed = stored[to_change[0]]
    assert changed[14] == "DELIVERED"
    assert changed[17:] == ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z")
    untouched = next(m.id for m in messages if m.id not in to_change)
    assert stored[untouched][18] is None


async def test_none_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    await _write(path, make_messages(3), '{"first": true}')

    await _write(path, [], None)

    assert current_checkpoint(str(path)) == '{"first": true}'
    assert runs(str(path))[-1] == (0, 0, 0, 0, "ok")


async def test_the_writer_reads_the_stored_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    await _write(path, make_messages(3), '{"at": 3}')

    async with await ArchiveWriter.open(str(path)) as archive:
        stored = await archive.checkpoint()

    assert stored == '{"at": 3}'


async def test_on_page_sees_running_totals(tmp_path: Path) -> None:
    seen: list[RunCounts] = []

    async with await ArchiveWriter.open(str(tmp_path / "a.sqlite")) as archive:
        await archive.write(
            pages_of(make_messages(250)),
            final_checkpoint=lambda: None,
            on_page=seen.append,
        )

    assert [(c.new, c.pages) for c in seen] == [(100, 1), (200, 2), (250, 3)]


async def test_a_failing_feed_keeps_pages_read_and_the_old_checkpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.sqlite"
    await _write(path, make_messages(10), '{"old": 1}')
    messages = make_messages(300, prefix="b-")

    async def failing() -> AsyncIterator[list[ExternalMessage]]:
        yield messages[:100]
        yield messages[100:200]
        raise APIConnectionError("connection reset")

    with pytest.raises(APIConnectionError):
        async with await ArchiveWriter.open(str(path)) as archive:
            await archive.write(failing(), final_checkpoint=lambda: '{"new": 1}')

    assert len(table(str(path), "external_messages")) == 210
    assert current_checkpoint(str(path)) == '{"old": 1}'
    assert runs(str(path))[-1] == (
        200,
        0,
        0,
        2,
        "failed: APIConnectionError: connection reset",
    )


async def test_a_feed_failing_before_its_first_page_is_recorded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.sqlite"

    async def refused() -> AsyncIterator[list[ExternalMessage]]:
        raise APIConnectionError("connection refused")
        yield []  # pragma: no cover - makes this an async generator

    with pytest.raises(APIConnectionError):
        async with await ArchiveWriter.open(str(path)) as archive:
            await archive.write(refused(), final_checkpoint=lambda: "{}")

    assert runs(str(path)) == [
        (0, 0, 0, 0, "failed: APIConnectionError: connection refused")
    ]
    assert current_checkpoint(str(path)) is None


async def test_cancellation_records_the_run_and_releases_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.sqlite"
    second_page_asked = asyncio.Event()
    never = asyncio.Event()

    async def stalls() -> AsyncIterator[list[ExternalMessage]]:
        yield make_messages(100)
        second_page_asked.set()
        await never.wait()
        yield []  # pragma: no cover - never reached: the task is cancelled first

    async def run() -> None:
        async with await ArchiveWriter.open(str(path)) as archive:
            await archive.write(stalls(), final_checkpoint=lambda: "{}")

    task = asyncio.create_task(run())
    await second_page_asked.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert runs(str(path)) == [(100, 0, 0, 1, "cancelled")]
    assert current_checkpoint(str(path)) is None
    async with await ArchiveWriter.open(str(path)) as archive:  # the lock is free
        assert await archive.checkpoint() is None


async def test_a_database_failure_is_recorded_and_raised(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"

    async def then_readonly(
        archive: ArchiveWriter,
    ) -> AsyncIterator[list[ExternalMessage]]:
        yield make_messages(100)
        await archive._call(archive._db._db.execute, "PRAGMA max_page_count = 1")
        yield make_messages(100, prefix="c-")

    with pytest.raises(ArchiveError) as info:
        async with await ArchiveWriter.open(str(path)) as archive:
            await archive.write(then_readonly(archive), final_checkpoint=lambda: "{}")

    assert info.value.reason == "disk full"
    assert len(table(str(path), "external_messages")) == 100
    assert runs(str(path)) == [(100, 0, 0, 1, "failed: disk full")]


async def test_sqlite_runs_on_one_worker_thread_not_the_loop(tmp_path: Path) -> None:
    threads: set[str] = set()
    path = tmp_path / "a.sqlite"

    async with await ArchiveWriter.open(str(path)) as archive:
        original = archive._db.write_page

        def spy(rows: list[tuple[str | None, ...]]) -> object:
            threads.add(threading.current_thread().name)
            return original(rows)

        archive._db.write_page = spy  # type: ignore[method-assign]  # a spy in place of the real write
        await archive.write(pages_of(make_messages(300)), final_checkpoint=lambda: None)

    assert len(threads) == 1
    assert threads != {threading.current_thread().name}


async def test_open_refusal_leaves_no_thread_behind(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"not a database at all, just text" * 200)
    before = {thread.ident for thread in threading.enumerate()}

    with pytest.raises(ArchiveError):
        await ArchiveWriter.open(str(path))

    await asyncio.sleep(0)
    for thread in threading.enumerate():
        if thread.ident not in before:
            thread.join(timeout=5)
    assert {t.ident for t in threading.enumerate()} <= before


def test_fixed_clock_is_the_one_the_tests_use() -> None:
    assert fixed_now() == FIXED_NOW


async def test_the_next_page_is_queued_while_one_is_being_written(
    tmp_path: Path,
) -> None:
    # The worker thread must never wait for the loop: page 2 is handed over
    # before page 1 is written, and page 3 read meanwhile.
    path = tmp_path / "a.sqlite"
    third_page_read = threading.Event()
    released_by_feed: list[bool] = []

    async def feed() -> AsyncIterator[list[ExternalMessage]]:
        yield make_messages(10, prefix="a-")
        yield make_messages(10, prefix="b-")
        third_page_read.set()
        yield make_messages(10, prefix="c-")

    async with await ArchiveWriter.open(str(path)) as archive:
        write_page = archive._db.write_page
        calls = 0

        def held_first(rows: list[tuple[str | None, ...]]) -> object:
            nonlocal calls
            calls += 1
            if calls == 1:
                released_by_feed.append(third_page_read.wait(timeout=10))
            return write_page(rows)

        archive._db.write_page = held_first  # type: ignore[method-assign]  # a probe around the real method
        counts = await archive.write(feed(), final_checkpoint=lambda: "{}")

    assert released_by_feed == [True]
    assert counts == RunCounts(new=30, pages=3)


async def test_pages_queued_behind_a_failed_page_are_not_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.sqlite"
    await _write(path, make_messages(10))

    async with await ArchiveWriter.open(str(path)) as archive:
        db = archive._db
        await archive._call(db.start_run, "2024-07-01T00:00:00Z")
        await archive._call(db._db.execute, "PRAGMA max_page_count = 1")
        big = [message_row(m) for m in make_messages(100, prefix="big-")]
        with pytest.raises(ArchiveError) as first:
            await archive._call(db.write_page, big)
        # The disk has room again, but the run already failed.
        await archive._call(db._db.execute, "PRAGMA max_page_count = 1000000")
        small = [message_row(m) for m in make_messages(5, prefix="late-")]
        with pytest.raises(ArchiveError) as second:
            await archive._call(db.write_page, small)

    assert second.value is first.value
    assert first.value.reason == "disk full"
    assert len(table(str(path), "external_messages")) == 10
