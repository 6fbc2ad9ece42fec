"""Walking the collection across pages with ``skip``, ``top`` and ``count``.

The decisions (how many to ask for next, when the walk is over, which items
were already seen) are pure; :class:`MessagePager` is the async shell.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs

from ._models import ExternalMessage, Page

__all__ = [
    "MAX_PAGE_SIZE",
    "MessagePager",
    "RecentIds",
    "WalkStats",
    "check_list_args",
    "next_top",
    "walk_done",
]

logger = logging.getLogger("external_messages_async")

#: PortSIP's largest accepted ``top``.
MAX_PAGE_SIZE = 100

#: How many recent ids a walk remembers to drop duplicates (about 1 MB).
DEDUPE_WINDOW = 10_000

FetchPage = Callable[[int, int], Awaitable[Page[ExternalMessage]]]


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_list_args(*, page_size: int, limit: int | None, skip: int) -> None:
    """Validate the paging arguments before any request is made.

    Args:
        page_size: Items per request, 1 to 100.
        limit: The most items to yield, ``>= 0``, or ``None`` for all.
        skip: Where to start, ``>= 0``.

    Raises:
        TypeError: An argument is not an int.
        ValueError: An argument is out of range.
    """
    _check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
    if limit is not None:
        _check_int("limit", limit, 0)
    _check_int("skip", skip, 0)


def next_top(page_size: int, limit: int | None, yielded: int) -> int:
    """Return how many items to ask for next; 0 means the limit is reached.

    Args:
        page_size: The walk's page size.
        limit: The walk's limit, or ``None``.
        yielded: Items yielded so far.

    Returns:
        The ``top`` for the next request, never more than what is still needed.
    """
    if limit is None:
        return page_size
    return max(0, min(page_size, limit - yielded))


def walk_done(next_skip: int, count: int, returned: int) -> bool:
    """Decide whether the walk is over after a page.

    Args:
        next_skip: The offset after the page (its ``skip`` plus items returned).
        count: The total the server gave with the page.
        returned: How many items the page held.

    Returns:
        ``True`` when the page was empty or ``next_skip`` reached ``count``.
    """
    return returned == 0 or next_skip >= count


class RecentIds:
    """Remembers the most recent ids of a walk, to drop ones seen before.

    Messages created during a walk shift later items to higher offsets, so the
    next page can repeat the tail of the previous one. Remembering the last
    ``window`` ids catches every such repeat while fewer than ``window``
    messages arrive during the walk, and keeps memory flat on any collection.

    Args:
        window: How many ids to remember.
    """

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self._window = window
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def fresh(self, items: Iterable[ExternalMessage]) -> list[ExternalMessage]:
        """Return the items not seen before, and remember them.

        Args:
            items: A page's items, in order. Items without an id are kept.

        Returns:
            The items whose id is new.
        """
        fresh = []
        for item in items:
            message_id = item.id
            if message_id is not None:
                if message_id in self._ids:
                    continue
                self._ids.add(message_id)
                self._order.append(message_id)
                if len(self._order) > self._window:
                    self._ids.discard(self._order.popleft())
            fresh.append(item)
        return fresh


@attrs.define
class WalkStats:
    """What a walk saw, for callers who want to check its completeness.

    Attributes:
        pages: Pages fetched.
        items: Items yielded.
        duplicates_dropped: Items dropped because their id was already yielded.
        first_count: ``count`` on the first page.
        last_count: ``count`` on the latest page.
        count_decreased: Whether ``count`` ever went down between pages: a
            deletion during the walk may have shifted items to offsets the walk
            had already passed, so some may have been missed.
        next_skip: The offset to resume from.
    """

    pages: int = 0
    items: int = 0
    duplicates_dropped: int = 0
    first_count: int | None = None
    last_count: int | None = None
    count_decreased: bool = False
    next_skip: int = 0


class MessagePager:
    """An async iterator over messages, across pages; also ``.pages()``.

    Made by :meth:`ExternalMessagesClient.list`. Each ``async for`` starts a
    new walk; :attr:`stats` describes the latest one.
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        *,
        page_size: int = MAX_PAGE_SIZE,
        limit: int | None = None,
        skip: int = 0,
    ) -> None:
        check_list_args(page_size=page_size, limit=limit, skip=skip)
        self._fetch_page = fetch_page
        self.page_size = page_size
        self.limit = limit
        self.skip = skip
        self.stats = WalkStats(next_skip=skip)

    def __aiter__(self) -> AsyncIterator[ExternalMessage]:
        return self._items()

    async def _items(self) -> AsyncIterator[ExternalMessage]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def pages(self) -> AsyncIterator[Page[ExternalMessage]]:
        """Walk page by page.

        Yields:
            Each page, with items already yielded in this walk removed and the
            last page cut to ``limit``.
        """
        stats = self.stats = WalkStats(next_skip=self.skip)
        seen = RecentIds()
        skip = self.skip
        while top := next_top(self.page_size, self.limit, stats.items):
            page = await self._fetch_page(skip, top)
            stats.pages += 1
            if stats.first_count is None:
                stats.first_count = page.count
            elif stats.last_count is not None and page.count < stats.last_count:
                stats.count_decreased = True
                logger.warning(
                    "count fell from %d to %d during the walk at skip=%d: messages "
                    "deleted meanwhile may have shifted others past the walk",
                    stats.last_count, page.count, skip,
                )  # fmt: skip
            stats.last_count = page.count
            fresh = seen.fresh(page.items)
            stats.duplicates_dropped += len(page.items) - len(fresh)
            if self.limit is not None:
                fresh = fresh[: self.limit - stats.items]
            returned = len(page.items)
            skip += returned
            stats.next_skip = skip
            stats.items += len(fresh)
            if fresh:
                yield attrs.evolve(page, items=fresh)
            if walk_done(skip, page.count, returned):
                return
