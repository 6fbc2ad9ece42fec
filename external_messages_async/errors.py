"""The exceptions this package raises, all under one root.

The tree::

    ExternalMessagesError
    ├── ClientStateError            (also a RuntimeError: closed client, wrong event loop)
    ├── APIConnectionError          (the request never got an HTTP answer)
    │   └── APITimeoutError
    ├── APIStatusError              (the server answered with a status we do not accept)
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401, or a refused login
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429
    │   └── ServerError             5xx
    ├── ResponseDecodeError         (a 2xx answer whose body is not what PortSIP documents)
    └── PagingError                 (the server ignored skip, filter or orderby)

Nothing from aiohttp, cattrs or the JSON parser escapes to the caller: each is
wrapped in one of the classes above, with the original kept as ``__cause__``
where it says something useful.

:func:`make_status_error` is the one place that maps a status to a class; it is
pure, so it can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientStateError",
    "ErrorDetail",
    "ExternalMessagesError",
    "NotFoundError",
    "PagingError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseDecodeError",
    "ServerError",
    "make_status_error",
    "parse_error_body",
    "request_id_of",
]

#: How much of a raw error body an exception keeps in ``.body``.
BODY_PREVIEW_CHARS = 500

#: Appended to ``.body`` when the server's error body was longer than the
#: client's ``max_response_bytes`` and only its start was read.
CUT_MARK = " [cut: the body exceeds max_response_bytes]"

_REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id", "request-id")


@attrs.frozen
class ErrorDetail:
    """One entry of PortSIP's ``{"errors": [...]}`` error body.

    Attributes:
        code: PortSIP's upper-case code, such as ``VALIDATE_FAILED``;
            ``UNKNOWN`` when the body gave none.
        message: The human-readable message, or ``""``.
        detail: PortSIP's optional ``detail`` value, any JSON, or ``None``.
    """

    code: str
    message: str = ""
    detail: Any = None


class ExternalMessagesError(Exception):
    """The root of every exception this package raises.

    Attributes:
        resume_skip: Set when the error ended a ``client.list()`` walk: the
            ``skip`` to pass to a new ``list()`` to carry on where the walk
            stopped (every item before it was yielded). ``None`` otherwise.
    """

    resume_skip: int | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default rebuilds with cls(*args), which fails for the
        # keyword-only attributes below; rebuild from args and the attributes
        # instead, so errors cross process pools and task queues (pickle) and
        # survive copy.deepcopy. Nothing secret is kept: bodies are redacted
        # when the error is made.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[ExternalMessagesError], args: tuple[Any, ...], state: dict[str, Any]
) -> ExternalMessagesError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ClientStateError(ExternalMessagesError, RuntimeError):
    """The client cannot serve the call in its current state.

    Raised for a call on a closed client, or on a client used from another
    event loop than the one that opened its connection pool.
    """


class APIConnectionError(ExternalMessagesError):
    """The request got no HTTP answer: DNS, TCP, TLS or a dropped connection.

    Args:
        message: The one-line description.
        method: The HTTP method of the request.
        path: The URL path of the request (never the query or a token).
    """

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class APITimeoutError(APIConnectionError):
    """The request did not finish within the client's ``timeout``."""


class APIStatusError(ExternalMessagesError):
    """The server answered with a status the call does not accept.

    Attributes:
        status: The HTTP status code.
        errors: PortSIP's error entries parsed from the body (may be empty).
        body: The raw body text, cut to a few hundred characters.
        request_id: A request id from the response headers, when one was sent.
        method: The HTTP method of the request.
        path: The URL path of the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        errors: tuple[ErrorDetail, ...] = (),
        body: str = "",
        request_id: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.body = body
        self.request_id = request_id
        self.method = method
        self.path = path

    @property
    def code(self) -> str | None:
        """PortSIP's code of the first error entry, or ``None`` without one."""
        return self.errors[0].code if self.errors else None


class BadRequestError(APIStatusError):
    """400: PortSIP refused the request (``VALIDATE_FAILED`` and the like)."""


