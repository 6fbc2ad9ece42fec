"""A `dlt <https://dlthub.com>`_ resource for a PBX's messages: load them anywhere dlt loads.

Needs the ``dlt`` extra (``pip install 'external-messages-async[dlt]'``) and
the extra of the destination, such as ``dlt[duckdb]`` or ``dlt[postgres]``.
:func:`external_messages` returns a resource that merges on ``id`` and loads
incrementally on ``created_at``: each run reads from the newest ``created_at``
dlt has seen, minus the lookback (dlt's *lag*), so that delivery changes of
recent messages are loaded again and merged. dlt keeps that state with the
destination; one resource per PBX (each with its own ``name``) lets one
pipeline load many.

Example::

    import dlt
    from external_messages_async.dlt import external_messages

    pipeline = dlt.pipeline("pbx", destination="duckdb", dataset_name="pbx")
    pipeline.run(external_messages("https://pbx.example.com:8887", token=token))
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

try:
    import dlt
    from dlt.extract import DltResource
except ImportError as exc:  # pragma: no cover - tested in a subprocess without dlt
    raise ImportError(
        "external_messages_async.dlt needs the 'dlt' extra: "
        "pip install 'external-messages-async[dlt]'",
        name=exc.name,
    ) from None

from ._archive_rows import MESSAGE_COLUMNS, message_row
from ._client import ExternalMessagesClient
from ._models import ExternalMessage

__all__ = ["external_messages"]

#: Where the first run starts when no ``since`` is given: before any message.
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: Every column typed up front, so that a column no message has filled yet
#: (``brand``, say) is still created, as text.
_COLUMNS: dict[str, Any] = {
    **{name: {"data_type": "text", "nullable": True} for name in MESSAGE_COLUMNS},
    "id": {"data_type": "text", "nullable": False},
    "created_at": {"data_type": "timestamp", "nullable": False},
}


def _record(message: ExternalMessage) -> dict[str, Any]:
    record: dict[str, Any] = dict(
        zip(MESSAGE_COLUMNS, message_row(message), strict=True)
    )
    record["created_at"] = message.created_at
    return record


def external_messages(
    base_url: str,
    *,
    since: datetime | None = None,
    lookback: timedelta = timedelta(days=3),
    page_size: int = 100,
    name: str = "external_messages",
    **client_options: Any,
) -> DltResource:
    """Build a dlt resource that loads a PBX's messages, merged by id.

    Args:
        base_url: The PBX address, as for :class:`~external_messages_async.ExternalMessagesClient`.
        since: On the first run, load messages created at or after this
            aware datetime; ``None`` loads everything.
        lookback: How far before the newest loaded ``created_at`` each later
            run reads again (dlt's ``lag``), to catch delivery changes.
        page_size: Messages per request, 1 to 100.
        name: The resource's name, which is also the destination table's;
            give each PBX its own.
        **client_options: Passed to :class:`~external_messages_async.ExternalMessagesClient`: the
            credentials (``token=``, or ``username=`` and ``password=``)
            and any other option. A client is made for each run and closed
            at its end.

    Returns:
        The resource: ``primary_key="id"``, ``write_disposition="merge"``,
        incremental on ``created_at``.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``since`` is naive, ``lookback`` is negative, or a
            client option is invalid (checked now, before any request).
    """
    if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
        raise ValueError("since must be a timezone-aware datetime")
    if not isinstance(lookback, timedelta):
        raise TypeError(f"lookback must be a timedelta, got {type(lookback).__name__}")
    if lookback < timedelta(0):
        raise ValueError(f"lookback must not be negative, got {lookback}")
    # Checks base_url and every option now; the run makes its own client.
    ExternalMessagesClient(base_url, **client_options)

    cursor = dlt.sources.incremental(
        "created_at", initial_value=since or _EPOCH, lag=lookback.total_seconds()
    )

    async def messages(
        created_at: Any = cursor,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        # dlt hands each run its own copy of the cursor, with the state loaded.
        start: datetime = created_at.start_value
        async with (
            ExternalMessagesClient(base_url, **client_options) as client,
            client.scan(since=start, page_size=page_size) as scan,
        ):
            async for page in scan.pages():
                yield [_record(m) for m in page if m.id is not None]

    resource: DltResource = dlt.resource(
        messages,
        name=name,
        primary_key="id",
        write_disposition="merge",
        columns=_COLUMNS,
    )
    return resource
