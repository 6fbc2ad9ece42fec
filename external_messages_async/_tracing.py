"""OpenTelemetry spans for logical calls, when ``opentelemetry-api`` is installed.

With the ``otel`` extra, each logical call (a page, a get, a login, a
refresh, a revocation) is one span named ``external_messages <call>``,
carrying ``skip`` and ``top`` for pages, the number of attempts and the final
HTTP status. HTTP attempts become its child spans when aiohttp is traced too
(``opentelemetry-instrumentation-aiohttp-client``). Span attributes never hold
a token, a password or a query (filters may hold phone numbers).

Without the extra nothing is imported and nothing changes: the import is
tried once, on the first call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs

from ._version import __version__

__all__ = ["CallRecord", "call_span", "operation_of_post", "page_attributes"]

_UNSET: Any = object()
_trace: Any = _UNSET


def _api() -> Any:
    """Return ``opentelemetry.trace``, or ``None`` without the extra."""
    global _trace
    if _trace is _UNSET:
        try:
            from opentelemetry import trace
        except ImportError:
            _trace = None
        else:
            _trace = trace
    return _trace


@attrs.define
class CallRecord:
    """What a call did, filled in as it goes, for its span.

    Attributes:
        attempts: Attempts made so far.
        status: The status of the latest answer, or ``None`` before one.
    """

    attempts: int = 0
    status: int | None = None


@contextmanager
def call_span(name: str, attributes: Mapping[str, int | str]) -> Iterator[CallRecord]:
    """Run one logical call inside a span (when OpenTelemetry is installed).

    Args:
        name: The call, such as ``page``, ``get`` or ``login``.
        attributes: Attributes known before the call (never a secret).

    Yields:
        The record the call fills in; its values become span attributes.
    """
    record = CallRecord()
    trace = _api()
    if trace is None:
        yield record
        return
    tracer = trace.get_tracer("external_messages_async", __version__)
    with tracer.start_as_current_span(
        f"external_messages {name}", attributes=dict(attributes)
    ) as span:
        try:
            yield record
        finally:
            span.set_attribute("external_messages.attempts", record.attempts)
            if record.status is not None:
                span.set_attribute("http.response.status_code", record.status)


def page_attributes(
    method: str, path: str, params: Mapping[str, str] | None
) -> tuple[str, dict[str, int | str]]:
    """Name a data call and list its span attributes. Pure.

    Args:
        method: The HTTP method.
        path: The URL path (a message id is not a secret).
        params: The query; only ``skip`` and ``top`` are kept.

    Returns:
        ``("page", {...})`` for a list request, else ``("get", {...})``.
    """
    attributes: dict[str, int | str] = {
        "http.request.method": method,
        "url.path": path,
    }
    if params is None or "top" not in params:
        return "get", attributes
    for name in ("skip", "top"):
        if params.get(name, "").isdigit():
            attributes[f"external_messages.{name}"] = int(params[name])
    return "page", attributes


def operation_of_post(
    path: str, form: Mapping[str, str] | None, json: Mapping[str, Any] | None
) -> str:
    """Name a token-endpoint call: ``login``, ``refresh`` or ``revoke``. Pure.

    Args:
        path: The path under the API root.
        form: The form body, if any.
        json: The JSON body, if any.

    Returns:
        The call's name.
    """
    if path.endswith(("revoke", "sign_out")):
        return "revoke"
    grant = (form or {}).get("grant_type")
    if grant == "refresh_token" or path.endswith("refresh_token"):
        return "refresh"
    if json is not None and "refresh_token" in json:
        return "refresh"
    return "login"
