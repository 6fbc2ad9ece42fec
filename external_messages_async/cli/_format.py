"""Pure formatting: a message as a JSON line, a CSV row, table lines or a record.

Nothing here writes or renders: every function takes values and returns
strings or numbers, so it is tested without a terminal or an event loop. The
sinks that write these lines live in :mod:`._render`.

What the output formats normalise (the docs repeat this):

- JSON lines and CSV carry all 17 fields of PortSIP's schema, in its order;
  a field PortSIP left out or sent as ``null`` is ``null`` (CSV: empty).
- ``created_at`` is re-written from the parsed instant: UTC as ``Z`` (also
  for ``+00:00`` and for a timestamp without an offset), any other offset kept;
  fractional seconds as milliseconds when that loses nothing, else as
  microseconds (digits beyond six are cut). Every other value is written as
  PortSIP sent it, unknown enum values included.
"""

from __future__ import annotations

import csv
import heapq
import io
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs
from rich.cells import cell_len, set_cell_size

from .._converter import message_cells, message_json_line, message_record
from .._models import DeliveryStatus, Direction, ExternalMessage, MessageType

__all__ = [
    "CSV_FIELDS",
    "TABLE_COLUMNS",
    "TIMESTAMP_WIDTH",
    "TableLayout",
    "Tally",
    "csv_row",
    "csv_text",
    "jsonl_line",
    "jsonl_text",
    "message_fields",
    "plan_table",
    "record_lines",
    "stop_summary",
    "table_header",
    "table_lines",
    "throughput",
    "written_summary",
]

#: The 17 fields of an external message, in the order of PortSIP's schema.
CSV_FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(ExternalMessage))

#: The headers of the table's columns, in order.
TABLE_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "type",
    "dir",
    "delivery",
    "from",
    "to",
    "content",
)

#: Cells of a ``created_at`` in the table: ``2024-05-01 03:57:06`` (UTC).
TIMESTAMP_WIDTH = 19

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_GAP = "  "
#: The narrowest content column of a one-line row; below it, rows take two lines.
_MIN_CONTENT = 20
#: The widest an E.164 number gets: "+" and 15 digits.
_MAX_NUMBER = 16
_WIDTHS = {
    "type": max(len(v.value) for v in MessageType),
    "dir": max(len(v.value) for v in Direction),
    "delivery": max(len(v.value) for v in DeliveryStatus),
}


def message_fields(message: ExternalMessage) -> dict[str, Any]:
    """Give a message's 17 fields in PortSIP's order, ``None`` where absent.

    Args:
        message: The message.

    Returns:
        A JSON-ready dict with exactly the keys of :data:`CSV_FIELDS`.
    """
    return message_record(message)


def jsonl_line(message: ExternalMessage) -> str:
    """Write one message as one line of JSON with all 17 keys (see :func:`message_fields`).

    Args:
        message: The message.

    Returns:
        The JSON text followed by a line feed.
    """
    return message_json_line(message).decode()


def jsonl_text(messages: Iterable[ExternalMessage]) -> str:
    """Write messages as JSON lines: :func:`jsonl_line` of each, joined.

    Args:
        messages: The messages.

    Returns:
        The text of the lines.
    """
    return jsonl_bytes(messages).decode()


def jsonl_bytes(messages: Iterable[ExternalMessage]) -> bytes:
    """:func:`jsonl_text` as UTF-8 bytes, for writing to a file without decoding.

    Args:
        messages: The messages.

    Returns:
        The lines, encoded.
    """
    return b"".join(map(message_json_line, messages))


def csv_row(message: ExternalMessage) -> list[str]:
    """Give the CSV cells of one message, in :data:`CSV_FIELDS` order.

    Args:
        message: The message.

    Returns:
        17 strings; a field without a value is ``""``.
    """
    return message_cells(message)


def csv_text(messages: Iterable[ExternalMessage], *, header: bool = False) -> str:
    """Write messages as CSV rows, with CRLF line ends as the csv module writes them.

    Args:
        messages: The messages.
        header: Start with the row of :data:`CSV_FIELDS`.

    Returns:
        The text of the rows.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(CSV_FIELDS)
    writer.writerows(map(message_cells, messages))
    return buffer.getvalue()


# --- the table and the record ------------------------------------------------------


def _clean(text: str) -> str:
    """Flatten white space to single spaces and blank out control characters."""
    flat = " ".join(text.split())
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in flat)


def _fit(text: str, width: int) -> str:
    """Pad or cut ``text`` to exactly ``width`` cells; a cut ends with an ellipsis."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, max(width - 1, 0)) + "…"[: max(width, 0)]


def _pad(text: str, width: int) -> str:
    """Pad ``text`` to ``width`` cells; never cut (a longer value pushes the row)."""
    return text + " " * max(width - cell_len(text), 0)


@attrs.frozen
class TableLayout:
    """How wide each table column is, and whether a row takes one line or two.

    Made by :func:`plan_table`. One-line rows show every column with the
    content last; at narrower widths each message takes two lines: the id,
    time, type, direction and delivery state, then the parties and the content.
    Only the content, and a party's name when it has no number, is ever cut.

    Attributes:
        width: The line width, in terminal cells.
        id_width: Cells of the id column.
        party_width: Cells of each of the ``from`` and ``to`` columns.
        stacked: Whether each message takes two lines.
    """

    width: int
    id_width: int
    party_width: int
    stacked: bool

    @property
    def content_width(self) -> int:
        """Cells left for the content, at least 1."""
        if self.stacked:
            used = 2 + 2 * self.party_width + 3 + len(_GAP)
        else:
            used = (
                self.id_width
                + TIMESTAMP_WIDTH
                + sum(_WIDTHS.values())
                + 2 * self.party_width
                + 7 * len(_GAP)
            )
        return max(self.width - used, 1)


