"""Output formats and the demo's tally: pure, no terminal needed."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import orjson

from external_messages_async import (
    DeliveryStatus,
    Direction,
    ExternalMessage,
    MessageType,
)
from external_messages_async._converter import structure_message, unstructure_message
from external_messages_async._output import (
    CSV_FIELDS,
    CsvWriter,
    JsonlWriter,
    Tally,
    csv_row,
    jsonl_line,
    table_row,
    throughput,
    written_summary,
)
from external_messages_async.testing import MESSAGE_FIELDS, generate_messages


def _message(**fields: object) -> ExternalMessage:
    return ExternalMessage(**fields)  # type: ignore[arg-type]  # fields are loose here; attrs builds the message as given


def test_csv_fields_are_the_17_spec_fields_in_spec_order() -> None:
    assert CSV_FIELDS == MESSAGE_FIELDS
    assert len(CSV_FIELDS) == 17


def test_jsonl_line_is_the_unstructured_message_and_one_newline() -> None:
    message = structure_message(generate_messages(1, seed=3)[0])

    line = jsonl_line(message)

    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert orjson.loads(line) == unstructure_message(message)


def test_jsonl_line_escapes_a_line_break_in_content() -> None:
    line = jsonl_line(_message(content="a\nb"))

    assert line == '{"content":"a\\nb"}\n'


def test_csv_row_puts_values_in_field_order_and_blanks_for_missing() -> None:
    message = _message(
        id="x",
        msg_type=MessageType.SMS,
        created_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
    )

    row = csv_row(message)

    assert row[CSV_FIELDS.index("id")] == "x"
    assert row[CSV_FIELDS.index("msg_type")] == "SMS"
    assert row[CSV_FIELDS.index("created_at")] == "2024-05-01T00:00:00Z"
    assert row[CSV_FIELDS.index("sender")] == ""


def test_csv_writer_writes_a_header_then_rows_that_read_back() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream)
    messages = [structure_message(m) for m in generate_messages(5, seed=4)]

    for message in messages:
        writer.write(message)
    writer.finish()

    rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert rows[0] == list(CSV_FIELDS)
    assert rows[1:] == [csv_row(m) for m in messages]
    assert writer.written == 5


def test_jsonl_writer_writes_one_line_per_message() -> None:
    stream = io.StringIO()
    writer = JsonlWriter(stream)

    writer.write(_message(id="a"))
    writer.write(_message(id="b"))
    writer.finish()

    assert stream.getvalue() == '{"id":"a"}\n{"id":"b"}\n'
    assert writer.written == 2


def test_table_row_flattens_and_cuts_content() -> None:
    message = _message(
        created_at=datetime(2024, 5, 1, 14, 2, 3, tzinfo=timezone.utc),
        msg_type=MessageType.SMS,
        direction=Direction.IN,
        delivery=DeliveryStatus.RECV,
        sender="+15551234567",
        sender_name="Alice",
        receiver_name="Bob",
        content="one\ntwo   three " + "x" * 100,
    )

    row = table_row(message, content_width=12)

    assert row == (
        "2024-05-01 14:02:03",
        "SMS",
        "IN",
        "RECV",
        "+15551234567",
        "Bob",
        "one two thr…",
    )


def test_table_row_of_an_empty_message_is_blank() -> None:
    assert table_row(_message()) == ("",) * 7


def test_tally_counts_by_field_and_failures_by_reason() -> None:
    tally = Tally()

    tally.add_all(
        [
            _message(
                msg_type=MessageType.SMS,
                direction=Direction.OUT,
                delivery=DeliveryStatus.ERR,
                reason="expired",
            ),
            _message(
                msg_type=MessageType.SMS,
                direction=Direction.OUT,
                delivery=DeliveryStatus.ERR,
            ),
            _message(
                msg_type=MessageType.WHATSAPP,
                direction=Direction.IN,
                delivery=DeliveryStatus.RECV,
            ),
            _message(),
        ]
    )

    assert tally.total == 4
    assert tally.by_type == {"SMS": 2, "WHATSAPP": 1, "": 1}
    assert tally.by_direction == {"OUT": 2, "IN": 1, "": 1}
    assert tally.by_delivery == {"ERR": 2, "RECV": 1, "": 1}
    assert tally.failure_reasons == {"expired": 1, "(no reason given)": 1}
    assert tally.failures == 2


def test_tally_keeps_the_newest_messages_newest_first() -> None:
    tally = Tally(keep_latest=3)
    days = [5, 1, 9, 3, 7, 2]

    tally.add_all(
        _message(id=str(day), created_at=datetime(2024, 5, day, tzinfo=timezone.utc))
        for day in days
    )
    tally.add(_message(id="undated"))

    assert [m.id for m in tally.latest()] == ["9", "7", "5"]


def test_tally_puts_undated_messages_last() -> None:
    tally = Tally(keep_latest=2)

    tally.add(_message(id="undated"))
    tally.add(
        _message(id="dated", created_at=datetime(2024, 5, 1, tzinfo=timezone.utc))
    )

    assert [m.id for m in tally.latest()] == ["dated", "undated"]


def test_tally_with_no_latest_keeps_none() -> None:
    tally = Tally(keep_latest=0)

    tally.add(_message(id="a"))

    assert tally.latest() == []
    assert tally.total == 1


def test_throughput_is_zero_without_elapsed_time() -> None:
    assert throughput(10, 0.0) == 0.0
    assert throughput(10, 2.0) == 5.0


def test_written_summary_uses_the_singular_for_one_message() -> None:
    assert written_summary(1, "out.jsonl") == "1 message written to out.jsonl"


def test_written_summary_groups_thousands_in_the_plural() -> None:
    assert written_summary(2000, "stdout") == "2,000 messages written to stdout"
    assert written_summary(0, "stdout") == "0 messages written to stdout"
