"""The async shell of reading by key: :class:`MessageScan` and its page walks.

The decisions (what to ask for, whether a page can be trusted, where the walk
stands) are in ``_scan.py``; this module only sends the requests, runs time
slices at once, and hands pages over in order.
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextlib
import weakref
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from ._checks import check_int
from ._filters import build_filter
from ._models import ExternalMessage, Page
from ._pagination import MAX_PAGE_SIZE
from ._scan import (
    ASCENDING,
    EPOCH,
    KeyWalk,
    ScanStats,
    accept,
    check_instant,
    next_bound,
    plan,
    slice_count,
    split_offsets,
)
from .errors import BadRequestError

__all__ = ["FetchKeyPage", "KeyPages", "MessageScan", "ScanItems", "ScanPages"]

#: ``fetch(filter, orderby, top, skip)``: one list request.
FetchKeyPage = Callable[
    [str, str, int, int], Coroutine[Any, Any, Page[ExternalMessage]]
]

_Messages = list[ExternalMessage]


class KeyPages:
    """One sequential key walk, run in the caller's task: an async iterator of pages.

    **Read ahead.** As soon as a page is accepted, the request for the next
    one is sent (its key comes from that page), so the server works on it
    while the caller handles this page: the walk stays sequential, with one
    request in flight, but the round trip overlaps the caller's work. A walk
    left before its end must be stopped with :meth:`aclose` (or
    :meth:`cancel`, from synchronous code), which cancels that request.

    Args:
        fetch: Sends one list request.
        walk: Where the walk starts.
        stats: Counters to update.
        tasks: A set each request sent ahead is added to while it runs, so
            that an owner can wait for it after the walk is dropped.
    """

    def __init__(
        self,
        fetch: FetchKeyPage,
        walk: KeyWalk,
        stats: ScanStats,
        tasks: set[asyncio.Task[Any]] | None = None,
    ) -> None:
        self._fetch = fetch
        self.walk = walk
        self._stats = stats
        self._tasks = tasks
        self._ahead: asyncio.Task[Page[ExternalMessage]] | None = None

    def __aiter__(self) -> KeyPages:
        return self

    async def __anext__(self) -> _Messages:
        page = await self.next()
        if page is None:
            raise StopAsyncIteration
        return page

    async def next(self) -> _Messages | None:
        """Read pages until one has messages to yield.

        Returns:
            Those messages, or ``None`` once the walk is done.
        """
        while not self.walk.done:
            ahead, self._ahead = self._ahead, None
            # A cancellation of this task cancels an awaited `ahead` too.
            page = await (self._request() if ahead is None else ahead)
            step = accept(self.walk, page.items, page.count)
            self.walk = step.walk
            self._stats.add(step)
            if not step.walk.done:
                self._ahead = asyncio.get_running_loop().create_task(
                    self._request(), name="external_messages_async key page"
                )
                if self._tasks is not None:
                    self._tasks.add(self._ahead)
                    self._ahead.add_done_callback(self._tasks.discard)
            if step.items:
                return step.items
        return None

    def _request(self) -> Coroutine[Any, Any, Page[ExternalMessage]]:
        """The list request for the walk's next page."""
        request = plan(self.walk)
        return self._fetch(request.filter, request.orderby, request.top, 0)

    def cancel(self) -> asyncio.Task[Page[ExternalMessage]] | None:
        """Cancel the request sent ahead, if any; its outcome is dropped.

        Returns:
            The cancelled request's task, for an owner to await, or ``None``.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            # Retrieved, so that a failure is never reported as unretrieved.
            ahead.add_done_callback(_drop_outcome)
        return ahead

    async def aclose(self) -> None:
        """Cancel the request sent ahead and wait for it to end."""
        ahead = self.cancel()
        if ahead is not None:
            await asyncio.gather(ahead, return_exceptions=True)


def _drop_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


_END = object()
_UNKNOWN = object()


async def _all(*steps: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run ``steps`` at once; if one fails, cancel the others before raising."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Feeder:
    """Runs a :class:`KeyPages` walk in its own task, buffering its pages."""

    def __init__(self, pages: KeyPages, tasks: set[asyncio.Task[Any]]) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(
            self._run(pages), name="external_messages_async scan slice"
        )
        tasks.add(self.task)
        self.task.add_done_callback(tasks.discard)

    async def _run(self, pages: KeyPages) -> None:
        try:
            async for page in pages:
                self._queue.put_nowait(page)
        except Exception as exc:
            self._queue.put_nowait(exc)
        else:
            self._queue.put_nowait(_END)

    async def next(self) -> _Messages | None:
        """Wait for the walk's next page; ``None`` once it is done."""
        item = await self._queue.get()
        if item is _END:
            return None
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[return-value]  # only pages, _END or errors are queued


