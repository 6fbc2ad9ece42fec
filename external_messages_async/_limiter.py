"""The client-wide cap on requests in flight, and how it reacts to 429 (AIMD).

The decisions live in :class:`AimdState` and its pure functions
(:func:`after_rate_limited`, :func:`after_success`): plain values in, a new
state out, no clock and no event loop. :class:`Limiter` is the thin asyncio
shell that holds the state, counts attempts in flight and parks the ones that
must wait.

The rules:

- ``max_concurrency`` caps attempts in flight across every call of a client
  (pagers, ``get_many``, single ``get`` calls alike).
- A 429 pauses the whole client: no attempt starts before ``Retry-After`` has
  passed, whichever task got the 429.
- A 429 also halves the current cap (multiplicative decrease), at most once per
  round of requests: only a 429 to an attempt that started after the latest
  decrease lowers the cap again, so eight 429s to eight attempts sent together
  count as one signal.
- Every ``limit`` successes raise the cap by one (additive increase) until it
  is back at ``max_concurrency``; without ``max_concurrency`` the cap is lifted
  once it is back at the concurrency seen when the 429 came.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from ._checks import check_int

__all__ = ["AimdState", "Limiter", "after_rate_limited", "after_success"]


@attrs.frozen(kw_only=True)
class AimdState:
    """The limiter's state: a snapshot, replaced on every event.

    Attributes:
        ceiling: The user's ``max_concurrency``, or ``None`` for no cap.
        limit: The cap in force now, or ``None`` for no cap.
        recover_to: Without a ceiling: the cap at which the limit is lifted
            again, the concurrency seen when the latest 429 came.
        successes: Successes since the latest change of ``limit``.
        epoch: Bumped on every decrease; an attempt remembers the epoch it
            started in.
        paused_until: A clock reading before which no attempt starts.
    """

    ceiling: int | None = None
    limit: int | None = None
    recover_to: int | None = None
    successes: int = 0
    epoch: int = 0
    paused_until: float = 0.0

    @classmethod
    def start(cls, ceiling: int | None) -> AimdState:
        """Return the state of a fresh limiter.

        Args:
            ceiling: The user's ``max_concurrency``, or ``None``.

        Returns:
            The state with the cap at the ceiling.
        """
        return cls(ceiling=ceiling, limit=ceiling)

    def admits(self, in_flight: int) -> bool:
        """Return whether one more attempt may start with ``in_flight`` running.

        Args:
            in_flight: Attempts in flight now.

        Returns:
            ``True`` when under the cap (pauses are checked separately).
        """
        return self.limit is None or in_flight < self.limit


def after_rate_limited(
    state: AimdState,
    *,
    now: float,
    retry_after: float | None,
    in_flight: int,
    attempt_epoch: int,
) -> AimdState:
    """Return the state after a 429.

    Args:
        state: The state before.
        now: The current clock reading.
        retry_after: The server's ``Retry-After`` in seconds, or ``None``.
        in_flight: Attempts in flight now, the one that got the 429 included.
        attempt_epoch: The epoch the rate-limited attempt started in.

    Returns:
        The new state: paused until ``now + retry_after`` (never shortening a
        pause already in force) and, unless this round of requests already
        lowered it, with the cap halved (never below 1).
    """
    paused_until = state.paused_until
    if retry_after is not None:
        paused_until = max(paused_until, now + retry_after)
    if attempt_epoch < state.epoch:
        return attrs.evolve(state, paused_until=paused_until)
    current = state.limit if state.limit is not None else max(1, in_flight)
    recover_to = state.recover_to
    if state.ceiling is None and state.limit is None:
        recover_to = current
    return attrs.evolve(
        state,
        limit=max(1, current // 2),
        recover_to=recover_to,
        successes=0,
        epoch=state.epoch + 1,
        paused_until=paused_until,
    )


def after_success(state: AimdState) -> AimdState:
    """Return the state after a successful answer.

    Args:
        state: The state before.

    Returns:
        The new state: once ``limit`` successes have come since the last
        change, the cap grows by one; it stops at the ceiling, or without a
        ceiling is lifted once it reaches ``recover_to``.
    """
    if state.limit is None or state.limit == state.ceiling:
        return state
    successes = state.successes + 1
    if successes < state.limit:
        return attrs.evolve(state, successes=successes)
    limit = state.limit + 1
    if state.recover_to is not None and limit >= state.recover_to:
        return attrs.evolve(state, limit=None, recover_to=None, successes=0)
    return attrs.evolve(state, limit=limit, successes=0)


class Limiter:
    """Caps the attempts in flight across every call of one client.

    Waiting attempts queue first come, first served. A place is handed to the
    head of the queue (counted as in flight at once, so nobody can overtake
    it) whenever one is free and no pause is in force: when an attempt ends,
    when the cap grows, when a waiter is cancelled, and when a pause ends (a
    timer armed for that moment), so a queue never waits on an event that
    cannot come.

    Args:
        max_concurrency: The most attempts in flight at once, or ``None`` for
            no cap (429 answers still pause the client and impose a cap until
            it recovers).

    Raises:
        TypeError: ``max_concurrency`` is not an int or ``None``.
        ValueError: ``max_concurrency`` is below 1.
    """

    def __init__(self, max_concurrency: int | None = None) -> None:
        check_int("max_concurrency", max_concurrency, 1, optional=True)
        self.max_concurrency = max_concurrency
        self.state = AimdState.start(max_concurrency)
        self.in_flight = 0
        # Sorted by arrival: a waiter sent back keeps its turn.
        self._waiters: list[_Waiter] = []
        self._arrivals = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def limit(self) -> int | None:
        """The cap in force now (lower than ``max_concurrency`` after a 429)."""
        return self.state.limit

    @property
    def waiting(self) -> int:
        """How many attempts are queued for a place."""
        return len(self._waiters)

    def paused(self, now: float) -> bool:
        """Return whether a 429's pause is in force at clock reading ``now``.

        Args:
            now: The event loop's clock reading.

        Returns:
            ``True`` before the latest ``Retry-After`` has passed.
        """
        return self.state.paused_until > now

    def _may_start(self, now: float, in_flight: int) -> bool:
        return not self.paused(now) and self.state.admits(in_flight)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one place for the duration of an attempt.

        Waits while the client is paused after a 429, then while the cap is
        reached; waiters are served first come, first served.

        Yields:
            The epoch the attempt starts in, for :meth:`on_rate_limited`.
        """
        loop = asyncio.get_running_loop()
        if self._waiters or not self._may_start(loop.time(), self.in_flight):
            await self._queue(loop)
        else:
            self.in_flight += 1
        try:
            yield self.state.epoch
        finally:
            self.in_flight -= 1
            self._dispatch(loop)

    async def _queue(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait in line until :meth:`_dispatch` hands this task a place."""
        arrival = next(self._arrivals)
        while True:
            waiter = _Waiter(arrival, loop.create_future())
            bisect.insort(self._waiters, waiter, key=_arrival)
            self._dispatch(loop)
            try:
                handed_under = await waiter.future
            except BaseException:
                if waiter.future.done() and not waiter.future.cancelled():
                    # Handed a place, then cancelled before it could use it:
                    # the place goes to the next in line.
                    self.in_flight -= 1
                    self._dispatch(loop)
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
            if self.state is handed_under:
                return
            # A 429 came between the hand-over and this task running: start
            # only if the place is still free and nobody earlier waits.
            earlier = self._waiters and self._waiters[0].arrival < arrival
            if not earlier and self._may_start(loop.time(), self.in_flight - 1):
                return
            self.in_flight -= 1

    def _dispatch(
        self, loop: asyncio.AbstractEventLoop, now: float | None = None
    ) -> None:
        """Hand free places to the head of the queue, or arm the pause timer."""
        if now is None:
            now = loop.time()
        while self._waiters and self.state.admits(self.in_flight):
            if self.paused(now):
                self._arm_timer(loop)
                return
            waiter = self._waiters.pop(0)
            # A waiter cancelled in this loop iteration has not left yet.
            if not waiter.future.done():
                self.in_flight += 1
                waiter.future.set_result(self.state)

    def _arm_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make sure :meth:`_dispatch` runs when the current pause ends."""
        until = self.state.paused_until
        if self._timer is not None:
            if self._timer.when() == until:
                return
            self._timer.cancel()
        self._timer = loop.call_at(until, self._pause_ended, loop, until)

    def _pause_ended(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        self._timer = None
        # The timer may fire a clock tick early; the pause it was armed for is over.
        self._dispatch(loop, max(loop.time(), until))

    def on_rate_limited(self, retry_after: float | None, *, epoch: int = -1) -> None:
        """Note a 429 answer: pause the client and lower its cap.

        Call it while the rate-limited attempt still holds its :meth:`slot`.

        Args:
            retry_after: How long to pause every attempt, in seconds, or
                ``None`` for no pause.
            epoch: The epoch :meth:`slot` yielded for the attempt; without
                it, every 429 lowers the cap.
        """
        loop = asyncio.get_running_loop()
        self.state = after_rate_limited(
            self.state,
            now=loop.time(),
            retry_after=retry_after,
            in_flight=max(1, self.in_flight),
            attempt_epoch=epoch if epoch >= 0 else self.state.epoch,
        )

    def on_success(self) -> None:
        """Note a successful answer: the cap may grow back by one."""
        before = self.state.limit
        self.state = after_success(self.state)
        if self.state.limit != before:
            self._dispatch(asyncio.get_running_loop())


@attrs.define(eq=False)
class _Waiter:
    """One queued attempt: its place in line, and what wakes it."""

    arrival: int
    future: asyncio.Future[AimdState]


def _arrival(waiter: _Waiter) -> int:
    return waiter.arrival
