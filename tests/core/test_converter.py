"""The package's own cattrs converter and the decoding of response bodies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from external_messages_async import (
    DeliveryStatus,
    Direction,
    ExternalMessage,
    MessageType,
    make_converter,
)
from external_messages_async._converter import (
    CONVERTER,
    _format_datetime_isoformat,
    _parse_rfc3339_slow,
    decode_json,
    format_datetime,
    parse_datetime,
    structure_message,
    structure_page,
    unstructure_message,
)
from external_messages_async.errors import ResponseDecodeError

STRING_FIELDS = [
    "id",
    "config_id",
    "sender",
    "sender_name",
    "receiver",
    "receiver_name",
    "channel_name",
    "channel_number",
    "brand",
    "did",
    "content",
    "reason",
    "provider_msg_id",
]


# --- the converter is the package's own ------------------------------------


def test_make_converter_never_returns_the_global_converter() -> None:
    assert make_converter() is not cattrs.global_converter
    assert CONVERTER is not cattrs.global_converter
    assert make_converter() is not make_converter()


def test_the_global_converter_does_not_learn_our_rules() -> None:
    item = {"created_at": "2024-05-01T12:00:00Z", "msg_type": "RCS"}

    ours = make_converter().structure(item, ExternalMessage)

    assert ours.msg_type == "RCS"
    with pytest.raises(Exception):  # noqa: B017, PT011 - any cattrs failure will do
        cattrs.global_converter.structure(item, ExternalMessage)


def test_make_converter_documents_its_rules() -> None:
    doc = make_converter.__doc__ or ""

    for rule in ("created_at", "Enums", "unknown keys", '""'):
        assert rule in doc


def test_detailed_converter_structures_the_same_values() -> None:
    item = {"id": "a", "msg_type": "SMS", "created_at": "2024-05-01T12:00:00Z"}

    assert make_converter(detailed_validation=True).structure(
        item, ExternalMessage
    ) == structure_message(item)


# --- the round trip ---------------------------------------------------------

_text = st.text(max_size=20)
_enum_text = st.text(min_size=1, max_size=12)


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    """A timestamp in the canonical form `format_datetime` writes."""
    moment = draw(
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
    ).replace(microsecond=0)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if len(text) < 19:  # strftime does not pad years below 1000 everywhere
        text = f"{moment.year:04d}" + text[text.index("-") :]
    fraction = draw(st.sampled_from(["none", "milli", "micro"]))
    if fraction == "milli":
        text += f".{draw(st.integers(1, 999)):03d}"
    elif fraction == "micro":
        micro = draw(st.integers(1, 999_999).filter(lambda n: n % 1000))
        text += f".{micro:06d}"
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    if minutes == 0:
        return text + "Z"
    sign = "+" if minutes > 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"


def _enum_values(enum_cls: type[Any]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([m.value for m in enum_cls]), _enum_text)


VALID_ITEMS = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(STRING_FIELDS, _text),
        "msg_type": _enum_values(MessageType),
        "direction": _enum_values(Direction),
        "delivery": _enum_values(DeliveryStatus),
        "created_at": _timestamps(),
    },
)


@given(VALID_ITEMS)
def test_unstructure_of_structure_is_the_identity(item: dict[str, Any]) -> None:
    """Every valid item survives the round trip.

    Valid means as PortSIP sends a present value: any string for the string
    fields, a listed or unlisted non-empty code for the enums, and a
    `created_at` in the canonical form `format_datetime` writes (`Z` for UTC,
    else `+HH:MM`; no fraction, or exactly 3 digits, or exactly 6 digits that
    are not a whole number of milliseconds). `null` and `""` for enums and
    timestamps mean "no value" and come back left out, so they are not here.
    """
    assert CONVERTER.unstructure(CONVERTER.structure(item, ExternalMessage)) == item


@given(st.lists(VALID_ITEMS, max_size=5), st.integers(0, 1000))
def test_a_page_body_decodes_to_the_same_items(
    items: list[dict[str, Any]], skip: int
) -> None:
    body = orjson.dumps({"count": skip + len(items), "items": items})

    page = structure_page(decode_json(body), skip=skip)

    assert [unstructure_message(m) for m in page.items] == items
    assert (page.count, page.skip) == (skip + len(items), skip)


# --- datetimes --------------------------------------------------------------


def test_parse_datetime_takes_a_timestamp_without_offset_as_utc() -> None:
    assert parse_datetime("2024-05-01T12:00:00") == datetime(
        2024, 5, 1, 12, tzinfo=timezone.utc
    )


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01t12:00:00z",
        "2024-05-01 12:00:00",
        "2024-05-01T12:00:00.1Z",
        "2024-05-01T12:00:00.12345678Z",
        "2024-05-01T12:00:00+0200",
        "2024-05-01T12:00:00-05:30",
    ],
)
def test_the_python_310_fallback_parser_agrees(text: str) -> None:
    """Python 3.10's fromisoformat rejects most of these; the fallback must not."""
    assert _parse_rfc3339_slow(text) == parse_datetime(text)
    assert _parse_rfc3339_slow(text).tzinfo is not None


