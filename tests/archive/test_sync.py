"""sync_to_sqlite against a real loopback PBX: runs, re-runs, changes, refusals."""

from __future__ import annotations

import math
import pickle
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from external_messages_async import (
    ArchiveError,
    ExternalMessagesClient,
    SyncSummary,
    sync_to_sqlite,
)
from external_messages_async._archive import next_run_from
from external_messages_async._converter import parse_datetime
from external_messages_async.testing import FakePortSIPServer

from .conftest import (
    FIXED_NOW,
    current_checkpoint,
    files_in,
    fixed_now,
    foreign_database,
    list_requests,
    newest,
    runs,
    table,
)

LOOKBACK = timedelta(days=3)


async def test_a_first_sync_archives_every_message(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"

    summary = await sync_to_sqlite(client, path, now=fixed_now)

    assert (summary.new, summary.updated, summary.unchanged) == (1000, 0, 0)
    assert summary.pages == math.ceil(1000 / 100)
    assert summary.next_from == newest(pbx) - LOOKBACK
    assert summary.seconds > 0
    stored = {row[0]: row for row in table(str(path), "external_messages")}
    assert stored.keys() == {m["id"] for m in pbx.messages}
    assert runs(str(path)) == [(1000, 0, 0, summary.pages, "ok")]


async def test_created_at_is_stored_as_utc_text_and_enums_as_text(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"
    sample = pbx.messages[0]

    await sync_to_sqlite(client, path, now=fixed_now)

    row = _stored(path, sample["id"])
    assert parse_datetime(row["created_at"]) == parse_datetime(sample["created_at"])
    assert row["created_at"].endswith("Z")
    assert (row["msg_type"], row["delivery"]) == (
        sample["msg_type"],
        sample["delivery"],
    )
    assert (row["first_seen_at"], row["updated_at"]) == ("2026-01-02T03:04:05Z", None)


async def test_a_second_run_with_nothing_new_rereads_only_the_lookback_window(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"
    await sync_to_sqlite(client, path)
    window_start = newest(pbx) - LOOKBACK
    in_window = sum(
        1 for m in pbx.messages if parse_datetime(m["created_at"]) >= window_start
    )
    pbx.requests.clear()

    summary = await sync_to_sqlite(client, path)

    assert (summary.new, summary.updated, summary.unchanged) == (0, 0, in_window)
    assert list_requests(pbx) <= math.ceil(in_window / 100) + 1


async def test_a_delivery_change_is_updated_and_counted(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"
    await sync_to_sqlite(client, path, now=fixed_now)
    recent = max(pbx.messages, key=lambda m: parse_datetime(m["created_at"]))
    recent["delivery"], recent["reason"] = "ERR", "Invalid destination number"
    pbx.messages_changed()
    later = FIXED_NOW + timedelta(days=1)

    summary = await sync_to_sqlite(client, path, now=lambda: later)

    assert summary.updated == 1
    row = _stored(path, recent["id"])
    assert (
        row["delivery"],
        row["reason"],
        row["first_seen_at"],
        row["updated_at"],
    ) == (
        "ERR",
        "Invalid destination number",
        "2026-01-02T03:04:05Z",
        "2026-01-03T03:04:05Z",
    )


async def test_new_messages_are_added_and_the_checkpoint_moves(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"
    first = await sync_to_sqlite(client, path)
    checkpoint_before = current_checkpoint(str(path))
    top = newest(pbx)
    pbx.insert_messages(
        {
            **pbx.messages[0],
            "id": f"new-{i}",
            "created_at": _text(top + timedelta(minutes=i)),
        }
        for i in range(1, 6)
    )

    second = await sync_to_sqlite(client, path)

    assert second.new == 5
    assert second.next_from == top + timedelta(minutes=5) - LOOKBACK
    assert second.next_from > first.next_from  # type: ignore[operator]  # both runs set next_from
    assert current_checkpoint(str(path)) != checkpoint_before
    assert len(table(str(path), "external_messages")) == 1005


async def test_messages_without_an_id_are_skipped_with_a_warning(
    pbx: FakePortSIPServer,
    client: ExternalMessagesClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for message in pbx.messages[:3]:
        message["id"] = None
    pbx.messages_changed()

    summary = await sync_to_sqlite(client, tmp_path / "a.sqlite")

    assert summary.new == 997
    assert "3 messages had no id and were not archived" in caplog.text


async def test_since_limits_the_first_run(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    since = newest(pbx) - timedelta(days=10)
    expected = {
        m["id"] for m in pbx.messages if parse_datetime(m["created_at"]) >= since
    }

    summary = await sync_to_sqlite(client, tmp_path / "a.sqlite", since=since)

    stored = {row[0] for row in table(str(tmp_path / "a.sqlite"), "external_messages")}
    assert stored == expected
    assert summary.new == len(expected)


async def test_an_empty_pbx_gives_an_empty_archive_and_no_next_time(
    tmp_path: Path,
) -> None:
    async with (
        FakePortSIPServer(messages=0) as server,
        ExternalMessagesClient(server.url, token=server.token) as client,
    ):
        summary = await sync_to_sqlite(client, tmp_path / "a.sqlite")

    assert (summary.new, summary.pages) == (0, 0)
    assert summary.next_from is None


async def test_on_page_sees_the_running_summary(
    client: ExternalMessagesClient, tmp_path: Path
) -> None:
    seen: list[SyncSummary] = []

    await sync_to_sqlite(client, tmp_path / "a.sqlite", on_page=seen.append)

    assert [s.new for s in seen] == list(range(100, 1001, 100))
    assert all(s.next_from is None for s in seen)


async def test_a_foreign_database_is_refused_before_any_request(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "app.db"
    foreign_database(path, "orders")

    with pytest.raises(ArchiveError) as info:
        await sync_to_sqlite(client, path)

    assert info.value.reason == "foreign"
    assert pbx.requests == []


async def test_an_unreadable_stored_checkpoint_is_refused(
    pbx: FakePortSIPServer, client: ExternalMessagesClient, tmp_path: Path
) -> None:
    path = tmp_path / "archive.sqlite"
    await sync_to_sqlite(client, path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE sync_state SET checkpoint = '{\"version\": 99}'")
    db.close()
    pbx.requests.clear()

    with pytest.raises(ArchiveError, match="checkpoint") as info:
        await sync_to_sqlite(client, path)

    assert info.value.reason == "corrupt"
    assert pbx.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"since": datetime(2024, 1, 1)}, ValueError),
        ({"since": "2024-01-01"}, TypeError),
        ({"lookback": timedelta(days=-1)}, ValueError),
        ({"lookback": 3}, TypeError),
    ],
)
async def test_bad_arguments_fail_before_any_request_or_file(
    pbx: FakePortSIPServer,
    client: ExternalMessagesClient,
    tmp_path: Path,
    kwargs: dict[str, object],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await sync_to_sqlite(client, tmp_path / "a.sqlite", **kwargs)  # type: ignore[arg-type]  # wrong arguments on purpose

    assert pbx.requests == []
    assert files_in(tmp_path) == []


class _BytesPath:
    def __fspath__(self) -> bytes:
        return b"archive.sqlite"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (":memory:", ValueError),
        ("", ValueError),
        (b"a.db", TypeError),
        (_BytesPath(), TypeError),
        (3, TypeError),
    ],
)
async def test_a_path_must_name_a_file(
    client: ExternalMessagesClient, path: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await sync_to_sqlite(client, path)  # type: ignore[arg-type]  # a wrong path type on purpose


def test_next_run_from_is_the_high_water_minus_the_lookback() -> None:
    high = datetime(2024, 5, 4, tzinfo=timezone.utc)

    assert next_run_from(high, LOOKBACK) == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert next_run_from(None, LOOKBACK) is None


def test_next_run_from_stops_at_the_first_instant() -> None:
    low = datetime(1, 1, 2, tzinfo=timezone.utc)

    assert next_run_from(low, timedelta(days=30)) == datetime.min.replace(
        tzinfo=timezone.utc
    )


def _text(value: datetime) -> str:
    from external_messages_async._converter import format_datetime

    return format_datetime(value)


def test_archive_errors_survive_pickling() -> None:
    error = ArchiveError("a.db is locked", reason="locked", path="a.db")

    copy = pickle.loads(pickle.dumps(error))

    assert (str(copy), copy.reason, copy.path) == ("a.db is locked", "locked", "a.db")


def _stored(path: Path, message_id: str) -> dict[str, Any]:
    """The archived row of one message, by column name."""
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        row = db.execute(
            "SELECT * FROM external_messages WHERE id = ?", (message_id,)
        ).fetchone()
    db.close()
    return dict(row)
