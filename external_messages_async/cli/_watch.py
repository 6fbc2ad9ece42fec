"""The ``watch`` command: print new messages as they arrive, until Ctrl-C.

Its click command and its async function live here; ``_app.py`` registers the
command with one line. The SDK and rich are imported only when it runs.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ._errors import EXIT_INTERRUPTED, CliError
from ._options import (
    InstantType,
    connection_from,
    connection_options,
    make_client,
    run_sync,
    stderr_console,
    stdout_is_terminal,
)

if TYPE_CHECKING:
    from .._client import ExternalMessagesClient
    from ._render import Format, Sink

__all__ = ["run_watch", "watch"]


async def run_watch(
    client: ExternalMessagesClient,
    sink: Sink,
    *,
    since: datetime | None = None,
    poll_interval: float = 5.0,
    updates: bool = False,
    count: int | None = None,
) -> int:
    """Write each new message to ``sink`` as it appears; the core of ``watch``.

    Args:
        client: An open client.
        sink: Where to write (stdout).
        since: Show messages created from this instant on; ``None`` shows
            only messages newer than the newest when the watch starts.
        poll_interval: The longest wait between polls, in seconds.
        updates: Show a message again when its delivery state changes.
        count: Stop after this many messages; ``None`` watches until stopped.

    Returns:
        How many messages were written.

    Raises:
        ExternalMessagesError: Authentication or permission failed, or
            another error that polling again cannot mend.
    """
    sink.open()
    if count == 0:
        return 0
    async with client.watch(
        since=since, poll_interval=poll_interval, updates=updates
    ) as messages:
        async for message in messages:
            sink.write(message)
            if sink.written == count:
                break
    return sink.written


@click.command()
@connection_options
@click.option(
    "--since",
    type=InstantType(),
    help="Show messages created from this date or datetime on [default: only "
    "messages newer than the newest at the start].",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="The longest wait between polls, in seconds; shorter right after "
    "messages arrived.",
)
@click.option(
    "--updates",
    is_flag=True,
    help="Show a recent message again when its delivery state changes.",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    help="Stop after this many messages [default: run until Ctrl-C].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    help="Output format [default: table on a terminal, else jsonl].",
)
def watch(
    since: datetime | None,
    poll_interval: float,
    updates: bool,
    count: int | None,
    fmt: Format | None,
    **connection: Any,
) -> None:
    """Print new messages as they arrive, until Ctrl-C.

    Messages go to stdout, one table row or JSON line each, as soon as a
    poll finds them; failed polls are retried and shown as warnings on
    stderr. Ctrl-C stops it cleanly (exit code 0) with a count on stderr.
    """
    from ._render import Sink

    conn = connection_from(**connection)
    sink = Sink(
        fmt or ("table" if stdout_is_terminal() else "jsonl"),
        width=shutil.get_terminal_size().columns,
    )
    err = stderr_console()

    async def work() -> int:
        async with make_client(conn) as client:
            return await run_watch(
                client, sink, since=since, poll_interval=poll_interval,
                updates=updates, count=count,
            )  # fmt: skip

    try:
        run_sync(work(), err=err, conn=conn)
    except CliError as exc:
        if exc.exit_code != EXIT_INTERRUPTED:
            raise
        err.print(f"watch stopped: {sink.written:,} messages shown", markup=False)
    finally:
        sink.close(complete=False)
