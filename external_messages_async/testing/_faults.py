"""Fault knobs and scripted responses, and the pure decision of which fault fires."""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from typing import Any

import attrs


def _rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0.0 and 1.0, got {value!r}")


def _not_negative(
    instance: object, attribute: attrs.Attribute[float], value: float
) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


class FaultKind(enum.Enum):
    """A fault the server can inject instead of its normal answer."""

    DROP = "drop"
    PROXY_500 = "500"
    UNAVAILABLE_503 = "503"
    RATE_LIMITED_429 = "429"
    MALFORMED = "malformed"


@attrs.frozen
class Faults:
    """Random failures injected into data requests, reproducible from ``seed``.

    For each request, the knobs are tried in the order ``rate_drop``,
    ``rate_500``, ``rate_503``, ``rate_429``, ``rate_malformed``; the first whose
    draw falls under its rate fires. A rate of ``1.0`` makes that fault certain.
    Swap configurations with ``attrs.evolve``; assigning ``server.faults``
    restarts the random sequence from ``seed``.

    Attributes:
        latency: Seconds to wait before handling each affected request.
        rate_429: Share of requests answered ``429`` with a PortSIP error body.
        retry_after: ``Retry-After`` value sent with the 429; ``None`` omits it.
        rate_500: Share answered ``500`` with a proxy's HTML page, not JSON.
        rate_503: Share answered ``503`` with an empty body.
        rate_drop: Share whose connection is closed without any answer.
        rate_malformed: Share answered ``200`` with the JSON cut in half.
        seed: Seed of the random draws.
        apply_to_auth: Also inject into login, refresh, revoke and sign-out.
    """

    latency: float = attrs.field(default=0.0, validator=_not_negative)
    rate_429: float = attrs.field(default=0.0, validator=_rate)
    retry_after: str | None = "0"
    rate_500: float = attrs.field(default=0.0, validator=_rate)
    rate_503: float = attrs.field(default=0.0, validator=_rate)
    rate_drop: float = attrs.field(default=0.0, validator=_rate)
    rate_malformed: float = attrs.field(default=0.0, validator=_rate)
    seed: int = 0
    apply_to_auth: bool = False


def draw_fault(faults: Faults, rng: random.Random) -> FaultKind | None:
    """Decide which fault, if any, a request gets.

    Args:
        faults: The configured rates.
        rng: The random source; one number is drawn per non-zero rate.

    Returns:
        The fault to inject, or ``None`` for a normal answer.
    """
    for kind, rate in (
        (FaultKind.DROP, faults.rate_drop),
        (FaultKind.PROXY_500, faults.rate_500),
        (FaultKind.UNAVAILABLE_503, faults.rate_503),
        (FaultKind.RATE_LIMITED_429, faults.rate_429),
        (FaultKind.MALFORMED, faults.rate_malformed),
    ):
        if rate and rng.random() < rate:
            return kind
    return None


def _status(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 100 <= value <= 599:
        raise ValueError(f"status must be an HTTP status code, got {value!r}")


def _trickle(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"trickle must be > 0 seconds per chunk, got {value!r}")


@attrs.frozen
class ScriptedResponse:
    """One answer queued with ``server.script([...])``, served before any fault.

    Scripts are consumed first in, first out. One without ``path`` is taken by
    the next data request (``GET .../external_messages...``); one with ``path``
    is taken by the next request of any kind whose path starts with it, so
    ``ScriptedResponse(status=503, path="/api/login")`` fails the next login.

    With ``body=None`` and ``status=200`` the server's normal answer is served,
    which combines with ``delay`` and ``trickle``; with ``body=None`` and another
    status, a PortSIP error body (``{"errors": [{"code": ..., ...}]}``) is sent.

    Attributes:
        status: HTTP status code.
        body: ``bytes`` and ``str`` are sent as they are; a dict or list is
            encoded as JSON; ``None`` as described above.
        headers: Extra response headers, e.g. ``{"Retry-After": "2"}``.
        content_type: Overrides the type chosen from ``body`` (JSON for dicts,
            lists and ``None``, ``text/plain`` for ``str``,
            ``application/octet-stream`` for ``bytes``).
        delay: Seconds to wait before answering.
        drop: Close the connection without answering.
        hang: Accept the request and never answer, until the server closes.
        trickle: Send the body ``trickle_chunk`` bytes at a time, this many
            seconds apart, with a correct ``Content-Length``.
        trickle_chunk: Bytes per trickled chunk.
        path: Only requests whose path starts with this take the script.
    """

    status: int = attrs.field(default=200, validator=_status)
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    content_type: str | None = None
    delay: float = attrs.field(default=0.0, validator=_not_negative)
    drop: bool = False
    hang: bool = False
    trickle: float | None = attrs.field(default=None, validator=_trickle)
    trickle_chunk: int = 16
    path: str | None = None

    def matches(self, path: str, *, is_data: bool) -> bool:
        """Tell whether a request may consume this script.

        Args:
            path: The request's decoded path, e.g. ``"/api/external_messages"``.
            is_data: Whether the request is a data (external messages) request.

        Returns:
            ``True`` if the request should be answered by this script.
        """
        return is_data if self.path is None else path.startswith(self.path)
