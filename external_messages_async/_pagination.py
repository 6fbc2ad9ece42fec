"""Walking the collection across pages with ``skip``, ``top`` and ``count``.

The decisions (which pages to request, what each page yields, when the walk is
over) are pure and live in :mod:`._planner`; :class:`PageWalk` is the asyncio
shell that sends the requests, and :class:`MessagePager` the public iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence, Set
from typing import Any, cast

import attrs

from ._checks import check_int
from ._models import ExternalMessage, Page
from ._planner import Request, Step, WalkState, accept, fresh_items, plan
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

    @property
    def ids(self) -> Set[str]:
        """The ids remembered now (a live view: read it, do not change it)."""
        return self._ids

    def remember(self, items: Iterable[ExternalMessage]) -> None:
        """Remember the ids of items yielded, forgetting the oldest beyond the window.

        Args:
            items: Items just yielded, none of them seen before.
        """
        ids = [item.id for item in items]
        if None in ids:
            ids = [message_id for message_id in ids if message_id is not None]
        # Items without an id were filtered out just above.
        self._ids.update(cast("list[str]", ids))
        order = self._order
        order.extend(cast("list[str]", ids))
        excess = len(order) - self._window
        if excess > 0:
            self._ids.difference_update([order.popleft() for _ in range(excess)])

    def fresh(self, items: Sequence[ExternalMessage]) -> list[ExternalMessage]:
        """Return the items not seen before, and remember them.

        Args:
            items: A page's items, in order. Items without an id are kept.

        Returns:
            The items whose id is new.
        """
        fresh = fresh_items(items, self._ids)
        self.remember(fresh)
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

    A server that caps pages below ``page_size`` shows its cap with the first
    page shorter than asked for while more remain; later requests ask for that
    cap, so 200 messages at a cap of 30 take 7 requests. A server that ignores
    ``skip`` (two full pages in a row holding only ids already yielded, while
    ``count`` did not grow by as many) ends the walk with ``PagingError``
    (``ignored="skip"``) instead of being walked for ever.

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
    The decisions behind all this are pure functions in ``_planner.py``
    (explained in the paging explanation page).

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


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a request's error as seen: a cancelled walk never awaits it."""
    if not task.cancelled():
        task.exception()


class PageWalk:
    """One walk over the pages: an async iterator of pages.

    Made by :meth:`MessagePager.pages`; see :class:`MessagePager` for the rules.
    The decisions are :func:`~._planner.plan` and :func:`~._planner.accept`;
    this shell sends the requests they ask for (in the caller's task when the
    walk is sequential, as tasks in a window) and remembers the ids yielded. Its requests in flight are cancelled when the walk ends, on
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
        self._state = WalkState.start(
            page_size=page_size, limit=limit, skip=skip, concurrency=concurrency
        )
        self._seen = RecentIds()
        #: The window's requests running as tasks, by offset.
        self._running: dict[int, asyncio.Task[Page[ExternalMessage]]] = {}
        self.stats = WalkStats(next_skip=skip)
        #: Whether the walk was closed before its end.
        self.closed = False

    def __aiter__(self) -> PageWalk:
        return self

    async def __anext__(self) -> Page[ExternalMessage]:
        while True:
            self._state, requests = plan(self._state)
            if self._state.done:
                self._finish()
                raise StopAsyncIteration
            head = self._state.head
            try:
                if self._state.sequential:
                    page = await self._fetch_page(head.skip, head.top)
                else:
                    for request in requests:
                        self._start(request)
                    page = await self._running.pop(head.skip)
                step = accept(self._state, page, self._seen.ids)
                while step.refetch is not None:
                    page = await self._fetch_page(step.refetch.skip, step.refetch.top)
                    step = accept(step.state, page, self._seen.ids)
            except BaseException as exc:
                self._finish()
                if isinstance(exc, ExternalMessagesError):
                    if exc.resume_skip is None:
                        exc.resume_skip = self._state.cursor
                    self.stats.next_skip = exc.resume_skip
                raise
            self._take(step)
            if step.items:
                return attrs.evolve(page, items=step.items)

    async def aclose(self) -> None:
        """End the walk: cancel its requests in flight and wait for them."""
        tasks = list(self._running.values())
        self._finish(closed=True)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # `async for` does not close an iterator left by `break`; CPython drops
        # it at once, and this stops its requests without waiting for them.
        if self._running:
            # RuntimeError: the event loop is already closed.
            with contextlib.suppress(RuntimeError):
                self._finish()

    def _finish(self, *, closed: bool = False) -> None:
        self._state = self._state.stopped()
        self.closed = self.closed or closed
        running, self._running = self._running, {}
        for task in running.values():
            task.cancel()

    def _start(self, request: Request) -> None:
        task = asyncio.get_running_loop().create_task(
            self._fetch_page(request.skip, request.top),
            name=f"external_messages_async skip={request.skip}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_retrieve)
        self._running[request.skip] = task

    def _take(self, step: Step) -> None:
        """Adopt a step's state: remember its ids, update the stats."""
        state = self._state = step.state
        self._seen.remember(step.items)
        if step.warning is not None:
            logger.warning(step.warning)
        stats = self.stats
        stats.pages = state.pages
        stats.items = state.yielded
        stats.duplicates_dropped = state.duplicates_dropped
        stats.first_count = state.first_count
        stats.last_count = state.count
        stats.count_decreased = state.count_decreased
        stats.next_skip = state.cursor
        if state.done:
            self._finish()
