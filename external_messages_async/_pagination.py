"""Walking the collection across pages with ``skip``, ``top`` and ``count``.

The decisions (how many to ask for next, when the walk is over, which items
were already seen) are pure; :class:`MessagePager` is the async shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, cast

import attrs

from ._checks import check_int
from ._models import ExternalMessage, Page
from .errors import ExternalMessagesError

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_PAGE_SIZE",
    "ItemIterator",
    "MessagePager",
    "PageWalk",
    "RecentIds",
    "WalkStats",
    "check_concurrency",
    "check_list_args",
    "next_top",
    "walk_done",
]

logger = logging.getLogger("external_messages_async")

#: PortSIP's largest accepted ``top``.
MAX_PAGE_SIZE = 100

#: Pages in flight by default in ``client.list()``. Measured (see
#: ``docs/benchmarks.md``): at 5 ms of latency, 8 pages in flight bring the
#: walk close to the client's CPU bound, where more only add buffered pages.
DEFAULT_CONCURRENCY = 8

#: How many recent ids a walk remembers to drop duplicates (about 1 MB).
DEDUPE_WINDOW = 10_000

FetchPage = Callable[[int, int], Coroutine[Any, Any, Page[ExternalMessage]]]


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
    check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
    check_int("limit", limit, 0, optional=True)
    check_int("skip", skip, 0)


def check_concurrency(concurrency: int) -> None:
    """Validate a ``concurrency`` argument.

    Args:
        concurrency: Requests in flight at once, ``>= 1``.

    Raises:
        TypeError: It is not an int.
        ValueError: It is below 1.
    """
    check_int("concurrency", concurrency, 1)


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
        items = list(items)
        # Checked for None below before any set operation.
        ids = cast("list[str]", [item.id for item in items])
        known = self._ids
        before = len(known)
        if None not in ids and known.isdisjoint(ids):
            # The common case, a page of new ids, done set-wise.
            known.update(ids)
            if len(known) == before + len(ids):
                order = self._order
                order.extend(ids)
                excess = len(order) - self._window
                if excess > 0:
                    known.difference_update([order.popleft() for _ in range(excess)])
                return items
            known.difference_update(ids)  # a page repeating itself: one by one
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

    What offset paging (``skip``/``top``) can and cannot promise, when the
    collection changes during a walk:

    - **The walk ends.** It stops at the first empty page or once ``skip``
      reaches the latest ``count``; messages created faster than the walk
      reads only make it longer while they keep coming.
    - **Nothing is yielded twice.** A message created during the walk shifts
      older ones to higher offsets, so a page may repeat the end of the one
      before; repeats are dropped by id (``duplicates_dropped``), remembering
      the last 10 000 ids of the walk.
    - **Nothing present throughout is missed because of insertions**,
      sequential or concurrent: with ``concurrency`` above 1, a page answered
      before the page in front of it was answered, and with a lower
      ``count``, is requested again, so pages are read as if in order.
    - **Deletions can make a walk miss messages, silently at the server.**
      Deleting a message already passed shifts the later ones back by one,
      and one of them lands on an offset the walk has passed. The client
      cannot see which; it sees ``count`` fall between two pages taken in
      order, sets ``count_decreased``, and logs a WARNING on the
      ``external_messages_async`` logger. Walk again when it is set.
    - **What no client can detect:** a deletion and a creation between the
      same two pages leave ``count`` unchanged, so a message shifted past by
      the deletion goes unreported. Messages created during the walk may or
      may not be yielded, depending on where they sort. Only a cursor or a
      filter on a stable key (``created_at lt <start of the walk>``) gives
      an exact snapshot; offset paging cannot.

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

    With ``concurrency=K`` above 1, the first page is fetched alone (it gives
    ``count``), then up to ``K`` following pages are in flight at once as a
    sliding window: as soon as the oldest page arrives, it is yielded and the
    next one is requested. Pages are yielded in order, at most about ``K``
    pages are held, and requests are planned assuming full pages: a page that
    comes back short has its gap requested again, so nothing is lost.

    Stopping early: the window's requests are cancelled as soon as the walk
    ends (the last page, ``limit``, an error, or the consumer's task being
    cancelled). When the consumer leaves the loop with ``break`` or an
    exception, CPython drops the iterator at once and its cleanup cancels the
    requests in flight; to make that explicit and independent of garbage
    collection, use the pager as an async context manager (recommended with
    ``concurrency`` above 1)::

        async with client.list(concurrency=8) as pager:
            async for message in pager:
                if done(message):
                    break
        # every request of the walk is finished or cancelled here

    :func:`contextlib.aclosing` works too, and so does ``aclose()`` on the
    iterator that ``pages()`` or ``aiter(pager)`` returns.

    If a page finally fails after its retries, the exception (still the
    package's own class, such as :class:`~external_messages_async.errors.ServerError`)
    carries ``resume_skip``: the ``skip`` to start a new walk from, every item
    before it having been yielded. :attr:`WalkStats.next_skip` holds the same.

    Args:
        fetch_page: Fetches ``(skip, top)`` and returns the page.
        page_size: Items per request, 1 to 100.
        limit: The most items to yield, or ``None``.
        skip: Where to start.
        concurrency: Pages in flight at once; 1 walks strictly one page after
            the other.

    Raises:
        TypeError: An argument is not an int.
        ValueError: An argument is out of range.
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        *,
        page_size: int = MAX_PAGE_SIZE,
        limit: int | None = None,
        skip: int = 0,
        concurrency: int = 1,
    ) -> None:
        check_list_args(page_size=page_size, limit=limit, skip=skip)
        check_concurrency(concurrency)
        self._fetch_page = fetch_page
        self.page_size = page_size
        self.limit = limit
        self.skip = skip
        self.concurrency = concurrency
        self.stats = WalkStats(next_skip=skip)
        self._walks: weakref.WeakSet[PageWalk] = weakref.WeakSet()
        # Every request task of every walk, until it ends: a walk dropped at
        # `break` cancels its tasks, and `aclose()` still waits for them.
        self._tasks: set[asyncio.Task[Page[ExternalMessage]]] = set()

    def __aiter__(self) -> ItemIterator:
        return ItemIterator(self.pages())

    def pages(self) -> PageWalk:
        """Walk page by page.

        Returns:
            An async iterator of pages, with items already yielded in this
            walk removed and the last page cut to ``limit``; it has an
            ``aclose()`` method.
        """
        walk = PageWalk(
            self._fetch_page,
            page_size=self.page_size,
            limit=self.limit,
            skip=self.skip,
            concurrency=self.concurrency,
            tasks=self._tasks,
        )
        self.stats = walk.stats
        self._walks.add(walk)
        return walk

    async def aclose(self) -> None:
        """Stop every walk of this pager and wait for its requests to end."""
        for walk in list(self._walks):
            walk._finish(closed=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> MessagePager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ItemIterator:
    """The async iterator ``async for message in pager`` uses.

    Args:
        walk: The page walk it draws from.
    """

    def __init__(self, walk: PageWalk) -> None:
        self._walk = walk
        self._items: Iterator[ExternalMessage] = iter(())

    def __aiter__(self) -> ItemIterator:
        return self

    async def __anext__(self) -> ExternalMessage:
        if self._walk.closed:
            raise StopAsyncIteration
        item = next(self._items, None)
        if item is None:
            # A walk never yields an empty page.
            page = await self._walk.__anext__()
            self._items = iter(page.items)
            item = next(self._items)
        return item

    async def aclose(self) -> None:
        """Stop the walk and wait for its requests to end."""
        await self._walk.aclose()


class _Pending:
    """One request of the window: where it starts, how many it asks for."""

    __slots__ = ("skip", "task", "top")

    def __init__(self, skip: int, top: int, task: asyncio.Task[Page[ExternalMessage]]):
        self.skip = skip
        self.top = top
        self.task = task


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a request's error as seen: a cancelled walk never awaits it."""
    if not task.cancelled():
        task.exception()


