"""``external-messages sync``: the pure parts, in-process runs, and real processes."""

from __future__ import annotations

import hashlib
import io
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from external_messages_async import ExternalMessagesClient, SyncSummary
from external_messages_async.cli._app import cli
from external_messages_async.cli._sync import (
    parse_duration,
    run_sync_command,
    summary_line,
)
from external_messages_async.testing import FakePortSIPServer
from tests.cli import conftest as cli_fixtures

from .conftest import CHILD_ENV, ROOT, Pbx, foreign_database, runs, table

#: The CLI tests' fixture: a CliRunner with no PORTSIP_* variables.
runner = cli_fixtures.runner

SUMMARY = re.compile(
    r"^(?P<new>[\d,]+) new, (?P<updated>[\d,]+) updated, (?P<unchanged>[\d,]+) "
    r"unchanged in (?P<pages>[\d,]+) pages, \d+\.\d s; next run from "
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
)


# --- pure ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1.5d", timedelta(hours=36)),
        (" 3D ", timedelta(days=3)),
        ("0", timedelta(0)),
    ],
)
def test_parse_duration_reads_numbers_with_units(
    text: str, expected: timedelta
) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "3", "d", "3x", "3d junk", "-1d", "1d-2h"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_summary_line_says_what_the_run_did() -> None:
    summary = SyncSummary(
        new=1234,
        updated=5,
        unchanged=60,
        pages=13,
        seconds=2.345,
        next_from=datetime(2024, 6, 27, 18, 0, tzinfo=timezone.utc),
    )

    assert summary_line(summary) == (
        "1,234 new, 5 updated, 60 unchanged in 13 pages, 2.3 s; "
        "next run from 2024-06-27T18:00:00Z"
    )


def test_summary_line_of_an_empty_archive_starts_from_the_beginning() -> None:
    summary = SyncSummary(0, 0, 0, 0, 0.01, None)

    assert summary_line(summary).endswith("next run from the beginning")


# --- in process ---------------------------------------------------------------


@pytest.fixture
def pbx_thread() -> Iterator[FakePortSIPServer]:
    with FakePortSIPServer(messages=300, seed=6).run_in_thread() as server:
        yield server


def _args(server: FakePortSIPServer, db: Path, *more: str) -> list[str]:
    return [
        "sync",
        "--url",
        server.url,
        "--token",
        server.token or "",
        "--db",
        str(db),
        *more,
    ]


