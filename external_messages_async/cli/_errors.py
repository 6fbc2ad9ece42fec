"""How the command fails: exit codes, :class:`CliError`, and error lines for a person.

Every failure ends as one line on stderr and an exit code: 1 for an API or
connection error, 2 for a usage error (a bad flag value), 130 for an
interruption. :func:`redact` keeps secrets out of every line printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..errors import ExternalMessagesError

__all__ = [
    "CliError",
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "describe_error",
    "flag_wording",
    "redact",
]

#: Exit code for an API or connection error (and any other runtime failure).
EXIT_API_ERROR = 1
#: Exit code for a usage error: an unknown flag, a bad value, a missing option.
EXIT_USAGE = 2
#: Exit code after Ctrl-C, as shells report a SIGINT.
EXIT_INTERRUPTED = 130


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


#: SDK argument names as they appear in the SDK's messages, and their flags.
_FLAG_NAMES = (
    ("base_url", "--url"),
    ("token_provider=", "--token"),
    ("token=", "--token"),
    ("username=", "--username"),
    ("password=", "--password"),
    ("domain=", "--domain"),
    ("proxy must", "--proxy must"),
    ("proxy is not", "--proxy is not"),
)


def flag_wording(text: str) -> str:
    """Name the command's flags where an SDK message names its arguments.

    Args:
        text: A message from the SDK, such as ``pass token= instead``.

    Returns:
        The message with ``--token`` and the like instead.
    """
    for name, flag in _FLAG_NAMES:
        text = text.replace(name, flag)
    return text.replace("--token (or --token)", "--token")


def _host(url: str | None) -> str:
    if not url:
        return "the server"
    return urlsplit(url).netloc or url


def describe_error(
    exc: ExternalMessagesError,
    *,
    url: str | None = None,
    attempts: int | None = None,
    elapsed: float | None = None,
    timeout: float | None = None,
) -> str:
    """Say in one line what went wrong with a request, for a person.

    Args:
        exc: The package's exception.
        url: The PBX address, named in connection errors and a 404.
        attempts: How many attempts the failed request made, when known.
        elapsed: Seconds those attempts took, when known.
        timeout: Seconds each attempt could take (``--timeout``).

    Returns:
        The line, without a trailing newline.
    """
    from ..errors import (
        APIConnectionError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        NotFoundError,
        PermissionDeniedError,
    )

    detail = flag_wording(" ".join(str(exc).split()))
    tried = ""
    if attempts is not None and attempts > 1:
        tried = f"{attempts} attempts"
        if elapsed is not None:
            tried += f" over {elapsed:.1f} s"
    if isinstance(exc, AuthenticationError):
        return f"the PBX refused the credentials ({detail})"
    if isinstance(exc, PermissionDeniedError):
        return f"the credentials may not read these messages ({detail})"
    if isinstance(exc, BadRequestError):
        return f"the PBX rejected the request ({detail})"
    if isinstance(exc, NotFoundError):
        path = getattr(exc, "path", "")
        what = f"has no {path} (404)" if path else "answered 404 Not Found"
        return (
            f"{_host(url)} {what}: it may not be a PortSIP PBX, "
            "or --url may name the wrong port or path"
        )
    if isinstance(exc, APITimeoutError):
        each = f" ({timeout:g} s each)" if timeout is not None else ""
        after = f"after {tried}" if tried else "in time"
        return f"no answer from {_host(url)} {after}{each}"
    if isinstance(exc, APIConnectionError):
        if not url:
            return detail
        return (
            f"cannot reach {url}" + (f" after {tried}" if tried else "") + f": {detail}"
        )
    return detail + (f" (after {tried})" if tried else "")