class PageWalk:
    """One walk over the pages: an async iterator of pages.

    Made by :meth:`MessagePager.pages`; see :class:`MessagePager` for the rules.
    Its requests in flight are cancelled when the walk ends, on
    :meth:`aclose`, and when the iterator is dropped.

    Args:
        fetch_page: Fetches ``(skip, top)`` and returns the page.
        page_size: Items per request.
        limit: The most items to yield, or ``None``.
        skip: Where to start.
        concurrency: Pages in flight at once.
        tasks: A set the walk adds its request tasks to while they run.
    """

    def __init__(
        self,
        fetch_page: FetchPage,
        *,
        page_size: int,
        limit: int | None,
        skip: int,
        concurrency: int,
        tasks: set[asyncio.Task[Page[ExternalMessage]]] | None = None,
    ) -> None:
        self._fetch_page = fetch_page
        self._tasks = tasks if tasks is not None else set()
        self._page_size = page_size
        self._limit = limit
        self._concurrency = concurrency
        self.stats = WalkStats(next_skip=skip)
        self._seen = RecentIds()
        self._cursor = skip
        self._frontier = skip
        self._count: int | None = None
        self._window: deque[_Pending] = deque()
        self._done = False
        #: Whether the walk was closed before its end.
        self.closed = False

    def __aiter__(self) -> PageWalk:
        return self

    async def __anext__(self) -> Page[ExternalMessage]:
        while not self._done:
            top = next_top(self._page_size, self._limit, self.stats.items)
            if top == 0:
                self._finish()
                break
            try:
                page = await self._next_page(top)
            except BaseException as exc:
                self._finish()
                if isinstance(exc, ExternalMessagesError):
                    exc.resume_skip = self._cursor
                raise
            fresh = self._take(page)
            if fresh:
                return attrs.evolve(page, items=fresh)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """End the walk: cancel its requests in flight and wait for them."""
        tasks = [pending.task for pending in self._window]
        self._finish(closed=True)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # `async for` does not close an iterator left by `break`; CPython drops
        # it at once, and this stops its requests without waiting for them.
        if self._window:
            # RuntimeError: the event loop is already closed.
            with contextlib.suppress(RuntimeError):
                self._finish()

    def _finish(self, *, closed: bool = False) -> None:
        self._done = True
        self.closed = self.closed or closed
        while self._window:
            self._window.popleft().task.cancel()

    async def _next_page(self, top: int) -> Page[ExternalMessage]:
        if self._concurrency == 1 or self._count is None:
            return await self._fetch_page(self._cursor, top)
        window = self._window
        expected = window[0].skip if window else self._frontier
        if self._cursor < expected:
            # A short page left a gap before the pages already requested.
            self._window.appendleft(
                self._start(self._cursor, min(top, expected - self._cursor))
            )
        self._fill()
        pending = window.popleft()
        page = await pending.task
        if page.count < self._count:
            # Served before the page just taken, which saw more messages:
            # ones created in between may have pushed that page's last items
            # into this page's range after this page was answered. Asked again
            # now, it is served after that page, as in a sequential walk.
            page = await self._fetch_page(pending.skip, pending.top)
        return page

    def _fill(self) -> None:
        window = self._window
        self._frontier = max(self._frontier, self._cursor)
        planned = sum(pending.top for pending in window)
        while len(window) < self._concurrency:
            if self._count is not None and self._frontier >= self._count:
                return
            top = self._page_size
            if self._limit is not None:
                top = min(top, self._limit - self.stats.items - planned)
                if top <= 0:
                    return
            window.append(self._start(self._frontier, top))
            self._frontier += top
            planned += top

    def _start(self, skip: int, top: int) -> _Pending:
        task = asyncio.get_running_loop().create_task(
            self._fetch_page(skip, top), name=f"external_messages_async skip={skip}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)
        return _Pending(skip, top, task)

    def _take(self, page: Page[ExternalMessage]) -> list[ExternalMessage]:
        """Account for a page in order; return its items to yield."""
        stats = self.stats
        stats.pages += 1
        if stats.first_count is None:
            stats.first_count = page.count
        elif stats.last_count is not None and page.count < stats.last_count:
            stats.count_decreased = True
            logger.warning(
                "count fell from %d to %d during the walk at skip=%d: messages "
                "deleted meanwhile may have shifted others past the walk",
                stats.last_count, page.count, page.skip,
            )  # fmt: skip
        stats.last_count = self._count = page.count
        items = page.items
        overlap = self._cursor - page.skip
        if overlap > 0:
            items = items[overlap:]
        fresh = self._seen.fresh(items)
        stats.duplicates_dropped += len(items) - len(fresh)
        end = page.skip + len(page.items)
        if self._limit is not None and len(fresh) > self._limit - stats.items:
            # The server sent more than asked for: resume right after the
            # last item yielded, not after the ones cut off.
            fresh = fresh[: self._limit - stats.items]
            last = fresh[-1]
            end = (
                page.skip
                + max(overlap, 0)
                + next(index for index, item in enumerate(items) if item is last)
                + 1
            )
        self._cursor = max(self._cursor, end)
        stats.next_skip = self._cursor
        stats.items += len(fresh)
        limit_reached = self._limit is not None and stats.items >= self._limit
        if limit_reached or walk_done(self._cursor, page.count, len(page.items)):
            self._finish()
        return fresh
