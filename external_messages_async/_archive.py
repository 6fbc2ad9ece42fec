"""Keep an archive: :func:`sync_to_sqlite` copies a PBX's messages into SQLite.

The network side is :meth:`ExternalMessagesClient.changes`; the file side is
:mod:`._archive_db`, run on a worker thread of its own; the decisions are in
:mod:`._archive_rows`. :class:`ArchiveWriter` joins a stream of pages to the
file, whatever produces the pages.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import time
from collections.abc import AsyncIterable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, TypeVar

import attrs

from ._archive_db import ArchiveDB
from ._archive_rows import PagePlan, Row, RunCounts, format_instant, message_row
from ._changes import DEFAULT_LOOKBACK, Checkpoint
from ._client import ExternalMessagesClient
from ._models import ExternalMessage
from .errors import ArchiveError

__all__ = ["ArchiveWriter", "SyncSummary", "next_run_from", "sync_to_sqlite"]

T = TypeVar("T")

logger = logging.getLogger("external_messages_async")

#: How much of an error's text a failed run keeps in ``sync_state.outcome``.
_OUTCOME_CHARS = 500
#: Pages handed to the worker thread at most at once: one being written,
#: one waiting its turn.
_QUEUED_PAGES = 2


@attrs.frozen
class SyncSummary:
    """What one :func:`sync_to_sqlite` run did.

    Attributes:
        new: Messages stored for the first time.
        updated: Stored messages that changed (a new ``delivery`` or
            ``reason``, typically) and were updated.
        unchanged: Messages read again with nothing new: the lookback window.
        pages: Pages read from the PBX.
        seconds: How long the run took.
        next_from: Where the next run starts reading: the newest
            ``created_at`` archived minus the lookback; ``None`` while
            nothing has been archived (the next run reads from ``since``,
            or everything).
    """

    new: int
    updated: int
    unchanged: int
    pages: int
    seconds: float
    next_from: datetime | None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "cancelled"
    text = " ".join(f"failed: {type(exc).__name__}: {exc}".split())
    return text[:_OUTCOME_CHARS]


class ArchiveWriter:
    """An open archive file, written from asyncio on a thread of its own.

    The SQLite connection lives on one worker thread for its whole life, so
    the event loop never waits on the disk, and the next page can be read
    from the network while this one is written.

    Use :meth:`open`, then ``async with``::

        async with await ArchiveWriter.open(path) as archive:
            stored = await archive.checkpoint()
            counts = await archive.write(pages, final_checkpoint=lambda: json)

    Args:
        db: The archive, opened on ``pool``'s thread.
        pool: The single worker thread that owns it.
    """

    def __init__(self, db: ArchiveDB, pool: ThreadPoolExecutor) -> None:
        self._db = db
        self._pool = pool

    @classmethod
    async def open(cls, path: str) -> ArchiveWriter:
        """Lock and check the file, on a new worker thread.

        Args:
            path: The database file; created when missing.

        Returns:
            The writer.

        Raises:
            ArchiveError: The file is locked, foreign or corrupted; nothing
                was changed.
        """
        pool = ThreadPoolExecutor(1, thread_name_prefix="external-messages-archive")
        try:
            db = await asyncio.get_running_loop().run_in_executor(
                pool, ArchiveDB.open, path
            )
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(db, pool)

    async def __aenter__(self) -> ArchiveWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the file and release the lock (after any write in flight)."""
        try:
            # Shielded: a second cancellation must not leave the lock held.
            await asyncio.shield(self._call(self._db.close))
        finally:
            self._pool.shutdown(wait=False)

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, functools.partial(function, *args, **kwargs)
        )

    def _submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def checkpoint(self) -> str | None:
        """The checkpoint JSON the last complete run committed, or ``None``.

        Returns:
            The JSON text.
        """
        return await self._call(self._db.checkpoint)

    async def write(
        self,
        pages: AsyncIterable[Sequence[ExternalMessage]],
        *,
        final_checkpoint: Callable[[], str | None],
        now: Callable[[], datetime] = _utc_now,
        on_page: Callable[[RunCounts], object] | None = None,
    ) -> RunCounts:
        """Write every page, one transaction each, and commit the checkpoint last.

        Each page's transaction stays open until the next page arrives; when
        ``pages`` ends, :meth:`ArchiveDB.finish_run` commits the last page
        together with ``final_checkpoint()``. If ``pages`` raises (or the task
        is cancelled), the rows already read are committed, the previous
        checkpoint stays, and the run is recorded as failed.

        Args:
            pages: The pages, in order.
            final_checkpoint: Called once ``pages`` is exhausted: the JSON to
                resume from next time, or ``None`` to keep the previous one.
            now: The clock for ``first_seen_at``, ``updated_at`` and the run
                history.
            on_page: Called with the running totals after each page.

        Returns:
            The run's totals.

        Raises:
            ArchiveError: SQLite failed, such as a full disk; the page being
                written was rolled back.
        """
        db = self._db
        await self._call(db.start_run, format_instant(now()))
        # Pages handed to the worker thread and not yet written, oldest first.
        # The next page is queued before the last one is written, so that the
        # thread never waits for the loop; the thread writes them in order.
        writing: collections.deque[asyncio.Future[PagePlan]] = collections.deque()
        # The totals as of the last page known written (the thread may be
        # further on).
        counts = RunCounts()

        async def written() -> None:
            nonlocal counts
            # Shielded and left queued until done: a cancellation must not
            # cancel a page the thread has yet to start while later pages
            # stay queued; the except clause below waits for them all.
            plan = await asyncio.shield(writing[0])
            writing.popleft()
            counts = counts.add(plan)
            if on_page is not None:
                on_page(counts)

        try:
            async for page in pages:
                writing.append(self._submit(db.write_page, _rows(page)))
                while writing and (len(writing) > _QUEUED_PAGES or writing[0].done()):
                    await written()
            while writing:
                await written()
            checkpoint = final_checkpoint()
        except BaseException as exc:
            failure = await _written_or_failed(writing, exc)
            finished_at = format_instant(now())
            if isinstance(failure, ArchiveError):
                # The failed page was rolled back; record why, if the file
                # still takes a write.
                await asyncio.shield(
                    self._call(
                        db.record_failure,
                        finished_at=finished_at,
                        outcome=f"failed: {failure.reason}",
                    )
                )
            else:
                await asyncio.shield(
                    self._call(
                        db.finish_run,
                        finished_at=finished_at,
                        outcome=_outcome(failure),
                        checkpoint=None,
                    )
                )
            raise
        await self._call(
            db.finish_run,
            finished_at=format_instant(now()),
            outcome="ok",
            checkpoint=checkpoint,
        )
        return db.counts


