"""Turning messages into output: JSON lines, CSV, table rows and a summary.

Pure except for the writers, which only call ``write`` on a text stream they
are given. Rendering with rich lives in :mod:`._cli`; this module decides what
the rows and figures are, so it can be tested without a terminal.
"""

from __future__ import annotations

import csv
import heapq
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Protocol, TextIO

import attrs
import orjson

from ._converter import message_cells, unstructure_message
from ._models import DeliveryStatus, ExternalMessage

__all__ = [
    "written_summary",
    "CSV_FIELDS",
    "TABLE_COLUMNS",
    "CsvWriter",
    "JsonlWriter",
    "MessageWriter",
    "Tally",
    "csv_row",
    "jsonl_line",
    "table_row",
    "throughput",
]

#: The 17 fields of an external message, in the order of PortSIP's schema.
CSV_FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(ExternalMessage))

#: The headers of :func:`table_row`'s cells.
TABLE_COLUMNS: tuple[str, ...] = (
    "created_at",
    "type",
    "dir",
    "delivery",
    "from",
    "to",
    "content",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def jsonl_line(message: ExternalMessage) -> str:
    """Write one message as one line of JSON: PortSIP's shape, ``None`` left out.

    Args:
        message: The message.

    Returns:
        The JSON text followed by a line feed.
    """
    return orjson.dumps(unstructure_message(message)).decode() + "\n"


def csv_row(message: ExternalMessage) -> list[str]:
    """Give the CSV cells of one message, in :data:`CSV_FIELDS` order.

    Args:
        message: The message.

    Returns:
        17 strings; a field without a value is ``""``.
    """
    return message_cells(message)


def _one_line(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _party(number: str | None, name: str | None) -> str:
    return number or name or ""


def table_row(message: ExternalMessage, *, content_width: int = 60) -> tuple[str, ...]:
    """Give the cells a table shows for one message (see :data:`TABLE_COLUMNS`).

    Args:
        message: The message.
        content_width: The most characters of content shown; longer text is
            cut with an ellipsis. Line breaks become spaces.

    Returns:
        One string per column.
    """
    created = message.created_at
    return (
        created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        if created is not None
        else "",
        str(message.msg_type or ""),
        str(message.direction or ""),
        str(message.delivery or ""),
        _party(message.sender, message.sender_name),
        _party(message.receiver, message.receiver_name),
        _one_line(message.content, content_width),
    )


class MessageWriter(Protocol):
    """Something that writes messages one at a time to a stream."""

    written: int

    def write(self, message: ExternalMessage) -> None:
        """Write one message."""

    def finish(self) -> None:
        """Write what is still pending (nothing for line formats)."""


class JsonlWriter:
    """Writes each message as one whole JSON line (see :func:`jsonl_line`).

    Each message is a single ``write`` call, so a stop between two messages
    never leaves half a line behind.

    Args:
        stream: A text stream opened for writing.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.written = 0

    def write(self, message: ExternalMessage) -> None:
        """Write one message as one line.

        Args:
            message: The message.
        """
        self._stream.write(jsonl_line(message))
        self.written += 1

    def finish(self) -> None:
        """Flush the stream."""
        self._stream.flush()


class CsvWriter:
    """Writes a header of :data:`CSV_FIELDS`, then one row per message.

    Args:
        stream: A text stream opened for writing, with ``newline=""`` when it
            is a file (as the :mod:`csv` module asks).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._csv = csv.writer(stream)
        self._csv.writerow(CSV_FIELDS)
        self.written = 0

    def write(self, message: ExternalMessage) -> None:
        """Write one message as one row.

        Args:
            message: The message.
        """
        self._csv.writerow(csv_row(message))
        self.written += 1

    def finish(self) -> None:
        """Flush the stream."""
        self._stream.flush()


def _created_key(message: ExternalMessage) -> datetime:
    return message.created_at or _EPOCH


@attrs.define
class Tally:
    """Counts a stream of messages for a summary, keeping the latest few.

    Attributes:
        total: Messages added.
        by_type: Messages per ``msg_type`` (``""`` when missing).
        by_direction: Messages per ``direction``.
        by_delivery: Messages per ``delivery`` state.
        failure_reasons: Failed (``ERR``) messages per ``reason``.
        keep_latest: How many of the newest messages :meth:`latest` returns.
    """

    keep_latest: int = 10
    total: int = 0
    by_type: Counter[str] = attrs.field(factory=Counter)
    by_direction: Counter[str] = attrs.field(factory=Counter)
    by_delivery: Counter[str] = attrs.field(factory=Counter)
    failure_reasons: Counter[str] = attrs.field(factory=Counter)
    _newest: list[tuple[datetime, int, ExternalMessage]] = attrs.field(
        factory=list, repr=False
    )

    def add(self, message: ExternalMessage) -> None:
        """Count one message.

        Args:
            message: The message.
        """
        self.total += 1
        self.by_type[str(message.msg_type or "")] += 1
        self.by_direction[str(message.direction or "")] += 1
        self.by_delivery[str(message.delivery or "")] += 1
        if message.delivery == DeliveryStatus.ERR:
            self.failure_reasons[message.reason or "(no reason given)"] += 1
        # A min-heap of the newest; the counter breaks ties without comparing messages.
        entry = (_created_key(message), self.total, message)
        if len(self._newest) < self.keep_latest:
            heapq.heappush(self._newest, entry)
        elif self.keep_latest and entry[:2] > self._newest[0][:2]:
            heapq.heapreplace(self._newest, entry)

    def add_all(self, messages: Iterable[ExternalMessage]) -> None:
        """Count several messages.

        Args:
            messages: The messages.
        """
        for message in messages:
            self.add(message)

    @property
    def failures(self) -> int:
        """How many messages are in the ``ERR`` delivery state."""
        return sum(self.failure_reasons.values())

    def latest(self) -> list[ExternalMessage]:
        """Return the newest messages seen, newest first.

        Returns:
            At most ``keep_latest`` messages, by ``created_at`` (missing is oldest).
        """
        return [entry[2] for entry in sorted(self._newest, reverse=True)]


def throughput(count: int, seconds: float) -> float:
    """Messages per second, or 0 when no time passed.

    Args:
        count: Messages handled.
        seconds: Time taken.

    Returns:
        The rate.
    """
    return count / seconds if seconds > 0 else 0.0


def written_summary(count: int, target: str) -> str:
    """Say how many messages went where, in the CLI's closing line.

    Args:
        count: Messages written.
        target: The file name, or ``stdout``.

    Returns:
        Such as ``1 message written to out.jsonl`` or ``2,000 messages written to stdout``.
    """
    noun = "message" if count == 1 else "messages"
    return f"{count:,} {noun} written to {target}"
