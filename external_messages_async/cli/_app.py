"""The click layer: the ``cli`` group, the ``demo``/``list``/``get``/``serve`` commands, ``main()``.

Each command turns its flags into plain values and runs its async function
from :mod:`._run` with :func:`._options.run_sync`. Filters are built by the
pure :mod:`external_messages_async._filters`. Commands added later live in
their own module ``_<name>.py`` and are registered at the end of this file
with one ``cli.add_command(...)`` line.

Every failure ends as one line on stderr and an exit code (see
:mod:`._errors`). Secrets given on the command line or in the environment are
never printed, not even inside an error message.

click and rich come with the ``cli`` extra; without them, importing this
module prints one line saying what to install and exits. The SDK, rich and
asyncio are imported only when a command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

try:
    import click
    import rich  # noqa: F401 - checked here so that the hint names it
except ImportError as exc:  # pragma: no cover - tested in a subprocess
    raise SystemExit(
        f"external-messages needs the 'cli' extra ({exc.name} is missing): "
        "pip install 'external-messages-async[cli]'"
    ) from None

from .._models import DeliveryStatus, Direction, MessageType
from .._version import __version__
from ._errors import EXIT_API_ERROR, EXIT_INTERRUPTED, CliError, redact
from ._options import (
    InstantType,
    connection_from,
    connection_options,
    make_client,
    run_sync,
    secrets_in,
    stderr_console,
    stdout_is_terminal,
)
from ._run import DEMO_TOKEN

if TYPE_CHECKING:
    from datetime import datetime

    from ._render import Format

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


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
        # What a usage error or a bug's message could echo must not show.
        secrets = secrets_in(sys.argv[1:] if args is None else args)
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
            message = " ".join(exc.format_message().split())
            _error_line(redact(message, secrets) + hint)
            sys.exit(exc.exit_code)
        except Exception as exc:  # the last guard: a bug still gets one line
            _error_line(redact(f"unexpected {type(exc).__name__}: {exc}", secrets))
            sys.exit(EXIT_API_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="external-messages")
def cli() -> None:
    """Read the SMS and WhatsApp messages of a PortSIP PBX.

    Start with `external-messages demo`: it needs no PBX.
    """


_SEED_OPTION = click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the generated data."
)


@cli.command()
@click.option(
    "--messages",
    type=click.IntRange(min=1),
    default=3000,
    show_default=True,
    help="Messages in the embedded PBX.",
)
@_SEED_OPTION
def demo(messages: int, seed: int) -> None:
    """Pull every message from an embedded fake PBX and summarise them.

    No network, no credentials: a stand-in PBX starts in this process.
    """
    from rich.console import Console

    from ._render import print_demo
    from ._run import run_demo

    err = stderr_console()
    result = run_sync(run_demo(messages=messages, seed=seed), err=err)
    print_demo(result, Console(highlight=False))


_CHOICES = {
    "type": [member.value for member in MessageType],
    "direction": [member.value for member in Direction],
    "delivery": [member.value for member in DeliveryStatus],
}


@cli.command(name="list")
@connection_options
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
    type=InstantType(),
    help="Created at or after this date or datetime (a date is midnight UTC).",
)
@click.option(
    "--until",
    type=InstantType(),
    help="Created before this date or datetime (a date is midnight UTC).",
)
@click.option("--search", help="Free-text search.")
@click.option(
    "--filter", "raw_filter", help="A raw OData filter, ANDed with the options above."
)
@click.option("--orderby", help="A sort, such as 'created_at desc'.")
@click.option("--limit", type=click.IntRange(min=1), help="The most messages to fetch.")
@click.option(
    "--skip",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Pass over this many matching messages first (to resume an export).",
)
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
    type=click.Path(dir_okay=False),
    help="Write to this file (jsonl or csv) instead of stdout; it is replaced "
    "only when the export completes.",
)
def list_(
    msg_type: tuple[str, ...],
    direction: tuple[str, ...],
    delivery: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    search: str | None,
    raw_filter: str | None,
    orderby: str | None,
    limit: int | None,
    skip: int,
    page_size: int,
    fmt: Format | None,
    output: str | None,
    **connection: Any,
) -> None:
    """List messages from a PBX, filtered, as a table, JSON lines or CSV.

    Records go to stdout (or --output) and nowhere else; progress, warnings
    and errors go to stderr. On a terminal, table rows appear as pages
    arrive. Writing to a file or a pipe shows a progress bar on stderr when
    stderr is a terminal. Ctrl-C or a failure keeps what was written (in
    FILE.partial for --output) and says which --skip resumes.
    """
    import shutil

    from .._filters import build_filter
    from ._format import stop_summary, written_summary
    from ._render import Sink
    from ._run import ListOptions, run_list

    if fmt == "table" and output is not None:
        raise click.UsageError(
            "--format table is for the terminal; write a file with --format "
            "jsonl or --format csv"
        )
    try:
        query = build_filter(
            msg_type=msg_type, direction=direction, delivery=delivery,
            since=since, until=until, extra=raw_filter,
        )  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    conn = connection_from(**connection)
    to_terminal = output is None and stdout_is_terminal()
    sink = Sink(
        fmt or ("table" if to_terminal else "jsonl"),
        output,
        width=shutil.get_terminal_size().columns,
    )
    err = stderr_console()
    options = ListOptions(
        filter=query,
        search=search,
        orderby=orderby,
        limit=limit,
        page_size=page_size,
        skip=skip,
    )

    async def work() -> int:
        async with make_client(conn) as client:
            return await run_list(
                client,
                options,
                sink,
                err=err,
                progress=not to_terminal and err.is_terminal,
            )

    try:
        written = run_sync(work(), err=err, conn=conn, since=lambda: sink.written_at)
    except CliError as exc:
        if exc.exit_code == EXIT_API_ERROR and exc.message and sink.written:
            summary = stop_summary(
                sink.written, sink.target, partial=sink.partial, skip=skip
            )
            exc.message = f"{exc.message} ({summary})"
        raise
    if not to_terminal:
        err.print(written_summary(written, sink.target), markup=False)


@cli.command()
@connection_options
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["record", "table", "jsonl"]),
    default="record",
    show_default=True,
    help="Output format: every field of each message, one per line; a table "
    "row each; or JSON lines.",
)
def get(
    ids: tuple[str, ...],
    fmt: Format,
    **connection: Any,
) -> None:
    """Print messages by id, in full."""
    import shutil

    from ._render import Sink
    from ._run import run_get

    conn = connection_from(**connection)
    sink = Sink(fmt, width=shutil.get_terminal_size().columns)
    err = stderr_console()

    async def work() -> int:
        async with make_client(conn) as client:
            return await run_get(client, ids, sink)

    run_sync(work(), err=err, conn=conn)


def _rate_option(name: str, help: str) -> Callable[[F], F]:
    """A ``serve`` fault knob: a share of requests from 0 to 1."""
    return click.option(
        name, type=click.FloatRange(0, 1), default=0.0, show_default=True, help=help
    )


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
@_SEED_OPTION
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
@_rate_option("--rate-429", "Share of requests answered 429.")
@_rate_option("--rate-500", "Share of requests answered 500.")
@_rate_option("--rate-503", "Share of requests answered 503.")
@_rate_option("--rate-drop", "Share of connections dropped.")
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
    from rich.console import Console

    from ..testing import Faults
    from ._run import run_serve

    faults = Faults(
        latency=latency, rate_429=rate_429, rate_500=rate_500,
        rate_503=rate_503, rate_drop=rate_drop,
    )  # fmt: skip
    err = stderr_console()
    try:
        run_sync(
            run_serve(
                port=port, messages=messages, seed=seed, token=token,
                faults=faults, console=Console(highlight=False),
            ),
            err=err,
            secrets=[token] if token != DEMO_TOKEN else [],
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


# Commands in their own modules, registered here (imported last: they use the
# shared option helpers, not this module).
from ._watch import watch  # noqa: E402

cli.add_command(watch)