def test_sync_prints_one_summary_line(
    runner: CliRunner, pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    result = runner.invoke(cli, _args(pbx_thread, tmp_path / "a.sqlite"))

    assert result.exit_code == 0, result.output
    match = SUMMARY.match(result.stdout.strip())
    assert match is not None, result.stdout
    assert (match["new"], match["pages"]) == ("300", "3")
    assert result.stdout.count("\n") == 1


def test_since_and_lookback_reach_the_sync(
    runner: CliRunner, pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    db = tmp_path / "a.sqlite"

    first = runner.invoke(cli, _args(pbx_thread, db, "--since", "2024-06-01"))
    second = runner.invoke(cli, _args(pbx_thread, db, "--lookback", "0"))

    assert first.exit_code == 0, first.output
    in_june = sum(1 for m in pbx_thread.messages if m["created_at"] >= "2024-06-01")
    assert SUMMARY.match(first.stdout.strip())["new"] == str(in_june)  # type: ignore[index]  # the summary line matched (checked by exit code)
    assert second.stdout.startswith("0 new, 0 updated, 0 unchanged in 0 pages")


def test_a_bad_lookback_is_a_usage_error(
    runner: CliRunner, pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli, _args(pbx_thread, tmp_path / "a.sqlite", "--lookback", "3 days")
    )

    assert result.exit_code == 2
    assert "is not a duration" in result.output
    assert pbx_thread.requests == []


def test_db_is_required(runner: CliRunner, pbx_thread: FakePortSIPServer) -> None:
    result = runner.invoke(cli, ["sync", "--url", pbx_thread.url, "--token", "t"])

    assert result.exit_code == 2
    assert "--db" in result.output


def test_a_foreign_database_is_one_error_line(
    runner: CliRunner, pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    db = tmp_path / "app.db"
    foreign_database(db, "invoices")

    result = runner.invoke(cli, _args(pbx_thread, db))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {db} is not an external-messages archive (another application's "
        "database, with tables: invoices); nothing was changed"
    ]


def test_an_interrupted_sync_says_what_it_kept(
    runner: CliRunner,
    pbx_thread: FakePortSIPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> SyncSummary:
        raise KeyboardInterrupt

    monkeypatch.setattr("external_messages_async._archive.sync_to_sqlite", interrupted)
    db = tmp_path / "a.sqlite"

    result = runner.invoke(cli, _args(pbx_thread, db))

    assert result.exit_code == 130
    assert result.stderr.splitlines() == [
        f"interrupted: {db} keeps the pages written; the next run picks up"
    ]


async def test_the_progress_display_counts_pages_on_a_terminal(tmp_path: Path) -> None:
    buffer = io.StringIO()
    err = Console(file=buffer, force_terminal=True, width=120)
    async with (
        FakePortSIPServer(messages=250) as server,
        ExternalMessagesClient(server.url, token=server.token) as client,
    ):
        summary = await run_sync_command(
            client, str(tmp_path / "a.sqlite"), since=None,
            lookback=timedelta(days=3), err=err, progress=True,
        )  # fmt: skip

    assert summary.new == 250
    assert "3 pages, 250 new" in buffer.getvalue()


# --- real processes -----------------------------------------------------------


def _sync(
    server: FakePortSIPServer, db: Path, *more: str, **popen: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "external_messages_async", "sync",
            "--url", server.url, "--db", str(db), *more,
        ],
        text=True, cwd=ROOT,
        **{"env": {**CHILD_ENV, "PORTSIP_TOKEN": server.token or ""}, **popen},  # type: ignore[arg-type]  # Popen overloads cannot see through the dict
    )  # fmt: skip


def _run(server: FakePortSIPServer, db: Path, *more: str) -> tuple[int, str, str]:
    child = _sync(server, db, *more, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_real_process_syncs_then_finds_nothing_new(
    pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    db = tmp_path / "archive.sqlite"

    first = _run(pbx_thread, db)
    pbx_thread.update_message(
        max(pbx_thread.messages, key=lambda m: m["created_at"])["id"], delivery="ERR"
    )
    second = _run(pbx_thread, db)

    assert first[0] == 0, first[2]
    assert first[2] == ""  # stderr is not a terminal: no progress display
    assert SUMMARY.match(first[1].strip())["new"] == "300"  # type: ignore[index]  # the summary line matched (checked by exit code)
    assert second[0] == 0, second[2]
    counts = SUMMARY.match(second[1].strip())
    assert counts is not None
    assert (counts["new"], counts["updated"]) == ("0", "1")
    assert [row[4] for row in runs(str(db))] == ["ok", "ok"]


def test_a_real_process_is_refused_while_another_syncs(
    pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    db = tmp_path / "archive.sqlite"
    assert _run(pbx_thread, db)[0] == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        before = _digest(db)
        pbx_thread.requests.clear()

        code, out, err = _run(pbx_thread, db)
    finally:
        holder.kill()
        holder.communicate()

    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"error: {db} is being synced by another process (it holds {db}.lock); "
        "nothing was changed"
    ]
    assert _digest(db) == before
    assert pbx_thread.requests == []


_HOLDER = textwrap.dedent(
    """
    import sys
    from external_messages_async._archive_db import ArchiveDB

    db = ArchiveDB.open(sys.argv[1])
    print("holding", flush=True)
    sys.stdin.read()
    """
)


def test_a_real_process_refuses_a_corrupted_file_unchanged(
    pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    db = tmp_path / "archive.sqlite"
    db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 5000)
    before = _digest(db)

    code, out, err = _run(pbx_thread, db)

    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {db} is corrupted or not a SQLite database")
    assert _digest(db) == before


def test_progress_shows_when_stderr_is_a_terminal(
    pbx_thread: FakePortSIPServer, tmp_path: Path
) -> None:
    primary, secondary = pty.openpty()
    child = _sync(
        pbx_thread, tmp_path / "a.sqlite",
        stdout=subprocess.PIPE, stderr=secondary,
        env={**CHILD_ENV, "PORTSIP_TOKEN": pbx_thread.token or "", "TERM": "xterm"},
    )  # fmt: skip
    os.close(secondary)
    shown = b""
    try:
        while chunk := _read(primary):
            shown += chunk
    finally:
        os.close(primary)
    out, _ = child.communicate(timeout=60)

    assert child.returncode == 0
    assert b"syncing" in shown
    assert SUMMARY.match(out.strip())


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the child closed its end
        return b""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_exits_130_keeping_the_pages_read(tmp_path: Path) -> None:
    db = tmp_path / "archive.sqlite"
    with FakePortSIPServer(messages=1000, seed=3).run_in_thread() as server:
        pbx = Pbx(server)
        pbx.arm(4)
        child = _sync(server, db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert pbx.reached.wait(60)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=60)
        finally:
            pbx.release.set()
            if child.poll() is None:
                child.kill()
                child.communicate()

    assert child.returncode == 130, err
    assert err.splitlines() == [
        f"interrupted: {db} keeps the pages written; the next run picks up"
    ]
    assert out == ""
    assert runs(str(db)) == [(300, 0, 0, 3, "cancelled")]
    assert len(table(str(db), "external_messages")) == 300
