"""A real full disk: a small tmpfs mounted in a private mount namespace.

``unshare --user --map-root-user --mount`` lets an unprivileged test mount a
tmpfs of a few hundred kilobytes that only its own processes see. The sync
runs there as a real ``external-messages sync`` process until the disk fills.
Where user namespaces are not allowed, the test is skipped; the same failure
is also tested everywhere with SQLite's ``max_page_count`` (test_db.py).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from external_messages_async._archive_db import ArchiveDB
from external_messages_async._converter import format_datetime, parse_datetime
from external_messages_async.testing import FakePortSIPServer

from .conftest import CHILD_ENV, ROOT, current_checkpoint, table


def _namespaces_work(folder: Path) -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {folder}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.fixture
def pbx() -> Iterator[FakePortSIPServer]:
    with FakePortSIPServer(messages=1000, seed=9).run_in_thread() as server:
        yield server


def _sync(server: FakePortSIPServer, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _sync_argv(server, db),
        capture_output=True, text=True, cwd=ROOT, env=CHILD_ENV, timeout=120,
        check=False,
    )  # fmt: skip


def test_a_full_disk_stops_the_run_with_one_line_and_a_sound_archive(
    pbx: FakePortSIPServer, tmp_path: Path
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if not _namespaces_work(mount):
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    base = tmp_path / "base.sqlite"
    assert _sync(pbx, base).returncode == 0
    base_checkpoint = current_checkpoint(str(base))
    base_size = base.stat().st_size
    top = max(parse_datetime(m["created_at"]) for m in pbx.messages)
    pbx.insert_messages(
        {
            **pbx.messages[0],
            "id": f"late-{i}",
            "created_at": format_datetime(top + timedelta(seconds=i)),
        }
        for i in range(1, 4001)
    )
    out = tmp_path / "out"
    out.mkdir()
    db = mount / "archive.sqlite"
    script = textwrap.dedent(
        f"""
        mount -t tmpfs -o size={base_size + 256 * 1024} tmpfs {mount}
        cp {base} {db}
        {shlex.join(_sync_argv(pbx, db))} > {out}/stdout 2> {out}/stderr
        echo $? > {out}/code
        cp {db}* {out}/
        """
    )

    subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        check=True, timeout=180, cwd=ROOT, env=CHILD_ENV,
    )  # fmt: skip

    stderr = (out / "stderr").read_text()
    assert (out / "code").read_text().strip() == "1", stderr
    assert (out / "stdout").read_text() == ""
    assert len(stderr.splitlines()) == 1
    assert stderr.startswith(f"error: the disk is full: cannot write {db}; page ")
    assert "was rolled back and the archive is as it was before it" in stderr
    archived = out / "archive.sqlite"
    opened = ArchiveDB.open(str(archived))  # checks the pages: quick_check
    opened.close()
    assert current_checkpoint(str(archived)) == base_checkpoint
    stored = len(table(str(archived), "external_messages"))
    assert 1000 <= stored < 5000

    rerun = _sync(pbx, archived)

    assert rerun.returncode == 0, rerun.stderr
    assert len(table(str(archived), "external_messages")) == 5000
    assert current_checkpoint(str(archived)) != base_checkpoint


def _sync_argv(server: FakePortSIPServer, db: Path) -> list[str]:
    return [
        sys.executable, "-m", "external_messages_async", "sync",
        "--url", server.url, "--token", server.token or "", "--db", str(db),
    ]  # fmt: skip