def _rows(page: Sequence[ExternalMessage]) -> list[Row]:
    return [message_row(message) for message in page]


async def _written_or_failed(
    writing: Sequence[asyncio.Future[PagePlan]], exc: BaseException
) -> BaseException:
    """Let the page writes queued end; return what failed the run.

    A failed write (a full disk) is the run's failure even when the feed
    failed too, since it decides what the file holds. After one, the pages
    queued behind it are refused unwritten (:meth:`ArchiveDB.write_page`).
    """
    outcomes = await asyncio.shield(asyncio.gather(*writing, return_exceptions=True))
    return next((o for o in outcomes if isinstance(o, ArchiveError)), exc)


def _check_path(path: str | os.PathLike[str]) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError("path must name a file with a str, not bytes")
    if text in ("", ":memory:"):
        raise ValueError(f"path must name a database file, got {text!r}")
    return text


def _check_sync_args(since: datetime | None, lookback: timedelta) -> None:
    if since is not None:
        if not isinstance(since, datetime):
            raise TypeError(f"since must be a datetime, got {type(since).__name__}")
        if since.tzinfo is None or since.utcoffset() is None:
            raise ValueError("since must be timezone-aware, such as 2024-05-01T00:00Z")
    if not isinstance(lookback, timedelta):
        raise TypeError(f"lookback must be a timedelta, got {type(lookback).__name__}")
    if lookback < timedelta(0):
        raise ValueError(f"lookback must not be negative, got {lookback}")


