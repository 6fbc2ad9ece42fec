"""The pure side of the SQLite archive: rows, what a page changes, run counts.

Nothing here touches a file or a socket. A message becomes a row of text
(:func:`message_row`), a page of rows is compared with what the archive
already holds (:func:`plan_page`), and the counts of a run add up page by
page (:class:`RunCounts`). :mod:`._archive_db` applies the plans to SQLite;
:mod:`._archive` runs the whole thing.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

import attrs

from ._converter import format_datetime
from ._models import ExternalMessage

__all__ = [
    "MESSAGE_COLUMNS",
    "PagePlan",
    "Row",
    "RunCounts",
    "format_instant",
    "message_row",
    "page_ids",
    "plan_page",
]

MESSAGE_COLUMNS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(ExternalMessage)
)
"""The 17 message columns, in the model's (and PortSIP's) field order."""

Row = tuple[str | None, ...]
"""One message as stored: the values of :data:`MESSAGE_COLUMNS`, all text."""


def format_instant(value: datetime) -> str:
    """Format an instant as UTC RFC 3339 text, the form the archive stores.

    Whole seconds have no fraction (``2024-06-30T18:00:00Z``), as PortSIP
    sends them; text of one precision sorts in time order.

    Args:
        value: An aware datetime (a naive one is taken as UTC).

    Returns:
        The text, ending in ``Z``.
    """
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return format_datetime(value)


_fields = operator.attrgetter(*MESSAGE_COLUMNS)


def message_row(message: ExternalMessage) -> Row:
    """Turn a message into its archive row: enums as their text, times as UTC text.

    It runs for every message synced, on the event loop's thread, so it reads
    the 17 attributes in one C call and takes an enum's text from ``_value_``
    (the attribute the ``value`` property returns, without the property).

    Args:
        message: The message.

    Returns:
        The values of :data:`MESSAGE_COLUMNS`, in order.
    """
    (
        message_id, config_id, sender, sender_name, receiver, receiver_name,
        channel_name, channel_number, brand, did, msg_type, direction, content,
        reason, delivery, provider_msg_id, created,
    ) = _fields(message)  # fmt: skip
    return (
        message_id,
        config_id,
        sender,
        sender_name,
        receiver,
        receiver_name,
        channel_name,
        channel_number,
        brand,
        did,
        None if msg_type is None else msg_type._value_,
        None if direction is None else direction._value_,
        content,
        reason,
        None if delivery is None else delivery._value_,
        provider_msg_id,
        None if created is None else format_instant(created),
    )


@attrs.frozen
class PagePlan:
    """What one page does to the archive.

    Attributes:
        inserts: Rows whose id the archive does not hold yet.
        updates: Rows whose id it holds with other values (a new ``delivery``
            or ``reason``, say).
        unchanged: How many rows it already holds exactly.
        without_id: How many messages had no id, and so cannot be stored.
    """

    inserts: tuple[Row, ...] = ()
    updates: tuple[Row, ...] = ()
    unchanged: int = 0
    without_id: int = 0


def plan_page(rows: Iterable[Row], stored: Mapping[str, Row]) -> PagePlan:
    """Compare a page's rows with the stored rows of the same ids.

    A row is new, changed (any of its 17 values differs) or unchanged. An id
    seen twice in the page counts once, with its last row: a page reflects one
    moment of the server, and the later row is the one to keep.

    Args:
        rows: The page's rows (:func:`message_row`), id first.
        stored: The archive's current rows for (at least) the page's ids.

    Returns:
        The plan.
    """
    latest: dict[str, Row] = {}
    without_id = 0
    for row in rows:
        message_id = row[0]
        if message_id is None:
            without_id += 1
        else:
            latest[message_id] = row
    inserts: list[Row] = []
    updates: list[Row] = []
    unchanged = 0
    for message_id, row in latest.items():
        before = stored.get(message_id)
        if before is None:
            inserts.append(row)
        elif before != row:
            updates.append(row)
        else:
            unchanged += 1
    return PagePlan(
        inserts=tuple(inserts),
        updates=tuple(updates),
        unchanged=unchanged,
        without_id=without_id,
    )


@attrs.frozen
class RunCounts:
    """The running totals of one sync run.

    Attributes:
        new: Messages stored for the first time.
        updated: Stored messages whose values changed.
        unchanged: Messages read again with nothing new.
        pages: Pages read.
        without_id: Messages skipped for having no id.
    """

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    pages: int = 0
    without_id: int = 0

    def add(self, plan: PagePlan) -> RunCounts:
        """Return the totals after one more page.

        Args:
            plan: The page's plan.

        Returns:
            The new totals.
        """
        return RunCounts(
            new=self.new + len(plan.inserts),
            updated=self.updated + len(plan.updates),
            unchanged=self.unchanged + plan.unchanged,
            pages=self.pages + 1,
            without_id=self.without_id + plan.without_id,
        )


def page_ids(rows: Sequence[Row]) -> list[str]:
    """The distinct ids of a page's rows, in order, for looking up stored rows.

    Args:
        rows: The page's rows.

    Returns:
        The ids, without ``None`` and without repeats.
    """
    return list(dict.fromkeys(row[0] for row in rows if row[0] is not None))
