"""Output formats and the demo's tally: pure, no terminal needed."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import orjson
import pytest
from rich.cells import cell_len

from external_messages_async import (
    DeliveryStatus,
    Direction,
    ExternalMessage,
    MessageType,
)
from external_messages_async._converter import structure_message, unstructure_message
from external_messages_async.cli._format import (
    CSV_FIELDS,
    Tally,
    csv_row,
    csv_text,
    jsonl_line,
    jsonl_text,
    message_fields,
    plan_table,
    record_lines,
    stop_summary,
    table_header,
    table_lines,
    throughput,
    written_summary,
)
from external_messages_async.testing import MESSAGE_FIELDS, generate_messages


def _message(**fields: object) -> ExternalMessage:
    return ExternalMessage(**fields)  # type: ignore[arg-type]  # fields are loose here; attrs builds the message as given


def test_csv_fields_are_the_17_spec_fields_in_spec_order() -> None:
    assert CSV_FIELDS == MESSAGE_FIELDS
    assert len(CSV_FIELDS) == 17


def test_jsonl_line_has_all_17_keys_in_spec_order_with_null_for_absent() -> None:
    raw = generate_messages(1, seed=3)[0]
    del raw["sender_name"]
    raw["reason"] = None
    message = structure_message(raw)

    line = jsonl_line(message)

    decoded = orjson.loads(line)
    assert list(decoded) == list(MESSAGE_FIELDS)
    assert decoded["sender_name"] is None
    assert decoded["reason"] is None
    assert {k: v for k, v in decoded.items() if v is not None} == unstructure_message(
        message
    )
    assert line.endswith("}\n")
    assert line.count("\n") == 1


def test_jsonl_line_of_an_empty_message_is_17_nulls() -> None:
    line = jsonl_line(_message())

    assert line == "{" + ",".join(f'"{name}":null' for name in CSV_FIELDS) + "}\n"


def test_jsonl_line_pins_the_exact_text() -> None:
    message = _message(
        id="a/b+c=",
        content='line\none "quoted" é',
        msg_type=MessageType("RCS"),
        created_at=datetime(2024, 5, 1, 3, 4, 5, 120000, tzinfo=timezone.utc),
    )

    line = jsonl_line(message)

    fields = dict.fromkeys(CSV_FIELDS, None)
    fields.update(
        id="a/b+c=",
        content='line\none "quoted" é',
        msg_type="RCS",
        created_at="2024-05-01T03:04:05.120Z",
    )
    assert line == orjson.dumps(fields).decode() + "\n"
    assert '"content":"line\\none \\"quoted\\" é"' in line


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        ("2024-05-01T03:04:05Z", "2024-05-01T03:04:05Z"),
        ("2024-05-01T03:04:05+00:00", "2024-05-01T03:04:05Z"),
        ("2024-05-01T03:04:05", "2024-05-01T03:04:05Z"),
        ("2024-05-01t03:04:05z", "2024-05-01T03:04:05Z"),
        ("2024-05-01T03:04:05+02:00", "2024-05-01T03:04:05+02:00"),
        ("2024-05-01T03:04:05.5Z", "2024-05-01T03:04:05.500Z"),
        ("2024-05-01T03:04:05.123456789Z", "2024-05-01T03:04:05.123456Z"),
        ("2024-05-01T03:04:05.000Z", "2024-05-01T03:04:05Z"),
    ],
)
def test_jsonl_normalises_created_at_exactly_as_documented(
    sent: str, written: str
) -> None:
    message = structure_message({"id": "x", "created_at": sent})

    assert orjson.loads(jsonl_line(message))["created_at"] == written


def test_message_fields_keeps_empty_strings_and_unknown_enum_values() -> None:
    message = structure_message({"reason": "", "delivery": "QUEUED"})

    fields = message_fields(message)

    assert fields["reason"] == ""
    assert fields["delivery"] == "QUEUED"


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


def test_csv_text_writes_a_header_then_rows_that_read_back() -> None:
    messages = [structure_message(m) for m in generate_messages(5, seed=4)]

    text = csv_text(messages[:2], header=True) + csv_text(messages[2:])

    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(CSV_FIELDS)
    assert rows[1:] == [csv_row(m) for m in messages]
    assert text.startswith(",".join(CSV_FIELDS) + "\r\n")


def test_csv_text_of_no_messages_without_header_is_empty() -> None:
    assert csv_text([]) == ""


# --- the table -------------------------------------------------------------------


def _row_message(**fields: object) -> ExternalMessage:
    defaults: dict[str, object] = {
        "id": "NzAwNTUxOTA5NzczMTQ4MTY0",
        "created_at": datetime(2024, 5, 1, 14, 2, 3, tzinfo=timezone.utc),
        "msg_type": MessageType.WHATSAPP,
        "direction": Direction.OUT,
        "delivery": DeliveryStatus.DELIVERED,
        "sender": "+155512345678901",
        "receiver": "+447914177763",
        "content": "one\ntwo   three " + "x" * 300,
    }
    defaults.update(fields)
    return _message(**defaults)


@pytest.mark.parametrize("width", [60, 80, 100, 120, 140, 200])
def test_table_never_cuts_the_id_numbers_or_timestamp_at_any_width(
    width: int,
) -> None:
    message = _row_message()
    layout = plan_table(width, [message])

    text = "\n".join(table_lines(message, layout))

    for whole in (
        "NzAwNTUxOTA5NzczMTQ4MTY0",
        "2024-05-01 14:02:03",
        "WHATSAPP",
        "OUT",
        "DELIVERED",
        "+155512345678901",
        "+447914177763",
    ):
        assert whole in text


@pytest.mark.parametrize("width", [80, 100, 140, 200])
def test_table_lines_fill_the_width_with_content_that_gives_way(width: int) -> None:
    message = _row_message()
    layout = plan_table(width, [message])

    lines = table_lines(message, layout)

    assert max(cell_len(line) for line in lines) == width
    assert lines[-1].endswith("…")
    assert "one two three x" in lines[-1]


def test_table_at_80_columns_takes_two_lines_per_message() -> None:
    message = _row_message()

    layout = plan_table(80, [message])

    assert layout.stacked
    assert table_lines(message, layout) == [
        "NzAwNTUxOTA5NzczMTQ4MTY0  2024-05-01 14:02:03  WHATSAPP  OUT  DELIVERED",
        "  +155512345678901 → +447914177763     one two three " + "x" * 26 + "…",
    ]
    assert table_header(layout) == [
        "id                        created_at (UTC)     type      dir  delivery",
        "  from             → to                content",
        "─" * 71,
    ]


def test_table_is_one_line_per_message_when_everything_fits() -> None:
    message = _row_message(content="hi")

    layout = plan_table(200, [message])

    assert not layout.stacked
    assert table_lines(message, layout) == [
        "NzAwNTUxOTA5NzczMTQ4MTY0  2024-05-01 14:02:03  WHATSAPP  OUT  DELIVERED  "
        "+155512345678901  +447914177763     hi"
    ]
    assert table_header(layout)[0].split() == [
        "id", "created_at", "(UTC)", "type", "dir", "delivery", "from", "to", "content",
    ]  # fmt: skip


def test_table_cuts_a_long_name_but_not_a_long_number() -> None:
    short = _row_message(sender="+1555", receiver="+1666")
    named = _row_message(
        sender=None, sender_name="A" * 40, receiver="+12345678901234567890"
    )
    layout = plan_table(200, [short])

    line = table_lines(named, layout)[0]

    assert "A" * 4 + "…" in line
    assert "A" * 6 not in line
    assert "+12345678901234567890" in line


def test_table_blanks_control_characters_in_cells() -> None:
    message = _row_message(content="\x1b[31mred\x07", sender_name="x")
    layout = plan_table(200, [message])

    line = table_lines(message, layout)[0]

    assert "\x1b" not in line
    assert "\x07" not in line
    assert line.endswith("[31mred")


def test_table_row_of_an_empty_message_is_blank() -> None:
    layout = plan_table(200, [_message()])

    assert table_lines(_message(), layout) == [""]


def test_record_lines_show_every_field_in_full_with_the_content_indented() -> None:
    message = _row_message(content="first\nsecond", reason=None)

    lines = record_lines(message)

    assert [line.split()[0] for line in lines if not line.startswith(" ")] == list(
        CSV_FIELDS
    )
    assert "content          first" in lines
    assert "                 second" in lines
    assert "reason           -" in lines
    assert "x" * 300 not in "\n".join(lines)
    assert "created_at       2024-05-01T14:02:03Z" in lines


def test_record_lines_keep_a_long_content_whole() -> None:
    message = _row_message(content="y" * 500)

    assert f"content          {'y' * 500}" in record_lines(message)


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


def test_stop_summary_names_the_partial_file_and_the_resuming_skip() -> None:
    line = stop_summary(2500, "keep.jsonl", partial="keep.jsonl.partial", skip=100)

    assert (
        line
        == "2,500 messages kept in keep.jsonl.partial; --skip 2600 resumes after them"
    )


def test_stop_summary_on_stdout_says_what_was_written() -> None:
    assert stop_summary(3, "stdout") == (
        "3 messages written to stdout; --skip 3 resumes after them"
    )


def test_stop_summary_with_nothing_written_to_a_file_says_it_is_untouched() -> None:
    assert stop_summary(0, "keep.jsonl") == "nothing written; keep.jsonl is as it was"


def test_jsonl_text_is_the_lines_of_each_message_joined() -> None:
    messages = [structure_message(item) for item in generate_messages(5, seed=3)]

    assert jsonl_text(messages) == "".join(jsonl_line(m) for m in messages)
    assert jsonl_text([]) == ""
