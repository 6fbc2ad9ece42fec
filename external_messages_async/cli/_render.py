"""Rich rendering and output sinks: where messages and reports are written.

:class:`Sink` writes messages to stdout or a file in one format through a
:class:`MessageWriter`; :func:`message_table`, :func:`summary_tables` and
:func:`print_demo` render with rich; :func:`progress_bar` is the bar ``list``
shows on stderr. What the lines, rows and figures are is decided by the pure
:mod:`._format`.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Literal, Protocol, TextIO

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

from ._errors import EXIT_API_ERROR, CliError
from ._format import CSV_FIELDS, TABLE_COLUMNS, Tally, csv_row, jsonl_line, table_row

if TYPE_CHECKING:
    from .._models import ExternalMessage
    from ._run import DemoResult

__all__ = [
    "CsvWriter",
    "Format",
    "JsonlWriter",
    "MessageWriter",
    "Sink",
    "message_table",
    "print_demo",
    "progress_bar",
    "summary_tables",
]

Format = Literal["table", "jsonl", "csv"]


# --- writers and the sink ------------------------------------------------------------


class MessageWriter(Protocol):
    """Something that writes messages one at a time to a stream."""

    written: int

    def write(self, message: ExternalMessage) -> None:
        """Write one message."""

    def finish(self) -> None:
        """Write what is still pending (nothing for line formats)."""


class JsonlWriter:
    """Writes each message as one whole JSON line (see :func:`._format.jsonl_line`).

    Each message is a single ``write`` call, so a stop between two messages
    never leaves half a line behind.

    Args:
        stream: A text stream opened for writing.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written = 0

    def write(self, message: ExternalMessage) -> None:
        """Write one message as one line.

        Args:
            message: The message.
        """
        self._stream.write(jsonl_line(message))
        self.written += 1

    def finish(self) -> None:
        """Flush the stream."""
        self._stream.flush()


class CsvWriter:
    """Writes a header of :data:`._format.CSV_FIELDS`, then one row per message.

    Args:
        stream: A text stream opened for writing, with ``newline=""`` when it
            is a file (as the :mod:`csv` module asks).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._csv = csv.writer(stream)
        self._csv.writerow(CSV_FIELDS)
        self.written = 0

    def write(self, message: ExternalMessage) -> None:
        """Write one message as one row.

        Args:
            message: The message.
        """
        self._csv.writerow(csv_row(message))
        self.written += 1

    def finish(self) -> None:
        """Flush the stream."""
        self._stream.flush()


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


# --- rendering -----------------------------------------------------------------------


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


def print_demo(result: DemoResult, console: Console) -> None:
    """Print the demo's report: the summary tables, then the count and throughput.

    Args:
        result: What :func:`._run.run_demo` measured.
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


def progress_bar(console: Console) -> Progress:
    """Build the bar ``list`` shows: done / total, share, rate, elapsed, ETA.

    Args:
        console: The stderr console it draws on.

    Returns:
        The (not yet started) progress display; it disappears when it stops.
    """
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
