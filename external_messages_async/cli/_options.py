"""What every command that talks to a PBX shares: connection flags, client, runner.

A command module (``_app.py``, or its own ``_<name>.py``) decorates its click
command with :func:`connection_options`, turns the flags into a
:class:`Connection` with :func:`connection_from`, opens a client with
:func:`make_client` and runs its async function with :func:`run_sync`, which
turns every failure into a :class:`._errors.CliError`.

Part of the click layer: it imports click, and imports the SDK and rich only
when a command runs, so that ``--help`` and ``--version`` stay fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from ._errors import EXIT_INTERRUPTED, CliError, describe_error, flag_wording, redact

if TYPE_CHECKING:
    import logging
    import ssl as ssl_module
    from datetime import datetime

    from rich.console import Console

    from .._client import ExternalMessagesClient
    from ..errors import ExternalMessagesError

__all__ = [
    "Connection",
    "InstantType",
    "connection_from",
    "connection_options",
    "make_client",
    "run_sync",
    "secrets_in",
    "stderr_console",
    "stdin_is_terminal",
    "stdout_is_terminal",
]

T = TypeVar("T")

_LOGGER_NAME = "external_messages_async"
_SECRET_OPTIONS = ("--token", "--password", "--proxy")
_SECRET_ENV = ("PORTSIP_TOKEN", "PORTSIP_PASSWORD")


def secrets_in(args: Sequence[str]) -> list[str]:
    """Return the token and password given on the command line or in the environment.

    Args:
        args: The command-line arguments.

    Returns:
        The secret values, for :func:`._errors.redact`.
    """
    found = [os.environ.get(name, "") for name in _SECRET_ENV]
    for index, arg in enumerate(args):
        for option in _SECRET_OPTIONS:
            if arg == option and index + 1 < len(args):
                found.append(args[index + 1])
            elif arg.startswith(option + "="):
                found.append(arg[len(option) + 1 :])
    return [secret for secret in found if secret]


class InstantType(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2 stubs
    """A date or a datetime flag value (a date is midnight UTC)."""

    name = "DATE|DATETIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse the value with :func:`~external_messages_async._filters.parse_instant`.

        Args:
            value: The flag's text.
            param: The option.
            ctx: The click context.

        Returns:
            The aware datetime.
        """
        from .._filters import parse_instant

        try:
            return parse_instant(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@contextlib.contextmanager
def _library_log(
    console: Console, *, verbose: bool = False, secrets: Sequence[str | None] = ()
) -> Iterator[None]:
    """Show the library's log on the stderr console while a command runs.

    Warnings show as ``warning: ...`` lines; with ``verbose``, the debug
    records too (each retry, login and token refresh) as ``debug: ...``.
    """
    import logging

    class ConsoleLogHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kind = "warning" if record.levelno >= logging.WARNING else "debug"
            console.print(
                redact(f"{kind}: {record.getMessage()}", secrets),
                markup=False,
                highlight=False,
            )

    logger = logging.getLogger(_LOGGER_NAME)
    handler = ConsoleLogHandler(logging.DEBUG if verbose else logging.WARNING)
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    logger.propagate = False
    if verbose:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def stdin_is_terminal() -> bool:
    """Whether stdin is a terminal (a password can be asked for)."""
    return sys.stdin.isatty()


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (``list`` then defaults to a table)."""
    return sys.stdout.isatty()


@attrs.frozen
class Connection:
    """The connection flags of one command run, checked.

    Attributes:
        url: The PBX address.
        token: A bearer token, or ``None`` when logging in.
        username: The user to log in as, or ``None``.
        password: The user's password, or ``None``.
        domain: The tenant's SIP domain, or ``None``.
        insecure: Skip TLS certificate verification.
        ca_file: A PEM file of trusted authorities, or ``None``.
        timeout: Seconds one attempt may take.
        max_retries: Retries after a failed attempt.
        user_scope: Read the signed-in user's own messages.
        verbose: Show each attempt, retry, login and token refresh on stderr.
        proxy: An HTTP proxy for every request, or ``None``.
        env_proxy: Honour the proxy settings of the environment.
    """

    url: str
    token: str | None = attrs.field(repr=False)
    username: str | None
    password: str | None = attrs.field(repr=False)
    domain: str | None
    insecure: bool
    ca_file: str | None
    timeout: float
    max_retries: int
    user_scope: bool
    verbose: bool = False
    proxy: str | None = attrs.field(default=None, repr=False)
    env_proxy: bool = False

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """The token, the password and a proxy's password, for :func:`._errors.redact`."""
        from urllib.parse import urlsplit

        proxy_password = urlsplit(self.proxy).password if self.proxy else None
        return (self.token, self.password, proxy_password)


def _ssl_setting(conn: Connection) -> ssl_module.SSLContext | bool | None:
    import ssl as ssl_module

    if conn.insecure and conn.ca_file:
        raise click.UsageError("--insecure and --ca-file cannot be used together")
    if conn.insecure:
        # Plain http has no certificate to skip; saying so would only alarm.
        return None if conn.url.lower().startswith("http://") else False
    if conn.ca_file:
        try:
            return ssl_module.create_default_context(cafile=conn.ca_file)
        except (OSError, ssl_module.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise click.BadParameter(
                f"cannot load {conn.ca_file}: {reason}", param_hint="--ca-file"
            ) from None
    return None


def make_client(conn: Connection) -> ExternalMessagesClient:
    """Build the client for a connection (not yet open).

    Args:
        conn: The checked connection flags.

    Returns:
        The client; use it with ``async with``.

    Raises:
        click.UsageError: The SDK refused a value.
        click.BadParameter: The ``--ca-file`` cannot be loaded.
    """
    from .._client import ExternalMessagesClient

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
            max_retries=conn.max_retries,
            user_scope=conn.user_scope,
            proxy=conn.proxy,
            trust_env=conn.env_proxy,
            **credentials,
        )
    except ValueError as exc:
        raise click.UsageError(flag_wording(redact(str(exc), conn.secrets))) from None


def connection_from(
    *,
    url: str | None,
    token: str | None,
    username: str | None,
    password: str | None,
    domain: str | None,
    insecure: bool,
    ca_file: str | None,
    timeout: float,
    max_retries: int,
    user_scope: bool,
    verbose: bool = False,
    proxy: str | None = None,
    env_proxy: bool = False,
) -> Connection:
    """Check the flags of :func:`connection_options`, asking for a password if needed.

    Args:
        url: ``--url``.
        token: ``--token``.
        username: ``--username``.
        password: ``--password``; asked for, hidden, when missing on a terminal.
        domain: ``--domain``.
        insecure: ``--insecure``.
        ca_file: ``--ca-file``.
        timeout: ``--timeout``.
        max_retries: ``--max-retries``.
        user_scope: ``--user-scope``.
        verbose: ``--verbose``.
        proxy: ``--proxy``.
        env_proxy: ``--env-proxy``.

    Returns:
        The connection.

    Raises:
        click.UsageError: A flag is missing or two flags conflict.
    """
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
        if not stdin_is_terminal():
            raise click.UsageError(
                "--password (or PORTSIP_PASSWORD) is required when stdin is not a terminal"
            )
        password = click.prompt(f"Password for {username}", hide_input=True, err=True)
    return Connection(
        url=url,
        token=token or None,
        username=username or None,
        password=password or None,
        domain=domain or None,
        insecure=insecure,
        ca_file=ca_file,
        timeout=timeout,
        max_retries=max_retries,
        user_scope=user_scope,
        verbose=verbose,
        proxy=proxy or None,
        env_proxy=env_proxy,
    )


def connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection flags (``--url``, ``--token``, ...) to a click command.

    The command receives them as keyword arguments; pass them on to
    :func:`connection_from`.

    Args:
        function: The command function.

    Returns:
        The function with the options attached.
    """
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
            help=(
                "Seconds one attempt may take; each retry gets as long again, "
                "plus a backoff pause."
            ),
        ),
        click.option(
            "--max-retries",
            type=click.IntRange(min=0),
            default=3,
            show_default=True,
            help="Retries after a failed attempt (no answer, 429, 5xx); 0 for none.",
        ),
        click.option(
            "--proxy",
            metavar="URL",
            help="Send every request through this HTTP proxy, such as "
            "http://proxy:3128 (credentials in it are never printed).",
        ),
        click.option(
            "--env-proxy",
            is_flag=True,
            help="Honour HTTP_PROXY, HTTPS_PROXY and NO_PROXY (and .netrc) from "
            "the environment; off by default, so that the environment cannot "
            "reroute the token.",
        ),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            help="Show each attempt, retry, login and token refresh on stderr.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def run_sync(
    coro: Awaitable[T],
    *,
    err: Console,
    conn: Connection | None = None,
    secrets: Sequence[str | None] = (),
    since: Callable[[], float] | None = None,
) -> T:
    """Run a command's async function to its end, turning failures into a CliError.

    The library's warnings show on ``err`` meanwhile.

    Args:
        coro: The awaitable to run in a new event loop.
        err: The stderr console.
        conn: The connection, for the wording of an error (its address,
            attempts and timeout) and the secrets to hide.
        secrets: More values to hide in the error line.
        since: Gives the :func:`time.monotonic` time the failing stretch of
            work began (such as the last page written); default the start.

    Returns:
        What the awaitable returned.

    Raises:
        CliError: Ctrl-C (exit code 130) or an API error (exit code 1).
    """
    import asyncio

    from ..errors import ExternalMessagesError

    async def guarded() -> T:
        with _library_log(
            err,
            verbose=conn.verbose if conn else False,
            secrets=[*secrets, *(conn.secrets if conn else ())],
        ):
            return await coro

    started = time.monotonic()
    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        raise CliError(None, EXIT_INTERRUPTED) from None
    except ExternalMessagesError as exc:
        line = describe_error(
            exc,
            url=conn.url if conn else None,
            attempts=_attempts(exc, conn),
            elapsed=time.monotonic() - max(started, since() if since else started),
            timeout=conn.timeout if conn else None,
        )
        hidden = [*secrets, *(conn.secrets if conn else ())]
        raise CliError(redact(line, hidden)) from None


def _attempts(exc: ExternalMessagesError, conn: Connection | None) -> int | None:
    """How many attempts a failed request made: the exception's count if it has one.

    Without one, a request that got no answer or a 5xx used every retry, since
    the client retries such a request until ``--max-retries`` runs out.
    """
    from ..errors import APIConnectionError, ServerError

    counted = getattr(exc, "attempts", None)
    if isinstance(counted, int):
        return counted
    if isinstance(exc, (APIConnectionError, ServerError)) and conn is not None:
        return conn.max_retries + 1
    return None


def stderr_console() -> Console:
    """Build the rich console for stderr: progress, warnings, closing lines.

    Returns:
        The console.
    """
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)