def _party(number: str | None, name: str | None) -> tuple[str, bool]:
    """The cell for one side, and whether it may be cut (a name may, a number not)."""
    if number:
        return _clean(number), False
    return _clean(name or ""), True


def plan_table(width: int, messages: Sequence[ExternalMessage]) -> TableLayout:
    """Choose the column widths for a terminal ``width`` from the first messages.

    Args:
        width: The terminal's width in cells.
        messages: The first page; ids and numbers set the column widths.

    Returns:
        The layout: one-line rows when every column fits with at least 20
        cells of content, else two-line rows.
    """
    id_width = max([len("id")] + [cell_len(_clean(m.id or "")) for m in messages])
    parties = [
        cell_len(_party(number, name)[0])
        for m in messages
        for number, name in ((m.sender, m.sender_name), (m.receiver, m.receiver_name))
    ]
    party_width = min(max([len("from"), *parties]), _MAX_NUMBER)
    wide = TableLayout(width, id_width, party_width, stacked=False)
    if wide.content_width >= _MIN_CONTENT:
        return wide
    return attrs.evolve(wide, stacked=True)


def table_header(layout: TableLayout) -> list[str]:
    """Give the header lines of a table.

    Args:
        layout: The layout from :func:`plan_table`.

    Returns:
        The column names, then a rule.
    """
    first = [
        _pad("id", layout.id_width),
        _pad("created_at (UTC)", TIMESTAMP_WIDTH),
        *(_pad(name, width) for name, width in _WIDTHS.items()),
    ]
    parties = [_pad("from", layout.party_width), _pad("to", layout.party_width)]
    if layout.stacked:
        lines = [_GAP.join(first), "  " + " → ".join(parties) + _GAP + "content"]
        rule = cell_len(lines[0])
    else:
        lines = [_GAP.join([*first, *parties, "content"])]
        rule = layout.width
    return [*(line.rstrip() for line in lines), "─" * rule]


def table_lines(message: ExternalMessage, layout: TableLayout) -> list[str]:
    """Give the line (or two lines) the table shows for one message.

    Args:
        message: The message.
        layout: The layout from :func:`plan_table`.

    Returns:
        One line, or two when ``layout.stacked``; trailing spaces removed.
    """
    created = message.created_at
    first = [
        _pad(_clean(message.id or ""), layout.id_width),
        created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        if created is not None
        else " " * TIMESTAMP_WIDTH,
        _pad(_clean(str(message.msg_type or "")), _WIDTHS["type"]),
        _pad(_clean(str(message.direction or "")), _WIDTHS["dir"]),
        _pad(_clean(str(message.delivery or "")), _WIDTHS["delivery"]),
    ]
    parties = []
    for number, name in (
        (message.sender, message.sender_name),
        (message.receiver, message.receiver_name),
    ):
        cell, may_cut = _party(number, name)
        fit = _fit if may_cut else _pad
        parties.append(fit(cell, layout.party_width))
    content = _fit(_clean(message.content or ""), layout.content_width)
    if layout.stacked:
        lines = [_GAP.join(first), "  " + " → ".join(parties) + _GAP + content]
    else:
        lines = [_GAP.join([*first, *parties, content])]
    return [line.rstrip() for line in lines]


def record_lines(message: ExternalMessage) -> list[str]:
    """Give a message as a vertical record: every field on its own line, in full.

    A field without a value shows as ``-``; the content keeps its line
    breaks, each further line indented under the first.

    Args:
        message: The message.

    Returns:
        17 or more lines.
    """
    width = max(len(name) for name in CSV_FIELDS) + 2
    lines = []
    for name, value in message_fields(message).items():
        text = "-" if value is None else str(value)
        parts = [
            "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in part)
            for part in text.splitlines() or [""]
        ]
        lines.append(f"{name:<{width}}{parts[0]}".rstrip())
        lines.extend((" " * width + part).rstrip() for part in parts[1:])
    return lines


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


def written_summary(count: int, target: str, *, verb: str = "written to") -> str:
    """Say how many messages went where, in the CLI's closing line.

    Args:
        count: Messages written.
        target: The file name, or ``stdout``.
        verb: What happened to them.

    Returns:
        Such as ``1 message written to out.jsonl`` or ``2,000 messages written to stdout``.
    """
    noun = "message" if count == 1 else "messages"
    return f"{count:,} {noun} {verb} {target}"


def stop_summary(
    written: int, target: str, *, partial: str | None = None, skip: int = 0
) -> str:
    """Say what an unfinished ``list`` kept, and which ``--skip`` resumes it.

    Args:
        written: Messages written (whole records).
        target: The file name, or ``stdout``.
        partial: The ``FILE.partial`` holding them, if one was kept.
        skip: The ``--skip`` the run started at.

    Returns:
        Such as ``2,500 messages kept in out.jsonl.partial; --skip 2500
        resumes after them``, or ``nothing written; out.jsonl is as it was``.
    """
    if partial is not None:
        kept = written_summary(written, partial, verb="kept in")
    elif not written and target != "stdout":
        return f"nothing written; {target} is as it was"
    else:
        kept = written_summary(written, target)
    return f"{kept}; --skip {skip + written} resumes after them"
