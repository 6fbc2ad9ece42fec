"""The fake server's clock: the time its new messages are stamped with."""

from __future__ import annotations

import datetime as dt
import math


def _aware(when: object, name: str) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(when).__name__}")
    if when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {when!r}")
    return when.astimezone(dt.timezone.utc)


class ServerClock:
    """A clock that moves only when told to: the PBX's idea of "now".

    :meth:`FakePortSIPServer.add_message
    <external_messages_async.testing.FakePortSIPServer.add_message>` stamps new
    messages with it, so a test decides exactly which second each message is
    created in, how many share one, and how far the PBX's clock is from the
    client's. It may be set backwards, as a real PBX's clock can be. Token
    expiry does not use it.

    Args:
        start: The initial time, timezone-aware; ``None`` starts at the
            current time in whole seconds. It is kept in UTC.

    Raises:
        TypeError: If ``start`` is not a datetime.
        ValueError: If ``start`` is naive.

    Example:
        >>> import datetime as dt
        >>> clock = ServerClock(dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc))
        >>> clock.advance(90)
        >>> clock.now().isoformat()
        '2024-07-01T00:01:30+00:00'
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        if start is None:
            start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self._now = _aware(start, "start")

    def __repr__(self) -> str:
        return f"ServerClock({self._now.isoformat()!r})"

    def now(self) -> dt.datetime:
        """Tell the clock's time.

        Returns:
            An aware datetime in UTC.
        """
        return self._now

    def advance(self, seconds: float | dt.timedelta) -> None:
        """Move the clock by a number of seconds; negative moves it back.

        Args:
            seconds: Seconds, or a timedelta.

        Raises:
            TypeError: If ``seconds`` is neither a number nor a timedelta.
            ValueError: If ``seconds`` is not finite.
        """
        if isinstance(seconds, dt.timedelta):
            step = seconds
        elif isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            if not math.isfinite(seconds):
                raise ValueError(f"seconds must be finite, got {seconds!r}")
            step = dt.timedelta(seconds=seconds)
        else:
            raise TypeError(
                f"seconds must be a number or a timedelta, got {type(seconds).__name__}"
            )
        self._now += step

    def set(self, when: dt.datetime) -> None:
        """Set the clock to a time, earlier or later.

        Args:
            when: The new time, timezone-aware.

        Raises:
            TypeError: If ``when`` is not a datetime.
            ValueError: If ``when`` is naive.
        """
        self._now = _aware(when, "when")