class ScanPages:
    """One scan: an async iterator of pages in ascending ``created_at``.

    Made by :meth:`MessageScan.pages`; see :class:`MessageScan` for the rules.

    Args:
        scan: The scan's settings.
        tasks: A set the slice tasks are added to while they run.
    """

    def __init__(self, scan: MessageScan, tasks: set[asyncio.Task[Any]]) -> None:
        self._scan = scan
        self._tasks = tasks
        self.stats = ScanStats()
        self._sources: collections.deque[KeyPages | _Feeder] | None = None
        self._feeders: list[_Feeder] = []
        #: The walk of a scan of one slice, run in the caller's task.
        self._sequential: KeyPages | None = None
        self._undated: int | object | None = _UNKNOWN
        self._range = ""
        self._offsets: list[int] = []
        self._bounds: list[datetime] = []
        self._next_slice = 0
        self._slice_total = 0
        self._done = False
        #: Whether the scan was closed before its end.
        self.closed = False

    def __aiter__(self) -> ScanPages:
        return self

    async def __anext__(self) -> _Messages:
        try:
            return await self._next()
        except BaseException:
            self._finish()
            raise

    async def _next(self) -> _Messages:
        if self._done:
            raise StopAsyncIteration
        if self._sources is None:
            self._sources = collections.deque()
            await self._start()
        while True:
            await self._top_up()
            if not self._sources:
                break
            page = await self._sources[0].next()
            if page is not None:
                return page
            finished = self._sources.popleft()
            if isinstance(finished, _Feeder):
                self._feeders.remove(finished)
        if self._undated is _UNKNOWN:
            self._undated = await self._count_undated()
        self.stats.without_created_at = self._undated  # type: ignore[assignment]  # counted by now
        self._done = True
        raise StopAsyncIteration

    def _walk(self, lower: datetime, upper: datetime | None) -> KeyPages:
        scan = self._scan
        walk = KeyWalk(
            lower=lower, upper=upper, page_size=scan.page_size, filter=scan.filter
        )
        return KeyPages(scan.fetch, walk, self.stats, self._tasks)

    async def _start(self) -> None:
        """Plan the slices: one walk, or ``concurrency`` at a time over many."""
        assert self._sources is not None
        scan = self._scan
        lower = scan.since if scan.since is not None else EPOCH
        self._bounds = [lower]
        slices = 1
        if scan.concurrency > 1:
            # Balanced by count: the messages at evenly spaced offsets of
            # the range, read in created_at order, are the boundaries (read
            # a batch at a time as slices start). Only the balance depends on
            # them: the slices cover the range whatever they are. Messages
            # without created_at are counted meanwhile.
            text = build_filter(since=lower, until=scan.until, extra=scan.filter)
            assert text is not None  # since is always given
            self._range = text
            first, self._undated = await _all(
                scan.fetch(text, ASCENDING, 1, 0), self._count_undated()
            )
            slices = slice_count(first.count, scan.page_size, scan.concurrency)
            self._offsets = split_offsets(first.count, slices)
        if slices == 1:
            self._sequential = self._walk(lower, scan.until)
            self._sources.append(self._sequential)
            self.stats.slices = 1
        self._slice_total = 0 if slices == 1 else slices

    async def _top_up(self) -> None:
        """Start slices until ``concurrency`` run, reading boundaries as needed."""
        assert self._sources is not None
        scan = self._scan
        total = self._slice_total
        running = sum(not feeder.task.done() for feeder in self._feeders)
        # Slices finished early wait for their turn; at most twice as many
        # slices as run at once are kept, to bound what they hold.
        while (
            running < scan.concurrency
            and len(self._sources) < 2 * scan.concurrency
            and self._next_slice < total
        ):
            index = self._next_slice
            if index + 1 < total and len(self._bounds) <= index + 1:
                # As many boundary reads as slices could start now, so that
                # no more than `concurrency` requests are in flight.
                await self._read_bounds(index + 1, scan.concurrency - running)
            lower = self._bounds[index]
            upper = self._bounds[index + 1] if index + 1 < total else scan.until
            self._next_slice += 1
            if upper is not None and upper <= lower:
                continue  # an empty slice: its boundaries coincide
            feeder = _Feeder(self._walk(lower, upper), self._tasks)
            self._sources.append(feeder)
            self._feeders.append(feeder)
            self.stats.slices += 1
            running += 1

    async def _read_bounds(self, first: int, count: int) -> None:
        """Read the boundaries of ``count`` slices from ``first`` on."""
        scan = self._scan
        indexes = range(first, min(first + count, self._slice_total))
        heads = await _all(
            *(
                scan.fetch(self._range, ASCENDING, 1, self._offsets[index - 1])
                for index in indexes
            )
        )
        for page in heads:
            head = page.items[0].created_at if page.items else None
            self._bounds.append(next_bound(self._bounds[-1], head, scan.until))

    async def _count_undated(self) -> int | None:
        scan = self._scan
        text = "created_at eq null"
        if scan.filter is not None:
            text += f" and ({scan.filter})"
        try:
            page = await scan.fetch(text, ASCENDING, 1, 0)
        except BadRequestError:
            # A server that cannot compare created_at with null: unknown.
            return None
        return page.count

    async def aclose(self) -> None:
        """End the scan: cancel its requests and wait for them."""
        tasks = self._finish(closed=True)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        # `async for` does not close an iterator left by `break`; CPython drops
        # it at once, and this stops its requests without waiting for them.
        if self._feeders or self._sequential is not None:
            # RuntimeError: the event loop is already closed.
            with contextlib.suppress(RuntimeError):
                self._finish()

    def _finish(self, *, closed: bool = False) -> list[asyncio.Task[Any]]:
        """Stop the scan; return the tasks cancelled, for the caller to await."""
        self._done = True
        self.closed = self.closed or closed
        tasks: list[asyncio.Task[Any]] = [feeder.task for feeder in self._feeders]
        for task in tasks:
            task.cancel()
        self._feeders = []
        if self._sequential is not None:
            ahead = self._sequential.cancel()
            if ahead is not None:
                tasks.append(ahead)
            self._sequential = None
        return tasks


