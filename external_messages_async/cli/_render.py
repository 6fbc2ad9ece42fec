"""Rich rendering and output sinks: where messages and reports are written.

:class:`Sink` writes messages to stdout or a file, a page at a time, in one
format (an :class:`Encoder` turns a page into text); :func:`summary_tables`
and :func:`print_demo` render the demo's report with rich; :func:`progress_bar`
is the bar ``list`` shows on stderr. What the lines, rows and figures are is
decided by the pure :mod:`._format`.

Records go to stdout or the file and nowhere else: the sink holds on to the
stdout stream it was given when it was made, and the progress bar never
redirects stdout, so progress on a terminal cannot swallow a redirected
export.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, TextIO

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
from ._format import (
    TableLayout,
    Tally,
    csv_text,
    jsonl_bytes,
    jsonl_text,
    plan_table,
    record_lines,
    table_header,
    table_lines,
)

if TYPE_CHECKING:
    from .._models import ExternalMessage
    from ._run import DemoResult

__all__ = [
    "Encoder",
    "Format",
    "OutputClosed",
    "Sink",
    "encoder_for",
    "print_demo",
    "progress_bar",
    "summary_tables",
]

Format = Literal["table", "jsonl", "csv", "record"]

#: The default width of a table that is not on a terminal.
DEFAULT_WIDTH = 80


# --- encoders: a page of messages as text --------------------------------------------


class Encoder:
    """Turns pages of messages into text in one format; JSON lines by default.

    Subclasses override :meth:`page` and, when the format has a header or a
    closing line, :meth:`start` and :meth:`end`.
    """

    def start(self) -> str:
        """Text written before the first message (a CSV header), or ``""``."""
        return ""

    def page(self, messages: Sequence[ExternalMessage]) -> str:
        """Give the text of one page.

        Args:
            messages: The messages.

        Returns:
            Whole records only.
        """
        return jsonl_text(messages)

    def page_bytes(self, messages: Sequence[ExternalMessage]) -> bytes:
        """:meth:`page` encoded as UTF-8, what a file receives.

        Args:
            messages: The messages.

        Returns:
            Whole records only.
        """
        return self.page(messages).encode()

    def end(self, written: int) -> str:
        """Text written after the last message, or ``""``.

        Args:
            written: How many messages were written.
        """
        return ""


class _JsonlEncoder(Encoder):
    """JSON lines, made as bytes for a file: no decoding and encoding again."""

    def page_bytes(self, messages: Sequence[ExternalMessage]) -> bytes:
        return jsonl_bytes(messages)


class _CsvEncoder(Encoder):
    def start(self) -> str:
        return csv_text((), header=True)

    def page(self, messages: Sequence[ExternalMessage]) -> str:
        return csv_text(messages)


class _TableEncoder(Encoder):
    """Lines of a table whose widths are chosen from the first page."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._layout: TableLayout | None = None

    def page(self, messages: Sequence[ExternalMessage]) -> str:
        lines: list[str] = []
        if self._layout is None and messages:
            self._layout = plan_table(self._width, messages)
            lines.extend(table_header(self._layout))
        for message in messages:
            lines.extend(table_lines(message, self._layout))  # type: ignore[arg-type]  # set above for any non-empty page
        return "".join(line + "\n" for line in lines)

    def end(self, written: int) -> str:
        return "" if written else "No messages.\n"


class _RecordEncoder(Encoder):
    """Vertical records, every field in full, a blank line between two."""

    def __init__(self) -> None:
        self._first = True

    def page(self, messages: Sequence[ExternalMessage]) -> str:
        parts: list[str] = []
        for message in messages:
            if not self._first:
                parts.append("\n")
            self._first = False
            parts.extend(line + "\n" for line in record_lines(message))
        return "".join(parts)


def encoder_for(fmt: Format, *, width: int = DEFAULT_WIDTH) -> Encoder:
    """Pick the encoder of a format.

    Args:
        fmt: ``jsonl``, ``csv``, ``table`` or ``record``.
        width: The line width of a table.

    Returns:
        A new encoder (encoders keep state between pages).
    """
    if fmt == "csv":
        return _CsvEncoder()
    if fmt == "table":
        return _TableEncoder(width)
    if fmt == "record":
        return _RecordEncoder()
    return _JsonlEncoder()


# --- the sink --------------------------------------------------------------------


class OutputClosed(CliError):
    """The reader of stdout went away (``| head``): stop quietly, exit 0."""

    def __init__(self) -> None:
        super().__init__(None, 0)


