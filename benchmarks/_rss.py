"""Peak RSS added by walking the whole collection; run in a fresh process.

Usage: ``python benchmarks/_rss.py URL``; prints ``<messages> <added MiB>``.
"""

from __future__ import annotations

import asyncio
import resource
import sys

from external_messages_async import ExternalMessagesClient

TOKEN = "bench-token"


def peak_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(url: str) -> None:
    async with ExternalMessagesClient(url, token=TOKEN) as client:
        await client.get_page(top=100)  # pool, converter and first page warmed up
        before = peak_mib()
        walked = 0
        async with client.list() as pager:
            async for _message in pager:
                walked += 1
        after = peak_mib()
    print(walked, f"{after - before:.1f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
