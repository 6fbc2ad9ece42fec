"""The async cores of the commands, run in the test's own loop, and real processes."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from external_messages_async import ExternalMessagesClient
from external_messages_async.cli._format import CSV_FIELDS
from external_messages_async.cli._render import Sink, print_demo
from external_messages_async.cli._run import (
    DEMO_TOKEN,
    ListOptions,
    run_demo,
    run_get,
    run_list,
    run_serve,
)
from external_messages_async.testing import FakePortSIPServer, Faults, generate_messages
from tests.conftest import wait_until

from ._shared import CHILD_ENV, ROOT
from .conftest import TOKEN


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=120, highlight=False, soft_wrap=True), buffer


async def _cancel_when_written(
    task: asyncio.Task[int], sink: Sink, at_least: int
) -> None:
    await wait_until(lambda: sink.written >= at_least)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_cancelling_an_export_keeps_whole_records_in_a_partial_file(
    fmt: str, tmp_path: Path
) -> None:
    out = tmp_path / f"messages.{fmt}"
    out.write_text("yesterday\n")
    sink = Sink(fmt, str(out))  # type: ignore[arg-type]  # fmt is a plain str from parametrize, not the Literal
    err, said = _console()
    async with FakePortSIPServer(messages=2000, seed=3, token=TOKEN) as server:
        server.faults = Faults(latency=0.005)
        async with ExternalMessagesClient(server.url, token=TOKEN) as client:
            task = asyncio.create_task(
                run_list(client, ListOptions(page_size=20), sink, err=err)
            )

            await _cancel_when_written(task, sink, at_least=100)

    assert sink.closed
    assert 100 <= sink.written < 2000
    assert out.read_text() == "yesterday\n"
    partial = tmp_path / f"messages.{fmt}.partial"
    assert sink.partial == str(partial)
    text = partial.read_text(encoding="utf-8")
    if fmt == "jsonl":
        assert text.endswith("\n")
        assert len([orjson.loads(line) for line in text.splitlines()]) == sink.written
    else:
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == list(CSV_FIELDS)
        assert all(len(row) == 17 for row in rows)
        assert len(rows) - 1 == sink.written
    assert said.getvalue() == (
        f"interrupted: {sink.written:,} messages kept in {partial}; "
        f"--skip {sink.written} resumes after them\n"
    )
    assert sorted(os.listdir(tmp_path)) == [out.name, partial.name]


async def test_cancelling_before_the_first_page_creates_no_file(tmp_path: Path) -> None:
    out = tmp_path / "never.jsonl"
    sink = Sink("jsonl", str(out))
    err, said = _console()
    async with FakePortSIPServer(messages=10, token=TOKEN) as server:
        server.faults = Faults(latency=5.0)
        async with ExternalMessagesClient(server.url, token=TOKEN) as client:
            task = asyncio.create_task(run_list(client, ListOptions(), sink, err=err))
            await wait_until(lambda: server.in_flight == 1)

            await _cancel_when_written(task, sink, at_least=0)

    assert os.listdir(tmp_path) == []
    assert said.getvalue() == f"interrupted: nothing written; {out} is as it was\n"


async def test_a_completed_export_replaces_the_file_with_its_mode_kept(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("yesterday\n")
    out.chmod(0o640)
    sink = Sink("jsonl", str(out))
    err, _ = _console()
    async with (
        FakePortSIPServer(messages=30, seed=2, token=TOKEN) as server,
        ExternalMessagesClient(server.url, token=TOKEN) as client,
    ):
        written = await run_list(client, ListOptions(page_size=7), sink, err=err)

    assert written == 30
    assert len(out.read_text().splitlines()) == 30
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    assert os.listdir(tmp_path) == ["keep.jsonl"]


async def test_progress_bar_counts_up_to_the_total_from_count() -> None:
    stream = io.StringIO()
    err = Console(file=stream, force_terminal=True, width=120)
    out = io.StringIO()
    sink = Sink("jsonl", stdout=out)
    async with (
        FakePortSIPServer(messages=230, seed=5, token=TOKEN) as server,
        ExternalMessagesClient(server.url, token=TOKEN) as client,
    ):
        written = await run_list(
            client,
            ListOptions(page_size=50, limit=200),
            sink,
            err=err,
            progress=True,
        )

    assert written == 200
    assert len(out.getvalue().splitlines()) == 200
    shown = stream.getvalue()
    assert "200/200" in shown
    assert "msg/s" in shown


async def test_run_get_writes_the_messages_in_order() -> None:
    out = io.StringIO()
    sink = Sink("jsonl", stdout=out)
    async with FakePortSIPServer(messages=20, seed=5, token=TOKEN) as server:
        ids = [str(server.messages[3]["id"]), str(server.messages[1]["id"])]
        async with ExternalMessagesClient(server.url, token=TOKEN) as client:
            written = await run_get(client, ids, sink)

    assert written == 2
    assert [orjson.loads(line)["id"] for line in out.getvalue().splitlines()] == ids


async def test_cancelling_get_closes_the_sink_without_output() -> None:
    out = io.StringIO()
    sink = Sink("table", stdout=out)
    async with FakePortSIPServer(messages=5, token=TOKEN) as server:
        server.faults = Faults(latency=5.0)
        async with ExternalMessagesClient(server.url, token=TOKEN) as client:
            task = asyncio.create_task(run_get(client, ["a", "b"], sink))
            await wait_until(lambda: server.in_flight >= 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    assert sink.closed
    assert out.getvalue() == ""


async def test_run_demo_pulls_every_message_and_counts_them() -> None:
    expected = generate_messages(400, seed=9)

    result = await run_demo(messages=400, seed=9)

    assert result.count == 400
    assert result.tally.total == 400
    assert result.pages == 4
    assert result.rate > 0
    assert dict(result.tally.by_type) == Counter(m["msg_type"] for m in expected)
    assert dict(result.tally.by_delivery) == Counter(m["delivery"] for m in expected)
    assert result.tally.failures == sum(m["delivery"] == "ERR" for m in expected)


async def test_print_demo_shows_tables_count_and_throughput() -> None:
    result = await run_demo(messages=150, seed=2)
    console, buffer = _console()

    print_demo(result, console)

    text = buffer.getvalue()
    assert "Messages by type, direction and delivery" in text
    assert f"Failures ({result.tally.failures} in the ERR state) by reason" in text
    assert "Latest 10 messages" in text
    assert "Pulled 150 of 150 messages in 2 pages" in text
    assert "messages/s" in text


async def test_run_serve_prints_url_and_credentials_and_serves_them() -> None:
    console, buffer = _console()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_serve(
            port=0, messages=30, seed=4, console=console, started=ready.set_result
        )
    )
    url = await asyncio.wait_for(ready, 10)

    async with ExternalMessagesClient(url, token=DEMO_TOKEN) as by_token:
        count = await by_token.count()
    async with ExternalMessagesClient(
        url, username="admin", password="admin-password"
    ) as by_login:
        first = await by_login.get_page(top=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert count == 30
    assert first.count == 30
    text = buffer.getvalue()
    assert url in text
    assert f"token:    {DEMO_TOKEN}" in text
    assert "username admin, password admin-password" in text


async def test_run_serve_does_not_print_a_token_it_was_given() -> None:
    console, buffer = _console()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_serve(
            port=0, messages=1, token=TOKEN, console=console, started=ready.set_result
        )
    )
    await asyncio.wait_for(ready, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert TOKEN not in buffer.getvalue()
    assert "the value given with --token" in buffer.getvalue()


# --- real processes ------------------------------------------------------------------


def _python(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**CHILD_ENV, "COLUMNS": "100"},
        check=False,
        **kwargs,  # type: ignore[call-overload]  # object-typed kwargs match none of subprocess.run's overloads
    )


def test_python_m_demo_prints_the_summary() -> None:
    done = _python("-m", "external_messages_async", "demo")

    assert done.returncode == 0, done.stderr
    assert "Messages by type, direction and delivery" in done.stdout
    assert "Latest 10 messages" in done.stdout
    assert "Pulled 3,000 of 3,000 messages in 30 pages" in done.stdout
    assert done.stderr == ""


def test_without_the_cli_extra_one_line_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['click'] = None; "
        "from external_messages_async.cli._app import main; main()"
    )

    done = _python("-c", code)

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "external-messages needs the 'cli' extra (click is missing): "
        "pip install 'external-messages-async[cli]'"
    )


def test_the_library_imports_without_click_or_rich() -> None:
    code = (
        "import sys; sys.modules['click'] = None; sys.modules['rich'] = None; "
        "import external_messages_async as m; print(m.build_filter(msg_type='SMS'))"
    )

    done = _python("-c", code)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "msg_type eq 'SMS'"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_on_a_real_export_exits_130_and_keeps_a_partial_file(
    tmp_path: Path,
) -> None:
    out = tmp_path / "export.jsonl"
    out.write_text("yesterday\n")
    server = FakePortSIPServer(
        messages=3000, seed=8, token=TOKEN, faults=Faults(latency=0.02)
    )
    with server.run_in_thread():
        child = subprocess.Popen(
            [
                sys.executable, "-m", "external_messages_async", "list",
                "--url", server.url, "--page-size", "10", "--output", str(out),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**CHILD_ENV, "PORTSIP_TOKEN": TOKEN},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(server.requests) < 5:
                time.sleep(0.02)
            child.send_signal(signal.SIGINT)
            stdout, stderr = child.communicate(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()

    assert child.returncode == 130, stderr
    assert out.read_text() == "yesterday\n"
    partial = tmp_path / "export.jsonl.partial"
    lines = partial.read_text(encoding="utf-8").splitlines()
    ids = [orjson.loads(line)["id"] for line in lines]
    assert 10 <= len(ids) < 3000
    assert len(set(ids)) == len(ids)
    assert stderr.splitlines() == [
        f"interrupted: {len(lines):,} messages kept in {partial}; "
        f"--skip {len(lines)} resumes after them"
    ]
    assert stdout == ""
    assert TOKEN not in stderr


async def test_run_serve_serves_until_cancelled_without_a_started_callback() -> None:
    console, buffer = _console()
    task = asyncio.create_task(run_serve(port=0, messages=1, console=console))
    await wait_until(lambda: "Press Ctrl-C" in buffer.getvalue())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert "http://127.0.0.1:" in buffer.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_serve_in_a_real_process_answers_and_stops_on_ctrl_c() -> None:
    import asyncio as aio

    child = subprocess.Popen(
        [sys.executable, "-m", "external_messages_async", "serve", "--port", "0", "--messages", "12"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=CHILD_ENV,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        banner = [child.stdout.readline()]
        while "Ctrl-C" not in banner[-1] and banner[-1]:
            banner.append(child.stdout.readline())
        url = banner[0].rsplit(" at ", 1)[1].strip()

        async def count() -> int:
            async with ExternalMessagesClient(url, token=DEMO_TOKEN) as client:
                return await client.count()

        served = aio.run(count())
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()

    assert served == 12
    assert child.returncode == 0
    assert "  token:    demo-token\n" in banner
    assert stderr.strip() == "server stopped"
