"""The ``external-messages`` command line: click parsing, errors, exit codes.

The layer is thin: each command turns its flags into plain values and runs
one async core from :mod:`._commands` with :func:`asyncio.run`. Filters are
built by the pure :mod:`._filters`.

Every failure ends as one line on stderr and an exit code: 1 for an API or
connection error, 2 for a usage error (a bad flag value), 130 for an
interruption. Secrets given on the command line or in the environment are
never printed, not even inside an error message.

click and rich come with the ``cli`` extra; without them, importing this
module prints one line saying what to install and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl as ssl_module
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NoReturn, TypeVar

try:
    import click
    import rich  # noqa: F401 - checked here so that the hint names it
except ImportError as exc:  # pragma: no cover - tested in a subprocess
    raise SystemExit(
        f"external-messages needs the 'cli' extra ({exc.name} is missing): "
        "pip install 'external-messages-async[cli]'"
    ) from None

import attrs
from rich.console import Console

from ._client import ExternalMessagesClient
from ._commands import (
    DEMO_TOKEN,
    EXIT_API_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    Format,
    ListOptions,
    Sink,
    describe_error,
    print_demo,
    redact,
    run_demo,
    run_get,
    run_list,
    run_serve,
)
from ._filters import build_filter, parse_instant
from ._models import DeliveryStatus, Direction, MessageType
from ._output import written_summary
from ._version import __version__
from .errors import ExternalMessagesError

__all__ = [
    "DEMO_TOKEN",
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

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_LOGGER_NAME = "external_messages_async"


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
        # What a usage error or a bug's message could echo must not show.
        secrets = _secrets_in(sys.argv[1:] if args is None else args)
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


_SECRET_OPTIONS = ("--token", "--password")
_SECRET_ENV = ("PORTSIP_TOKEN", "PORTSIP_PASSWORD")


def _secrets_in(args: Sequence[str]) -> list[str]:
    """Return the token and password given on the command line or in the environment.

    Args:
        args: The command-line arguments.

    Returns:
        The secret values, for :func:`redact`.
    """
    found = [os.environ.get(name, "") for name in _SECRET_ENV]
    for index, arg in enumerate(args):
        for option in _SECRET_OPTIONS:
            if arg == option and index + 1 < len(args):
                found.append(args[index + 1])
            elif arg.startswith(option + "="):
                found.append(arg[len(option) + 1 :])
    return [secret for secret in found if secret]


class _InstantType(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2 stubs
    name = "DATE|DATETIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
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
        raise click.UsageError(redact(str(exc), conn.secrets)) from None


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
        raise CliError(redact(describe_error(exc, url=url), secrets)) from None


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


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
    **connection: Any,
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
    conn = _connection(**connection)
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
                f"{exc.message} ({written_summary(sink.written, sink.target)})"
            )
        raise
    if not to_terminal:
        err.print(written_summary(written, sink.target))


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
    ids: tuple[str, ...],
    fmt: Format,
    **connection: Any,
) -> None:
    """Print messages by id."""
    conn = _connection(**connection)
    sink = Sink(fmt)
    err = _stderr()

    async def work() -> int:
        async with _make_client(conn) as client:
            return await run_get(client, ids, sink)

    _run(work(), secrets=conn.secrets, url=conn.url, err=err)


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
