"""Helpers the command's tests share: the repository root, a child's environment, runs."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from external_messages_async.cli._app import cli
from external_messages_async.testing import FakePortSIPServer

from .conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]

# A child in asyncio debug mode logs slow steps on stderr, which the tests read.
CHILD_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")
}


def run_list(runner: CliRunner, pbx: FakePortSIPServer, *args: str) -> Result:
    """Run ``list`` against the fake PBX with its token."""
    return runner.invoke(cli, ["list", "--url", pbx.url, "--token", TOKEN, *args])


def one_error_line(result: Result) -> str:
    """The one ``error:`` line a failed run printed, checking it is alone."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]
