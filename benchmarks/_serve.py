"""Serve N messages on loopback for the benchmark, in its own process.

Usage: ``python benchmarks/_serve.py --messages N --latency-ms MS [--kind fake|minimal|synthetic]``.
Prints the base URL on one line, then serves until its stdin closes.

``fake`` is :class:`external_messages_async.testing.FakePortSIPServer` with its
pre-serialised store (pages cost a slice and a join of cached bytes).
``minimal`` is a bare aiohttp.web app answering from fully pre-encoded pages,
for comparison when the fake is suspected of being the bottleneck.
``synthetic`` serves N messages (a million, for the memory figure) made on
the fly from 10 000 generated ones, each with its own id, without holding N
messages in the server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import orjson
from aiohttp import web

TOKEN = "bench-token"


async def _wait_for_stdin_eof() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def serve_fake(messages: int, latency: float) -> None:
    from external_messages_async.testing import FakePortSIPServer, Faults

    async with FakePortSIPServer(
        messages=messages, seed=1, token=TOKEN, faults=Faults(latency=latency)
    ) as server:
        print(server.url, flush=True)
        await _wait_for_stdin_eof()


async def serve_minimal(messages: int, latency: float) -> None:
    from external_messages_async.testing import generate_messages

    items = generate_messages(messages, seed=1)
    encoded = [orjson.dumps(item) for item in items]
    by_id = {item["id"]: blob for item, blob in zip(items, encoded, strict=True)}
    pages: dict[tuple[int, int], bytes] = {}

    def page(skip: int, top: int) -> bytes:
        body = pages.get((skip, top))
        if body is None:
            body = pages[(skip, top)] = (
                b'{"count":%d,"items":[' % len(items)
                + b",".join(encoded[skip : skip + top])
                + b"]}"
            )
        return body

    async def list_messages(request: web.Request) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        skip = int(request.query.get("skip", "0"))
        top = int(request.query.get("top", "100"))
        return web.Response(body=page(skip, top), content_type="application/json")

    async def get_message(request: web.Request) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        body = by_id.get(request.match_info["id"])
        if body is None:
            return web.json_response({"errors": [{"code": "NOT_FOUND"}]}, status=404)
        return web.Response(body=body, content_type="application/json")

    await _serve_app(list_messages, get_message)


async def serve_synthetic(messages: int, latency: float) -> None:
    from external_messages_async.testing import generate_messages

    base = [
        orjson.dumps({k: v for k, v in item.items() if k != "id"})[1:]
        for item in generate_messages(10_000, seed=1)
    ]

    async def list_messages(request: web.Request) -> web.Response:
        if latency:
            await asyncio.sleep(latency)
        skip = int(request.query.get("skip", "0"))
        top = int(request.query.get("top", "100"))
        items = b",".join(
            b'{"id":"m%d",' % i + base[i % len(base)]
            for i in range(skip, min(skip + top, messages))
        )
        body = b'{"count":%d,"items":[%s]}' % (messages, items)
        return web.Response(body=body, content_type="application/json")

    await _serve_app(list_messages, None)


async def _serve_app(list_messages: Any, get_message: Any) -> None:
    app = web.Application()
    app.router.add_get("/api/external_messages", list_messages)
    if get_message is not None:
        app.router.add_get("/api/external_messages/{id}", get_message)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # private, Optional before start(); set by start() above
    print(f"http://127.0.0.1:{port}", flush=True)
    try:
        await _wait_for_stdin_eof()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--kind", choices=["fake", "minimal", "synthetic"], default="fake"
    )
    args = parser.parse_args()
    serve = {"fake": serve_fake, "minimal": serve_minimal}.get(
        args.kind, serve_synthetic
    )
    asyncio.run(serve(args.messages, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
