"""The page walk's decisions: which pages to request, what a page yields.

Pure, in the manner of :mod:`._limiter`'s :class:`AimdState`: a frozen
:class:`WalkState`, :func:`plan` (which requests to send now) and
:func:`accept` (what an answered page yields, and whether it must be asked
again). No event loop, no clock; :class:`~._pagination.PageWalk` is the asyncio
shell that sends the requests and remembers the ids yielded.

The rules:

- **Sequential** (``concurrency=1``, and the first page of every walk): one
  request at a time, at the cursor, for ``page_size`` items or what the limit
  still needs.
- **Window** (``concurrency=K`` once ``count`` is known): up to ``K``
  requests in flight, planned assuming full pages, up to ``count`` and never
  for more than the limit still needs. Pages are accepted in offset order.
- **Gap refetch**: a page that came back short leaves the items between its
  end and the next planned request unread; they are requested next.
- **Stale-count refetch**: in the window, a page whose ``count`` is lower than
  the one of the page accepted before it was served earlier, before messages
  created in between; it is requested once more, as a sequential walk would.
- **Overlap trim**: a server that sends more items than asked for moves the
  cursor past the next planned page's start; the items of that page before
  the cursor are dropped, since they were yielded already.
- **Limit cut**: a page holding more than the limit still needs is cut, and
  the walk resumes right after the last item yielded.
- **Cap learning**: the first page shorter than asked for while more remain
  shows the server's own page cap; later requests ask for no more than that,
  so a server capping at 30 serves 200 messages in 7 requests.
- **Ignored skip**: :data:`REPEATED_PAGES_LIMIT` full pages in a row made only
  of ids already yielded, while ``count`` never fell between them and grew
  during the walk by fewer than the items on them, cannot come from messages
  created meanwhile: the server ignores ``skip``, and :func:`accept` raises
  :class:`~.errors.PagingError` with ``resume_skip`` at the cursor before the
  first of them.
"""

from __future__ import annotations

from collections.abc import Sequence, Set

import attrs

from ._models import ExternalMessage, Page
from .errors import PagingError

__all__ = [
    "REPEATED_PAGES_LIMIT",
    "Repeats",
    "Request",
    "Step",
    "WalkState",
    "accept",
    "fresh_items",
    "next_top",
    "plan",
    "walk_done",
]

#: Full pages in a row, made only of ids already yielded, after which the
#: server is taken to ignore ``skip`` (unless ``count`` grew during the walk
#: by as many items as they held). Two: the smallest number that still lets one page of
#: repeats pass without an error, and it stops a server that ignores ``skip``
#: after three requests in a sequential walk.
REPEATED_PAGES_LIMIT = 2


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


def fresh_items(
    items: Sequence[ExternalMessage], known: Set[str]
) -> list[ExternalMessage]:
    """Return the items whose id is neither in ``known`` nor earlier in ``items``.

    Args:
        items: A page's items, in order. Items without an id are kept.
        known: The ids already yielded; only read.

    Returns:
        The items to yield, in order.
    """
    ids = [item.id for item in items]
    if None not in ids and known.isdisjoint(ids) and len(set(ids)) == len(ids):
        # The common case, a page of new ids, decided set-wise.
        return list(items)
    fresh = []
    here: set[str] = set()
    for item in items:
        message_id = item.id
        if message_id is not None:
            if message_id in known or message_id in here:
                continue
            here.add(message_id)
        fresh.append(item)
    return fresh


@attrs.frozen
class Request:
    """One page request: where it starts and how many items it asks for.

    Attributes:
        skip: The offset.
        top: The number of items asked for.
        again: Whether it is a stale-count refetch (asked at most once again).
    """

    skip: int
    top: int
    again: bool = False


@attrs.frozen(kw_only=True)
class Repeats:
    """A run of full pages in a row made only of ids already yielded.

    New messages shift old ones to higher offsets, so a page can repeat
    messages yielded before; but a run of such pages holding ``items`` items
    needs its last one shifted by at least ``items`` places since it was
    yielded, so at least that many messages created since the walk began.

    Attributes:
        pages: Pages in the run.
        items: Items on those pages.
        since: The cursor before the run: the offset to resume from.
    """

    pages: int
    items: int
    since: int


