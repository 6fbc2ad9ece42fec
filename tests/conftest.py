"""Constants and helpers shared by the whole suite (import them from ``tests.conftest``).

- ``SPEC``: PortSIP's OpenAPI subset, the contract.
- ``FAST_RETRY``: a retry policy that never slows a test down.
- ``SecretWatch`` and ``watching_secrets()``: the scan that fails a test whose
  log records (every phase, every logger, at DEBUG) or output hold a secret.
- ``FakeClock``: monotonic seconds a test moves, for token lifetimes.
- ``wait_until()``, ``settle()`` and ``cancel_and_count()``: wait for a
  condition or for the loop to run what is ready, instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from external_messages_async import RetryPolicy

#: PortSIP's OpenAPI subset, the contract, vendored in tests/contract/ (see its README).
SPEC = Path(__file__).resolve().parent / "contract" / "openapi-external-messages.json"

#: Retries that never slow a test down.
FAST_RETRY = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_cap=0.002)

#: Loggers whose records must reach the scan at DEBUG, the client's own and
#: those of the libraries it drives.
WATCHED_LOGGERS = (
    "external_messages_async",
    "aiohttp",
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "asyncio",
)


class FakeClock:
    """Monotonic seconds that move only when told to (for token lifetimes)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, e.g. until tasks are parked in a queue.

    For states that have no event to wait on; pytest-timeout ends a wait that
    never succeeds.
    """
    while not condition():  # noqa: ASYNC110 - the states polled have no event
        await asyncio.sleep(0.001)


#: Loop turns a cancelled call may take to end: enough for the finally blocks
#: and the socket close it runs, far too few to wait for a timer or the server.
PROMPT_TURNS = 20


async def cancel_and_count(task: asyncio.Task[Any]) -> int:
    """Cancel ``task``; return the event-loop turns it took to end.

    A zero-length sleep lets ready callbacks and ready sockets run but no
    timer that is not due, so a task that ends within a few turns waited for
    neither a backoff sleep nor an answer that never comes.
    """
    task.cancel()
    turns = 0
    while not task.done() and turns <= PROMPT_TURNS:
        await asyncio.sleep(0)
        turns += 1
    if not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await task  # let it end before the test fails, not after
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return turns


async def settle() -> None:
    """Let callbacks scheduled by a close or a cancel run."""
    for _ in range(3):
        await asyncio.sleep(0)


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


class SecretWatch:
    """The secret strings a test must never leak, and the scan for them.

    Args:
        *secrets: Secrets known from the start (empty strings are skipped).
    """

    def __init__(self, *secrets: str) -> None:
        self._secrets = {s for s in secrets if s}
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add(self, *secrets: str) -> None:
        """Watch more secrets, e.g. tokens issued during the test."""
        self._secrets.update(s for s in secrets if s)

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        """Watch whatever ``source()`` returns when the scan runs (a server's tokens)."""
        self._sources.append(source)

    @property
    def secrets(self) -> set[str]:
        """Every secret watched now."""
        found = set(self._secrets)
        for source in self._sources:
            found.update(s for s in source() if s)
        return found

    def leaks(self, text: str) -> list[str]:
        """Return the secrets found in ``text``."""
        return sorted(s for s in self.secrets if s in text)

    def assert_clean(self, *texts: str, where: str = "the test") -> None:
        """Fail if any secret appears in any of ``texts``."""
        found = sorted({s for text in texts for s in self.leaks(text)})
        assert not found, f"secret(s) leaked in {where}: {found}"


@contextlib.contextmanager
def watching_secrets(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    *secrets: str,
) -> Iterator[SecretWatch]:
    """Capture every log record at DEBUG; on exit, fail on a secret in them or the output.

    Use it in an autouse fixture: ``with watching_secrets(caplog, capsys, PASSWORD)
    as watch: yield watch``.
    """
    caplog.set_level(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
        # A scan that cannot see DEBUG records would pass vacuously.
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    watch = SecretWatch(*secrets)
    yield watch
    for record in phase_records(caplog):
        watch.assert_clean(render(record), where=f"log record {record.name}")
    out, err = capsys.readouterr()
    watch.assert_clean(out, err, where="captured output")
