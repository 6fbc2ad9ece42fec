"""The pure side of the archive: rows, page plans, run totals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from external_messages_async import DeliveryStatus, ExternalMessage, MessageType
from external_messages_async._archive_rows import (
    MESSAGE_COLUMNS,
    PagePlan,
    RunCounts,
    format_instant,
    message_row,
    page_ids,
    plan_page,
)

from .conftest import make_messages


def _row(message_id: str | None, delivery: str = "SENT") -> tuple[str | None, ...]:
    return message_row(
        ExternalMessage(id=message_id, delivery=DeliveryStatus(delivery))
    )


def test_columns_are_the_17_fields_id_first() -> None:
    assert len(MESSAGE_COLUMNS) == 17
    assert MESSAGE_COLUMNS[0] == "id"
    assert MESSAGE_COLUMNS[-1] == "created_at"


def test_format_instant_turns_an_offset_into_utc_z() -> None:
    plus_two = timezone(timedelta(hours=2))

    text = format_instant(datetime(2024, 6, 30, 20, 0, 1, tzinfo=plus_two))

    assert text == "2024-06-30T18:00:01Z"


def test_format_instant_keeps_a_fraction() -> None:
    when = datetime(2024, 6, 30, 18, 0, 1, 250000, tzinfo=timezone.utc)

    assert format_instant(when) == "2024-06-30T18:00:01.250Z"


def test_format_instant_takes_naive_as_utc() -> None:
    assert format_instant(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05Z"


def test_message_row_stores_enums_and_times_as_text() -> None:
    message = ExternalMessage(
        id="a",
        msg_type=MessageType.WHATSAPP,
        delivery=DeliveryStatus("QUEUED"),
        content="hi",
        created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-1))),
    )

    row = dict(zip(MESSAGE_COLUMNS, message_row(message), strict=True))

    assert row["msg_type"] == "WHATSAPP"
    assert row["delivery"] == "QUEUED"
    assert row["created_at"] == "2024-01-02T04:04:05Z"
    assert row["content"] == "hi"
    assert row["reason"] is None


def test_message_row_follows_the_column_order() -> None:
    message = make_messages(1)[0]

    row = message_row(message)

    for name, value in zip(MESSAGE_COLUMNS, row, strict=True):
        field = getattr(message, name)
        expected = field.value if hasattr(field, "value") else field
        if name == "created_at":
            expected = format_instant(field)
        assert value == expected, name


def test_message_row_of_an_empty_message_is_all_none() -> None:
    assert message_row(ExternalMessage()) == (None,) * 17


def test_plan_sorts_rows_into_new_changed_and_unchanged() -> None:
    stored = {"a": _row("a"), "b": _row("b")}
    rows = [_row("a"), _row("b", "DELIVERED"), _row("c")]

    plan = plan_page(rows, stored)

    assert plan == PagePlan(
        inserts=(_row("c"),), updates=(_row("b", "DELIVERED"),), unchanged=1
    )


def test_plan_counts_a_reason_change_as_an_update() -> None:
    before = message_row(ExternalMessage(id="a", delivery=DeliveryStatus.ERR))
    after = message_row(
        ExternalMessage(id="a", delivery=DeliveryStatus.ERR, reason="expired")
    )

    plan = plan_page([after], {"a": before})

    assert plan.updates == (after,)


def test_plan_keeps_the_last_row_of_an_id_seen_twice() -> None:
    plan = plan_page([_row("a"), _row("a", "DELIVERED")], {})

    assert plan.inserts == (_row("a", "DELIVERED"),)


def test_plan_skips_and_counts_messages_without_id() -> None:
    plan = plan_page([_row(None), _row("a")], {})

    assert plan.without_id == 1
    assert plan.inserts == (_row("a"),)


def test_page_ids_are_distinct_in_order_without_none() -> None:
    assert page_ids([_row("b"), _row(None), _row("a"), _row("b")]) == ["b", "a"]


def test_run_counts_add_a_page() -> None:
    plan = PagePlan(inserts=(_row("a"),), updates=(), unchanged=3, without_id=1)

    counts = RunCounts(new=1, updated=2, unchanged=0, pages=4).add(plan)

    assert counts == RunCounts(new=2, updated=2, unchanged=3, pages=5, without_id=1)
