"""The command as a person runs it: real processes on a real pseudo-terminal.

Each test starts ``python -m external_messages_async`` with stdout and stderr
each either a pseudo-terminal (``pty``) or a file, against a fake PBX on a
thread of the test process, and compares the records byte for byte with a
run where neither is a terminal. Records must reach stdout or ``-o`` and
nowhere else, whichever of the two streams is a terminal.
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson
import pytest

from external_messages_async.testing import FakePortSIPServer, Faults

from ._shared import ROOT
from .conftest import TOKEN

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="pseudo-terminals are POSIX"
)

MESSAGES = 120
# A child in asyncio debug mode logs slow steps on stderr; rich reads these
# variables to decide on colour and width, which would make runs differ.
_DROP = {
    "PYTHONASYNCIODEBUG",
    "PYTHONDEVMODE",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "TERM",
}
CHILD_ENV = {
    **{name: value for name, value in os.environ.items() if name not in _DROP},
    "PORTSIP_TOKEN": TOKEN,
    "TERM": "xterm-256color",
}
DEADLINE = 60.0


@attrs.frozen
class Run:
    """What one child process left behind."""

    returncode: int
    terminal: bytes
    stdout: bytes
    stderr: bytes


def _read_until_closed(master: int, deadline: float) -> bytes:
    """Read everything the child writes to the terminal, until every writer closed it."""
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def open_terminal() -> tuple[int, int]:
    """A pseudo-terminal of 80 columns: its master and slave file descriptors."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return master, slave


def run_cli(
    args: list[str], tmp_path: Path, *, stdout_tty: bool, stderr_tty: bool
) -> Run:
    """Run the command with stdout and stderr each on a terminal or in a file."""
    master, slave = open_terminal()
    out_path = tmp_path / "stdout.bin"
    err_path = tmp_path / "stderr.bin"
    with out_path.open("wb") as out_file, err_path.open("wb") as err_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "external_messages_async", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave if stdout_tty else out_file,
            stderr=slave if stderr_tty else err_file,
            cwd=ROOT,
            env=CHILD_ENV,
        )
        os.close(slave)
        try:
            terminal = _read_until_closed(master, time.monotonic() + DEADLINE)
            returncode = child.wait(timeout=DEADLINE)
        finally:
            os.close(master)
            if child.poll() is None:
                child.kill()
                child.wait()
    return Run(returncode, terminal, out_path.read_bytes(), err_path.read_bytes())


@pytest.fixture(scope="module")
def pbx() -> Iterator[FakePortSIPServer]:
    """A fake PBX slow enough (10 ms a page) for the progress bar to draw."""
    server = FakePortSIPServer(
        messages=MESSAGES, seed=11, token=TOKEN, faults=Faults(latency=0.01)
    )
    with server.run_in_thread() as running:
        yield running


def _list_args(pbx: FakePortSIPServer, *extra: str) -> list[str]:
    return ["list", "--url", pbx.url, "--page-size", "10", *extra]


