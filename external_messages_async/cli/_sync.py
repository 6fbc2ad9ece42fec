"""``external-messages sync``: keep a SQLite archive of a PBX's messages up to date.

A thin shell around :func:`external_messages_async.sync_to_sqlite`: flags in,
a progress display on stderr when it is a terminal, one summary line out.
The pure parts (:func:`parse_duration`, :func:`summary_line`) need neither
click's context nor an event loop.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
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
)

if TYPE_CHECKING:
    from rich.console import Console

    from .._archive import SyncSummary
    from .._client import ExternalMessagesClient

__all__ = ["DurationType", "parse_duration", "run_sync_command", "summary_line", "sync"]

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``3d``, ``12h``, ``1d12h``, ``90m`` or ``0``.

    Args:
        text: Numbers each followed by a unit: ``w``, ``d``, ``h``, ``m``, ``s``.

    Returns:
        The duration.

    Raises:
        ValueError: ``text`` is not such a duration.
    """
    compact = text.strip().lower().replace(" ", "")
    if compact == "0":
        return timedelta(0)
    parts = _DURATION.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit, such as 3d, "
            "12h, 1d12h, 90m or 0"
        )
    total = timedelta(0)
    for number, unit in parts:
        total += timedelta(**{_UNITS[unit]: float(number)})
    return total


class DurationType(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2 stubs
    """A click parameter read by :func:`parse_duration`."""

    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse the flag's value, or fail with click's usage error."""
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _instant(value: datetime | None) -> str:
    from .._archive_rows import format_instant

    return "the beginning" if value is None else format_instant(value)


def summary_line(summary: SyncSummary) -> str:
    """Say in one line what a run did and where the next one starts.

    Args:
        summary: The run's summary.

    Returns:
        ``N new, M updated, K unchanged in P pages, T s; next run from <time>``.
    """
    return (
        f"{summary.new:,} new, {summary.updated:,} updated, "
        f"{summary.unchanged:,} unchanged in {summary.pages:,} pages, "
        f"{summary.seconds:.1f} s; next run from {_instant(summary.next_from)}"
    )


async def run_sync_command(
    client: ExternalMessagesClient,
    db: str,
    *,
    since: datetime | None,
    lookback: timedelta,
    err: Console,
    progress: bool,
) -> SyncSummary:
    """Sync into ``db``, showing progress on ``err``; the core of ``sync``.

    Args:
        client: An open client.
        db: The database file.
        since: Where a first run starts, or ``None`` for everything.
        lookback: How far back each later run reads again.
        err: The stderr console.
        progress: Whether to draw a live progress display.

    Returns:
        The run's summary.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .._archive import sync_to_sqlite

    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not progress,
    )
    task = display.add_task("syncing", total=None)

    def on_page(running: SyncSummary) -> None:
        display.update(
            task,
            description=(
                f"syncing {db}: {running.pages:,} pages, {running.new:,} new, "
                f"{running.updated:,} updated, {running.unchanged:,} unchanged"
            ),
        )

    with display:
        return await sync_to_sqlite(
            client, db, since=since, lookback=lookback, on_page=on_page
        )


@click.command()
@connection_options
@click.option(
    "--db",
    required=True,
    type=click.Path(dir_okay=False),
    help="The SQLite archive; created when missing.",
)
@click.option(
    "--since",
    type=InstantType(),
    help="On the first run, start from this date or datetime (default: everything).",
)
@click.option(
    "--lookback",
    type=DurationType(),
    default="3d",
    show_default=True,
    help="How far before the newest archived message each run reads again, "
    "to catch delivery changes (such as 3d, 12h, 0).",
)
def sync(
    db: str, since: datetime | None, lookback: timedelta, **connection: Any
) -> None:
    """Archive new and changed messages into a SQLite database.

    Run it every night: each run reads what is new since the last one, plus
    the lookback window, and upserts by id. Killing it at any point loses
    nothing; the next run picks up. Refuses, changing nothing, a database
    another sync is writing, another application's database, a corrupted
    file; a full disk stops the run with the archive as of its last page.
    """
    conn = connection_from(**connection)
    err = stderr_console()

    async def work() -> SyncSummary:
        async with make_client(conn) as client:
            return await run_sync_command(
                client,
                db,
                since=since,
                lookback=lookback,
                err=err,
                progress=err.is_terminal,
            )

    try:
        summary = run_sync(work(), err=err, conn=conn)
    except CliError as exc:
        if exc.exit_code == EXIT_INTERRUPTED:
            err.print(
                f"interrupted: {db} keeps the pages written; the next run picks up",
                markup=False,
            )
        raise
    click.echo(summary_line(summary))