class AuthenticationError(APIStatusError):
    """401, or a refused login: the credentials or the token are not accepted."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but may not see this resource."""


class NotFoundError(APIStatusError):
    """404: no message with that id, or the path does not exist on this PBX."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: The server's ``Retry-After`` in seconds, or ``None``.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the PBX, or a proxy in front of it, failed."""


class ResponseDecodeError(ExternalMessagesError):
    """A successful answer whose body is not the JSON PortSIP documents.

    Attributes:
        path: Where in the document the problem is, such as ``$.items[3].created_at``,
            or ``$`` when the body is not JSON at all.
        body: The start of the raw body.
    """

    def __init__(self, message: str, *, path: str = "$", body: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.body = body


class PagingError(ExternalMessagesError):
    """The server's pages cannot be trusted: it ignored ``skip``, ``filter`` or ``orderby``.

    Raised instead of yielding wrong data, for example when full pages keep
    repeating ids already yielded while ``count`` holds, or when a key-ordered
    page comes back out of order or outside the requested range.

    Attributes:
        ignored: What the server appears to ignore: ``"skip"``, ``"filter"`` or
            ``"orderby"``.
    """

    def __init__(self, message: str, *, ignored: str) -> None:
        super().__init__(message)
        self.ignored = ignored


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def parse_error_body(body: bytes) -> tuple[ErrorDetail, ...]:
    """Read PortSIP's ``{"errors": [{"code", "message", "detail"}]}`` body.

    Args:
        body: The raw response body.

    Returns:
        The entries found; empty for an empty, non-JSON or differently shaped body.
        An entry without a string ``code`` gets ``UNKNOWN``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ()
    entries = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return ()
    details = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        code = entry.get("code")
        message = entry.get("message")
        details.append(
            ErrorDetail(
                code=code if isinstance(code, str) and code else "UNKNOWN",
                message=message if isinstance(message, str) else "",
                detail=entry.get("detail"),
            )
        )
    return tuple(details)


def _preview(body: bytes) -> str:
    text = body[: BODY_PREVIEW_CHARS * 4].decode("utf-8", "replace")
    return text[:BODY_PREVIEW_CHARS]


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """Return the request id a response carries, to quote to PortSIP support.

    Args:
        headers: The response headers (case-insensitive mapping or lower-case keys).

    Returns:
        The first of ``X-Request-Id``, ``X-Correlation-Id`` and ``Request-Id``
        present, or ``None``.
    """
    return next(
        (headers[name] for name in _REQUEST_ID_HEADERS if headers.get(name)), None
    )


def make_status_error(
    *,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
    truncated: bool = False,
) -> APIStatusError:
    """Build the exception for an unaccepted status; the caller raises it.

    Args:
        method: The request's HTTP method.
        path: The request's URL path (no query string: it may hold filters).
        status: The response status.
        headers: The response headers (case-insensitive mapping or lower-case keys).
        body: The raw response body.
        retry_after: The parsed ``Retry-After`` in seconds, for 429.
        secrets: Strings (such as the token sent) replaced by ``[redacted]``
            wherever the body echoes them, before anything is kept.
        truncated: Whether ``body`` is only the start of a longer answer (cut
            at ``max_response_bytes``); ``.body`` then ends with
            :data:`CUT_MARK`.

    Returns:
        An instance of the :class:`APIStatusError` subclass for ``status``.
    """
    for secret in secrets:
        if secret:
            body = body.replace(secret.encode(), b"[redacted]")
    errors = parse_error_body(body)
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIStatusError
    request_id = request_id_of(headers)
    message = f"{method} {path} -> {status}"
    if errors:
        first = errors[0]
        message += f" {first.code}"
        if first.message:
            message += f": {first.message}"
        if len(errors) > 1:
            message += f" (+{len(errors) - 1} more)"
    if request_id:
        message += f" [request id {request_id}]"
    kwargs: dict[str, Any] = {
        "status": status,
        "errors": errors,
        "body": _preview(body) + (CUT_MARK if truncated else ""),
        "request_id": request_id,
        "method": method,
        "path": path,
    }
    if cls is RateLimitError:
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)