@attrs.frozen(kw_only=True)
class WalkState:
    """A walk's position and plan: a snapshot, replaced on every event.

    Attributes:
        page_size: Items per request the caller asked for.
        limit: The most items to yield, or ``None``.
        concurrency: Requests in flight at most.
        cursor: Every item before this offset is accounted for; the offset to
            resume from.
        frontier: The offset where the next planned window request starts.
        count: ``count`` of the latest page accepted, ``None`` before the first.
        window: The window's requests sent and not accepted yet, in offset
            order. Empty in a sequential walk, whose one request follows from
            the state (see :attr:`head`).
        done: Whether the walk is over.
        cap: The server's page cap, learned from the first short page.
        yielded: Items yielded.
        pages: Pages accepted.
        duplicates_dropped: Items dropped because their id was yielded before.
        first_count: ``count`` of the first page.
        count_decreased: Whether ``count`` ever fell between pages.
        repeats: The run of full pages made only of ids already yielded that
            ends at the latest page, or ``None``.
    """

    page_size: int
    limit: int | None
    concurrency: int
    cursor: int
    frontier: int
    count: int | None = None
    window: tuple[Request, ...] = ()
    done: bool = False
    cap: int | None = None
    yielded: int = 0
    pages: int = 0
    duplicates_dropped: int = 0
    first_count: int | None = None
    count_decreased: bool = False
    repeats: Repeats | None = None

    @classmethod
    def start(
        cls, *, page_size: int, limit: int | None, skip: int, concurrency: int
    ) -> WalkState:
        """Return the state of a walk before its first request.

        Args:
            page_size: Items per request.
            limit: The most items to yield, or ``None``.
            skip: Where to start.
            concurrency: Requests in flight at most.

        Returns:
            The state with nothing planned yet.
        """
        return cls(
            page_size=page_size,
            limit=limit,
            concurrency=concurrency,
            cursor=skip,
            frontier=skip,
        )

    @property
    def request_size(self) -> int:
        """The ``top`` of a full request: ``page_size``, or the learned cap if lower."""
        if self.cap is None:
            return self.page_size
        return min(self.page_size, self.cap)

    @property
    def head(self) -> Request:
        """The request whose answer :func:`accept` takes next."""
        if self.window:
            return self.window[0]
        return Request(
            self.cursor, next_top(self.request_size, self.limit, self.yielded)
        )

    @property
    def sequential(self) -> bool:
        """Whether the next request is the only one in flight (no window yet, or K=1)."""
        return self.concurrency == 1 or self.count is None

    def stopped(self) -> WalkState:
        """Return the state of this walk ended early, with nothing in flight.

        Returns:
            The state, done, with an empty window.
        """
        return attrs.evolve(self, done=True, window=())


@attrs.frozen
class Step:
    """What :func:`accept` decided about one page.

    Attributes:
        state: The walk's new state.
        items: The items to yield, in order (the page's items after the overlap
            trim, the duplicates and the limit cut).
        refetch: A request to send again before anything else, its answer to
            be accepted in place of this page; ``None`` when the page was taken.
        warning: A message to log as a WARNING, or ``None``.
    """

    state: WalkState
    items: list[ExternalMessage]
    refetch: Request | None = None
    warning: str | None = None


def plan(state: WalkState) -> tuple[WalkState, tuple[Request, ...]]:
    """Plan the requests to send before accepting the next page.

    Args:
        state: The walk's state.

    Returns:
        ``(state, requests)``: the new state, whose :attr:`~WalkState.head` is
        the page to accept next, and the requests to send now, in offset order.
        The walk is over when the new state is ``done``.
    """
    if state.done:
        return state, ()
    top = next_top(state.request_size, state.limit, state.yielded)
    if top == 0:
        return state.stopped(), ()
    count = state.count
    # WalkState.sequential, spelled out so that the type checker sees count.
    if state.concurrency == 1 or count is None:
        return state, (Request(state.cursor, top),)
    window = state.window
    new: list[Request] = []
    expected = window[0].skip if window else state.frontier
    if state.cursor < expected:
        # A short page left a gap before the pages already requested.
        new.append(Request(state.cursor, min(top, expected - state.cursor)))
    frontier = max(state.frontier, state.cursor)
    planned = sum(request.top for request in window) + sum(r.top for r in new)
    while len(window) + len(new) < state.concurrency and frontier < count:
        top = state.request_size
        if state.limit is not None:
            top = min(top, state.limit - state.yielded - planned)
            if top <= 0:
                break
        new.append(Request(frontier, top))
        frontier += top
        planned += top
    if new and new[0].skip < expected:
        window = (new[0], *window, *new[1:])
    else:
        window = (*window, *new)
    return attrs.evolve(state, window=window, frontier=frontier), tuple(new)


