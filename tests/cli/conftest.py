"""Fixtures for the command's tests: a fake PBX on its own thread, and a runner."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from external_messages_async.testing import FakePortSIPServer

TOKEN = "s3cret-token-value"
PASSWORD = "pa55word-value"


@pytest.fixture
def pbx() -> Iterator[FakePortSIPServer]:
    """A fake PBX with 250 messages, on its own loop so the CLI's asyncio.run can call it."""
    server = FakePortSIPServer(
        messages=250, seed=7, token=TOKEN, users={"alice": PASSWORD}
    )
    with server.run_in_thread() as running:
        yield running


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("URL", "TOKEN", "USERNAME", "PASSWORD", "DOMAIN"):
        monkeypatch.delenv(f"PORTSIP_{name}", raising=False)
    return CliRunner()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
