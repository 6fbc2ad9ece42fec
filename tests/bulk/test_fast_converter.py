"""The generated hot-path hook accepts and refuses exactly what cattrs' detailed hook does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from external_messages_async import ExternalMessage, ResponseDecodeError
from external_messages_async._converter import (
    CONVERTER,
    _make_fast_structure,
    _structure_optimistic,
    make_converter,
    message_cells,
    message_json_line,
    message_record,
    structure_page,
    unstructure_message,
)

DETAILED = make_converter(detailed_validation=True)
FAST = CONVERTER.get_structure_hook(ExternalMessage)

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

STRING_ORDER = [field.name for field in attrs.fields(ExternalMessage)]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()
)
any_json = st.one_of(json_scalars, st.lists(st.integers(), max_size=2))
enum_values = st.one_of(
    st.sampled_from(["SMS", "WHATSAPP", "UNKNOWN", "IN", "OUT", "ERR", "RCS", ""]),
    any_json,
)
ODD_TIMESTAMPS = [
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00.123+02:00",
    "2024-05-01T12:00:00",  # no offset: UTC
    "2024-05-01T12:00:00.1Z",  # one fraction digit
    "2024-05-01T12:00:00.123456789Z",  # nine
    "2024-05-01 12:00:00-05:30",
    "2024-05-01t12:00:00z",
    "2024-05-01T12:00:00+0200",
    "2024-05-01",
    "2024-05-01T24:00:00Z",
    "",
    " ",
    "yesterday",
]
timestamps = st.one_of(st.sampled_from(ODD_TIMESTAMPS), st.text(max_size=30), any_json)
items = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(STRING_FIELDS, st.one_of(st.text(max_size=5), any_json)),
        "msg_type": enum_values,
        "direction": enum_values,
        "delivery": enum_values,
        "created_at": timestamps,
    },
)


def outcome(hook: Any, item: Any) -> Any:
    try:
        message = hook(item, ExternalMessage)
    except Exception:
        return "refused"
    # Equal values are not enough: also the same classes (enum members, aware
    # datetimes with the same offset, the model class itself).
    assert type(message) is ExternalMessage
    return (
        message,
        [(type(v), v) for v in attrs.astuple(message, recurse=False)],
        [v.utcoffset() for v in [message.created_at] if v is not None],
    )


SPARSE = _make_fast_structure(missing_keys=True)


@settings(max_examples=300, deadline=None)
@given(items)
def test_fast_and_detailed_hooks_agree(item):
    assert outcome(FAST, item) == outcome(DETAILED.structure, item)


@settings(max_examples=300, deadline=None)
@given(items)
def test_the_optimistic_hook_never_accepts_differently(item):
    """It may step aside (raise) for the rules one by one, never disagree."""
    fast = outcome(_structure_optimistic, item)

    assert fast in ("refused", outcome(DETAILED.structure, item))


@settings(max_examples=300, deadline=None)
@given(items)
def test_the_hook_for_missing_keys_never_accepts_differently(item):
    fast = outcome(SPARSE, item)

    assert fast in ("refused", outcome(DETAILED.structure, item))


@settings(max_examples=300, deadline=None)
@given(st.one_of(items, any_json))
def test_a_page_structures_exactly_as_the_rules_one_by_one(item):
    """The page's list comprehension over the generated hook, with its fallbacks."""
    try:
        fast = [
            outcome(lambda i, _: i, m)
            for m in structure_page({"count": 1, "items": [item]}, skip=0).items
        ]
    except ResponseDecodeError:
        fast = ["refused"]

    expected = (
        outcome(DETAILED.structure, item) if isinstance(item, dict) else "refused"
    )
    assert fast == [expected]


@settings(max_examples=300, deadline=None)
@given(items)
def test_generated_unstructuring_gives_what_cattrs_gives(item):
    message = outcome(DETAILED.structure, item)
    if message == "refused":
        return
    message = message[0]
    reference = DETAILED.unstructure(message)

    assert unstructure_message(message) == reference
    assert CONVERTER.unstructure(message) == reference
    assert list(message_record(message)) == STRING_ORDER
    assert message_record(message) == {
        name: reference.get(name) for name in STRING_ORDER
    }
    assert message_cells(message) == [str(reference.get(n, "")) for n in STRING_ORDER]
    assert message_json_line(message) == orjson.dumps(message_record(message)) + b"\n"


def test_a_generated_message_is_a_plain_frozen_message():
    item = {"id": "a", "msg_type": "SMS", "created_at": "2024-05-01T12:00:00Z"}

    message = FAST(item, ExternalMessage)

    assert type(message) is ExternalMessage
    assert message == ExternalMessage(
        **DETAILED.structure(item, ExternalMessage).__getstate__()
    )
    assert hash(message) == hash(DETAILED.structure(item, ExternalMessage))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.id = "b"
    assert attrs.evolve(message, id="b").id == "b"


def test_a_page_mixing_common_and_unusual_items_keeps_every_item():
    page = structure_page(
        {
            "count": 3,
            "items": [
                {"id": "a", "msg_type": "SMS", "created_at": "2024-05-01T12:00:00Z"},
                {"id": "b", "msg_type": "RCS", "created_at": ""},
                {"id": "c", "created_at": "2024-05-01T12:00:00"},
            ],
        },
        skip=0,
    )

    assert [m.id for m in page.items] == ["a", "b", "c"]
    assert page.items[1].msg_type == "RCS"
    assert page.items[1].created_at is None
    assert page.items[2].created_at is not None
    assert page.items[2].created_at.utcoffset() is not None


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            **dict.fromkeys(STRING_FIELDS, st.text(max_size=5)),
            "msg_type": st.sampled_from(["SMS", "WHATSAPP", "RCS"]),
            "created_at": st.sampled_from(["2024-05-01T12:00:00Z"]),
        },
    )
)
def test_valid_items_round_trip(item):
    assert unstructure_message(FAST(item, ExternalMessage)) == item


@pytest.mark.parametrize("bad", [[1], "text", 3, None])
def test_a_non_object_item_is_explained_with_its_path(bad):
    with pytest.raises(ResponseDecodeError) as caught:
        structure_page({"count": 2, "items": [{"id": "a"}, bad]}, skip=0)

    assert caught.value.path == "$.items[1]"


offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59),
        max_value=timedelta(hours=23, minutes=59),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        timezones=st.one_of(st.none(), st.just(timezone.utc), offsets),
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
    )
)
def test_a_json_line_writes_created_at_as_format_datetime_does(created_at):
    """orjson is left to write UTC datetimes only where its text is the same."""
    message = ExternalMessage(id="a", created_at=created_at)

    assert message_json_line(message) == orjson.dumps(message_record(message)) + b"\n"
