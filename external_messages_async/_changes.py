"""Incremental reading: :class:`Checkpoint` and :class:`ChangeFeed`.

A change feed is a key walk (``_scan.py``) that starts a ``lookback`` before
the last run's high-water mark and ends at the newest message. The next
checkpoint comes from the data read, never from the client's clock, and only
once the walk is complete. Choosing where to start and what the next
checkpoint is are pure functions here; the feed itself is a thin shell.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import orjson

from ._checks import check_int
from ._converter import format_datetime, parse_datetime
from ._keywalk import FetchKeyPage, KeyPages
from ._models import ExternalMessage
from ._pagination import MAX_PAGE_SIZE
from ._scan import EPOCH, KeyWalk, ScanStats, check_instant

__all__ = [
    "DEFAULT_LOOKBACK",
    "ChangeFeed",
    "ChangeItems",
    "ChangePages",
    "Checkpoint",
    "feed_start",
    "next_checkpoint",
]

#: How far before the last high-water mark a feed reads again by default.
DEFAULT_LOOKBACK = timedelta(days=3)

_VERSION = 1


def _aware(
    instance: object, attribute: attrs.Attribute[datetime], value: object
) -> None:
    if value is None:
        raise TypeError("high_water must be a datetime, got NoneType")
    check_instant(attribute.name, value)


def _ids(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("ids_at_high_water must be a collection of str, not one str")
    ids = frozenset(value)
    for item in ids:
        if not isinstance(item, str):
            raise TypeError(
                f"ids_at_high_water must hold str, got {type(item).__name__}"
            )
    return ids


@attrs.frozen
class Checkpoint:
    """Where a change feed stopped: the newest ``created_at`` read, and the ids there.

    Save it after a complete run (:meth:`to_json`) and pass it to the next
    :meth:`ExternalMessagesClient.changes` (:meth:`from_json`).

    Attributes:
        high_water: The ``created_at`` of the newest message read, as the PBX
            wrote it (never the client's clock), timezone-aware.
        ids_at_high_water: The ids of the messages read at that instant.
    """

    high_water: datetime = attrs.field(validator=_aware)
    ids_at_high_water: frozenset[str] = attrs.field(default=frozenset(), converter=_ids)

    def to_json(self) -> str:
        """Write the checkpoint as versioned JSON.

        Returns:
            Text such as ``{"version":1,"high_water":"2024-05-01T12:00:00Z",
            "ids_at_high_water":["NzAw..."]}``, ids sorted.
        """
        return orjson.dumps(
            {
                "version": _VERSION,
                "high_water": format_datetime(self.high_water),
                "ids_at_high_water": sorted(self.ids_at_high_water),
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Read a checkpoint written by :meth:`to_json`.

        Args:
            text: The JSON text.

        Returns:
            The checkpoint.

        Raises:
            TypeError: ``text`` is neither str nor bytes.
            ValueError: ``text`` is not a checkpoint, or one of another version.
        """
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ValueError("not a checkpoint: the text is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("not a checkpoint: expected a JSON object")
        if data.get("version") != _VERSION:
            raise ValueError(
                f"a checkpoint of version {data.get('version')!r} cannot be "
                f"read; this version reads version {_VERSION}"
            )
        high_water, ids = data.get("high_water"), data.get("ids_at_high_water")
        if not isinstance(high_water, str) or not isinstance(ids, list):
            raise ValueError(
                "not a checkpoint: needs high_water (text) and ids_at_high_water (a list)"
            )
        try:
            return cls(high_water=parse_datetime(high_water), ids_at_high_water=ids)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None


def feed_start(
    checkpoint: Checkpoint | None,
    since: datetime | None,
    lookback: timedelta,
) -> KeyWalk:
    """Decide where a change feed starts reading.

    Args:
        checkpoint: The previous run's checkpoint, or ``None`` on a first run.
        since: Where a first run starts; ``None`` reads everything.
        lookback: How far before the checkpoint to read again.

    Returns:
        The key walk to run: from ``high_water - lookback`` with a checkpoint
        (skipping the ids at ``high_water`` when ``lookback`` is zero), else
        from ``since``.
    """
    if checkpoint is None:
        return KeyWalk(lower=since if since is not None else EPOCH)
    if not lookback:
        return KeyWalk(lower=checkpoint.high_water, seen=checkpoint.ids_at_high_water)
    try:
        return KeyWalk(lower=checkpoint.high_water - lookback)
    except OverflowError:
        return KeyWalk(lower=datetime.min.replace(tzinfo=timezone.utc))


def next_checkpoint(previous: Checkpoint | None, end: KeyWalk) -> Checkpoint:
    """Decide the checkpoint after a complete run; it never moves backwards.

    Args:
        previous: The checkpoint the run started from, if any.
        end: The key walk's state at its end: its ``lower`` is the newest
            ``created_at`` read (or where it started, if it read nothing).

    Returns:
        The later of ``previous`` and the walk's high-water mark, with the
        ids read there (both sets when they are the same instant).
    """
    if previous is None or end.lower > previous.high_water:
        return Checkpoint(high_water=end.lower, ids_at_high_water=end.seen)
    if end.lower == previous.high_water:
        return Checkpoint(
            high_water=previous.high_water,
            ids_at_high_water=previous.ids_at_high_water | end.seen,
        )
    return previous


class ChangePages:
    """One run of a change feed: an async iterator of pages.

    Made by :meth:`ChangeFeed.pages`. When it ends, the feed's
    :attr:`ChangeFeed.checkpoint` is set.

    Args:
        feed: The feed it runs for.
    """

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed
        feed.checkpoint = None
        feed.stats = self.stats = ScanStats(slices=1)
        self._pages = KeyPages(feed._fetch, feed.start, self.stats)
        self._closed = False

    def __aiter__(self) -> ChangePages:
        return self

    async def __anext__(self) -> list[ExternalMessage]:
        if self._closed:
            raise StopAsyncIteration
        try:
            page = await self._pages.next()
        except BaseException:
            self._closed = True
            raise
        if page is None:
            self._closed = True
            self._feed.checkpoint = next_checkpoint(
                self._feed.previous, self._pages.walk
            )
            raise StopAsyncIteration
        return page

    async def aclose(self) -> None:
        """Stop the run and its request sent ahead; the checkpoint stays unset."""
        self._closed = True
        await self._pages.aclose()

    def __del__(self) -> None:
        # A run left by `break` without aclose(): stop its request sent ahead.
        if not self._closed:
            # RuntimeError: the event loop is already closed.
            with contextlib.suppress(RuntimeError):
                self._pages.cancel()


class ChangeItems:
    """The async iterator ``async for message in feed`` uses.

    Args:
        pages: The run it draws from.
    """

    def __init__(self, pages: ChangePages) -> None:
        self._pages = pages
        self._items: list[ExternalMessage] = []

    def __aiter__(self) -> ChangeItems:
        return self

    async def __anext__(self) -> ExternalMessage:
        if not self._items:
            # A run never yields an empty page.
            self._items = (await self._pages.__anext__())[::-1]
        return self._items.pop()

    async def aclose(self) -> None:
        """Stop the run; the feed's checkpoint stays unset."""
        self._items = []
        await self._pages.aclose()


class ChangeFeed:
    """Every message created since the last checkpoint, minus a lookback; then a new checkpoint.

    Made by :meth:`ExternalMessagesClient.changes`::

        async with client.changes(checkpoint) as feed:
            async for message in feed:
                upsert(message)          # by id: a message may come again
        save(feed.checkpoint.to_json())  # only after a complete run

    **What it yields**: every message with ``created_at`` at or after the
    checkpoint's ``high_water`` minus ``lookback``, oldest first; on a first
    run, from ``since``, or everything when ``since`` is ``None``. Reading
    the lookback window again is what catches delivery changes (``SENT``
    becoming ``DELIVERED`` or ``ERR``) of recent messages, and messages the
    PBX wrote late: PortSIP has no ``updated_at``, so older changes are not
    seen. Delivery is **at least once**: upsert by id.

    **The next checkpoint**: :attr:`checkpoint` is set when a run ends
    after its last page, from the newest ``created_at`` read (so a clock
    skew between client and PBX loses nothing). A run stopped by an error,
    a ``break`` or a cancellation leaves it ``None``: the previous
    checkpoint is still the one to use, and the next run reads again what
    this one yielded.

    Each ``async for`` (or :meth:`pages`) starts a new run from the same
    checkpoint. ``async for page in feed.pages()`` yields one list per
    server page.

    Args:
        fetch: Sends one list request ``(filter, orderby, top, skip)``.
        checkpoint: The previous run's checkpoint, or ``None``.
        since: Where a first run starts (ignored with a checkpoint).
        lookback: How far before the checkpoint to read again; zero reads
            only messages not read before (and no delivery changes).
        page_size: Messages per request, 1 to 100.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``since`` is naive, ``lookback`` is negative or
            ``page_size`` is out of range.
    """

    def __init__(
        self,
        fetch: FetchKeyPage,
        *,
        checkpoint: Checkpoint | None = None,
        since: datetime | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        page_size: int = 100,
    ) -> None:
        if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                f"checkpoint must be a Checkpoint or None, got {type(checkpoint).__name__}"
            )
        check_instant("since", since)
        if not isinstance(lookback, timedelta):
            raise TypeError(
                f"lookback must be a timedelta, got {type(lookback).__name__}"
            )
        if lookback < timedelta(0):
            raise ValueError(f"lookback must not be negative, got {lookback}")
        check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
        self._fetch = fetch
        self.previous = checkpoint
        self.start = attrs.evolve(
            feed_start(checkpoint, since, lookback), page_size=page_size
        )
        #: The checkpoint to save after the latest run, once it read its last
        #: page; ``None`` before, and after a run cut short.
        self.checkpoint: Checkpoint | None = None
        #: What the latest run read.
        self.stats = ScanStats()
        self._runs: list[ChangePages] = []

    def __aiter__(self) -> ChangeItems:
        return ChangeItems(self.pages())

    def pages(self) -> ChangePages:
        """Run the feed page by page.

        Returns:
            An async iterator of lists of messages, one per server page that
            held messages; :attr:`checkpoint` is set once it is exhausted.
        """
        run = ChangePages(self)
        self._runs = [run]
        return run

    async def aclose(self) -> None:
        """Stop the current run; the checkpoint stays as it is."""
        for run in self._runs:
            await run.aclose()

    async def __aenter__(self) -> ChangeFeed:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
