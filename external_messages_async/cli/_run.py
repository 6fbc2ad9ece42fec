"""What each command does, as async functions the click layer runs with asyncio.run.

:func:`run_demo`, :func:`run_list`, :func:`run_get` and :func:`run_serve` are
the cores of ``demo``, ``list``, ``get`` and ``serve``; tests await them in
their own loop. They write through a :class:`._render.Sink` and render with
:mod:`._render`; they never parse flags or exit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import CliError

if TYPE_CHECKING:
    from rich.console import Console

    from .._client import ExternalMessagesClient
    from ._format import Tally
    from ._render import Sink

__all__ = [
    "DEMO_TOKEN",
    "DEMO_USERS",
    "DemoResult",
    "ListOptions",
    "run_demo",
    "run_get",
    "run_list",
    "run_serve",
]

#: The token ``serve`` accepts when none is given; printed at start.
DEMO_TOKEN = "demo-token"
#: The login ``serve`` accepts (the fake server's default user).
DEMO_USERS = {"admin": "admin-password"}


@attrs.frozen
class ListOptions:
    """What ``list`` asks the PBX for.

    Attributes:
        filter: The OData filter, or ``None``.
        search: The free-text search, or ``None``.
        orderby: The sort, or ``None``.
        limit: The most messages to fetch, or ``None`` for all.
        page_size: Messages per request, 1 to 100.
        skip: How many matching messages to pass over first.
    """

    filter: str | None = None
    search: str | None = None
    orderby: str | None = None
    limit: int | None = None
    page_size: int = 100
    skip: int = 0


async def run_list(
    client: ExternalMessagesClient,
    options: ListOptions,
    sink: Sink,
    *,
    err: Console,
    progress: bool = False,
) -> int:
    """Fetch every matching message and write it to ``sink``; the core of ``list``.

    Each page is written as it arrives. The sink is closed however this ends:
    a file is renamed into place only when the walk completed, else what was
    written is kept as ``FILE.partial``. When it ends by cancellation or
    Ctrl-C, one line on ``err`` says what was kept and which ``--skip``
    resumes, and the interruption goes on to the caller.

    Args:
        client: An open client.
        options: The query.
        sink: Where to write.
        err: The stderr console, for the progress bar and the stop line.
        progress: Show a progress bar (done / total from ``count``, rate, ETA).

    Returns:
        How many messages were written.

    Raises:
        ExternalMessagesError: A request failed (after what was written is kept).
        CliError: The output file cannot be written.
    """
    import asyncio

    from ._format import stop_summary, throughput
    from ._render import progress_bar

    pager = client.list(
        page_size=options.page_size,
        limit=options.limit,
        skip=options.skip,
        filter=options.filter,
        search=options.search,
        orderby=options.orderby,
    )
    bar = progress_bar(err) if progress else None
    started = time.perf_counter()
    try:
        sink.open()
        with bar if bar is not None else contextlib.nullcontext():
            task = bar.add_task("messages", total=None, rate="") if bar else None
            async for page in pager.pages():
                sink.write_page(page.items)
                if bar is not None and task is not None:
                    total = (
                        page.count - options.skip
                        if options.limit is None
                        else min(page.count - options.skip, options.limit)
                    )
                    rate = throughput(sink.written, time.perf_counter() - started)
                    bar.update(
                        task,
                        completed=sink.written,
                        total=max(total, sink.written),
                        rate=f"{rate:,.0f} msg/s",
                    )
    except (asyncio.CancelledError, KeyboardInterrupt):
        sink.close(complete=False)
        err.print(
            "interrupted: "
            + stop_summary(
                sink.written, sink.target, partial=sink.partial, skip=options.skip
            ),
            highlight=False,
            markup=False,
        )
        raise
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close()
    return sink.written


async def run_get(
    client: ExternalMessagesClient, ids: Sequence[str], sink: Sink
) -> int:
    """Fetch messages by id, several at once, and write them; the core of ``get``.

    Every message found is written, in the order of ``ids``, before an
    unknown id or another failure is reported.

    Args:
        client: An open client.
        ids: The message ids.
        sink: Where to write; closed at the end.

    Returns:
        How many messages were written.

    Raises:
        CliError: Some ids are unknown (exit code 1); the line names them.
        ExternalMessagesError: Another request failure (the first one).
    """
    from .._models import ExternalMessage
    from ..errors import NotFoundError

    found: list[ExternalMessage] = []
    missing: list[str] = []
    failures: list[BaseException] = []
    try:
        results = await client.get_many(ids, return_exceptions=True)
        for message_id, result in zip(ids, results, strict=True):
            if isinstance(result, ExternalMessage):
                found.append(result)
            elif isinstance(result, NotFoundError):
                missing.append(message_id)
            else:
                failures.append(result)
        if found:
            sink.write_page(found)
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close(complete=not failures and not missing)
    if failures:
        raise failures[0]
    if missing:
        unknown = list(dict.fromkeys(missing))
        shown = ", ".join(repr(message_id) for message_id in unknown)
        what = "no message with id" if len(unknown) == 1 else "no messages with ids"
        raise CliError(f"{what} {shown}")
    return sink.written


@attrs.frozen
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes:
        tally: The counts.
        count: The server's ``count`` for the collection.
        pages: Pages fetched.
        seconds: Wall time of the walk.
    """

    tally: Tally
    count: int
    pages: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages per second."""
        from ._format import throughput

        return throughput(self.tally.total, self.seconds)


async def run_demo(*, messages: int = 3000, seed: int = 1) -> DemoResult:
    """Start the fake PBX in-process and pull every message through the SDK.

    Args:
        messages: How many seeded messages the fake PBX holds.
        seed: The seed of the data.

    Returns:
        The counts and the timing.
    """
    from .._client import ExternalMessagesClient
    from ..testing import FakePortSIPServer
    from ._format import Tally

    tally = Tally()
    async with (
        FakePortSIPServer(messages=messages, seed=seed, token=DEMO_TOKEN) as server,
        ExternalMessagesClient(server.url, token=DEMO_TOKEN) as client,
    ):
        pager = client.list()
        started = time.perf_counter()
        async for message in pager:
            tally.add(message)
        seconds = time.perf_counter() - started
    return DemoResult(
        tally=tally,
        count=pager.stats.first_count or 0,
        pages=pager.stats.pages,
        seconds=seconds,
    )


async def run_serve(
    *,
    port: int = 0,
    messages: int = 1000,
    seed: int = 1,
    token: str = DEMO_TOKEN,
    faults: Any = None,
    console: Console,
    started: Callable[[str], None] | None = None,
) -> None:
    """Run the fake PBX until cancelled; the core of ``serve``.

    Args:
        port: The port to bind; 0 picks a free one.
        messages: How many seeded messages to serve.
        seed: The seed of the data.
        token: The bearer token accepted besides tokens issued at login; it
            is printed only when it is :data:`DEMO_TOKEN`.
        faults: A :class:`~external_messages_async.testing.Faults`, or ``None``.
        console: Where to print the URL and the accepted credentials.
        started: Called with the URL once the server listens.
    """
    from ..testing import FakePortSIPServer

    server = FakePortSIPServer(
        messages=messages,
        seed=seed,
        port=port,
        token=token,
        users=DEMO_USERS,
        faults=faults,
    )
    await server.start()
    shown = token if token == DEMO_TOKEN else "(the value given with --token)"
    username, password = next(iter(DEMO_USERS.items()))
    console.print(
        f"Fake PortSIP PBX serving {messages:,} messages (seed {seed}) at {server.url}\n"
        f"  token:    {shown}\n"
        f"  login:    username {username}, password {password}\n"
        f"  try:      external-messages list --url {server.url} --token {shown} "
        "--limit 5\n"
        "Press Ctrl-C to stop.",
        highlight=False,
        soft_wrap=True,
    )
    if started is not None:
        started(server.url)
    await server.serve_forever()
