"""Crash safety: SIGKILL a real sync process at many points; a re-run equals one clean run.

The PBX is a fake server on a thread of the test process; the sync runs in a
child process. Kill points are chosen without sleeps: either the server holds
the k-th list request until the child is dead (the child then has the page
before it written in an open transaction), or the test kills the child as soon
as it reports a written page (the kill then lands anywhere in the next fetch
or write).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from external_messages_async._converter import format_datetime, parse_datetime
from external_messages_async.testing import FakePortSIPServer

from .conftest import FIXED_NOW, Pbx, current_checkpoint, table

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from external_messages_async import ExternalMessagesClient, sync_to_sqlite

    url, token, path, now = sys.argv[1:5]
    fixed = datetime.fromisoformat(now)

    async def main() -> None:
        async with ExternalMessagesClient(url, token=token, max_retries=0) as client:
            await sync_to_sqlite(
                client, path, now=lambda: fixed,
                on_page=lambda s: print(f"page {s.pages}", flush=True),
            )
        print("done", flush=True)

    asyncio.run(main())
    """
)


def _start(pbx: Pbx, path: Path) -> subprocess.Popen[str]:
    server = pbx.server
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            server.url,
            server.token or "",
            str(path),
            FIXED_NOW.isoformat(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=60)
    return child.returncode, out, err


def _clean_run(pbx: Pbx, path: Path) -> None:
    pbx.arm(None)
    code, out, err = _finish(_start(pbx, path))
    assert code == 0, err
    assert out.endswith("done\n")


def _killed_at_request(pbx: Pbx, path: Path, request: int) -> None:
    pbx.arm(request)
    child = _start(pbx, path)
    try:
        assert pbx.reached.wait(60), "the child never asked for that page"
    finally:
        child.kill()  # SIGKILL
        _finish(child)
        pbx.release.set()
    assert child.returncode == -signal.SIGKILL


def _killed_after_page(pbx: Pbx, path: Path, page: int) -> None:
    pbx.arm(None)
    child = _start(pbx, path)
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if line == f"page {page}\n":
                break
    finally:
        child.kill()  # SIGKILL
        _finish(child)
    assert child.returncode == -signal.SIGKILL


def _contents(path: Path) -> tuple[list[tuple[Any, ...]], str | None]:
    return table(str(path), "external_messages"), current_checkpoint(str(path))


def _copy(source: Path | None, target: Path) -> Path:
    """A copy of an archive (its WAL included), or no file for a first run."""
    if source is not None:
        for suffix in ("", "-wal"):
            if Path(f"{source}{suffix}").exists():
                shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return target


Scenario = tuple[Pbx, "Path | None", tuple[list[tuple[Any, ...]], "str | None"], int]
"""The PBX, the archive a run starts from, what one clean run leaves, its requests."""


def _request(scenario: Scenario, where: str) -> int:
    """The first, middle or last list request of a clean run."""
    requests = scenario[3]
    return {"first": 1, "middle": (requests + 1) // 2, "last": requests}[where]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """A PBX with 1,000 messages, and the archive one clean first run makes."""
    server = FakePortSIPServer(messages=1000, seed=2)
    with server.run_in_thread() as running:
        pbx = Pbx(running)
        clean = tmp_path_factory.mktemp("clean") / "first.sqlite"
        _clean_run(pbx, clean)
        yield pbx, None, _contents(clean), pbx.seen


@pytest.fixture(scope="module")
def second_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """An archive of a PBX that then changed, and what one clean second run makes."""
    server = FakePortSIPServer(messages=1000, seed=4)
    with server.run_in_thread() as running:
        pbx = Pbx(running)
        folder = tmp_path_factory.mktemp("clean")
        before = folder / "before-second.sqlite"
        _clean_run(pbx, before)
        top = max(parse_datetime(m["created_at"]) for m in running.messages)
        for message in sorted(running.messages, key=lambda m: m["created_at"])[-5:]:
            message["delivery"] = "ERR"
            message["reason"] = "Message expired before delivery"
        running.insert_messages(
            {
                **running.messages[0],
                "id": f"later-{index}",
                "created_at": format_datetime(top + timedelta(seconds=index)),
            }
            for index in range(1, 1201)
        )
        clean = _copy(before, folder / "second.sqlite")
        _clean_run(pbx, clean)
        yield pbx, before, _contents(clean), pbx.seen


@pytest.mark.parametrize(
    ("run", "where"),
    [
        ("first_run", "first"),
        ("first_run", "middle"),
        ("first_run", "last"),
        ("second_run", "middle"),
        ("second_run", "last"),
    ],
)
def test_a_run_killed_while_waiting_for_a_page(
    request: pytest.FixtureRequest, tmp_path: Path, run: str, where: str
) -> None:
    scenario: Scenario = request.getfixturevalue(run)
    pbx, start, clean, _ = scenario
    path = _copy(start, tmp_path / "archive.sqlite")

    _killed_at_request(pbx, path, _request(scenario, where))
    _clean_run(pbx, path)

    assert _contents(path) == clean


@pytest.mark.parametrize("page", [5])
def test_second_run_killed_anywhere_after_a_page(
    second_run: Scenario, tmp_path: Path, page: int
) -> None:
    pbx, start, clean, _ = second_run
    path = _copy(start, tmp_path / "archive.sqlite")

    _killed_after_page(pbx, path, page)
    _clean_run(pbx, path)

    assert _contents(path) == clean


def test_two_kills_in_a_row_then_a_clean_run(
    second_run: Scenario, tmp_path: Path
) -> None:
    pbx, start, clean, _ = second_run
    path = _copy(start, tmp_path / "archive.sqlite")

    _killed_at_request(pbx, path, 4)
    _killed_after_page(pbx, path, 2)
    _clean_run(pbx, path)

    assert _contents(path) == clean
    outcomes = [row[7] for row in table(str(path), "sync_state")]
    assert outcomes.count("interrupted") == 2