class ScanItems:
    """The async iterator ``async for message in scan`` uses.

    Args:
        pages: The scan it draws from.
    """

    def __init__(self, pages: ScanPages) -> None:
        self._pages = pages
        self._items: collections.abc.Iterator[ExternalMessage] = iter(())

    def __aiter__(self) -> ScanItems:
        return self

    async def __anext__(self) -> ExternalMessage:
        item = next(self._items, None)
        if item is None:
            # A scan never yields an empty page.
            self._items = iter(await self._pages.__anext__())
            item = next(self._items)
        return item

    async def aclose(self) -> None:
        """Stop the scan and wait for its requests to end."""
        self._items = iter(())
        await self._pages.aclose()


class MessageScan:
    """Messages with ``since <= created_at < until``, oldest first, read by key.

    Made by :meth:`ExternalMessagesClient.scan`. ``async for message in scan``
    yields messages; ``async for page in scan.pages()`` yields one list per
    server page. Each ``async for`` starts a new scan; :attr:`stats`
    describes the latest one.

    **Exactly once.** Every message in range that exists for the whole scan
    is yielded exactly once, whatever is inserted or deleted meanwhile,
    including among many messages sharing one second. Messages created or
    deleted during the scan may or may not be yielded.

    **Checked.** A page out of ``created_at`` order, or holding a message
    outside the range asked for, raises
    ``PagingError`` (``ignored`` names
    ``"orderby"`` or ``"filter"``) before anything of it is yielded.

    **Not scannable.** Messages without a ``created_at`` cannot be read by
    key; once the scan is complete, :attr:`ScanStats.without_created_at`
    says how many match the filter (read them with ``client.list(filter=
    "created_at eq null")``). Messages without an id are skipped and counted
    in :attr:`ScanStats.without_id`.

    **Concurrency.** With ``concurrency=K`` above 1 the range is cut into
    time slices of about 8 pages each (at least ``K``), holding about as
    many messages each, and ``K`` slices are walked at once, yielded in
    order. The boundaries come from the data: one ``top=1`` request gives
    the count, then one ``top=1`` request per boundary, sent as slices
    start, reads the message at each evenly spaced offset in ``created_at``
    order; no more than ``K`` requests are in flight. A slice that ends
    before its turn holds its pages; at most ``2 * K`` slices are kept at
    once, so at most about ``16 * K`` pages are held, however large the
    range. Leave the scan with ``async with`` (or ``aclose()``) to stop every
    slice at once::

        async with client.scan(since=start, concurrency=8) as scan:
            async for message in scan:
                ...

    Args:
        fetch: Sends one list request ``(filter, orderby, top, skip)``.
        since: The first instant, inclusive; ``None`` reads from the oldest.
        until: The end, exclusive; ``None`` reads to the newest, including
            messages created while the scan runs.
        filter: An OData filter ANDed with the key range, sent verbatim.
        page_size: Messages per request, 1 to 100.
        concurrency: Time slices walked at once, ``>= 1``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``since`` or ``until`` is naive, ``since`` is not before
            ``until``, or ``page_size`` or ``concurrency`` is out of range.
    """

    def __init__(
        self,
        fetch: FetchKeyPage,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        filter: str | None = None,
        page_size: int = 100,
        concurrency: int = 1,
    ) -> None:
        check_instant("since", since)
        check_instant("until", until)
        if since is not None and until is not None and not since < until:
            raise ValueError(f"since ({since}) must be before until ({until})")
        if filter is not None and not isinstance(filter, str):
            raise TypeError(
                f"filter must be a str or None, got {type(filter).__name__}"
            )
        check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
        check_int("concurrency", concurrency, 1)
        self.fetch = fetch
        self.since = since
        self.until = until
        self.filter = filter
        self.page_size = page_size
        self.concurrency = concurrency
        self.stats = ScanStats()
        self._scans: weakref.WeakSet[ScanPages] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __aiter__(self) -> ScanItems:
        return ScanItems(self.pages())

    def pages(self) -> ScanPages:
        """Scan page by page.

        Returns:
            An async iterator of lists of messages, one per server page that
            held messages to yield; it has an ``aclose()`` method.
        """
        pages = ScanPages(self, self._tasks)
        self.stats = pages.stats
        self._scans.add(pages)
        return pages

    async def aclose(self) -> None:
        """Stop every scan of this object and wait for its requests to end."""
        for pages in list(self._scans):
            pages._finish(closed=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> MessageScan:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
