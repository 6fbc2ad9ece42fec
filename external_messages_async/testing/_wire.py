"""What crosses the wire: recorded requests and PortSIP-shaped error bodies."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

PROXY_500_PAGE = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
"""The HTML a reverse proxy sends when PortSIP behind it fails."""

_CODES = {400: "VALIDATE_FAILED"}


@attrs.frozen
class RecordedRequest:
    """One request as the fake server received it, faulted ones included.

    Attributes:
        method: HTTP method, e.g. ``"GET"``.
        path: Decoded path, e.g. ``"/api/external_messages/ab/c="``.
        raw_path: Path as sent, percent-encoding intact.
        query: Query parameters (the last value wins for repeated names).
        headers: Request headers, ``Authorization`` included.
        body: Request body bytes.
        received_at: ``time.monotonic()`` when the request arrived.
    """

    method: str
    path: str
    raw_path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        """Decode the body as JSON.

        Returns:
            The decoded value.

        Raises:
            orjson.JSONDecodeError: If the body is not JSON.
        """
        return orjson.loads(self.body)


def error_code(status: int) -> str:
    """Name the PortSIP error code for an HTTP status.

    Args:
        status: An HTTP error status.

    Returns:
        ``VALIDATE_FAILED`` for 400, else the upper-cased reason phrase, such as
        ``NOT_FOUND`` or ``TOO_MANY_REQUESTS``.
    """
    if status in _CODES:
        return _CODES[status]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return "UNKNOWN"
    return phrase.upper().replace(" ", "_").replace("-", "_")


def error_body(code: str, message: str) -> bytes:
    """Encode a PortSIP error body.

    Args:
        code: Upper-case code such as ``"UNAUTHORIZED"``.
        message: Human-readable explanation.

    Returns:
        ``{"errors": [{"code": code, "message": message}]}`` as JSON bytes.
    """
    return orjson.dumps({"errors": [{"code": code, "message": message}]})
