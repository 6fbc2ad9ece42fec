"""How the command fails: a killed PBX, timeouts and retries, full disks, closed pipes.

Every failure is one line on stderr naming what the user can act on (the
flag, the host, the file), and an export that fails keeps its whole records
in ``FILE.partial`` while ``FILE`` stays as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from external_messages_async.cli._app import cli
from external_messages_async.cli._errors import (
    EXIT_API_ERROR,
    EXIT_USAGE,
    describe_error,
    flag_wording,
)
from external_messages_async.errors import (
    APIConnectionError,
    APITimeoutError,
    NotFoundError,
)
from external_messages_async.testing import FakePortSIPServer, ScriptedResponse

from ._shared import CHILD_ENV as _ENV
from ._shared import ROOT, one_error_line, run_list
from .conftest import PASSWORD, TOKEN

CHILD_ENV = {**_ENV, "PORTSIP_TOKEN": TOKEN}

DEADLINE = 60.0


# --- a PBX killed part-way through an export ---------------------------------------

# A fake PBX in its own process that serves every page before skip 50 and holds
# the rest until it is killed; it prints its URL, then "held" at the first
# held page.
_SERVER = """
import asyncio, sys
from external_messages_async.testing import FakePortSIPServer

async def hold(server, skip, top):
    if skip >= 50:
        print("held", flush=True)
        await asyncio.Event().wait()

async def main():
    server = FakePortSIPServer(messages=300, seed=4, token=sys.argv[1], on_list_page=hold)
    await server.start()
    print(server.url, flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def _temp_lines(directory: Path, name: str) -> int:
    """Lines in the export's hidden temporary file so far."""
    found = list(directory.glob(f".{name}.*.tmp"))
    return len(found[0].read_bytes().splitlines()) if found else 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_pbx_killed_mid_export_leaves_the_file_and_keeps_a_partial(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keep.jsonl"
    out.write_text("yesterday\n")
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, TOKEN],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=CHILD_ENV,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        export = subprocess.Popen(
            [
                sys.executable, "-m", "external_messages_async", "list",
                "--url", url, "--page-size", "10", "--max-retries", "0",
                "-o", str(out),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env=CHILD_ENV,
        )  # fmt: skip
        try:
            assert server.stdout.readline().strip() == "held"
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline and _temp_lines(tmp_path, out.name) < 50:
                time.sleep(0.02)
            server.kill()
            stdout, stderr = export.communicate(timeout=DEADLINE)
        finally:
            if export.poll() is None:
                export.kill()
                export.communicate()
    finally:
        server.kill()
        server.communicate()

    assert export.returncode == EXIT_API_ERROR
    assert stdout == ""
    [line] = stderr.splitlines()
    assert line.startswith(f"error: cannot reach {url}")
    assert line.endswith(
        f"(50 messages kept in {out}.partial; --skip 50 resumes after them)"
    )
    assert out.read_text() == "yesterday\n"
    kept = (tmp_path / "keep.jsonl.partial").read_text(encoding="utf-8")
    assert kept.endswith("\n")
    assert len([orjson.loads(record) for record in kept.splitlines()]) == 50
    assert sorted(os.listdir(tmp_path)) == ["keep.jsonl", "keep.jsonl.partial"]


# --- attempts, timeouts and retries ----------------------------------------------------


def test_timeout_help_says_it_is_per_attempt(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["list", "--help"])

    help_text = " ".join(result.stdout.split())
    assert "Seconds one attempt may take; each retry gets as long again" in help_text
    assert "--max-retries" in help_text


def test_a_timeout_says_how_many_attempts_over_how_long_and_per_attempt(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(hang=True), ScriptedResponse(hang=True)])

    # Long enough for the second attempt to reach the server on a loaded
    # machine (at 0.2 s it once timed out while still connecting).
    result = run_list(runner, pbx, "--timeout", "1", "--max-retries", "1")

    assert result.exit_code == EXIT_API_ERROR
    line = one_error_line(result)
    assert re.fullmatch(
        rf"error: no answer from 127\.0\.0\.1:{pbx.port} after 2 attempts "
        r"over \d+\.\d s \(1 s each\)",
        line,
    ), line
    assert len(pbx.requests) == 2


def test_max_retries_sets_how_often_an_unreachable_host_is_tried(
    runner: CliRunner, closed_port: int
) -> None:
    url = f"http://127.0.0.1:{closed_port}"

    result = runner.invoke(
        cli, ["list", "--url", url, "--token", TOKEN, "--max-retries", "2"]
    )

    assert result.exit_code == EXIT_API_ERROR
    line = one_error_line(result)
    assert re.match(
        rf"error: cannot reach {url} after 3 attempts over \d+\.\d s: ", line
    )


def test_max_retries_zero_makes_one_attempt(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(status=503), ScriptedResponse(status=503)])

    result = run_list(runner, pbx, "--max-retries", "0")

    assert result.exit_code == EXIT_API_ERROR
    assert len(pbx.requests) == 1


