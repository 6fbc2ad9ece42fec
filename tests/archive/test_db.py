"""The archive file: layout, refusals that change nothing, the lock, transactions."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from external_messages_async._archive_db import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    ArchiveDB,
    describe_sqlite_error,
    schema_verdict,
    sqlite_error_name,
)
from external_messages_async._archive_rows import MESSAGE_COLUMNS, message_row
from external_messages_async.errors import ArchiveError, ExternalMessagesError

from .conftest import foreign_database, make_messages, table

STARTED = "2026-01-02T03:04:05Z"


def _digest(path: Path) -> dict[str, str]:
    """The bytes of a database file and its sidecars, hashed."""
    return {
        item.name: hashlib.sha256(item.read_bytes()).hexdigest()
        for item in sorted(path.parent.iterdir())
        if item.name.startswith(path.name) and not item.name.endswith(".lock")
    }


def _archive_with_rows(path: Path, count: int = 300) -> list[tuple[str | None, ...]]:
    rows = [message_row(message) for message in make_messages(count)]
    db = ArchiveDB.open(str(path))
    try:
        db.start_run(STARTED)
        for start in range(0, count, 100):
            db.write_page(rows[start : start + 100])
        db.finish_run(finished_at=STARTED, outcome="ok", checkpoint='{"c": 1}')
    finally:
        db.close()
    return rows


def _started(path: Path, count: int) -> tuple[ArchiveDB, list[tuple[str | None, ...]]]:
    """An open archive with a run started, and the rows of ``count`` messages."""
    db = ArchiveDB.open(str(path))
    db.start_run(STARTED)
    return db, [message_row(message) for message in make_messages(count)]


def _refused(path: Path) -> ArchiveError:
    """Open a file that must be refused; check that not a byte of it changed."""
    before = _digest(path)
    with pytest.raises(ArchiveError) as info:
        ArchiveDB.open(str(path))
    assert _digest(path) == before
    return info.value


# --- the pure verdict ---------------------------------------------------------


def test_verdict_creates_in_an_empty_database() -> None:
    verdict = schema_verdict("a.db", application_id=0, tables=[], version=None)

    assert verdict == "create"


def test_verdict_opens_an_archive_of_this_version() -> None:
    verdict = schema_verdict(
        "a.db", application_id=APPLICATION_ID, tables=["x"], version=SCHEMA_VERSION
    )

    assert verdict == "open"


def test_verdict_refuses_another_applications_tables() -> None:
    with pytest.raises(ArchiveError, match="not an external-messages archive") as info:
        schema_verdict("a.db", application_id=0, tables=["users"], version=None)

    assert info.value.reason == "foreign"
    assert "users" in str(info.value)


def test_verdict_refuses_our_id_without_a_schema_version() -> None:
    with pytest.raises(ArchiveError) as info:
        schema_verdict("a.db", application_id=APPLICATION_ID, tables=[], version=None)

    assert info.value.reason == "foreign"
    assert "tables: none" in str(info.value)


def test_verdict_refuses_a_newer_schema() -> None:
    with pytest.raises(ArchiveError, match="newer") as info:
        schema_verdict(
            "a.db",
            application_id=APPLICATION_ID,
            tables=["schema_version"],
            version=SCHEMA_VERSION + 1,
        )

    assert info.value.reason == "newer"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("database or disk is full", "SQLITE_FULL"),
        ("file is not a database", "SQLITE_NOTADB"),
        ("database disk image is malformed", "SQLITE_CORRUPT"),
        ("unable to open database file", "SQLITE_CANTOPEN"),
        ("no such table: x", "SQLITE_ERROR"),
    ],
)
def test_error_name_is_read_from_the_text_when_sqlite_gives_none(
    text: str, name: str
) -> None:
    assert sqlite_error_name(sqlite3.OperationalError(text)) == name


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("database or disk is full", "disk full"),
        ("file is not a database", "corrupt"),
        ("database disk image is malformed", "corrupt"),
        ("unable to open database file", "unopenable"),
        ("attempt to write a readonly database", "database"),
    ],
)
def test_sqlite_errors_become_one_line_archive_errors(text: str, reason: str) -> None:
    error = describe_sqlite_error("a.db", sqlite3.OperationalError(text), "kept")

    assert error.reason == reason
    assert error.path == "a.db"
    assert "\n" not in str(error)
    assert str(error).endswith("; kept")
    assert isinstance(error, ExternalMessagesError)


# --- laying out and opening ---------------------------------------------------


def test_a_new_file_gets_the_three_tables_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"

    ArchiveDB.open(str(path)).close()

    with sqlite3.connect(path) as db:
        tables = {
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        columns = [row[1] for row in db.execute("PRAGMA table_info(external_messages)")]
        indexes = [row[1] for row in db.execute("PRAGMA index_list(external_messages)")]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("SELECT version FROM schema_version").fetchall()
    db.close()
    assert tables == {"external_messages", "sync_state", "schema_version"}
    assert columns == [*MESSAGE_COLUMNS, "first_seen_at", "updated_at"]
    assert "external_messages_created_at" in indexes
    assert mode == "wal"
    assert app_id == APPLICATION_ID
    assert version == [(SCHEMA_VERSION,)]


def test_an_empty_file_is_laid_out(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    path.touch()

    ArchiveDB.open(str(path)).close()

    assert table(str(path), "schema_version")[0][0] == SCHEMA_VERSION


def test_an_archive_opens_again_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    rows = _archive_with_rows(path)

    db = ArchiveDB.open(str(path))
    checkpoint = db.checkpoint()
    db.close()

    assert checkpoint == '{"c": 1}'
    assert len(table(str(path), "external_messages")) == len(rows)


def test_a_foreign_database_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    foreign_database(path, "users")

    error = _refused(path)

    assert error.reason == "foreign"


def test_our_id_on_a_file_without_our_tables_is_refused_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "archive.sqlite"
    foreign_database(path, "notes")
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.close()

    error = _refused(path)

    assert error.reason == "foreign"
    assert "tables: notes" in str(error)


def test_a_newer_archive_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    _archive_with_rows(path, 10)
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,)
        )
    db.close()

    error = _refused(path)

    assert error.reason == "newer"


def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    path.write_bytes(b"id,content\n1,hello\n" * 300)

    error = _refused(path)

    assert error.reason == "corrupt"
    assert "corrupted or not a SQLite" in str(error)


def test_an_archive_with_damaged_pages_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    _archive_with_rows(path, 600)
    page_size = 4096
    data = bytearray(path.read_bytes())
    # Scribble over the middle pages' b-tree headers and cells.
    for page in range(3, len(data) // page_size - 1, 3):
        data[page * page_size : page * page_size + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))

    error = _refused(path)

    assert error.reason == "corrupt"
    assert "\n" not in str(error)


def _reported_damage(data: bytes, scratch: Path) -> bytes:
    """The file with one interior page's right-most child pointer scribbled.

    Some damage makes SQLite raise on the first read, some is only found by
    ``PRAGMA quick_check``; this finds a page of the second kind, reading
    first what opening an archive reads. Only interior b-tree pages are
    damaged (bytes 8 to 11 of their header point to a child page, which
    quick_check finds invalid every time): on a leaf page the same bytes are
    cell offsets, and an offset out of the page made SQLite raise on one run
    and report it on the next.
    """
    interior = (0x02, 0x05)  # index and table interior pages
    for start in range(4096, len(data), 4096):
        if data[start] not in interior:
            continue
        damaged = bytearray(data)
        damaged[start + 8 : start + 12] = b"\xff" * 4
        scratch.write_bytes(bytes(damaged))
        probe = sqlite3.connect(scratch)
        try:
            probe.execute("PRAGMA application_id").fetchone()
            probe.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
            report = [row[0] for row in probe.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError:
            continue
        finally:
            probe.close()
        if report != ["ok"]:
            return bytes(damaged)
    raise AssertionError("no page's damage is reported by quick_check")


def test_damage_that_sqlite_reports_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    _archive_with_rows(path, 600)
    path.write_bytes(_reported_damage(path.read_bytes(), tmp_path / "probe.sqlite"))

    error = _refused(path)

    assert error.reason == "corrupt"
    assert "is corrupted (" in str(error)
    assert "\n" not in str(error)


def test_a_missing_directory_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot open") as info:
        ArchiveDB.open(str(tmp_path / "missing" / "archive.sqlite"))

    assert info.value.reason == "unopenable"


def test_a_directory_in_place_of_the_file_cannot_be_opened(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    path.mkdir()

    with pytest.raises(ArchiveError) as info:
        ArchiveDB.open(str(path))

    assert info.value.reason == "unopenable"
    assert path.is_dir()


# --- the lock, across real processes ------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys
    from external_messages_async._archive_db import ArchiveDB

    db = ArchiveDB.open(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_process_is_refused_while_the_first_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "archive.sqlite"
    _archive_with_rows(path, 10)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        before = _digest(path)

        with pytest.raises(ArchiveError, match="another process") as info:
            ArchiveDB.open(str(path))

        assert info.value.reason == "locked"
        assert _digest(path) == before
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdin is not None
        assert holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()


def test_the_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline() == "holding\n"

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    holder.stdin.close()
    holder.stdout.close()
    db = ArchiveDB.open(str(path))
    db.close()

    assert holder.returncode == -signal.SIGKILL


# --- transactions -------------------------------------------------------------


def test_a_page_stays_uncommitted_until_the_next_page(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    db, rows = _started(path, 200)
    try:
        db.write_page(rows[:100])
        after_first = len(table(str(path), "external_messages"))
        db.write_page(rows[100:])
        after_second = len(table(str(path), "external_messages"))
        db.finish_run(finished_at=STARTED, outcome="ok", checkpoint="{}")
        after_finish = len(table(str(path), "external_messages"))
    finally:
        db.close()

    assert (after_first, after_second, after_finish) == (0, 100, 200)


def test_the_checkpoint_commits_with_the_last_page(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    db, rows = _started(path, 50)
    db.write_page(rows)

    db.close()  # the process ends before finish_run

    assert table(str(path), "external_messages") == []
    db = ArchiveDB.open(str(path))
    checkpoint = db.checkpoint()
    db.close()
    assert checkpoint is None


def test_a_run_left_running_is_marked_interrupted_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    db = ArchiveDB.open(str(path))
    db.start_run(STARTED)
    db.close()

    db = ArchiveDB.open(str(path))
    db.start_run(STARTED)
    db.finish_run(finished_at=STARTED, outcome="ok", checkpoint=None)
    db.close()

    outcomes = [row[7] for row in table(str(path), "sync_state")]
    assert sorted(outcomes) == ["interrupted", "ok"]


def test_a_changed_message_is_updated_with_updated_at(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    message = make_messages(1)[0]
    first = message_row(message)
    changed = (*first[:14], "DELIVERED-LATER", *first[15:])
    db = ArchiveDB.open(str(path))
    db.start_run("2026-01-01T00:00:00Z")
    db.write_page([first])
    db.finish_run(finished_at=STARTED, outcome="ok", checkpoint=None)
    db.close()

    db = ArchiveDB.open(str(path))
    db.start_run("2026-01-02T00:00:00Z")
    plan = db.write_page([changed])
    db.finish_run(finished_at=STARTED, outcome="ok", checkpoint=None)
    db.close()

    [stored] = table(str(path), "external_messages")
    assert plan.updates == (changed,)
    assert stored[:17] == changed
    assert stored[17:] == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")


def test_a_full_disk_rolls_back_the_failed_page(tmp_path: Path) -> None:
    """Simulated with PRAGMA max_page_count: SQLite answers SQLITE_FULL as on a full disk."""
    path = tmp_path / "archive.sqlite"
    db, rows = _started(path, 1000)
    db.write_page(rows[:100])
    db.write_page(rows[100:200])
    pages = db._db.execute("PRAGMA page_count").fetchone()[0]
    db._db.execute(f"PRAGMA max_page_count = {pages + 2}")

    def write_the_rest() -> None:
        for start in range(200, 1000, 100):
            db.write_page(rows[start : start + 100])

    with pytest.raises(ArchiveError, match="disk is full") as info:
        write_the_rest()
    db.record_failure(finished_at=STARTED, outcome="failed: disk full")
    db.close()

    stored = table(str(path), "external_messages")
    assert info.value.reason == "disk full"
    assert "was rolled back" in str(info.value)
    assert len(stored) % 100 == 0
    assert 200 <= len(stored) < 1000
    assert sorted(row[:17] for row in stored) == sorted(rows[: len(stored)])
    assert [row[7] for row in table(str(path), "sync_state")] == ["failed: disk full"]


def test_a_run_that_cannot_start_leaves_no_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    db = ArchiveDB.open(str(path))
    db._db.execute("PRAGMA query_only = ON")

    with pytest.raises(ArchiveError) as info:
        db.start_run(STARTED)
    in_transaction = db._db.in_transaction
    db.close()

    assert info.value.reason == "database"
    assert not in_transaction
    assert table(str(path), "sync_state") == []


def test_any_sqlite_failure_mid_page_rolls_the_page_back(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite"
    db, rows = _started(path, 20)
    db.write_page(rows[:10])
    short_row = rows[10][:5]  # too few values: sqlite3 refuses the INSERT

    with pytest.raises(ArchiveError) as info:
        db.write_page([*rows[10:19], short_row])
    in_transaction = db._db.in_transaction
    db.close()

    assert info.value.reason == "database"
    assert "page 2 was rolled back" in str(info.value)
    assert not in_transaction
    assert len(table(str(path), "external_messages")) == 10


def test_recording_a_failure_gives_up_quietly_when_sqlite_refuses(
    tmp_path: Path,
) -> None:
    path = tmp_path / "archive.sqlite"
    db = ArchiveDB.open(str(path))
    db.start_run(STARTED)
    db._db.execute("PRAGMA query_only = ON")

    db.record_failure(finished_at=STARTED, outcome="failed: disk full")
    db.close()

    assert [row[7] for row in table(str(path), "sync_state")] == ["running"]
