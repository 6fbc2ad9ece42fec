"""What each ``external-messages`` command does, as async functions; and its output.

:func:`run_demo`, :func:`run_list`, :func:`run_get` and :func:`run_serve` are
the cores the click layer in :mod:`._cli` runs with :func:`asyncio.run`; tests
await them in their own loop. :class:`Sink` writes messages to stdout or a
file in one format, and the ``*_table`` functions render with rich. The pure
decisions (filters, rows, counts) live in :mod:`._filters` and :mod:`._output`.

Imported only by :mod:`._cli`, after it checked that the ``cli`` extra (click
and rich) is installed: the library itself never imports rich.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Literal, TextIO

import attrs
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ._client import ExternalMessagesClient
from ._models import ExternalMessage
from ._output import (
    TABLE_COLUMNS,
    CsvWriter,
    JsonlWriter,
    MessageWriter,
    Tally,
    table_row,
    throughput,
    written_summary,
)
from .errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ExternalMessagesError,
    NotFoundError,
    PermissionDeniedError,
)

__all__ = [
    "DEMO_TOKEN",
    "DEMO_USERS",
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "DemoResult",
    "Format",
    "ListOptions",
    "Sink",
    "describe_error",
    "message_table",
    "print_demo",
    "redact",
    "run_demo",
    "run_get",
    "run_list",
    "run_serve",
    "summary_tables",
]

#: Exit code for an API or connection error (and any other runtime failure).
EXIT_API_ERROR = 1
#: Exit code for a usage error: an unknown flag, a bad value, a missing option.
EXIT_USAGE = 2
#: Exit code after Ctrl-C, as shells report a SIGINT.
EXIT_INTERRUPTED = 130

#: The token ``serve`` accepts when none is given; printed at start.
DEMO_TOKEN = "demo-token"
#: The login ``serve`` accepts (the fake server's default user).
DEMO_USERS = {"admin": "admin-password"}

Format = Literal["table", "jsonl", "csv"]


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit code.

    Args:
        message: The line to print, or ``None`` when the line was already printed.
        exit_code: The process exit code.
    """

    def __init__(self, message: str | None, exit_code: int = EXIT_API_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def redact(text: str, secrets: Sequence[str | None]) -> str:
    """Replace every given secret in ``text`` with ``***``.

    Args:
        text: A line about to be printed.
        secrets: The secrets in play; ``None`` and ``""`` are skipped.

    Returns:
        The text without them.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_error(exc: ExternalMessagesError, *, url: str | None = None) -> str:
    """Say in one line what went wrong with a request, for a person.

    Args:
        exc: The package's exception.
        url: The PBX address, named in connection errors.

    Returns:
        The line, without a trailing newline.
    """
    detail = " ".join(str(exc).split())
    if isinstance(exc, AuthenticationError):
        return f"the PBX refused the credentials ({detail})"
    if isinstance(exc, PermissionDeniedError):
        return f"the credentials may not read these messages ({detail})"
    if isinstance(exc, BadRequestError):
        return f"the PBX rejected the request ({detail})"
    if isinstance(exc, APIConnectionError):
        where = f"cannot reach {url}: " if url else ""
        return f"{where}{detail}"
    return detail


# --- output sinks -------------------------------------------------------------


class _TableWriter:
    """Collects messages and prints them as one rich table at the end."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._messages: list[ExternalMessage] = []
        self.written = 0

    def write(self, message: ExternalMessage) -> None:
        self._messages.append(message)
        self.written += 1

    def finish(self) -> None:
        if self._messages:
            self._console.print(message_table(self._messages))
        else:
            self._console.print("No messages.")


class Sink:
    """Where ``list`` and ``get`` write messages: stdout or a file, in one format.

    The file is opened on the first :meth:`write` (or on :meth:`close` when
    nothing came), so a refused login leaves an existing file untouched.
    :meth:`close` flushes what was written and closes the file; after a stop
    half-way, a JSON lines file holds only whole lines and a CSV file is
    complete up to its last row.

    Args:
        fmt: ``table``, ``jsonl`` or ``csv``.
        path: The file to write, or ``None`` for ``stdout``.
        stdout: The stream used when ``path`` is ``None`` (default ``sys.stdout``).
    """

    def __init__(
        self, fmt: Format, path: str | None = None, *, stdout: TextIO | None = None
    ) -> None:
        self.fmt = fmt
        self.path = path
        self._stdout = stdout
        self._file: IO[str] | None = None
        self._writer: MessageWriter | None = None
        self.closed = False

    @property
    def written(self) -> int:
        """How many messages were written so far."""
        return self._writer.written if self._writer is not None else 0

    @property
    def target(self) -> str:
        """The file name, or ``stdout``."""
        return self.path if self.path is not None else "stdout"

    def _open(self) -> MessageWriter:
        if self._writer is not None:
            return self._writer
        if self.path is not None:
            try:
                self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise CliError(
                    f"cannot write {self.path}: {exc.strerror or exc}", EXIT_API_ERROR
                ) from None
            stream: TextIO = self._file
        else:
            stream = self._stdout if self._stdout is not None else sys.stdout
        if self.fmt == "csv":
            self._writer = CsvWriter(stream)
        elif self.fmt == "jsonl":
            self._writer = JsonlWriter(stream)
        else:
            self._writer = _TableWriter(
                Console(file=stream, highlight=False, soft_wrap=False)
            )
        return self._writer

    def write(self, message: ExternalMessage) -> None:
        """Write one message, opening the output first if needed.

        Args:
            message: The message.
        """
        self._open().write(message)

    def close(self, *, complete: bool = True) -> None:
        """Finish the output (a table is printed now) and close the file; idempotent.

        Args:
            complete: Whether the command ended normally. If it did not and
                nothing was written, no file is created or truncated.
        """
        if self.closed:
            return
        self.closed = True
        if self._writer is None and not complete:
            return
        try:
            self._open().finish()
        finally:
            if self._file is not None:
                self._file.close()


# --- rendering ------------------------------------------------------------------


def message_table(
    messages: Sequence[ExternalMessage], *, title: str | None = None
) -> Table:
    """Build the rich table of messages that ``list`` and ``get`` print.

    Args:
        messages: The messages, in the order to show.
        title: A title above the table.

    Returns:
        The table.
    """
    rows = [table_row(message) for message in messages]
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
        expand=True,
    )
    for column in TABLE_COLUMNS:
        if column == "content":
            # The one flexible column: it takes what the others leave.
            table.add_column(column, no_wrap=True, overflow="ellipsis", ratio=1)
        else:
            table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


