"""How the command fails: exit codes, :class:`CliError`, and error lines for a person.

Every failure ends as one line on stderr and an exit code: 1 for an API or
connection error, 2 for a usage error (a bad flag value), 130 for an
interruption. :func:`redact` keeps secrets out of every line printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..errors import ExternalMessagesError

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "CliError",
    "describe_error",
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


def describe_error(exc: ExternalMessagesError, *, url: str | None = None) -> str:
    """Say in one line what went wrong with a request, for a person.

    Args:
        exc: The package's exception.
        url: The PBX address, named in connection errors.

    Returns:
        The line, without a trailing newline.
    """
    from ..errors import (
        APIConnectionError,
        AuthenticationError,
        BadRequestError,
        PermissionDeniedError,
    )

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