def accept(state: WalkState, page: Page[ExternalMessage], known: Set[str]) -> Step:
    """Take the answer to ``state.head``; pages are accepted in offset order.

    Args:
        state: The walk's state, as :func:`plan` left it.
        page: The answer to ``state.head``.
        known: The ids yielded so far in this walk (only read); the caller
            remembers the ids of :attr:`Step.items` before the next call.

    Returns:
        The step: the new state and the items to yield, or a refetch.

    Raises:
        PagingError: The server appears to ignore ``skip``; ``resume_skip`` is
            the offset before the first repeated page.
    """
    head = state.head
    rest = state.window[1:]
    count = state.count
    if (
        not state.sequential
        and count is not None
        and page.count < count
        and not head.again
    ):
        # Served before the page accepted last, which saw more messages: ones
        # created in between may have pushed that page's last items into this
        # page's range after this page was answered. Asked again now, it is
        # served after that page, as in a sequential walk.
        again = attrs.evolve(head, again=True)
        return Step(attrs.evolve(state, window=(again, *rest)), [], refetch=again)
    warning = None
    count_decreased = state.count_decreased
    if count is not None and page.count < count:
        count_decreased = True
        warning = (
            f"count fell from {count} to {page.count} during the walk at "
            f"skip={page.skip}: messages deleted meanwhile may have shifted "
            "others past the walk"
        )
    cursor = state.cursor
    page_items = page.items
    returned = len(page_items)
    overlap = cursor - page.skip
    items = page_items[overlap:] if overlap > 0 else page_items
    fresh = fresh_items(items, known)
    repeats = _repeats(state, head, page, fresh)
    end = page.skip + returned
    limit = state.limit
    yielded = state.yielded
    if limit is not None and len(fresh) > limit - yielded:
        # The server sent more than asked for: resume right after the last
        # item yielded, not after the ones cut off.
        fresh = fresh[: limit - yielded]
        last = fresh[-1]
        end = (
            page.skip
            + max(overlap, 0)
            + next(index for index, item in enumerate(items) if item is last)
            + 1
        )
    cursor = max(cursor, end)
    yielded += len(fresh)
    done = (limit is not None and yielded >= limit) or walk_done(
        cursor, page.count, returned
    )
    cap = state.cap
    if cap is None and not done and returned < head.top:
        # Short while more remain: the server's own cap (PortSIP's is 100,
        # a proxy or another version may cap lower). Asking for more than it
        # would make every window request come back short and leave a gap.
        cap = returned
    new_state = WalkState(
        page_size=state.page_size,
        limit=limit,
        concurrency=state.concurrency,
        cursor=cursor,
        frontier=state.frontier,
        count=page.count,
        window=() if done else rest,
        done=done,
        cap=cap,
        yielded=yielded,
        pages=state.pages + 1,
        duplicates_dropped=state.duplicates_dropped + len(items) - len(fresh),
        first_count=page.count if state.first_count is None else state.first_count,
        count_decreased=count_decreased,
        repeats=repeats,
    )
    return Step(new_state, fresh, warning=warning)


def _repeats(
    state: WalkState,
    head: Request,
    page: Page[ExternalMessage],
    fresh: list[ExternalMessage],
) -> Repeats | None:
    """Extend the run of full pages of old ids; raise once it has no explanation.

    Returns:
        The run this page extends, or ``None`` when it yields something new,
        is short, holds an item without an id, or comes with a lower ``count``.

    Raises:
        PagingError: :data:`REPEATED_PAGES_LIMIT` such pages in a row, and
            ``count`` grew by fewer than the items they held since the walk
            began.
    """
    items = page.items
    # Items without an id are always fresh: they never make a page of repeats.
    if fresh or not items or len(items) < head.top:
        return None
    if state.count is not None and page.count < state.count:
        return None
    run = state.repeats or Repeats(pages=0, items=0, since=state.cursor)
    run = Repeats(pages=run.pages + 1, items=run.items + len(items), since=run.since)
    first_count = page.count if state.first_count is None else state.first_count
    if run.pages >= REPEATED_PAGES_LIMIT and page.count - first_count < run.items:
        error = PagingError(
            f"the server appears to ignore skip: {run.pages} full pages in a row "
            f"(the last at skip={page.skip}) held only messages already yielded, "
            f"while count went from {first_count} to {page.count} during the "
            f"walk; resume from skip={run.since}",
            ignored="skip",
        )
        error.resume_skip = run.since
        raise error
    return run
