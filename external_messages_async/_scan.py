"""Reading by key: the pure planner of a walk over ``created_at``.

Offset paging (``skip``) cannot give an exact copy of a collection that
changes while it is read. A key walk can: every request asks for the
messages *after the last one read*, by a filter on ``created_at`` and
``orderby=created_at asc``, so an insertion or a deletion elsewhere moves
nothing the walk still has to read.

The key is ``created_at``, and PortSIP's timestamps have whole seconds, so
many messages can share one instant (a *tie*). The walk therefore remembers
the ids it has yielded at its latest instant (the *high-water*) and asks for

    created_at ge <high-water> and id ne <each id seen there> ...

Each answer holds only messages not yet yielded, whatever the server's order
among ties and whatever was inserted or deleted in between: a tie larger than
a page neither loops nor skips. The price is a filter that grows with the
number of messages read at the high-water instant (a few dozen bytes each).

Everything here is pure: :func:`plan` turns a :class:`KeyWalk` into the next
:class:`KeyRequest`, :func:`accept` checks a page against it and returns the
next state with the messages to yield. The async shell is in ``_keywalk.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import cast

import attrs

from ._checks import check_int
from ._filters import build_filter, format_instant, quote_literal
from ._models import ExternalMessage
from .errors import PagingError

__all__ = [
    "EPOCH",
    "SLICE_PAGES",
    "KeyRequest",
    "KeyWalk",
    "ScanStats",
    "Step",
    "accept",
    "check_instant",
    "next_bound",
    "plan",
    "slice_count",
    "split_offsets",
]

#: Where a walk without ``since`` starts: no PBX holds older messages.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: The sort every key request asks for.
ASCENDING = "created_at asc"

#: Pages per time slice of a concurrent scan (see :func:`slice_count`).
SLICE_PAGES = 8


def check_instant(name: str, value: object) -> None:
    """Refuse a bound that is not a timezone-aware datetime (``None`` passes).

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.

    Raises:
        TypeError: ``value`` is not a datetime.
        ValueError: ``value`` is naive.
    """
    if value is None:
        return
    if not isinstance(value, datetime):
        raise TypeError(
            f"{name} must be a datetime or None, got {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, such as "
            f"datetime(2024, 5, 1, tzinfo=timezone.utc); got the naive {value}"
        )


@attrs.frozen
class KeyRequest:
    """One request of a key walk: ``filter``, ``orderby`` and ``top`` to send.

    Attributes:
        filter: The OData filter: the key range, the ids to exclude, the
            caller's own filter.
        top: Messages to ask for.
        orderby: Always ``created_at asc``.
    """

    filter: str
    top: int
    orderby: str = ASCENDING


@attrs.frozen
class KeyWalk:
    """Where a key walk stands: the state :func:`plan` and :func:`accept` pass on.

    Attributes:
        lower: The high-water instant: every message before it was yielded
            (or did not exist when its page was read).
        upper: The exclusive end of the range, or ``None`` for no end.
        seen: The ids already yielded whose ``created_at`` is ``lower``.
        page_size: Messages per request.
        filter: The caller's own filter, ANDed with the key range.
        done: Whether the walk has read its whole range.
    """

    lower: datetime = EPOCH
    upper: datetime | None = None
    seen: frozenset[str] = frozenset()
    page_size: int = 100
    filter: str | None = None
    done: bool = False


@attrs.frozen
class Step:
    """What :func:`accept` makes of a page.

    Attributes:
        walk: The next state.
        items: The messages to yield, in ascending ``created_at``.
        without_id: Messages dropped because they have no id.
        repeated: Messages dropped because the page held their id twice.
    """

    walk: KeyWalk
    items: list[ExternalMessage]
    without_id: int = 0
    repeated: int = 0


def plan(walk: KeyWalk) -> KeyRequest:
    """Return the request that reads the next page of ``walk``.

    Args:
        walk: The state; must not be done.

    Returns:
        The request: messages at or after ``walk.lower``, before
        ``walk.upper``, whose id is not in ``walk.seen``, oldest first.
    """
    excluded = [f"id ne {quote_literal(i)}" for i in sorted(walk.seen)]
    if walk.filter is not None:
        excluded.append(f"({walk.filter})")
    text = build_filter(
        since=walk.lower,
        until=walk.upper,
        extra=" and ".join(excluded) if excluded else None,
    )
    # since is always given, so build_filter returns text.
    assert text is not None
    return KeyRequest(filter=text, top=walk.page_size)


def _refuse(walk: KeyWalk, message: ExternalMessage, why: str) -> PagingError:
    upper = "" if walk.upper is None else f" and before {format_instant(walk.upper)}"
    return PagingError(
        f"the server answered a {ASCENDING} request for messages at or after "
        f"{format_instant(walk.lower)}{upper} with message {message.id!r} "
        f"created at {message.created_at}: {why}",
        ignored="orderby" if why.startswith("out of order") else "filter",
    )


def accept(walk: KeyWalk, items: Sequence[ExternalMessage], count: int) -> Step:
    """Check a page against the request :func:`plan` made, and move the walk on.

    Args:
        walk: The state the request was planned from.
        items: The page's messages, in the server's order.
        count: The page's ``count``: how many messages match the request.

    Returns:
        The next state and the messages to yield. The walk is done after an
        empty page, or a page that holds every match (``count``).

    Raises:
        PagingError: A message lies outside the requested range or is one
            already yielded (``ignored="filter"``), or the page is not in
            ascending ``created_at`` (``ignored="orderby"``): nothing of the
            page is yielded.
    """
    fast = _accept_plain(walk, items, count)
    if fast is not None:
        return fast
    lower, seen = walk.lower, set(walk.seen)
    previous: datetime | None = None
    fresh: list[ExternalMessage] = []
    on_page: set[str] = set()
    without_id = repeated = 0
    for message in items:
        created = message.created_at
        if created is None:
            raise _refuse(walk, message, "it has no created_at")
        if created < walk.lower or (walk.upper is not None and created >= walk.upper):
            raise _refuse(walk, message, "outside the requested range")
        if previous is not None and created < previous:
            raise _refuse(walk, message, "out of order, after one created later")
        if created == walk.lower and message.id in walk.seen:
            raise _refuse(walk, message, "already read, its id was excluded")
        previous = created
        if message.id is None:
            without_id += 1
            continue
        if message.id in on_page:
            repeated += 1
            continue
        on_page.add(message.id)
        if created > lower:
            lower, seen = created, set()
        seen.add(message.id)
        fresh.append(message)
    done = not items or len(items) >= count
    after = attrs.evolve(walk, lower=lower, seen=frozenset(seen), done=done)
    if not done and after == walk:
        raise PagingError(
            f"the server keeps answering a {ASCENDING} request for messages at "
            f"or after {format_instant(walk.lower)} with messages without ids, "
            "which cannot be excluded; the walk cannot move on",
            ignored="filter",
        )
    return Step(after, fresh, without_id=without_id, repeated=repeated)


def _accept_plain(
    walk: KeyWalk, items: Sequence[ExternalMessage], count: int
) -> Step | None:
    """:func:`accept` for the common page, checked with C-level operations.

    The common page: every message has an id and a ``created_at``, no id
    twice, all after the high-water and before the end, in order. Then
    nothing is excluded by id and every message is yielded. ``None`` for
    any other page, which :func:`accept` checks one message at a time.
    """
    times = [message.created_at for message in items]
    ids = [message.id for message in items]
    if not items or None in times or None in ids or len(set(ids)) != len(ids):
        return None
    # None was ruled out just above.
    stamps = cast("list[datetime]", times)
    if not (
        stamps[0] > walk.lower
        and (walk.upper is None or stamps[-1] < walk.upper)
        and stamps == sorted(stamps)
    ):
        return None
    last, index = stamps[-1], len(stamps) - 1
    while index > 0 and stamps[index - 1] == last:
        index -= 1
    seen = frozenset(cast("list[str]", ids[index:]))
    after = attrs.evolve(walk, lower=last, seen=seen, done=len(items) >= count)
    return Step(after, list(items))


def split_offsets(count: int, slices: int) -> list[int]:
    """Return the offsets whose messages start slices 2 to ``slices``.

    Reading the message at each offset in ``created_at`` order (one request
    of ``top=1`` each) gives boundaries that split ``count`` messages into
    ``slices`` parts of nearly equal size.

    Args:
        count: Messages in the range.
        slices: Parts wanted, ``>= 1``.

    Returns:
        Increasing offsets in ``(0, count)``; fewer than ``slices - 1`` when
        there are fewer messages than slices.
    """
    check_int("slices", slices, 1)
    return sorted({index * count // slices for index in range(1, slices)} - {0})


def slice_count(count: int, page_size: int, concurrency: int) -> int:
    """Decide how many time slices a scan of ``count`` messages is cut into.

    Slices of about :data:`SLICE_PAGES` pages each, at least ``concurrency``
    of them, so that the ``concurrency`` slices walked at once hold a bounded
    number of pages however large the range is.

    Args:
        count: Messages in the range.
        page_size: Messages per page.
        concurrency: Slices walked at once.

    Returns:
        The number of slices; 1 for a sequential scan or a range of one page.
    """
    pages = math.ceil(count / page_size)
    if concurrency == 1 or pages <= 1:
        return 1
    return min(pages, max(concurrency, math.ceil(pages / SLICE_PAGES)))


def next_bound(
    previous: datetime, head: datetime | None, upper: datetime | None
) -> datetime:
    """Decide where the next slice starts, from the message read at its offset.

    Boundaries are read one batch at a time while messages come and go, so a
    later one can come back earlier than the one before it, or be missing
    (its offset is past the end now). Clamped, the slices stay adjacent and
    in order, and together still cover the whole range.

    Args:
        previous: Where the slice before starts.
        head: The ``created_at`` of the message at the offset, if any.
        upper: The end of the range, or ``None``.

    Returns:
        ``head`` clamped to ``[previous, upper]``; ``previous`` without a head.
    """
    if head is None or head < previous:
        return previous
    if upper is not None and head > upper:
        return upper
    return head


@attrs.define
class ScanStats:
    """What a scan or a change feed read.

    Attributes:
        pages: Pages read.
        items: Messages yielded.
        slices: Time slices walked (``concurrency`` above 1 may use fewer
            when there are few messages).
        without_id: Messages skipped because they have no id: a key walk
            tells messages apart by id.
        without_created_at: Messages matching the caller's ``filter`` and
            ``search`` that have no ``created_at`` and so can never be read
            by key, counted once the scan is complete; ``None`` before, or if
            the server cannot count them.
        repeated: Messages dropped because a page held the same id twice.
        high_water: The ``created_at`` of the last message yielded.
    """

    pages: int = 0
    items: int = 0
    slices: int = 0
    without_id: int = 0
    without_created_at: int | None = None
    repeated: int = 0
    high_water: datetime | None = None

    def add(self, step: Step) -> None:
        """Account for one accepted page.

        Args:
            step: What ``accept()`` returned for it.
        """
        self.pages += 1
        self.items += len(step.items)
        self.without_id += step.without_id
        self.repeated += step.repeated
        if step.items:
            # accept() yields only messages with a created_at.
            last = cast(datetime, step.items[-1].created_at)
            if self.high_water is None or last > self.high_water:
                self.high_water = last
