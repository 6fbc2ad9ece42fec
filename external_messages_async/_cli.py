"""The ``external-messages`` command: demo, list, get and serve.

The click layer is thin: each command turns its flags into plain values and
runs one async core function (:func:`run_demo`, :func:`run_list`,
:func:`run_get`, :func:`run_serve`) with :func:`asyncio.run`. Filters and
output formats are decided by the pure :mod:`._filters` and :mod:`._output`.

Every failure ends as one line on stderr and an exit code: 1 for an API or
connection error, 2 for a usage error (a bad flag value), 130 for an
interruption. Secrets given on the command line or in the environment are
never printed, not even inside an error message.

Only this module imports click and rich, which come with the ``cli`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any, Literal, NoReturn, TextIO, TypeVar

try:
    import click
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
except ImportError as exc:  # pragma: no cover - tested in a subprocess
    raise SystemExit(
        f"external-messages needs the 'cli' extra ({exc.name} is missing): "
        "pip install 'external-messages-async[cli]'"
    ) from None

import attrs

from ._client import ExternalMessagesClient
from ._filters import build_filter, parse_instant
from ._models import DeliveryStatus, Direction, ExternalMessage, MessageType
from ._output import (
    TABLE_COLUMNS,
    CsvWriter,
    JsonlWriter,
    MessageWriter,
    Tally,
    table_row,
    throughput,
)
from ._version import __version__
from .errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ExternalMessagesError,
    NotFoundError,
    PermissionDeniedError,
)

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "ListOptions",
    "Sink",
    "cli",
    "main",
    "run_demo",
    "run_get",
    "run_list",
    "run_serve",
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
T = TypeVar("T")

_LOGGER_NAME = "external_messages_async"


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


def _redact(text: str, secrets: Sequence[str | None]) -> str:
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
            f"interrupted: {sink.written:,} messages written to {sink.target}",
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
    """Fetch messages by id, in the order given, and write them; the core of ``get``.

    Args:
        client: An open client.
        ids: The message ids.
        sink: Where to write; closed at the end, so what was found before an
            unknown id is still printed.

    Returns:
        How many messages were written.

    Raises:
        CliError: An id is unknown (exit code 1).
        ExternalMessagesError: Another request failure.
    """
    try:
        for message_id in ids:
            try:
                message = await client.get(message_id)
            except NotFoundError:
                raise CliError(f"no message with id {message_id!r}") from None
            sink.write(message)
    except BaseException:
        sink.close(complete=False)
        raise
    sink.close()
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


# --- the click layer ----------------------------------------------------------------


def _error_line(message: str) -> None:
    click.echo(f"error: {message}", err=True)


class _Group(click.Group):
    """Turns every failure into one line on stderr and a distinct exit code."""

    def main(  # type: ignore[override]  # always exits, like standalone mode
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        **extra: Any,
    ) -> NoReturn:
        extra.pop("standalone_mode", None)
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except CliError as exc:
            if exc.message is not None:
                _error_line(exc.message)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
            _error_line(" ".join(exc.format_message().split()) + hint)
            sys.exit(exc.exit_code)
        except Exception as exc:  # the last guard: a bug still gets one line
            _error_line(f"unexpected {type(exc).__name__}: {exc}")
            sys.exit(EXIT_API_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


class _InstantType(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2 stubs
    name = "DATE|DATETIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_instant(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _ConsoleLogHandler(logging.Handler):
    """Shows the library's warnings as ``warning: ...`` lines on the stderr console."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        self._console.print(
            f"warning: {record.getMessage()}", markup=False, highlight=False
        )


@contextlib.contextmanager
def _library_warnings(console: Console) -> Iterator[None]:
    logger = logging.getLogger(_LOGGER_NAME)
    handler = _ConsoleLogHandler(console)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


@attrs.frozen
class _Connection:
    url: str
    token: str | None = attrs.field(repr=False)
    username: str | None
    password: str | None = attrs.field(repr=False)
    domain: str | None
    insecure: bool
    ca_file: str | None
    timeout: float
    user_scope: bool

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.token, self.password)