def next_run_from(high_water: datetime | None, lookback: timedelta) -> datetime | None:
    """Where the next run starts reading: the high-water mark minus the lookback.

    Args:
        high_water: The newest ``created_at`` archived, or ``None``.
        lookback: The window read again.

    Returns:
        The instant, or ``None`` when nothing was archived yet.
    """
    if high_water is None:
        return None
    try:
        return high_water - lookback
    except OverflowError:
        return datetime.min.replace(tzinfo=timezone.utc)


def _summary(
    counts: RunCounts, started: float, next_from: datetime | None
) -> SyncSummary:
    return SyncSummary(
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        pages=counts.pages,
        seconds=time.perf_counter() - started,
        next_from=next_from,
    )


def _load_checkpoint(path: str, stored: str | None) -> Checkpoint | None:
    if stored is None:
        return None
    try:
        return Checkpoint.from_json(stored)
    except ValueError as exc:
        raise ArchiveError(
            f"{path} holds a checkpoint this version cannot read ({exc}); "
            "nothing was changed",
            reason="corrupt",
            path=path,
        ) from None


async def sync_to_sqlite(
    client: ExternalMessagesClient,
    path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    on_page: Callable[[SyncSummary], object] | None = None,
    now: Callable[[], datetime] = _utc_now,
) -> SyncSummary:
    """Copy new and changed messages into a SQLite archive; run it every night.

    Each run reads :meth:`ExternalMessagesClient.changes` from the archive's
    checkpoint (the newest ``created_at`` stored, minus ``lookback``), and
    upserts every message by id: a new id is inserted, a stored one whose
    values changed (its ``delivery`` or ``reason``, typically) is updated.
    Each page is one transaction, and the new checkpoint is committed with
    the last page, so a run killed at any point (SIGKILL included) leaves
    the archive as of its last page, and the next run completes it.

    The file is laid out on first use (tables ``external_messages``,
    ``sync_state`` and ``schema_version``, WAL mode, so that it can be read
    while a sync writes). A second sync on the same file, a database of
    another application, a corrupted file or a newer archive layout is
    refused before anything is written or requested.

    Example::

        async with ExternalMessagesClient(url, token=token) as client:
            summary = await sync_to_sqlite(client, "archive.sqlite")
        print(summary.new, "new,", summary.updated, "updated")

    Args:
        client: The client of the PBX to archive.
        path: The database file; created when missing.
        since: On the first run, start from messages created at or after
            this aware datetime; ``None`` reads everything. Later runs
            start from the stored checkpoint.
        lookback: How far before the newest archived message each run
            reads again, to catch delivery changes.
        on_page: Called with the running totals after each page is written
            (``next_from`` is ``None`` until the end).
        now: The clock for ``first_seen_at``, ``updated_at`` and the run
            history (UTC now by default).

    Returns:
        The run's summary.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``since`` is naive, ``lookback`` negative, or ``path``
            names no file.
        ArchiveError: The file is being synced by another process, belongs to
            another application or a newer version, is corrupted, or the disk
            filled up (the page being written is rolled back).
        ExternalMessagesError: The PBX failed; the pages read so far are
            kept, and the checkpoint stays where the last complete run left it.
    """
    target = _check_path(path)
    _check_sync_args(since, lookback)
    started = time.perf_counter()
    report = None
    if on_page is not None:
        callback = on_page

        def report(counts: RunCounts) -> None:
            callback(_summary(counts, started, None))

    async with await ArchiveWriter.open(target) as archive:
        previous = _load_checkpoint(target, await archive.checkpoint())
        async with client.changes(previous, since=since, lookback=lookback) as feed:

            def final_checkpoint() -> str | None:
                return None if feed.checkpoint is None else feed.checkpoint.to_json()

            counts = await archive.write(
                feed.pages(), final_checkpoint=final_checkpoint, now=now, on_page=report
            )
        latest = feed.checkpoint or previous
    # The feed itself skips messages without an id (a key walk tells
    # messages apart by id); an id-less row could not be upserted anyway.
    skipped = feed.stats.without_id + counts.without_id
    if skipped:
        logger.warning("%d messages had no id and were not archived", skipped)
    stored_anything = previous is not None or counts.new > 0
    high_water = latest.high_water if latest is not None and stored_anything else None
    return _summary(counts, started, next_run_from(high_water, lookback))
