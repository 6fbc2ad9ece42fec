"""The archive's SQLite file: its lock, its schema, one transaction per page.

Blocking code: :mod:`._archive` runs every method of :class:`ArchiveDB` on one
worker thread of its own, so the connection never changes threads and the
event loop never waits on the disk. The decisions (is this file ours, what
does a SQLite error mean, what does a page change) are pure functions, here
and in :mod:`._archive_rows`.

The file holds three tables:

- ``external_messages``: one row per message id, the 17 fields as text
  (enums as their value, ``created_at`` as UTC RFC 3339, indexed), plus
  ``first_seen_at`` (when a run first stored it) and ``updated_at`` (when a
  later run saw it change; ``NULL`` until then);
- ``sync_state``: one row per run (started, finished, counts, outcome) and
  the checkpoint JSON it committed; the newest checkpoint is where the next
  run starts;
- ``schema_version``: the layout's version, for future migrations.

Crash safety comes from SQLite's transactions: a page's rows, the run's
counts and (on the last page) the checkpoint are committed together, so a
killed process leaves the file as of its last commit, which a new run
re-reads from.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Literal

from ._archive_rows import (
    MESSAGE_COLUMNS,
    PagePlan,
    Row,
    RunCounts,
    page_ids,
    plan_page,
)
from .errors import ArchiveError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "ArchiveDB",
    "Verdict",
    "describe_sqlite_error",
    "lock_path",
    "schema_verdict",
    "sqlite_error_name",
]

#: The layout version this code writes and reads.
SCHEMA_VERSION = 1
#: SQLite's ``PRAGMA application_id`` of an archive: "EMAR", for
#: External Messages ARchive (``file(1)`` shows it too).
APPLICATION_ID = 0x454D4152
#: Ids looked up per ``SELECT ... IN (...)``: below SQLite's oldest limit of
#: 999 bound parameters.
_LOOKUP_CHUNK = 500

_COLUMNS_SQL = ", ".join(MESSAGE_COLUMNS)
_DDL = (
    "CREATE TABLE schema_version ("
    "version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)",
    "CREATE TABLE external_messages ("
    "id TEXT NOT NULL PRIMARY KEY, "
    + ", ".join(f"{name} TEXT" for name in MESSAGE_COLUMNS[1:])
    + ", first_seen_at TEXT NOT NULL, updated_at TEXT)",
    "CREATE INDEX external_messages_created_at ON external_messages (created_at)",
    "CREATE TABLE sync_state ("
    "run INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, "
    "new INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0, "
    "unchanged INTEGER NOT NULL DEFAULT 0, pages INTEGER NOT NULL DEFAULT 0, "
    "outcome TEXT NOT NULL, checkpoint TEXT)",
)
#: The values of one inserted row: the 17 fields and ``first_seen_at``.
_ROW_MARKS = "(" + ", ".join("?" for _ in range(len(MESSAGE_COLUMNS) + 1)) + ")"
#: Rows per ``INSERT``: as many as SQLite's oldest limit of 999 bound
#: parameters allows (55), so that a page of 100 takes two statements.
_INSERT_ROWS = 999 // (len(MESSAGE_COLUMNS) + 1)
_UPDATE = (
    "UPDATE external_messages SET "
    + ", ".join(f"{name} = ?" for name in MESSAGE_COLUMNS[1:])
    + ", updated_at = ? WHERE id = ?"
)


@functools.lru_cache(maxsize=8)
def _insert_sql(rows: int) -> str:
    """The ``INSERT`` of ``rows`` messages (the same text, so SQLite's cache hits)."""
    return (
        f"INSERT INTO external_messages ({_COLUMNS_SQL}, first_seen_at) VALUES "
        + ", ".join([_ROW_MARKS] * rows)
    )


Verdict = Literal["create", "open"]
"""What to do with a file: lay out a new archive, or use the one there."""


def lock_path(path: str) -> str:
    """The lock file beside an archive: its name plus ``.lock``.

    Args:
        path: The archive's path.

    Returns:
        The lock file's path.
    """
    return path + ".lock"


def schema_verdict(
    path: str, *, application_id: int, tables: Sequence[str], version: int | None
) -> Verdict:
    """Decide whether a database file is an archive this code can use.

    Args:
        path: The file, for the message.
        application_id: Its ``PRAGMA application_id``.
        tables: Its table names (SQLite's own ``sqlite_*`` left out).
        version: The highest ``schema_version.version``, or ``None`` when the
            table is missing or empty.

    Returns:
        ``"create"`` for an empty database, ``"open"`` for an archive.

    Raises:
        ArchiveError: ``reason="foreign"`` for any other application's
            database, ``reason="newer"`` for an archive laid out by a newer
            version of this package.
    """
    if application_id == 0 and not tables:
        return "create"
    if application_id != APPLICATION_ID or version is None:
        shown = ", ".join(sorted(tables)) or "none"
        raise ArchiveError(
            f"{path} is not an external-messages archive (another application's "
            f"database, with tables: {shown}); nothing was changed",
            reason="foreign",
            path=path,
        )
    if version > SCHEMA_VERSION:
        raise ArchiveError(
            f"{path} is an archive of schema version {version}, newer than this "
            f"version of external-messages-async reads ({SCHEMA_VERSION}); "
            "upgrade it; nothing was changed",
            reason="newer",
            path=path,
        )
    return "open"


_CODES_BY_TEXT = (
    ("disk is full", "SQLITE_FULL"),
    ("not a database", "SQLITE_NOTADB"),
    ("malformed", "SQLITE_CORRUPT"),
    ("unable to open", "SQLITE_CANTOPEN"),
)


def sqlite_error_name(exc: sqlite3.Error) -> str:
    """SQLite's name for a failure, such as ``SQLITE_FULL``.

    Args:
        exc: What sqlite3 raised.

    Returns:
        ``exc.sqlite_errorname`` (Python 3.11+), else the name read from the
        message's text; ``SQLITE_ERROR`` when neither says.
    """
    name = getattr(exc, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    text = str(exc)
    return next(
        (code for fragment, code in _CODES_BY_TEXT if fragment in text),
        "SQLITE_ERROR",
    )


def describe_sqlite_error(path: str, exc: sqlite3.Error, kept: str) -> ArchiveError:
    """Turn a SQLite failure into the one-line :class:`ArchiveError` to raise.

    Args:
        path: The archive file.
        exc: What sqlite3 raised.
        kept: What the file still holds, such as ``"nothing was changed"``.

    Returns:
        The error, with its ``reason``.
    """
    name = sqlite_error_name(exc)
    if name.startswith("SQLITE_FULL"):
        return ArchiveError(
            f"the disk is full: cannot write {path}; {kept}",
            reason="disk full",
            path=path,
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return ArchiveError(
            f"{path} is corrupted or not a SQLite database ({exc}); {kept}",
            reason="corrupt",
            path=path,
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return ArchiveError(
            f"cannot open {path} ({exc}); {kept}", reason="unopenable", path=path
        )
    return ArchiveError(
        f"SQLite failed on {path} ({exc}); {kept}", reason="database", path=path
    )


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; ``False`` if held."""
    if sys.platform == "win32":  # pragma: no cover - Windows only; CI runs Linux
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _acquire_lock(path: str) -> int:
    """Open and lock ``path.lock``; the lock lasts until the descriptor closes.

    The operating system drops the lock when the process dies, SIGKILL
    included, so a crashed sync never blocks the next one.
    """
    target = lock_path(path)
    try:
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ArchiveError(
            f"cannot open {target} ({exc.strerror}); nothing was changed",
            reason="unopenable",
            path=path,
        ) from None
    if not _try_lock(fd):
        os.close(fd)
        raise ArchiveError(
            f"{path} is being synced by another process (it holds {target}); "
            "nothing was changed",
            reason="locked",
            path=path,
        )
    return fd


class ArchiveDB:
    """One open archive: the lock, the connection, and the run being written.

    Use from a single thread. :meth:`open` checks the file and lays out a new
    one; :meth:`start_run` records the run; each :meth:`write_page` commits
    the page before it and leaves its own transaction open, so that
    :meth:`finish_run` commits the last page and the checkpoint together.

    Args:
        path: The database file.
        connection: Its connection, in autocommit mode.
        lock_fd: The descriptor holding the lock.
    """

    def __init__(self, path: str, connection: sqlite3.Connection, lock_fd: int):
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd
        self._run: int | None = None
        self._seen_at = ""
        self._open_page = 0
        self._failure: ArchiveError | None = None
        self.counts = RunCounts()

    @classmethod
    def open(cls, path: str) -> ArchiveDB:
        """Lock the file, check it, and lay out the tables if it is new.

        Args:
            path: The database file; created when missing.

        Returns:
            The open archive.

        Raises:
            ArchiveError: The lock is held, the file is not an archive or is
                corrupted, or it cannot be opened; the file is left as it was.
        """
        lock_fd = _acquire_lock(path)
        connection: sqlite3.Connection | None = None
        try:
            with _sqlite_errors(path, "nothing was changed"):
                connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
                verdict = _inspect(path, connection)
                # Persistent: readers never block the sync, nor it them.
                connection.execute("PRAGMA journal_mode = WAL")
                # In WAL mode a commit survives a killed process without an
                # fsync; a power cut may lose the last commits, never the
                # consistency of rows and checkpoint.
                connection.execute("PRAGMA synchronous = NORMAL")
                # No checkpoint (and its fsyncs) every 1,000 pages mid-run:
                # it would cost more than writing the rows. close() moves the
                # run's log into the file once.
                connection.execute("PRAGMA wal_autocheckpoint = 0")
                if verdict == "create":
                    _create(connection)
        except BaseException:
            if connection is not None:
                connection.close()
            os.close(lock_fd)
            raise
        return cls(path, connection, lock_fd)

    def close(self) -> None:
        """Roll back an uncommitted page, close the file and release the lock."""
        try:
            if self._db.in_transaction:
                self._db.rollback()
            # Best effort: a full disk or a busy reader leaves the log to a
            # later checkpoint; the committed pages are safe in it either way.
            with suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._db.close()
            os.close(self._lock_fd)

    def checkpoint(self) -> str | None:
        """The newest committed checkpoint JSON, or ``None`` before any.

        Returns:
            The JSON text the last complete run stored.
        """
        with _sqlite_errors(self.path, "nothing was changed"):
            row = self._db.execute(
                "SELECT checkpoint FROM sync_state WHERE checkpoint IS NOT NULL "
                "ORDER BY run DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def start_run(self, started_at: str) -> None:
        """Record a new run, after marking runs that never finished as interrupted.

        Holding the lock means no other run is alive, so a ``running`` row
        is one whose process died.

        Args:
            started_at: The run's start, UTC RFC 3339.
        """
        with _sqlite_errors(self.path, "nothing was changed"):
            # A failure leaves the transaction to close(), which rolls it back.
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE sync_state SET outcome = 'interrupted' WHERE outcome = 'running'"
            )
            cursor = self._db.execute(
                "INSERT INTO sync_state (started_at, outcome) VALUES (?, 'running')",
                (started_at,),
            )
            self._db.execute("COMMIT")
        self._run = cursor.lastrowid
        self._seen_at = started_at

    def write_page(self, rows: Sequence[Row]) -> PagePlan:
        """Commit the previous page, then write this one in a transaction left open.

        Args:
            rows: The page's rows.

        Returns:
            What the page changed.

        Raises:
            ArchiveError: SQLite failed (``reason="disk full"`` when the disk
                is full); the failed page was rolled back. Every later page
                is refused with the same error, unwritten.
        """
        if self._failure is not None:
            # A page queued behind a failed one: the file must stay as it
            # was before the failure.
            raise self._failure
        try:
            return self._write_page(rows)
        except ArchiveError as exc:
            self._failure = exc
            raise

    def _write_page(self, rows: Sequence[Row]) -> PagePlan:
        page = self.counts.pages + 1
        with self._page_errors(page):
            if self._db.in_transaction:
                self._db.execute("COMMIT")
            self._db.execute("BEGIN IMMEDIATE")
            self._open_page = page
            plan = plan_page(rows, self._stored(page_ids(rows)))
            self._insert(plan.inserts)
            self._db.executemany(
                _UPDATE, [(*row[1:], self._seen_at, row[0]) for row in plan.updates]
            )
            counts = self.counts.add(plan)
            self._db.execute(
                "UPDATE sync_state SET new = ?, updated = ?, unchanged = ?, "
                "pages = ? WHERE run = ?",
                (counts.new, counts.updated, counts.unchanged, counts.pages, self._run),
            )
        self.counts = counts
        return plan

    def finish_run(
        self, *, finished_at: str, outcome: str, checkpoint: str | None
    ) -> None:
        """Commit the open page with the run's outcome and, if given, its checkpoint.

        Args:
            finished_at: The run's end, UTC RFC 3339.
            outcome: ``"ok"``, or ``"failed: ..."``.
            checkpoint: The checkpoint JSON to resume from; ``None`` keeps
                the previous one.

        Raises:
            ArchiveError: SQLite failed; the open page was rolled back.
        """
        with self._page_errors(self._open_page):
            if not self._db.in_transaction:
                self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE sync_state SET finished_at = ?, outcome = ?, "
                "checkpoint = ? WHERE run = ?",
                (finished_at, outcome, checkpoint, self._run),
            )
            self._db.execute("COMMIT")

    def record_failure(self, *, finished_at: str, outcome: str) -> None:
        """Best effort: mark the run failed after a SQLite error rolled a page back.

        A full disk may refuse this write too; the run then stays
        ``running`` and the next run marks it ``interrupted``.

        Args:
            finished_at: The run's end.
            outcome: ``"failed: ..."``.
        """
        with suppress(ArchiveError):
            self.finish_run(finished_at=finished_at, outcome=outcome, checkpoint=None)

    def _insert(self, rows: Sequence[Row]) -> None:
        """Insert rows, many per statement.

        One statement of many rows instead of ``executemany``: sqlite3 lets
        go of the GIL around each statement's execution, and taking it back
        waits for the event loop's thread to let go in turn (up to
        :func:`sys.getswitchinterval`, 5 ms), so a row per statement made the
        writes wait on the loop's work a hundred times a page.
        """
        seen_at = self._seen_at
        for start in range(0, len(rows), _INSERT_ROWS):
            chunk = rows[start : start + _INSERT_ROWS]
            self._db.execute(
                _insert_sql(len(chunk)),
                [value for row in chunk for value in (*row, seen_at)],
            )

    def _stored(self, ids: Sequence[str]) -> dict[str, Row]:
        stored: dict[str, Row] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for row in self._db.execute(
                f"SELECT {_COLUMNS_SQL} FROM external_messages WHERE id IN ({marks})",
                chunk,
            ):
                stored[row[0]] = tuple(row)
        return stored

    @contextmanager
    def _page_errors(self, page: int) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.rollback()
            kept = (
                f"page {page} was rolled back and the archive is as it was before it"
                if page
                else "the archive is as it was"
            )
            raise describe_sqlite_error(self.path, exc, kept) from None


@contextmanager
def _sqlite_errors(path: str, kept: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise describe_sqlite_error(path, exc, kept) from None


def _inspect(path: str, connection: sqlite3.Connection) -> Verdict:
    """Read what :func:`schema_verdict` needs and check the pages' integrity."""
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    tables = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%'"
        )
    ]
    version = None
    if application_id == APPLICATION_ID:
        # Our file: check its pages before trusting anything read from them.
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            first = " ".join(problems[0].split())
            raise ArchiveError(
                f"{path} is corrupted ({first}); nothing was changed",
                reason="corrupt",
                path=path,
            )
        if "schema_version" in tables:
            version = connection.execute(
                "SELECT max(version) FROM schema_version"
            ).fetchone()[0]
    return schema_verdict(
        path, application_id=application_id, tables=tables, version=version
    )


def _create(connection: sqlite3.Connection) -> None:
    """Lay out a new archive in one transaction (a crash leaves it empty).

    On a failure the caller closes the connection, which rolls it back.
    """
    connection.execute("BEGIN IMMEDIATE")
    for statement in _DDL:
        connection.execute(statement)
    connection.execute(
        "INSERT INTO schema_version (version, applied_at) "
        "VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
        (SCHEMA_VERSION,),
    )
    connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    connection.execute("COMMIT")
