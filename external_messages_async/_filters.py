"""Building PortSIP's OData ``filter`` strings from typed values, safely.

Everything here is pure. A value placed in a filter is always written as a
quoted literal with its quotes doubled (:func:`quote_literal`), so that a
sender name such as ``O'Brien`` is searched for as text and can never end the
literal early and add a clause of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timezone

from ._converter import format_datetime, parse_datetime

__all__ = ["build_filter", "format_instant", "parse_instant", "quote_literal"]


def quote_literal(value: str) -> str:
    """Write ``value`` as an OData string literal: in single quotes, quotes doubled.

    >>> quote_literal("O'Brien")
    "'O''Brien'"

    Args:
        value: Any text.

    Returns:
        The literal, ready to place on the right of ``eq``, ``gt`` and the like.

    Raises:
        TypeError: ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise TypeError(f"a filter value must be a str, got {type(value).__name__}")
    return "'" + value.replace("'", "''") + "'"


def format_instant(value: datetime) -> str:
    """Write a datetime as the quoted RFC 3339 literal PortSIP compares times with.

    Args:
        value: The instant; a naive datetime is taken as UTC.

    Returns:
        The literal, such as ``'2024-05-01T00:00:00Z'``.

    Raises:
        TypeError: ``value`` is not a datetime.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return quote_literal(format_datetime(value))


def parse_instant(text: str) -> datetime:
    """Read a date or a datetime typed by a person, as an aware datetime.

    A date alone (``2024-05-01``) means midnight UTC on that day; a datetime
    without an offset (``2024-05-01T12:30``) is taken as UTC.

    Args:
        text: ``YYYY-MM-DD``, or an ISO 8601 / RFC 3339 datetime.

    Returns:
        The instant, timezone-aware.

    Raises:
        ValueError: ``text`` is neither a date nor a datetime.
    """
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(day, time(), tzinfo=timezone.utc)
    try:
        return parse_datetime(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2024-05-01) or a datetime (2024-05-01T12:30:00Z)"
        ) from None


def _values(name: str, value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    for item in values:
        if not isinstance(item, str):
            raise TypeError(f"{name} values must be str, got {type(item).__name__}")
    return values


def _any_equal(field: str, values: list[str]) -> str:
    clauses = [f"{field} eq {quote_literal(value)}" for value in values]
    return clauses[0] if len(clauses) == 1 else "(" + " or ".join(clauses) + ")"


def build_filter(
    *,
    msg_type: str | Iterable[str] | None = None,
    direction: str | Iterable[str] | None = None,
    delivery: str | Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    extra: str | None = None,
) -> str | None:
    """Build an OData filter that ANDs the given conditions; ``None`` when there are none.

    Enum members (:class:`MessageType` and the like) are strings, so they can be
    passed as they are. Several values for one field match any of them.

    >>> build_filter(msg_type="SMS", direction=["IN", "OUT"])
    "msg_type eq 'SMS' and (direction eq 'IN' or direction eq 'OUT')"

    Args:
        msg_type: One or more ``msg_type`` values to keep.
        direction: One or more ``direction`` values to keep.
        delivery: One or more ``delivery`` values to keep.
        since: Keep messages created at or after this instant (naive is UTC).
        until: Keep messages created before this instant (naive is UTC).
        extra: A raw OData expression, ANDed with the rest in parentheses.
            It is sent as written: quote its values with :func:`quote_literal`.

    Returns:
        The filter text, or ``None`` if no condition was given.

    Raises:
        TypeError: A value has the wrong type.
        ValueError: ``since`` is not before ``until``, or ``extra`` is blank.
    """
    clauses = []
    for field, value in (
        ("msg_type", msg_type),
        ("direction", direction),
        ("delivery", delivery),
    ):
        values = _values(field, value)
        if values:
            clauses.append(_any_equal(field, values))
    if since is not None:
        clauses.append(f"created_at ge {format_instant(since)}")
    if until is not None:
        clauses.append(f"created_at lt {format_instant(until)}")
    if since is not None and until is not None and not _aware(since) < _aware(until):
        raise ValueError(
            f"since ({format_datetime(since)}) must be before "
            f"until ({format_datetime(until)})"
        )
    if extra is not None:
        if not isinstance(extra, str):
            raise TypeError(f"extra must be a str, got {type(extra).__name__}")
        if not extra.strip():
            raise ValueError("extra must not be blank")
        clauses.append(f"({extra.strip()})" if clauses else extra.strip())
    return " and ".join(clauses) if clauses else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