def _ssl_setting(conn: _Connection) -> ssl_module.SSLContext | bool | None:
    if conn.insecure and conn.ca_file:
        raise click.UsageError("--insecure and --ca-file cannot be used together")
    if conn.insecure:
        return False
    if conn.ca_file:
        try:
            return ssl_module.create_default_context(cafile=conn.ca_file)
        except (OSError, ssl_module.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise click.BadParameter(
                f"cannot load {conn.ca_file}: {reason}", param_hint="--ca-file"
            ) from None
    return None


def _make_client(conn: _Connection) -> ExternalMessagesClient:
    ssl = _ssl_setting(conn)
    credentials: dict[str, Any]
    if conn.token:
        credentials = {"token": conn.token}
    else:
        credentials = {
            "username": conn.username,
            "password": conn.password,
            "domain": conn.domain,
        }
    try:
        return ExternalMessagesClient(
            conn.url,
            ssl=ssl,
            timeout=conn.timeout,
            user_scope=conn.user_scope,
            **credentials,
        )
    except ValueError as exc:
        raise click.UsageError(_redact(str(exc), conn.secrets)) from None


def _connection(
    *,
    url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    insecure: bool,
    ca_file: str | None,
    timeout: float,
    user_scope: bool,
) -> _Connection:
    if not url:
        raise click.UsageError("--url (or PORTSIP_URL) is required")
    if token and username:
        raise click.UsageError("give either --token or --username, not both")
    if not token and not username:
        raise click.UsageError(
            "give --token (or PORTSIP_TOKEN), or --username and --password "
            "(or PORTSIP_USERNAME and PORTSIP_PASSWORD)"
        )
    if username and not password:
        if not _stdin_is_terminal():
            raise click.UsageError(
                "--password (or PORTSIP_PASSWORD) is required when stdin is not a terminal"
            )
        password = click.prompt(f"Password for {username}", hide_input=True, err=True)
    return _Connection(
        url=url,
        token=token or None,
        username=username or None,
        password=password or None,
        domain=domain or None,
        insecure=insecure,
        ca_file=ca_file,
        timeout=timeout,
        user_scope=user_scope,
    )


def _connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--url",
            envvar="PORTSIP_URL",
            show_envvar=True,
            help="The PBX address, such as https://pbx.example.com:8887.",
        ),
        click.option(
            "--token",
            envvar="PORTSIP_TOKEN",
            show_envvar=True,
            show_default=False,
            help="A bearer token (never printed).",
        ),
        click.option(
            "--username",
            envvar="PORTSIP_USERNAME",
            show_envvar=True,
            help="Log in as this user instead of using a token.",
        ),
        click.option(
            "--password",
            envvar="PORTSIP_PASSWORD",
            show_envvar=True,
            show_default=False,
            help="The user's password; asked for, hidden, when missing on a terminal.",
        ),
        click.option(
            "--domain",
            envvar="PORTSIP_DOMAIN",
            show_envvar=True,
            help="The tenant's SIP domain, for a tenant user.",
        ),
        click.option(
            "--user-scope",
            is_flag=True,
            help="Read /user/external_messages (the signed-in user's own).",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="Skip TLS certificate verification (self-signed PBX).",
        ),
        click.option(
            "--ca-file",
            type=click.Path(dir_okay=False),
            help="Trust the PBX's certificate authority from this PEM file.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=30.0,
            show_default=True,
            help="Seconds one request may take.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _run(
    coro: Awaitable[T],
    *,
    secrets: Sequence[str | None] = (),
    url: str | None = None,
    err: Console,
) -> T:
    """Run a core function to its end, turning failures into :class:`CliError`."""

    async def guarded() -> T:
        with _library_warnings(err):
            return await coro

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        raise CliError(None, EXIT_INTERRUPTED) from None
    except ExternalMessagesError as exc:
        raise CliError(_redact(describe_error(exc, url=url), secrets)) from None


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="external-messages")
def cli() -> None:
    """Read the SMS and WhatsApp messages of a PortSIP PBX.

    Start with `external-messages demo`: it needs no PBX.
    """


@cli.command()
@click.option(
    "--messages",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="Messages in the embedded PBX.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the generated data."
)
def demo(messages: int, seed: int) -> None:
    """Pull every message from an embedded fake PBX and summarise them.

    No network, no credentials: a stand-in PBX starts in this process.
    """
    err = _stderr()
    result = _run(run_demo(messages=messages, seed=seed), err=err)
    print_demo(result, Console(highlight=False))


_CHOICES = {
    "type": [member.value for member in MessageType],
    "direction": [member.value for member in Direction],
    "delivery": [member.value for member in DeliveryStatus],
}