def test_max_retries_must_not_be_negative(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["list", "--url", "http://x", "--token", TOKEN, "--max-retries", "-1"]
    )

    assert result.exit_code == EXIT_USAGE
    assert "--max-retries" in one_error_line(result)


def test_describe_error_counts_attempts_only_when_there_were_several() -> None:
    exc = APIConnectionError("GET /x failed: refused")

    once = describe_error(exc, url="http://h:1", attempts=1, elapsed=0.01)
    several = describe_error(exc, url="http://h:1", attempts=4, elapsed=10.94)

    assert once == "cannot reach http://h:1: GET /x failed: refused"
    assert (
        several
        == "cannot reach http://h:1 after 4 attempts over 10.9 s: GET /x failed: refused"
    )


def test_describe_error_of_a_timeout_says_the_timeout_is_per_attempt() -> None:
    exc = APITimeoutError("GET /x timed out after 2s")

    line = describe_error(
        exc, url="https://pbx:8887", attempts=4, elapsed=10.9, timeout=2.0
    )

    assert line == "no answer from pbx:8887 after 4 attempts over 10.9 s (2 s each)"


def test_describe_error_of_a_single_timeout_without_context() -> None:
    assert describe_error(APITimeoutError("t")) == "no answer from the server in time"


def test_an_attempt_count_on_the_exception_wins(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from external_messages_async.cli import _run

    async def failing(*args: object, **kwargs: object) -> int:
        exc = APIConnectionError("GET /x failed: reset")
        exc.attempts = 7  # type: ignore[attr-defined]  # what a richer SDK error carries
        raise exc

    monkeypatch.setattr(_run, "run_list", failing)

    result = run_list(runner, pbx)

    assert "after 7 attempts" in one_error_line(result)


# --- wording ----------------------------------------------------------------------


def test_sdk_argument_names_become_flags() -> None:
    assert flag_wording("base_url must not carry credentials; pass token= instead") == (
        "--url must not carry credentials; pass --token instead"
    )
    assert flag_wording(
        "and pass token= (or token_provider=) instead of username/password"
    ) == ("and pass --token instead of username/password")
    assert flag_wording("domain= applies only with username= and password=") == (
        "--domain applies only with --username and --password"
    )


def test_credentials_in_the_url_name_the_flags(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["list", "--url", "http://me:pw@127.0.0.1:9", "--token", TOKEN]
    )

    assert result.exit_code == EXIT_USAGE
    assert one_error_line(result) == (
        "error: --url must not carry credentials; pass --token instead (see --help)"
    )


def test_a_404_for_the_collection_names_the_host_and_doubts_it_is_portsip(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(status=404)])

    result = run_list(runner, pbx)

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == (
        f"error: 127.0.0.1:{pbx.port} has no /api/external_messages (404): it may "
        "not be a PortSIP PBX, or --url may name the wrong port or path"
    )


