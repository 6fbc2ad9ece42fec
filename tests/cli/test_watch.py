"""The ``watch`` command: new messages as they arrive, a clean Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import orjson
import pytest
from click.testing import CliRunner

from external_messages_async import ExternalMessagesClient
from external_messages_async.cli._app import cli
from external_messages_async.cli._render import Sink
from external_messages_async.cli._watch import run_watch
from external_messages_async.testing import FakePortSIPServer

from ._shared import CHILD_ENV, ROOT, one_error_line
from .conftest import TOKEN


def _message(message_id: str, created_at: str) -> dict[str, str]:
    return {
        "id": message_id,
        "msg_type": "SMS",
        "direction": "IN",
        "created_at": created_at,
    }


def test_watch_from_since_prints_the_oldest_first_and_stops_at_count(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    oldest = sorted(pbx.messages, key=lambda m: m["created_at"])[:3]

    result = runner.invoke(
        cli,
        ["watch", "--url", pbx.url, "--token", TOKEN, "--since", "2000-01-01",
         "--count", "3", "--format", "jsonl", "--poll-interval", "0.05"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [orjson.loads(line)["id"] for line in lines] == [m["id"] for m in oldest]


def test_watch_prints_a_table(runner: CliRunner, pbx: FakePortSIPServer) -> None:
    oldest = sorted(pbx.messages, key=lambda m: m["created_at"])[:2]

    result = runner.invoke(
        cli,
        ["watch", "--url", pbx.url, "--token", TOKEN, "--since", "2000-01-01",
         "--count", "2", "--format", "table"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "created_at", "(UTC)", "type", "dir", "delivery"]
    assert [line.split()[0] for line in lines[3::2]] == [m["id"] for m in oldest]


def test_watch_with_a_wrong_token_prints_one_line_and_fails(
    runner: CliRunner, pbx: FakePortSIPServer
) -> None:
    result = runner.invoke(cli, ["watch", "--url", pbx.url, "--token", "wrong-token"])

    line = one_error_line(result)
    assert result.exit_code == 1
    assert "401" in line
    assert "wrong-token" not in result.output


async def test_run_watch_with_count_zero_writes_nothing() -> None:
    async with FakePortSIPServer(messages=3) as server:
        async with ExternalMessagesClient(server.url, token=server.token) as client:
            written = await run_watch(client, Sink("jsonl"), count=0)

        assert written == 0
        assert server.requests == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_watch_in_a_real_process_prints_live_messages_and_stops_on_ctrl_c() -> None:
    server = FakePortSIPServer([_message("old", "2024-05-01T12:00:00Z")], token=TOKEN)
    with server.run_in_thread():
        child = subprocess.Popen(
            [
                sys.executable, "-m", "external_messages_async", "watch",
                "--url", server.url, "--format", "jsonl", "--poll-interval", "0.05",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**CHILD_ENV, "PORTSIP_TOKEN": TOKEN},
        )  # fmt: skip
        try:
            assert child.stdout is not None
            # The newest message, the window before it, then the first poll.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(server.requests) < 3:
                time.sleep(0.01)
            server.insert_messages(
                [_message("new1", "2024-05-01T12:00:05Z"),
                 _message("new2", "2024-05-01T12:00:06Z")]
            )  # fmt: skip
            lines = [child.stdout.readline(), child.stdout.readline()]
            child.send_signal(signal.SIGINT)
            rest, stderr = child.communicate(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()

    assert child.returncode == 0, stderr
    assert [orjson.loads(line)["id"] for line in lines] == ["new1", "new2"]
    assert rest == ""
    assert stderr.strip() == "watch stopped: 2 messages shown"
    assert TOKEN not in stderr


def test_ctrl_c_stops_watch_cleanly_with_a_count(
    runner: CliRunner, pbx: FakePortSIPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: a KeyboardInterrupt in the loop is a normal stop, exit code 0."""

    async def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("external_messages_async.cli._watch.run_watch", interrupted)

    result = runner.invoke(cli, ["watch", "--url", pbx.url, "--token", TOKEN])

    assert result.exit_code == 0
    assert result.stderr == "watch stopped: 0 messages shown\n"