def _is_regular_or_missing(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _new_file_mode(path: str) -> int:
    """The mode the target would get if written in place: its own, or 0666 less umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class Sink:
    """Where ``list`` and ``get`` write messages: stdout or a file, in one format.

    Writes go a page at a time, and each page is flushed, so a reader of a
    pipe sees records as pages arrive.

    A file is written to a hidden temporary file beside it, renamed into place
    by :meth:`close` when the command ends normally. When it does not, the
    records written so far (whole records only) are kept as ``FILE.partial``
    (:attr:`partial`) and ``FILE`` is left as it was; with nothing written,
    the temporary file is removed. A path that is not a regular file (a
    device, a pipe) is written in place.

    Args:
        fmt: ``table``, ``jsonl``, ``csv`` or ``record``.
        path: The file to write, or ``None`` for stdout.
        stdout: The stream used when ``path`` is ``None``; taken now
            (default ``sys.stdout`` as it is now).
        width: The line width of a table.
    """

    def __init__(
        self,
        fmt: Format,
        path: str | None = None,
        *,
        stdout: TextIO | None = None,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        self.fmt = fmt
        self.path = path
        self._stdout = stdout if stdout is not None else sys.stdout
        self._encoder = encoder_for(fmt, width=width)
        self._fd: int | None = None
        self._temp: str | None = None
        self._size = 0
        self._started = False
        self.written = 0
        """How many messages were written so far (whole records)."""
        self.written_at = time.monotonic()
        """The :func:`time.monotonic` time of the last page written (or of creation)."""
        self.partial: str | None = None
        """The ``FILE.partial`` kept by an unfinished run, or ``None``."""
        self.closed = False

    @property
    def target(self) -> str:
        """The file name, or ``stdout``."""
        return self.path if self.path is not None else "stdout"

    def open(self) -> None:
        """Create the output file (its temporary file) now; idempotent.

        Raises:
            CliError: The file cannot be created.
        """
        if self.path is None or self._fd is not None:
            return
        try:
            if _is_regular_or_missing(self.path):
                directory, name = os.path.split(os.path.abspath(self.path))
                fd, self._temp = tempfile.mkstemp(
                    prefix=f".{name}.", suffix=".tmp", dir=directory
                )
                os.chmod(self._temp, _new_file_mode(self.path))
                self._fd = fd
            else:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC)
        except OSError as exc:
            raise self._write_error(exc) from None

    def _write_error(self, exc: OSError) -> CliError:
        return CliError(
            f"cannot write {self.target}: {exc.strerror or exc}", EXIT_API_ERROR
        )

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self.path is None:
            try:
                self._stdout.write(text)
                self._stdout.flush()
            except BrokenPipeError:
                # Nobody reads any more; let the interpreter's last flush go nowhere.
                with contextlib.suppress(OSError, ValueError):
                    fileno = self._stdout.fileno()
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, fileno)
                    os.close(devnull)
                raise OutputClosed() from None
            except OSError as exc:
                raise self._write_error(exc) from None
            return
        self._write_file(text.encode())

    def _write_file(self, data: bytes) -> None:
        if not data:
            return
        self.open()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]  # type: ignore[arg-type]  # opened above
        except OSError as exc:
            # Keep whole records only: cut the half-written page off again.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # type: ignore[arg-type]  # opened above
            raise self._write_error(exc) from None
        self._size += len(data)

    def write_page(self, messages: Sequence[ExternalMessage]) -> None:
        """Write one page of messages and flush it.

        Args:
            messages: The messages, in order.

        Raises:
            OutputClosed: stdout's reader went away.
            CliError: The output cannot be written (the page is not counted).
        """
        start = ""
        if not self._started:
            start = self._encoder.start()
        if self.path is None:
            self._emit(start + self._encoder.page(messages))
        else:
            self._write_file(start.encode() + self._encoder.page_bytes(messages))
        self._started = True
        self.written += len(messages)
        self.written_at = time.monotonic()

    def write(self, message: ExternalMessage) -> None:
        """Write one message (a page of one).

        Args:
            message: The message.
        """
        self.write_page([message])

    def close(self, *, complete: bool = True) -> None:
        """Finish the output and close the file; idempotent.

        Args:
            complete: Whether the command ended normally. Then the closing
                text is written and a file is renamed into place; if not,
                written records are kept in ``FILE.partial``.

        Raises:
            CliError: The file cannot be finished.
        """
        if self.closed:
            return
        self.closed = True
        try:
            if complete:
                if not self._started:
                    self._emit(self._encoder.start())
                    self._started = True
                self._emit(self._encoder.end(self.written))
        finally:
            self._finish_file(complete=complete)

    def _finish_file(self, *, complete: bool) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)
        if self._temp is None or self.path is None:
            return
        try:
            if complete:
                os.replace(self._temp, self.path)
            elif self.written:
                self.partial = self.path + ".partial"
                os.replace(self._temp, self.partial)
            else:
                os.unlink(self._temp)
        except OSError as exc:
            raise self._write_error(exc) from None


# --- rendering -----------------------------------------------------------------------


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


def summary_tables(tally: Tally) -> list[Table]:
    """Build the demo's summary tables: counts by field, then failures by reason.

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
    return [counts, failures]


def print_demo(result: DemoResult, console: Console) -> None:
    """Print the demo's report: summary tables, the latest messages, the throughput.

    Args:
        result: What :func:`._run.run_demo` measured.
        console: Where to print.
    """
    for table in summary_tables(result.tally):
        console.print(table)
    latest = result.tally.latest()
    console.print(f"Latest {len(latest)} messages", highlight=False)
    console.print(
        _TableEncoder(console.width).page(latest).rstrip("\n"),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"\nPulled {result.tally.total:,} of {result.count:,} messages in "
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
        # Records go to the stdout the sink holds; nothing else may take it over.
        redirect_stdout=False,
        redirect_stderr=False,
    )