def test_describe_error_of_a_404_without_a_url() -> None:
    line = describe_error(NotFoundError("GET -> 404", status=404))

    assert line == (
        "the server answered 404 Not Found: it may not be a PortSIP PBX, "
        "or --url may name the wrong port or path"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_naming_the_file(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = run_list(runner, pbx, "-o", "/dev/full")

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == (
        "error: cannot write /dev/full: No space left on device"
    )


def test_a_write_error_mid_export_keeps_whole_records_in_the_partial(
    runner: CliRunner,
    pbx: FakePortSIPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The disk fills during the third page: two whole pages stay, none of the third."""
    out = tmp_path / "m.jsonl"
    real_write = os.write
    calls = {"n": 0}

    def filling(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            real_write(fd, bytes(data)[:100])
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", filling)

    result = run_list(runner, pbx, "--page-size", "10", "-o", str(out))

    assert result.exit_code == EXIT_API_ERROR
    assert one_error_line(result) == (
        f"error: cannot write {out}: No space left on device "
        f"(20 messages kept in {out}.partial; --skip 20 resumes after them)"
    )
    kept = (tmp_path / "m.jsonl.partial").read_bytes()
    assert len([orjson.loads(line) for line in kept.splitlines()]) == 20
    assert not out.exists()


def test_a_closed_pipe_ends_quietly_with_exit_0(pbx: FakePortSIPServer) -> None:
    """``external-messages list | head -3``: head leaves after three lines."""
    child = subprocess.Popen(
        [
            sys.executable, "-m", "external_messages_async", "list",
            "--url", pbx.url, "--page-size", "10",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=CHILD_ENV,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stderr is not None
    try:
        head = [child.stdout.readline() for _ in range(3)]
        child.stdout.close()
        stderr = child.stderr.read()
        returncode = child.wait(timeout=DEADLINE)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()

    assert [orjson.loads(line)["id"] for line in head] == [
        m["id"] for m in pbx.messages[:3]
    ]
    assert returncode == 0
    assert stderr == b""


def test_table_format_into_a_file_is_refused_in_favour_of_csv_or_jsonl(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "t.txt"

    result = runner.invoke(
        cli,
        [
            "list",
            "--url",
            "http://x",
            "--token",
            TOKEN,
            "--format",
            "table",
            "-o",
            str(out),
        ],
    )

    assert result.exit_code == EXIT_USAGE
    assert one_error_line(result) == (
        "error: --format table is for the terminal; write a file with --format "
        "jsonl or --format csv (see --help)"
    )
    assert not out.exists()


def test_describe_error_without_elapsed_still_counts_attempts() -> None:
    line = describe_error(APIConnectionError("refused"), url="http://h", attempts=2)

    assert line == "cannot reach http://h after 2 attempts: refused"


def test_library_warnings_show_as_warning_lines_on_stderr(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    """A count that falls mid-walk is the library's warning; it reaches stderr only."""
    doomed = [str(m["id"]) for m in pbx.messages[-5:]]

    def delete_once(server: FakePortSIPServer, skip: int, top: int) -> None:
        if skip == 100 and doomed:
            server.delete_messages(doomed)
            doomed.clear()

    pbx.on_list_page = delete_once

    result = run_list(runner, pbx, "--format", "jsonl", "--page-size", "100")

    assert result.exit_code == 0, result.output
    warnings = [
        line for line in result.stderr.splitlines() if line.startswith("warning:")
    ]
    assert len(warnings) == 1
    assert "count fell from 250 to 245" in warnings[0]
    assert "warning" not in result.stdout


def test_a_5xx_after_every_retry_says_how_many_attempts(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(status=503)] * 3)

    result = run_list(runner, pbx, "--max-retries", "2")

    assert result.exit_code == EXIT_API_ERROR
    assert re.fullmatch(
        r"error: GET /api/external_messages -> 503.* \(after 3 attempts over \d+\.\d s\)",
        one_error_line(result),
    ), result.stderr


def test_verbose_shows_each_retry_and_the_login_on_stderr_only(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(status=503)])

    result = runner.invoke(
        cli,
        [
            "list", "--url", pbx.url, "--username", "alice", "--password",
            PASSWORD, "--limit", "3", "--format", "jsonl", "-v",
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    debug = [line for line in result.stderr.splitlines() if line.startswith("debug:")]
    assert any("logged in" in line for line in debug)
    assert any("retrying GET /api/external_messages" in line for line in debug)
    assert len(result.stdout.splitlines()) == 3
    assert PASSWORD not in result.output


def test_without_verbose_debug_lines_stay_hidden(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    pbx.script([ScriptedResponse(status=503)])

    result = run_list(runner, pbx, "--limit", "3", "--format", "jsonl")

    assert result.exit_code == 0, result.output
    assert result.stderr == "3 messages written to stdout\n"


def test_log_lines_never_show_a_secret(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a log record that quoted the token would print it as ***."""
    import logging

    from external_messages_async.cli import _run

    async def chatty(*args: object, **kwargs: object) -> int:
        logging.getLogger("external_messages_async").debug("token was %s", TOKEN)
        return 0

    monkeypatch.setattr(_run, "run_list", chatty)

    result = run_list(runner, pbx, "-v")

    assert "debug: token was ***" in result.stderr
    assert TOKEN not in result.output
