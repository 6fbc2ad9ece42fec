"""Shared pieces of the reliability suite: secret scanning, leak checks, helpers.

Every test here runs under an autouse guard that fails it when a secret (the
static tokens and passwords below, and every token the fake server issued
during the test) shows up in any log record, at any level and from any logger
(aiohttp's and asyncio's included), or in what the test printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from external_messages_async import ExternalMessagesClient, RetryPolicy
from external_messages_async.testing import FakePortSIPServer, _auth, _handlers

TOKEN = "rel-static-token-9f8e7d6c"
PASSWORD = "rel-password-1a2b3c4d"
USERNAME = "auditor"

#: Retries that never slow a test down.
FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_cap=0.002)


class SecretWatch:
    """The secret strings a test must never leak, and the scan for them."""

    def __init__(self) -> None:
        self.secrets: set[str] = {TOKEN, PASSWORD}

    def add(self, *secrets: str) -> None:
        self.secrets.update(s for s in secrets if s)

    def leaks(self, text: str) -> list[str]:
        """Return the secrets found in ``text``."""
        return sorted(s for s in self.secrets if s in text)

    def assert_clean(self, text: str, where: str) -> None:
        found = self.leaks(text)
        assert not found, f"secret(s) leaked in {where}: {found}"


def render(record: logging.LogRecord) -> str:
    """Everything a log handler could write for ``record``: message, args, traceback."""
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return f"{text} {record.args!r} {record.__dict__!r}"


def phase_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every record of the test so far: setup, call, and the teardown up to now.

    ``caplog.records`` alone holds only the current phase's records, so a check
    made after ``yield`` would see only teardown's and could never fail.
    """
    return [
        *caplog.get_records("setup"),
        *caplog.get_records("call"),
        *caplog.records,  # the teardown phase, which is running now
    ]


@pytest.fixture(autouse=True)
def secret_watch(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SecretWatch]:
    """Fail the test if a secret appears in a log record or in captured output."""
    watch = SecretWatch()
    issue = _auth.TokenStore._issue

    def recording_issue(self: _auth.TokenStore) -> dict[str, Any]:
        tokens = issue(self)
        watch.add(tokens["access_token"], tokens["refresh_token"])
        return tokens

    monkeypatch.setattr(_auth.TokenStore, "_issue", recording_issue)
    caplog.set_level(logging.DEBUG)
    for name in ("aiohttp", "asyncio", "external_messages_async"):
        caplog.set_level(logging.DEBUG, logger=name)
    for name in ("aiohttp.client", "aiohttp.access", "aiohttp.server", "asyncio"):
        # A scan that cannot see DEBUG records would pass vacuously.
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name

    yield watch

    for record in phase_records(caplog):
        watch.assert_clean(render(record), f"log record {record.name}")
    out, err = capsys.readouterr()
    watch.assert_clean(out + err, "captured output")


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
    return len(session.connector._acquired)  # type: ignore[attr-defined]


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


async def cancel_and_time(task: asyncio.Task[Any]) -> float:
    """Cancel ``task``, wait for it to finish; return seconds from cancel() to done."""
    started = time.perf_counter()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return time.perf_counter() - started


async def settle() -> None:
    """Let callbacks scheduled by a close or a cancel run."""
    for _ in range(3):
        await asyncio.sleep(0)
