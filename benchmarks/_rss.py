"""Peak RSS added by walking the whole collection; run in a fresh process.

Usage: ``python benchmarks/_rss.py URL``; prints
``<messages> <peak RSS added, MiB> <highest sampled RSS added, MiB>``: the
first from ``ru_maxrss``, the second from ``VmRSS`` read every 1 000 messages.
"""

from __future__ import annotations

import asyncio
import resource
import sys

from external_messages_async import ExternalMessagesClient

TOKEN = "bench-token"


def current_mib() -> float:
    for line in open("/proc/self/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(url: str) -> None:
    async with ExternalMessagesClient(url, token=TOKEN) as client:
        await client.get_page(top=100)  # pool, converter and first page warmed up
        before = peak_mib()
        start = highest = current_mib()
        walked = 0
        async with client.list() as pager:
            async for _message in pager:
                walked += 1
                if walked % 1000 == 0:
                    highest = max(highest, current_mib())
        after = peak_mib()
    print(walked, f"{after - before:.1f}", f"{highest - start:.1f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
