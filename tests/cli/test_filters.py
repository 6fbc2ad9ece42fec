"""The typed OData filter builder: pure, quoted, never injectable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from external_messages_async import MessageType, build_filter, quote_literal
from external_messages_async._filters import format_instant, parse_instant
from external_messages_async.testing._data import MESSAGE_FIELDS
from external_messages_async.testing._odata import parse_filter

FIELDS = frozenset(MESSAGE_FIELDS)
TIMES = frozenset({"created_at"})


def test_quote_literal_doubles_every_quote() -> None:
    assert quote_literal("O'Brien's") == "'O''Brien''s'"


def test_quote_literal_leaves_plain_text_alone() -> None:
    assert quote_literal("SMS") == "'SMS'"


def test_quote_literal_refuses_a_non_string() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        quote_literal(3)  # type: ignore[arg-type]  # wrong on purpose


def test_no_condition_gives_none() -> None:
    assert build_filter() is None


def test_one_value_is_one_comparison() -> None:
    assert build_filter(msg_type="SMS") == "msg_type eq 'SMS'"


def test_enum_members_are_written_as_their_value() -> None:
    assert build_filter(msg_type=MessageType.WHATSAPP) == "msg_type eq 'WHATSAPP'"


def test_several_values_of_one_field_are_ored_in_parentheses() -> None:
    assert (
        build_filter(direction=["IN", "OUT"])
        == "(direction eq 'IN' or direction eq 'OUT')"
    )


def test_conditions_on_different_fields_are_anded_in_a_fixed_order() -> None:
    text = build_filter(
        delivery="ERR",
        direction="OUT",
        msg_type="SMS",
        since=datetime(2024, 5, 1, tzinfo=timezone.utc),
        until=datetime(2024, 6, 1, 12, 30, tzinfo=timezone.utc),
    )

    assert text == (
        "msg_type eq 'SMS' and direction eq 'OUT' and delivery eq 'ERR' and "
        "created_at ge '2024-05-01T00:00:00Z' and created_at lt '2024-06-01T12:30:00Z'"
    )


def test_a_naive_datetime_is_taken_as_utc() -> None:
    assert build_filter(since=datetime(2024, 5, 1)) == (
        "created_at ge '2024-05-01T00:00:00Z'"
    )


def test_an_offset_is_kept() -> None:
    tz = timezone(timedelta(hours=2))

    assert format_instant(datetime(2024, 5, 1, 8, tzinfo=tz)) == (
        "'2024-05-01T08:00:00+02:00'"
    )


def test_format_instant_refuses_a_date_string() -> None:
    with pytest.raises(TypeError, match="expected a datetime"):
        format_instant("2024-05-01")  # type: ignore[arg-type]  # wrong on purpose


def test_extra_alone_is_sent_as_written() -> None:
    assert build_filter(extra=" sender eq '1' or sender eq '2' ") == (
        "sender eq '1' or sender eq '2'"
    )


def test_extra_is_parenthesised_when_anded_with_typed_conditions() -> None:
    """Without the parentheses, its `or` would escape the typed conditions."""
    assert build_filter(msg_type="SMS", extra="sender eq '1' or sender eq '2'") == (
        "msg_type eq 'SMS' and (sender eq '1' or sender eq '2')"
    )


def test_blank_extra_is_refused() -> None:
    with pytest.raises(ValueError, match="blank"):
        build_filter(extra="  ")


def test_non_string_extra_is_refused() -> None:
    with pytest.raises(TypeError, match="extra must be a str"):
        build_filter(extra=1)  # type: ignore[arg-type]  # wrong on purpose


def test_non_string_value_is_refused() -> None:
    with pytest.raises(TypeError, match="direction values must be str"):
        build_filter(direction=["IN", 2])  # type: ignore[list-item]  # wrong on purpose


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(seconds=-1)])
def test_since_must_be_before_until(gap: timedelta) -> None:
    since = datetime(2024, 5, 1, tzinfo=timezone.utc)

    with pytest.raises(ValueError, match="must be before"):
        build_filter(since=since, until=since + gap)


def test_a_quote_in_a_value_cannot_add_a_clause() -> None:
    """The fake PBX's parser reads the whole hostile value as one literal."""
    hostile = "SMS' or msg_type ne 'x"
    messages = [{"msg_type": "SMS"}, {"msg_type": "WHATSAPP"}, {"msg_type": hostile}]

    matches = parse_filter(build_filter(msg_type=hostile) or "", FIELDS, TIMES)

    assert [m for m in messages if matches(m)] == [{"msg_type": hostile}]


@given(st.text(max_size=40))
def test_any_text_round_trips_through_the_fake_pbx_parser(value: str) -> None:
    matches = parse_filter(build_filter(msg_type=value) or "", FIELDS, TIMES)

    assert matches({"msg_type": value})
    assert not matches({"msg_type": value + "x"})


def test_since_and_until_compare_as_times_on_the_fake_pbx() -> None:
    text = build_filter(
        since=datetime(2024, 5, 1, tzinfo=timezone.utc),
        until=datetime(2024, 5, 2, tzinfo=timezone.utc),
    )
    matches = parse_filter(text or "", FIELDS, TIMES)

    assert [
        matches({"created_at": t})
        for t in (
            "2024-04-30T23:59:59Z",
            "2024-05-01T00:00:00Z",
            "2024-05-02T00:00:00Z",
        )
    ] == [False, True, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        (" 2024-05-01 ", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        ("2024-05-01T12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        ("2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
        (
            "2024-05-01T12:30:00+02:00",
            datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc),
        ),
    ],
)
def test_parse_instant_reads_dates_and_datetimes(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "2024-05-01T25:00"])
def test_parse_instant_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_instant(text)
