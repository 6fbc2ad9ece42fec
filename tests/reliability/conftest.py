"""Shared pieces of the reliability suite: secret scanning, leak checks, helpers.

Every test here runs under an autouse guard that fails it when a secret (the
static tokens and passwords below, and every token the fake server issued
during the test) shows up in any log record, at any level and from any logger
(aiohttp's and asyncio's included), or in what the test printed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from external_messages_async import ExternalMessagesClient
from external_messages_async.testing import FakePortSIPServer, _auth, _handlers
from tests.conftest import FAST_RETRY, SecretWatch, watching_secrets

TOKEN = "rel-static-token-9f8e7d6c"
PASSWORD = "rel-password-1a2b3c4d"
USERNAME = "auditor"


@pytest.fixture(autouse=True)
def secret_watch(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SecretWatch]:
    """Fail the test if a secret appears in a log record or in captured output."""
    with watching_secrets(caplog, capsys, TOKEN, PASSWORD) as watch:
        issue = _auth.TokenStore._issue

        def recording_issue(self: _auth.TokenStore) -> dict[str, Any]:
            tokens = issue(self)
            watch.add(tokens["access_token"], tokens["refresh_token"])
            return tokens

        monkeypatch.setattr(_auth.TokenStore, "_issue", recording_issue)
        yield watch


class FaultCounter:
    """Counts the faults the fake server injected, by kind (wraps its draw)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.draws = 0

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


@pytest.fixture
def fault_counter(monkeypatch: pytest.MonkeyPatch) -> FaultCounter:
    counter = FaultCounter()
    draw = _handlers.draw_fault

    def counting_draw(faults: Any, rng: Any) -> Any:
        kind = draw(faults, rng)
        counter.draws += 1
        if kind is not None:
            counter.kinds[kind.value] += 1
        return kind

    monkeypatch.setattr(_handlers, "draw_fault", counting_draw)
    return counter


@pytest.fixture
async def pbx() -> AsyncIterator[FakePortSIPServer]:
    """A fake PBX with 300 messages that accepts TOKEN and USERNAME/PASSWORD."""
    async with FakePortSIPServer(
        messages=300, seed=6, token=TOKEN, users={USERNAME: PASSWORD}
    ) as server:
        yield server


def client_for(url: str, **options: Any) -> ExternalMessagesClient:
    """A client with fast retries and the static token, unless told otherwise."""
    if not {"token", "username", "token_provider", "auth"} & options.keys():
        options["token"] = TOKEN
    options.setdefault("retry", FAST_RETRY)
    return ExternalMessagesClient(url, **options)


def acquired(client: ExternalMessagesClient) -> int:
    """Connections checked out of the client's pool right now (0 without a pool)."""
    session = client._http.transport.session
    if session is None or session.connector is None:
        return 0
    return len(session.connector._acquired)  # type: ignore[attr-defined]  # aiohttp's private pool, the only view of checked-out connections


def _server_side(task: asyncio.Task[Any]) -> bool:
    # The loopback server shares the test's loop; its handlers are not ours.
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return filename.endswith(("web_protocol.py", "web_server.py"))


def other_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Client-side tasks still pending that were not running when ``before`` was taken."""
    current = asyncio.current_task()
    return {
        task
        for task in asyncio.all_tasks()
        if task not in before
        and task is not current
        and not task.done()
        and not _server_side(task)
    }
