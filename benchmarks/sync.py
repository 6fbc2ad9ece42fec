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
import contextlib
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

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
    "Where `sync`'s time goes. Besides reading the same pages, it writes "
    "every message into SQLite, one transaction per page of 100, on a worker "
    "thread. Measured apart on this machine (100,000 rows, WAL mode): with "
    "random ids each transaction rewrites about 100 pages of the id index, "
    "so the log takes 486 MB and the writes about 20 µs a message, plus about "
    "0.5 s to move the log into the file at the end; with time-ordered ids "
    "the log takes 103 MB and the writes about 8 µs a message, plus 0.2 s. "
    "The worker thread and the event loop share the GIL (SQLite releases it "
    "only inside each statement's step), so their CPU times add up rather "
    "than overlap: the process uses one core. Pages are read by key "
    "(`changes()`), one request in flight, each sent as soon as the page "
    "before it is accepted; `list` keeps 8 offset pages in flight."
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


def _command(url: str, *args: str, token: str = TOKEN) -> tuple[float, float]:
    """Run one CLI command to its end; return its wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "external_messages_async", *args, "--url", url],
        env={**CHILD_ENV, "PORTSIP_TOKEN": token},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


@attrs.define
class Figures:
    """Items/s and client CPU seconds of each round, for one data set."""

    listed: list[float] = attrs.Factory(list)
    synced: list[float] = attrs.Factory(list)
    list_cpu: list[float] = attrs.Factory(list)
    sync_cpu: list[float] = attrs.Factory(list)

    def ratio(self) -> float:
        return statistics.median(
            s / l_ for s, l_ in zip(self.synced, self.listed, strict=True)
        )


#: The two data sets: the generator's ids, in no time order, and ids that
#: grow with created_at (``benchmarks/scan.py --ordered-ids``).
ID_ORDERS = {"random": False, "time-ordered": True}


def _round(url: str, messages: int, folder: Path, figures: Figures) -> Path:
    out = folder / "list.jsonl"
    wall, cpu = _command(url, "list", "--format", "jsonl", "-o", str(out))
    figures.listed.append(messages / wall)
    figures.list_cpu.append(cpu)
    out.unlink()
    db = folder / "archive.sqlite"
    for path in folder.glob("archive.sqlite*"):
        path.unlink()
    wall, cpu = _command(url, "sync", "--db", str(db))
    figures.synced.append(messages / wall)
    figures.sync_cpu.append(cpu)
    return db


def _throughput(
    messages: int, rounds: int, folder: Path
) -> tuple[dict[str, Figures], Path]:
    results = {name: Figures() for name in ID_ORDERS}
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(server(messages, 0, None, ordered_ids=ordered))
            for name, ordered in ID_ORDERS.items()
        }
        for url in urls.values():  # warm both servers' caches
            _command(url, "list", "--format", "jsonl", "-o", str(folder / "warm.jsonl"))
        for number in range(rounds):
            for name, url in urls.items():
                # The random-id archive is the one the second run reads again.
                sub = folder / name
                sub.mkdir(exist_ok=True)
                _round(url, messages, sub, results[name])
                figures = results[name]
                print(
                    f"  round {number + 1}/{rounds}, {name} ids: list "
                    f"{figures.listed[-1]:,.0f}/s, sync {figures.synced[-1]:,.0f}/s",
                    flush=True,
                )
    return results, folder / "random" / "archive.sqlite"


def _second_run(messages: int, db: Path) -> tuple[int, int, int, float]:
    """Requests, window messages, allowed requests and seconds of a second run."""
    data = generate_messages(messages, seed=1, sparse=False)
    times = [parse_datetime(str(m["created_at"])) for m in data]
    window = sum(1 for when in times if when >= max(times) - LOOKBACK)
    fake = FakePortSIPServer(data, token=TOKEN)
    with fake.run_in_thread(timeout=120) as running:
        seconds, _ = _command(running.url, "sync", "--db", str(db))
        requests = sum(
            1 for r in running.requests if r.path.endswith("/external_messages")
        )
    return requests, window, math.ceil(window / 100) + 1, seconds


def _micros(seconds: list[float], messages: int) -> str:
    return f"{statistics.median(seconds) / messages * 1e6:.1f}"


def _section(
    messages: int,
    rounds: int,
    results: dict[str, Figures],
    second: tuple[int, int, int, float],
    load: tuple[float, float],
) -> str:
    requests, window, allowed, seconds = second
    today = datetime.now(timezone.utc).date().isoformat()
    rows = []
    for name, figures in results.items():
        rows += [
            f"| {name} | `list --format jsonl -o file` | "
            f"{statistics.median(figures.listed):,.0f} | "
            f"{_micros(figures.list_cpu, messages)} | |",
            f"| {name} | `sync --db archive.sqlite` (first run) | "
            f"{statistics.median(figures.synced):,.0f} | "
            f"{_micros(figures.sync_cpu, messages)} | {figures.ratio():.2f}x |",
        ]
    targets = [
        f"| sync ≥ 0.7x the items/s of list, {name} ids | "
        f"{figures.ratio():.3f}x | {'yes' if figures.ratio() >= 0.7 else 'NO'} |"
        for name, figures in results.items()
    ]
    return "\n".join(
        [
            START,
            "## Archiving: `sync` into SQLite",
            "",
            f"Measured {today} by `python benchmarks/sync.py` (`nox -s bench_sync`) "
            f"on {platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} logical cores; load average (1 min) "
            f"{load[0]:.2f} before and {load[1]:.2f} after.",
            "",
            f"{messages:,} messages, pages of 100, from one server process on "
            "loopback indexed on `created_at` (`benchmarks/scan.py`'s server). "
            "Both commands run as real processes, start-up included; "
            f"{rounds} interleaved rounds, medians (the ratio is the median of "
            "the rounds' ratios). CPU is the client process's user + system "
            "time per message, start-up included.",
            "",
            "Two data sets. *random*: the fake's generated messages, whose ids "
            "are in no time order. *time-ordered*: the same messages with ids "
            "that grow with `created_at`, as 64-bit snowflake ids do; the "
            "decimal inside PortSIP's base64 ids has that shape, but PortSIP "
            "does not document how it makes them, so both are reported.",
            "",
            "| ids | command | items/s | CPU µs/msg | sync/list |",
            "|---|---|---:|---:|---:|",
            *rows,
            "",
            NOTE,
            "",
            "A second `sync` with nothing new, against a `FakePortSIPServer` "
            "holding the same messages (it filters and sorts all of them for "
            f"each request), took {seconds:.1f} s and "
            f"{requests} list requests; the lookback window (3 days) holds "
            f"{window:,} messages, so the bound is {allowed} requests.",
            "",
            "| target | measured | met |",
            "|---|---:|---|",
            *targets,
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
        results, db = _throughput(args.messages, args.rounds, folder)
        second = _second_run(args.messages, db)
    finally:
        after = os.getloadavg()[0]
    section = _section(args.messages, args.rounds, results, second, (before, after))
    shutil.rmtree(folder, ignore_errors=True)
    print(section)
    if not args.no_write:
        _write(section, Path(args.output))


if __name__ == "__main__":
    main()