def summary_tables(tally: Tally) -> list[Table]:
    """Build the demo's summary: counts by field, failures by reason, latest messages.

    Args:
        tally: What was counted.

    Returns:
        The tables, in print order.
    """
    counts = Table(
        title="Messages by type, direction and delivery",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    counts.add_column("field")
    counts.add_column("value")
    counts.add_column("messages", justify="right")
    counts.add_column("share", justify="right")
    for field, counter in (
        ("type", tally.by_type),
        ("direction", tally.by_direction),
        ("delivery", tally.by_delivery),
    ):
        for index, (value, number) in enumerate(counter.most_common()):
            counts.add_row(
                field if index == 0 else "",
                value or "(none)",
                f"{number:,}",
                _share(number, tally.total),
                end_section=index == len(counter) - 1,
            )
    failures = Table(
        title=f"Failures ({tally.failures:,} in the ERR state) by reason",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    failures.add_column("reason")
    failures.add_column("messages", justify="right")
    for reason, number in tally.failure_reasons.most_common():
        failures.add_row(reason, f"{number:,}")
    latest = message_table(
        tally.latest(), title=f"Latest {min(tally.keep_latest, tally.total)} messages"
    )
    return [counts, failures, latest]


# --- core async functions ---------------------------------------------------------


@attrs.frozen
class ListOptions:
    """What ``list`` asks the PBX for.

    Attributes:
        filter: The OData filter, or ``None``.
        search: The free-text search, or ``None``.
        orderby: The sort, or ``None``.
        limit: The most messages to fetch, or ``None`` for all.
        page_size: Messages per request, 1 to 100.
    """

    filter: str | None = None
    search: str | None = None
    orderby: str | None = None
    limit: int | None = None
    page_size: int = 100


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


async def run_list(
    client: ExternalMessagesClient,
    options: ListOptions,
    sink: Sink,
    *,
    err: Console,
    progress: bool = False,
) -> int:
    """Fetch every matching message and write it to ``sink``; the core of ``list``.

    The sink is closed however this ends. When it ends by cancellation or
    Ctrl-C, one line on ``err`` says how many messages were written, and the
    interruption goes on to the caller.

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
    pager = client.list(
        page_size=options.page_size,
        limit=options.limit,
        filter=options.filter,
        search=options.search,
        orderby=options.orderby,
    )
    bar = _progress_bar(err) if progress else None
    started = time.perf_counter()
    try:
        with bar if bar is not None else contextlib.nullcontext():
            task = bar.add_task("messages", total=None, rate="") if bar else None
            async for page in pager.pages():
                for message in page.items:
                    sink.write(message)
                if bar is not None and task is not None:
                    total = (
                        page.count
                        if options.limit is None
                        else min(page.count, options.limit)
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
            f"interrupted: {written_summary(sink.written, sink.target)}",
            highlight=False,
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
    missing: list[str] = []
    failures: list[BaseException] = []
    try:
        results = await client.get_many(ids, return_exceptions=True)
        for message_id, result in zip(ids, results, strict=True):
            if isinstance(result, ExternalMessage):
                sink.write(result)
            elif isinstance(result, NotFoundError):
                missing.append(message_id)
            else:
                failures.append(result)
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
        return throughput(self.tally.total, self.seconds)


async def run_demo(*, messages: int = 3000, seed: int = 1) -> DemoResult:
    """Start the fake PBX in-process and pull every message through the SDK.

    Args:
        messages: How many seeded messages the fake PBX holds.
        seed: The seed of the data.

    Returns:
        The counts and the timing.
    """
    from .testing import FakePortSIPServer

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


def print_demo(result: DemoResult, console: Console) -> None:
    """Print the demo's report: the summary tables, then the count and throughput.

    Args:
        result: What :func:`run_demo` measured.
        console: Where to print.
    """
    for table in summary_tables(result.tally):
        console.print(table)
    console.print(
        f"Pulled {result.tally.total:,} of {result.count:,} messages in "
        f"{result.pages:,} pages in {result.seconds:.2f} s: "
        f"{result.rate:,.0f} messages/s.",
        highlight=False,
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
    from .testing import FakePortSIPServer

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
