"""Live reading: :class:`MessageWatch`, an endless poll on the change-feed machinery.

Each poll is a key walk (``_scan.py``) from a short lookback before the newest
``created_at`` seen to the newest message. What to yield (new ids, and with
``updates`` changed delivery states) and how long to wait are pure decisions
here; :class:`MessageWatch` only runs the polls and the waits.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from datetime import datetime, timedelta
from typing import Any

from ._filters import format_instant
from ._keywalk import FetchKeyPage, KeyPages
from ._models import ExternalMessage
from ._retry import RetryPolicy, backoff_delay
from ._scan import EPOCH, KeyWalk, ScanStats, check_instant
from .errors import APIConnectionError, RateLimitError, ServerError

__all__ = [
    "TRANSIENT_ERRORS",
    "WATCH_LOOKBACK",
    "WATCH_MEMORY",
    "WATCH_UPDATES_LOOKBACK",
    "MessageWatch",
    "RecentMessages",
    "next_delay",
]

logger = logging.getLogger("external_messages_async")

#: How far before the newest ``created_at`` seen each poll reads again, for
#: messages the PBX writes a little late.
WATCH_LOOKBACK = timedelta(minutes=1)

#: The same with ``updates=True``: delivery states change within minutes.
WATCH_UPDATES_LOOKBACK = timedelta(minutes=10)

#: How many message ids a watch remembers (its memory stays flat).
WATCH_MEMORY = 10_000

#: Errors a watch logs and outlives (after the client's own retries).
TRANSIENT_ERRORS = (APIConnectionError, ServerError, RateLimitError)

_State = tuple[Any, Any]


class RecentMessages:
    """The ids a watch yielded, with their delivery state, in a bounded map.

    Args:
        size: How many ids to remember; the least recently yielded go first.
    """

    def __init__(self, size: int = WATCH_MEMORY) -> None:
        self._size = size
        self._states: collections.OrderedDict[str, _State] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def observe(self, message: ExternalMessage, *, updates: bool) -> bool:
        """Remember a message read by a poll, and say whether to yield it.

        Args:
            message: The message (with an id).
            updates: Whether a change of ``delivery`` or ``reason`` counts.

        Returns:
            ``True`` for an id not remembered, or (with ``updates``) one whose
            ``delivery`` or ``reason`` differs from when it was last yielded.
        """
        key = str(message.id)
        state = (message.delivery, message.reason)
        known = self._states.get(key)
        if known is not None and (not updates or known == state):
            return False
        self._states[key] = state
        self._states.move_to_end(key)
        if len(self._states) > self._size:
            self._states.popitem(last=False)
        return True


def next_delay(delay: float, found: bool, poll_interval: float) -> float:
    """Decide how long to wait before the next poll.

    Args:
        delay: The wait before the poll that just ended.
        found: Whether that poll found anything to yield.
        poll_interval: The longest wait.

    Returns:
        An eighth of ``poll_interval`` after a poll that found something;
        otherwise twice the last wait, up to ``poll_interval``.
    """
    shortest = poll_interval / 8
    if found:
        return shortest
    return min(poll_interval, max(shortest, delay * 2))


class MessageWatch:
    """An endless async iterator of new messages, as they appear.

    Made by :meth:`ExternalMessagesClient.watch`::

        async with client.watch(poll_interval=2.0) as watch:
            async for message in watch:
                await answer(message)

    Each poll reads, by key, from a minute before the newest ``created_at``
    seen (ten minutes with ``updates``) to the newest message; ids already
    yielded are dropped (the last 10 000 are remembered). Without ``since``
    the watch starts at the PBX's newest message, read from its data (never
    from the client's clock), and yields only what comes after.

    Waits between polls start at an eighth of ``poll_interval`` after a poll
    that found something and double up to ``poll_interval`` while nothing
    comes. A poll that fails after the client's retries with a connection
    error, a 5xx or a 429 is logged as a WARNING on the
    ``external_messages_async`` logger and tried again later, with the
    client's backoff; authentication, permission and other errors are raised.

    ``break``, :meth:`aclose` (even from another task) and cancelling the
    consuming task stop it at once: between polls nothing runs, and a poll
    in flight is cancelled.

    Args:
        fetch: Sends one list request ``(filter, orderby, top, skip)``.
        retry: The client's retry settings, for the wait after a failed poll.
        since: Yield messages created from this instant on, timezone-aware;
            ``None`` yields only messages newer than the newest at the start.
        poll_interval: The longest wait between polls, in seconds.
        updates: Also yield a message again when its ``delivery`` or
            ``reason`` changed (within the lookback).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``since`` is naive or ``poll_interval`` is not a positive,
            finite number.
    """

    def __init__(
        self,
        fetch: FetchKeyPage,
        *,
        retry: RetryPolicy,
        since: datetime | None = None,
        poll_interval: float = 5.0,
        updates: bool = False,
    ) -> None:
        check_instant("since", since)
        if isinstance(poll_interval, bool) or not isinstance(
            poll_interval, (int, float)
        ):
            raise TypeError(
                f"poll_interval must be a number, got {type(poll_interval).__name__}"
            )
        if not (math.isfinite(poll_interval) and poll_interval > 0):
            raise ValueError(
                f"poll_interval must be a finite number above 0, got {poll_interval}"
            )
        if not isinstance(updates, bool):
            raise TypeError(f"updates must be a bool, got {type(updates).__name__}")
        self._fetch = fetch
        self._retry = retry
        self.since = since
        self.poll_interval = float(poll_interval)
        self.updates = updates
        self.lookback = WATCH_UPDATES_LOOKBACK if updates else WATCH_LOOKBACK
        #: Counters of every poll so far.
        self.stats = ScanStats(slices=1)
        self._recent = RecentMessages()
        self._high_water: datetime | None = since
        self._primed = since is not None
        self._ready: collections.deque[ExternalMessage] = collections.deque()
        self._delay = 0.0
        self._failures = 0
        self._polled = False
        self._closing: asyncio.Future[None] | None = None
        #: Whether :meth:`aclose` was called.
        self.closed = False

    def __aiter__(self) -> MessageWatch:
        return self

    async def __anext__(self) -> ExternalMessage:
        while not self.closed:
            if self._ready:
                return self._ready.popleft()
            if self._polled:
                await self._until_closed(asyncio.sleep(self._delay))
            else:
                self._polled = True
            if not self.closed:
                await self._until_closed(self._poll())
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Stop the watch; a poll or a wait in progress ends at once."""
        self.closed = True
        self._ready.clear()
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)

    async def __aenter__(self) -> MessageWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _until_closed(self, step: Any) -> None:
        """Run one poll or wait in a task that :meth:`aclose` or cancellation ends."""
        loop = asyncio.get_running_loop()
        if self._closing is None:
            self._closing = loop.create_future()
        task = loop.create_task(step, name="external_messages_async watch")
        try:
            await asyncio.wait({task, self._closing}, return_when="FIRST_COMPLETED")
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()

    async def _poll(self) -> None:
        try:
            if not self._primed:
                await self._prime()
            found = await self._read(yield_new=True)
        except TRANSIENT_ERRORS as exc:
            backoff = backoff_delay(self._failures, self._retry)
            self._delay = min(self.poll_interval, max(self.poll_interval / 8, backoff))
            self._failures += 1
            logger.warning(
                "watch: a poll failed (%s: %s); polling again in %.2f s",
                type(exc).__name__, exc, self._delay,
            )  # fmt: skip
            return
        self._failures = 0
        self._delay = next_delay(self._delay, found, self.poll_interval)

    async def _prime(self) -> None:
        newest = await self._fetch(
            f"created_at ge {format_instant(EPOCH)}", "created_at desc", 1, 0
        )
        if newest.items and newest.items[0].created_at is not None:
            self._high_water = newest.items[0].created_at
            await self._read(yield_new=False)
        self._primed = True

    async def _read(self, *, yield_new: bool) -> bool:
        floor = self.since if self.since is not None else EPOCH
        lower = floor
        if self._high_water is not None:
            lower = max(floor, self._high_water - self.lookback)
        pages = KeyPages(self._fetch, KeyWalk(lower=lower), self.stats)
        found: list[ExternalMessage] = []
        async for page in pages:
            found += [m for m in page if self._recent.observe(m, updates=self.updates)]
        if self.stats.high_water is not None:
            self._high_water = max(self._high_water or floor, self.stats.high_water)
        if yield_new:
            self._ready.extend(found)
        return bool(found)
