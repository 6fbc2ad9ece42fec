"""``EXTERNAL_MESSAGES_LOG``: debug logs switched on from the environment.

The package logs to the ``external_messages_async`` logger and, like every
library, installs no handler by itself. Setting ``EXTERNAL_MESSAGES_LOG`` to
``debug`` or ``info`` (the convention of ``OPENAI_LOG`` and ``STRIPE_LOG``)
makes the first client installed one handler on stderr at that level. At
debug there is one line per attempt: method, path (never the query), status,
milliseconds, attempt number and request id; tokens and passwords are never
logged.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

__all__ = ["ENV_VAR", "configure_logging_from_env", "level_from_env"]

#: The environment variable read by :func:`configure_logging_from_env`.
ENV_VAR = "EXTERNAL_MESSAGES_LOG"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}

logger = logging.getLogger("external_messages_async")


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """The one handler the environment variable installs (recognised by type)."""


def level_from_env(environ: Mapping[str, str]) -> int | None:
    """Read the log level the environment asks for.

    Args:
        environ: The environment, such as :data:`os.environ`.

    Returns:
        ``logging.DEBUG`` or ``logging.INFO``, or ``None`` when the variable
        is unset, empty or holds another value.
    """
    return _LEVELS.get(environ.get(ENV_VAR, "").strip().lower())


def configure_logging_from_env(environ: Mapping[str, str] | None = None) -> None:
    """Install a stderr handler at the level ``EXTERNAL_MESSAGES_LOG`` names.

    Runs when a client is made; a second call changes nothing but the level.

    Args:
        environ: The environment; :data:`os.environ` by default.
    """
    level = level_from_env(os.environ if environ is None else environ)
    if level is None:
        return
    logger.setLevel(level)
    if any(isinstance(handler, _EnvHandler) for handler in logger.handlers):
        return
    handler = _EnvHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    )
    logger.addHandler(handler)