def test_fractions_beyond_microseconds_are_cut() -> None:
    assert parse_datetime("2024-05-01T12:00:00.1234567Z").microsecond == 123456


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-05-01T25:00:00Z"])
def test_parse_datetime_refuses_what_is_not_a_timestamp(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is Python's
        parse_datetime(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2024, 5, 1, 12, tzinfo=timezone.utc), "2024-05-01T12:00:00Z"),
        (datetime(2024, 5, 1, 12), "2024-05-01T12:00:00Z"),
        (
            datetime(2024, 5, 1, 12, 0, 0, 120000, tzinfo=timezone.utc),
            "2024-05-01T12:00:00.120Z",
        ),
        (
            datetime(2024, 5, 1, 12, 0, 0, 120001, tzinfo=timezone.utc),
            "2024-05-01T12:00:00.120001Z",
        ),
        (
            datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00+02:00",
        ),
    ],
)
def test_format_datetime_writes_rfc3339_with_z_for_utc(
    value: datetime, text: str
) -> None:
    assert format_datetime(value) == text


# --- decode errors name the path -------------------------------------------


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"", b'{"count":'])
def test_a_body_that_is_not_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(ResponseDecodeError, match="not JSON") as info:
        decode_json(body)

    assert info.value.path == "$"
    assert info.value.body == body.decode()
    assert info.value.__cause__ is None


def test_a_string_where_the_items_list_belongs_names_items() -> None:
    with pytest.raises(ResponseDecodeError, match=r"\$\.items") as info:
        structure_page({"count": 1, "items": "oops"}, skip=0)

    assert info.value.path == "$.items"


def test_a_bad_timestamp_in_the_fourth_item_names_its_path() -> None:
    items = [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d", "created_at": "nope"}]

    with pytest.raises(
        ResponseDecodeError, match=r"\$\.items\[3\]\.created_at"
    ) as info:
        structure_page({"count": 4, "items": items}, skip=0)

    assert info.value.path == "$.items[3].created_at"


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({"sender": 5}, "$.items[0].sender"),
        ({"msg_type": 5}, "$.items[0].msg_type"),
        ({"created_at": 5}, "$.items[0].created_at"),
        ({"created_at": []}, "$.items[0].created_at"),
    ],
)
def test_a_wrong_json_type_in_an_item_names_its_path(
    item: dict[str, Any], path: str
) -> None:
    with pytest.raises(ResponseDecodeError) as info:
        structure_page({"count": 1, "items": [item]}, skip=0)

    assert info.value.path == path


@pytest.mark.parametrize("item", ["a string", 5, ["list"], None])
def test_an_item_that_is_not_an_object_names_its_index(item: Any) -> None:
    with pytest.raises(ResponseDecodeError, match="JSON object") as info:
        structure_page({"count": 2, "items": [{"id": "a"}, item]}, skip=0)

    assert info.value.path == "$.items[1]"


@pytest.mark.parametrize("count", [None, "3", -1, 1.5, True])
def test_a_missing_or_bad_count_names_count(count: Any) -> None:
    data = {"items": []} if count is None else {"count": count, "items": []}

    with pytest.raises(ResponseDecodeError) as info:
        structure_page(data, skip=0)

    assert info.value.path == "$.count"


@pytest.mark.parametrize("data", [[], "text", 3, None])
def test_a_page_that_is_not_an_object_is_a_decode_error(data: Any) -> None:
    with pytest.raises(ResponseDecodeError, match="JSON object") as info:
        structure_page(data, skip=0)

    assert info.value.path == "$"


def test_missing_or_null_items_is_an_empty_page() -> None:
    assert list(structure_page({"count": 0}, skip=0).items) == []
    assert list(structure_page({"count": 0, "items": None}, skip=0).items) == []


def test_a_single_message_that_does_not_fit_names_the_root_path() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        structure_message({"delivery": ["x"]})

    assert info.value.path == "$.delivery"


def test_a_single_message_that_is_not_an_object_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError, match="JSON object") as info:
        structure_message(["a", "list"])

    assert info.value.path == "$"


@pytest.mark.parametrize("value", ["text", ["list"], 5])
def test_the_converter_refuses_a_message_that_is_not_an_object(value: Any) -> None:
    with pytest.raises(TypeError, match="expected a JSON object"):
        make_converter().structure(value, ExternalMessage)


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_format_datetime_in_utc_agrees_with_isoformat(value: datetime) -> None:
    """The orjson fast path for UTC writes what the isoformat rule writes."""
    assert format_datetime(value) == _format_datetime_isoformat(value)
    assert format_datetime(value) == _format_datetime_isoformat(
        value.replace(tzinfo=timezone(timedelta(0)))
    )