@cli.command(name="list")
@_connection_options
@click.option(
    "--type",
    "msg_type",
    type=click.Choice(_CHOICES["type"], case_sensitive=False),
    multiple=True,
    help="Keep this msg_type; repeat for several.",
)
@click.option(
    "--direction",
    type=click.Choice(_CHOICES["direction"], case_sensitive=False),
    multiple=True,
    help="Keep this direction.",
)
@click.option(
    "--delivery",
    type=click.Choice(_CHOICES["delivery"], case_sensitive=False),
    multiple=True,
    help="Keep this delivery state.",
)
@click.option(
    "--since",
    type=_InstantType(),
    help="Created at or after this date or datetime (a date is midnight UTC).",
)
@click.option(
    "--until",
    type=_InstantType(),
    help="Created before this date or datetime (a date is midnight UTC).",
)
@click.option("--search", help="Free-text search.")
@click.option(
    "--filter", "raw_filter", help="A raw OData filter, ANDed with the options above."
)
@click.option("--orderby", help="A sort, such as 'created_at desc'.")
@click.option("--limit", type=click.IntRange(min=1), help="The most messages to fetch.")
@click.option(
    "--page-size",
    type=click.IntRange(1, 100),
    default=100,
    show_default=True,
    help="Messages per request.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl", "csv"]),
    help="Output format [default: table on a terminal, else jsonl].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file instead of stdout.",
)
def list_(
    url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    user_scope: bool,
    insecure: bool,
    ca_file: str | None,
    timeout: float,
    msg_type: tuple[str, ...],
    direction: tuple[str, ...],
    delivery: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    search: str | None,
    raw_filter: str | None,
    orderby: str | None,
    limit: int | None,
    page_size: int,
    fmt: Format | None,
    output: str | None,
) -> None:
    """List messages from a PBX, filtered, as a table, JSON lines or CSV.

    Writing to a file or a pipe shows a progress bar on stderr. Ctrl-C stops
    cleanly: what was written stays valid.
    """
    try:
        query = build_filter(
            msg_type=msg_type, direction=direction, delivery=delivery,
            since=since, until=until, extra=raw_filter,
        )  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    conn = _connection(
        url=url, token=token, username=username, password=password, domain=domain,
        insecure=insecure, ca_file=ca_file, timeout=timeout, user_scope=user_scope,
    )  # fmt: skip
    to_terminal = output is None and _stdout_is_terminal()
    sink = Sink(fmt or ("table" if to_terminal else "jsonl"), output)
    err = _stderr()
    options = ListOptions(
        filter=query, search=search, orderby=orderby, limit=limit, page_size=page_size
    )

    async def work() -> int:
        async with _make_client(conn) as client:
            return await run_list(
                client,
                options,
                sink,
                err=err,
                progress=not to_terminal and err.is_terminal,
            )

    try:
        written = _run(work(), secrets=conn.secrets, url=conn.url, err=err)
    except CliError as exc:
        if exc.exit_code == EXIT_API_ERROR and sink.written:
            exc.message = (
                f"{exc.message} ({sink.written:,} messages written to {sink.target})"
            )
        raise
    if not to_terminal:
        err.print(f"{written:,} messages written to {sink.target}")


@cli.command()
@_connection_options
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def get(
    url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    user_scope: bool,
    insecure: bool,
    ca_file: str | None,
    timeout: float,
    ids: tuple[str, ...],
    fmt: Format,
) -> None:
    """Print messages by id."""
    conn = _connection(
        url=url, token=token, username=username, password=password, domain=domain,
        insecure=insecure, ca_file=ca_file, timeout=timeout, user_scope=user_scope,
    )  # fmt: skip
    sink = Sink(fmt)
    err = _stderr()

    async def work() -> int:
        async with _make_client(conn) as client:
            return await run_get(client, ids, sink)

    _run(work(), secrets=conn.secrets, url=conn.url, err=err)


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8887,
    show_default=True,
    help="The port; 0 picks a free one.",
)
@click.option(
    "--messages",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Seeded messages to serve.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the generated data."
)
@click.option(
    "--token",
    default=DEMO_TOKEN,
    show_default=False,
    help=f"The bearer token accepted [default: {DEMO_TOKEN}].",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds of delay per request.",
)
@click.option(
    "--rate-429",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered 429.",
)
@click.option(
    "--rate-500",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered 500.",
)
@click.option(
    "--rate-503",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered 503.",
)
@click.option(
    "--rate-drop",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of connections dropped.",
)
def serve(
    port: int,
    messages: int,
    seed: int,
    token: str,
    latency: float,
    rate_429: float,
    rate_500: float,
    rate_503: float,
    rate_drop: float,
) -> None:
    """Run a fake PortSIP PBX on 127.0.0.1, for testing integrations.

    It prints the URL and the credentials it accepts, and stops on Ctrl-C.
    """
    from .testing import Faults

    faults = Faults(
        latency=latency, rate_429=rate_429, rate_500=rate_500,
        rate_503=rate_503, rate_drop=rate_drop,
    )  # fmt: skip
    err = _stderr()
    try:
        _run(
            run_serve(
                port=port, messages=messages, seed=seed, token=token,
                faults=faults, console=Console(highlight=False),
            ),
            secrets=[token] if token != DEMO_TOKEN else [],
            err=err,
        )  # fmt: skip
    except CliError as exc:
        if exc.exit_code != EXIT_INTERRUPTED:
            raise
        err.print("server stopped")
    except OSError as exc:
        raise CliError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None


def main() -> None:
    """Run the ``external-messages`` command with ``sys.argv``; always exits."""
    cli.main(prog_name="external-messages")
