"""scan() against list() on the same data, at 0 ms and 5 ms of latency per request.

Usage: ``python benchmarks/scan.py [--messages N] [--rounds R] [--ties S]``.

Both walks read the same messages from one server process on loopback that
answers from pre-encoded messages kept sorted by ``created_at``: an offset
page (``list()``) is a slice, a key page (``scan()``) a binary search on
``created_at`` then a slice, as a database index on ``created_at`` gives
PortSIP. So the comparison is of the clients, not of the server's filter.

Compared, in interleaved rounds (medians of per-round ratios reported):

- sequential: ``scan()`` against ``list(concurrency=1)``;
- concurrent: ``scan(concurrency=8)`` against ``list()`` at its default (8).

Also reported: the client's CPU time per message (``time.process_time`` of
the client process over the walk). Targets: both ratios at least 0.8.
``--ties S`` squeezes every ``created_at`` into S whole seconds, so that
hundreds of messages share one (the key walk's worst case: its filter grows
with the ids read at the high-water second).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
TOKEN = "bench-token"

_GE = re.compile(r"created_at ge '([^']*)'")
_LT = re.compile(r"created_at lt '([^']*)'")
_NE = re.compile(r"id ne '((?:[^']|'')*)'")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _data(
    messages: int, ties: int | None, ordered_ids: bool = False
) -> list[dict[str, object]]:
    from external_messages_async.testing import generate_messages

    items = generate_messages(messages, seed=1, sparse=False)
    if ordered_ids:
        # Ids that grow with created_at, as 64-bit "snowflake" ids do (the
        # decimal inside PortSIP's base64 ids has their shape; PortSIP does
        # not document how it makes them): base64 of a decimal rising with
        # time, instead of the generator's ids, which are in no time order.
        for rank, item in enumerate(
            sorted(items, key=lambda m: _instant(str(m["created_at"])))
        ):
            item["id"] = base64.b64encode(
                str(700551909773148160 + rank * 4096).encode()
            ).decode()
    if ties:
        start = datetime(2024, 5, 1, tzinfo=timezone.utc)
        for index, item in enumerate(items):
            moment = start + timedelta(seconds=index % ties)
            item["created_at"] = moment.isoformat().replace("+00:00", "Z")
    return items


async def _serve(
    messages: int, latency: float, ties: int | None, ordered_ids: bool = False
) -> None:
    from aiohttp import web

    items = sorted(
        _data(messages, ties, ordered_ids), key=lambda m: _instant(str(m["created_at"]))
    )
    times = [_instant(str(m["created_at"])) for m in items]
    ids = [str(m["id"]) for m in items]
    encoded = [orjson.dumps(m) for m in items]

    def body(count: int, chosen: list[bytes]) -> bytes:
        return b'{"count":%d,"items":[' % count + b",".join(chosen) + b"]}"

    async def list_messages(request: web.Request) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        query = request.query
        skip, top = int(query.get("skip", "0")), int(query.get("top", "100"))
        text = query.get("filter")
        if text is None:
            return web.Response(
                body=body(len(items), encoded[skip : skip + top]),
                content_type="application/json",
            )
        if "created_at eq null" in text:
            return web.Response(body=body(0, []), content_type="application/json")
        ge, lt = _GE.search(text), _LT.search(text)
        low = bisect.bisect_left(times, _instant(ge.group(1))) if ge else 0
        high = bisect.bisect_left(times, _instant(lt.group(1))) if lt else len(times)
        excluded = {value.replace("''", "'") for value in _NE.findall(text)}
        # Excluded ids all sit at the first instant (the key walk's
        # high-water); drop them there, then the rest is a slice.
        tie = low
        while tie < high and times[tie] == times[low]:
            tie += 1
        first = [i for i in range(low, tie) if ids[i] not in excluded]
        count = len(first) + high - tie
        start = skip
        chosen = [encoded[i] for i in first[start : start + top]]
        start = max(0, start - len(first))
        chosen += encoded[tie + start : min(high, tie + start + top - len(chosen))]
        return web.Response(body=body(count, chosen), content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/external_messages", list_messages)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # a TCP site has sockets
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


@contextmanager
def server(
    messages: int, latency_ms: float, ties: int | None, *, ordered_ids: bool = False
) -> Iterator[str]:
    """Run :func:`_serve` in a child process; yield its URL; stop it on exit."""
    command = [
        sys.executable, __file__, "--serve", "--messages", str(messages),
        "--latency-ms", str(latency_ms), *(["--ties", str(ties)] if ties else []),
        *(["--ordered-ids"] if ordered_ids else []),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        try:
            if not url.startswith("http"):
                raise RuntimeError("the benchmark server did not start")
            yield url
        finally:
            child.stdin.close()  # the server stops when its stdin closes


Walk = Callable[[str], Awaitable[int]]


async def _walk(url: str, make: Callable[..., object]) -> int:
    from external_messages_async import ExternalMessagesClient

    async with ExternalMessagesClient(url, token=TOKEN) as client:
        count = 0
        async with make(client) as walk:  # type: ignore[attr-defined]  # a pager or a scan
            async for page in walk.pages():
                count += len(page.items if hasattr(page, "items") else page)
        return count


WALKS: dict[str, Walk] = {
    "list, sequential": lambda url: _walk(url, lambda c: c.list(concurrency=1)),
    "scan, sequential": lambda url: _walk(url, lambda c: c.scan()),
    "list, default (8)": lambda url: _walk(url, lambda c: c.list()),
    "scan, concurrency=8": lambda url: _walk(url, lambda c: c.scan(concurrency=8)),
}
PAIRS = [
    ("sequential", "scan, sequential", "list, sequential"),
    ("concurrent", "scan, concurrency=8", "list, default (8)"),
]


def timed(walk: Walk, url: str) -> tuple[int, float, float]:
    async def run() -> tuple[int, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        count = await walk(url)
        return count, time.perf_counter() - wall, time.process_time() - cpu

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ties", type=int, default=None)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--latency-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--ordered-ids", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(
            _serve(args.messages, args.latency_ms / 1000, args.ties, args.ordered_ids)
        )
        return
    load = os.getloadavg()[0]
    print(
        f"{args.messages:,} messages, pages of 100, {args.rounds} interleaved rounds"
        + (f", created_at squeezed into {args.ties} seconds" if args.ties else "")
        + f"; load average {load:.1f} on {os.cpu_count()} CPUs at the start"
    )
    rates: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    with (
        server(args.messages, 0, args.ties) as url0,
        server(args.messages, 5, args.ties) as url5,
    ):
        urls = {0: url0, 5: url5}
        for url in urls.values():  # warm-up
            timed(WALKS["list, sequential"], url)
        for number in range(args.rounds):
            for latency, url in urls.items():
                for name, walk in WALKS.items():
                    count, seconds, used = timed(walk, url)
                    assert count == args.messages, (name, count)
                    rates.setdefault((latency, name), []).append(count / seconds)
                    cpu.setdefault((latency, name), []).append(used / count * 1e6)
            print(f"  round {number + 1}/{args.rounds} done", flush=True)
    print()
    print("| latency | walk | messages/s | client CPU µs/message |")
    print("|---|---|---:|---:|")
    for (latency, name), values in rates.items():
        print(
            f"| {latency} ms | {name} | {statistics.median(values):,.0f} | "
            f"{statistics.median(cpu[(latency, name)]):.1f} |"
        )
    print()
    print(
        "| latency | comparison | scan / list (median of per-round ratios) | target |"
    )
    print("|---|---|---:|---|")
    for latency in urls:
        for label, scan, listing in PAIRS:
            ratio = statistics.median(
                s / l_
                for s, l_ in zip(
                    rates[(latency, scan)], rates[(latency, listing)], strict=True
                )
            )
            verdict = "met" if ratio >= 0.8 else "NOT met"
            print(f"| {latency} ms | {label} | {ratio:.2f}x | >= 0.8x: {verdict} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