@pytest.fixture(scope="module")
def baseline(
    pbx: FakePortSIPServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """The records of runs where neither stdout nor stderr is a terminal."""
    where = tmp_path_factory.mktemp("baseline")
    out = where / "out.csv"
    to_stdout = run_cli(
        _list_args(pbx, "--format", "jsonl"), where, stdout_tty=False, stderr_tty=False
    )
    to_file = run_cli(
        _list_args(pbx, "--format", "csv", "-o", str(out)),
        where,
        stdout_tty=False,
        stderr_tty=False,
    )
    assert to_stdout.returncode == to_file.returncode == 0, to_stdout.stderr
    assert len(to_stdout.stdout.splitlines()) == MESSAGES
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == MESSAGES + 1
    return {"jsonl": to_stdout.stdout, "csv": out.read_bytes()}


COMBINATIONS = [
    pytest.param(True, True, id="stdout-tty-stderr-tty"),
    pytest.param(True, False, id="stdout-tty-stderr-file"),
    pytest.param(False, True, id="stdout-file-stderr-tty"),
    pytest.param(False, False, id="stdout-file-stderr-file"),
]


def _records_in(data: bytes) -> int:
    return data.count(b'{"id":')


@pytest.mark.parametrize(("stdout_tty", "stderr_tty"), COMBINATIONS)
def test_records_on_stdout_are_the_same_bytes_whatever_is_a_terminal(
    pbx: FakePortSIPServer,
    baseline: dict[str, bytes],
    tmp_path: Path,
    stdout_tty: bool,
    stderr_tty: bool,
) -> None:
    fmt = "jsonl"
    run = run_cli(
        _list_args(pbx, "--format", fmt),
        tmp_path,
        stdout_tty=stdout_tty,
        stderr_tty=stderr_tty,
    )

    assert run.returncode == 0, run.terminal + run.stderr
    if stdout_tty:
        # A terminal writes each line feed as CR LF (the ONLCR output mode).
        assert run.terminal == baseline[fmt].replace(b"\n", b"\r\n")
        assert run.stderr == b""
    else:
        assert run.stdout == baseline[fmt]
        said = run.terminal if stderr_tty else run.stderr
        assert f"{MESSAGES} messages written to stdout".encode() in said
        assert b"NzAw" not in said
        assert _records_in(said) == 0


@pytest.mark.parametrize(("stdout_tty", "stderr_tty"), COMBINATIONS)
def test_records_in_an_output_file_are_the_same_bytes_whatever_is_a_terminal(
    pbx: FakePortSIPServer,
    baseline: dict[str, bytes],
    tmp_path: Path,
    stdout_tty: bool,
    stderr_tty: bool,
) -> None:
    fmt = "csv"
    out = tmp_path / f"export.{fmt}"

    run = run_cli(
        _list_args(pbx, "--format", fmt, "-o", str(out)),
        tmp_path,
        stdout_tty=stdout_tty,
        stderr_tty=stderr_tty,
    )

    assert run.returncode == 0, run.terminal + run.stderr
    assert out.read_bytes() == baseline[fmt]
    assert run.stdout == b""
    said = run.terminal if stderr_tty else run.stderr
    assert f"{MESSAGES} messages written to {out}".encode() in said
    assert b"NzAw" not in run.terminal


def test_the_progress_bar_draws_on_a_terminal_stderr_and_leaves_stdout_alone(
    pbx: FakePortSIPServer, baseline: dict[str, bytes], tmp_path: Path
) -> None:
    """The case of the report: stderr a terminal, stdout redirected."""
    run = run_cli(
        _list_args(pbx, "--format", "jsonl"),
        tmp_path,
        stdout_tty=False,
        stderr_tty=True,
    )

    assert run.returncode == 0
    assert b"msg/s" in run.terminal
    assert run.stdout == baseline["jsonl"]


def test_a_table_on_a_terminal_streams_rows_as_pages_arrive(tmp_path: Path) -> None:
    """The second page is held back until the first page's rows are on screen."""
    first_page_seen = threading.Event()

    async def hold_later_pages(server: FakePortSIPServer, skip: int, top: int) -> None:
        if skip > 0:
            await asyncio.get_running_loop().run_in_executor(
                None, first_page_seen.wait, DEADLINE
            )

    server = FakePortSIPServer(
        messages=40, seed=12, token=TOKEN, on_list_page=hold_later_pages
    )
    master, slave = open_terminal()
    with server.run_in_thread():
        first_ids = [str(m["id"]) for m in server.messages[:10]]
        child = subprocess.Popen(
            [sys.executable, "-m", "external_messages_async", "list",
             "--url", server.url, "--page-size", "10"],
            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT,
            env=CHILD_ENV,
        )  # fmt: skip
        os.close(slave)
        try:
            shown = b""
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and not all(
                i.encode() in shown for i in first_ids
            ):
                ready, _, _ = select.select([master], [], [], 0.5)
                if ready:
                    shown += os.read(master, 65536)
            streamed = all(i.encode() in shown for i in first_ids)
            first_page_seen.set()
            shown += _read_until_closed(master, time.monotonic() + DEADLINE)
            returncode = child.wait(timeout=DEADLINE)
        finally:
            first_page_seen.set()
            os.close(master)
            if child.poll() is None:
                child.kill()
                child.wait()

    assert streamed
    assert returncode == 0
    text = shown.decode()
    assert text.startswith("id ")
    assert all(str(m["id"]) in text for m in server.messages)


def test_get_on_a_terminal_prints_every_field_and_the_full_content(
    pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    message = pbx.messages[0]

    run = run_cli(
        ["get", "--url", pbx.url, str(message["id"])],
        tmp_path,
        stdout_tty=True,
        stderr_tty=True,
    )

    assert run.returncode == 0
    text = run.terminal.decode()
    for name, value in message.items():
        assert name in text
        for line in str(value).splitlines():
            assert line in text


def test_jsonl_records_reparse_to_what_the_server_sent(
    pbx: FakePortSIPServer, baseline: dict[str, bytes]
) -> None:
    served = {str(m["id"]): m for m in pbx.messages}

    records = [orjson.loads(line) for line in baseline["jsonl"].splitlines()]

    for record in records:
        sent = served[record["id"]]
        assert {k: v for k, v in record.items() if k != "created_at"} == {
            k: sent.get(k) for k in record if k != "created_at"
        }
