"""The typed values: ExternalMessage, its open enums, Page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from external_messages_async import (
    DeliveryStatus,
    Direction,
    ExternalMessage,
    MessageType,
    Page,
)
from external_messages_async._converter import (
    CONVERTER,
    structure_message,
    unstructure_message,
)
from tests.conftest import SPEC

SPEC_FIELDS = [
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
    "msg_type",
    "direction",
    "content",
    "reason",
    "delivery",
    "provider_msg_id",
    "created_at",
]

FULL_ITEM: dict[str, Any] = {
    "id": "NzAwNTUxOTA5NzczMTQ4MTYw",
    "config_id": "Y29uZmlnLTE=",
    "sender": "+15550000001",
    "sender_name": "Alice",
    "receiver": "+15550000002",
    "receiver_name": "Bob",
    "channel_name": "Twilio EU",
    "channel_number": "+15550009999",
    "brand": "twilio",
    "did": "+15550009999",
    "msg_type": "WHATSAPP",
    "direction": "OUT",
    "content": "hello",
    "reason": "",
    "delivery": "SENT",
    "provider_msg_id": "SM123",
    "created_at": "2024-05-01T12:00:00.123Z",
}


def _spec_item_schema() -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    response = spec["paths"]["/external_messages"]["get"]["responses"]["200"]
    page = response["content"]["application/json"]["schema"]
    return page["properties"]["items"]["items"]  # type: ignore[no-any-return]  # decoded JSON


def test_external_message_has_the_17_fields_of_the_spec_in_order() -> None:
    names = [field.name for field in attrs.fields(ExternalMessage)]

    assert names == SPEC_FIELDS


def test_field_names_are_the_openapi_item_properties() -> None:
    assert list(_spec_item_schema()["properties"]) == SPEC_FIELDS


def test_enum_members_are_the_openapi_enums() -> None:
    properties = _spec_item_schema()["properties"]

    assert [m.value for m in MessageType] == properties["msg_type"]["enum"]
    assert [m.value for m in Direction] == properties["direction"]["enum"]
    assert [m.value for m in DeliveryStatus] == properties["delivery"]["enum"]


def test_enums_have_exactly_the_spec_members() -> None:
    assert [m.value for m in MessageType] == ["UNKNOWN", "SMS", "WHATSAPP"]
    assert [m.value for m in Direction] == ["IN", "OUT"]
    assert [m.value for m in DeliveryStatus] == ["ERR", "SENT", "RECV", "DELIVERED"]


def test_external_message_is_frozen() -> None:
    message = ExternalMessage(id="x")

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.id = "y"  # type: ignore[misc]  # assigning to a frozen value on purpose


def test_external_message_uses_slots() -> None:
    message = ExternalMessage(id="x")

    assert "__slots__" in ExternalMessage.__dict__
    assert not hasattr(message, "__dict__")


def test_every_field_defaults_to_none() -> None:
    message = ExternalMessage()

    assert all(getattr(message, name) is None for name in SPEC_FIELDS)


def test_full_item_structures_to_typed_values() -> None:
    message = structure_message(FULL_ITEM)

    assert message.id == "NzAwNTUxOTA5NzczMTQ4MTYw"
    assert message.msg_type is MessageType.WHATSAPP
    assert message.direction is Direction.OUT
    assert message.delivery is DeliveryStatus.SENT
    assert message.created_at == datetime(
        2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc
    )
    assert message.sender_name == "Alice"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2017-07-21T17:32:28Z",
            datetime(2017, 7, 21, 17, 32, 28, tzinfo=timezone.utc),
        ),
        (
            "2017-07-21T17:32:28+02:00",
            datetime(2017, 7, 21, 15, 32, 28, tzinfo=timezone.utc),
        ),
        (
            "2017-07-21T17:32:28.123Z",
            datetime(2017, 7, 21, 17, 32, 28, 123000, tzinfo=timezone.utc),
        ),
        (
            "2017-07-21T17:32:28.123456Z",
            datetime(2017, 7, 21, 17, 32, 28, 123456, tzinfo=timezone.utc),
        ),
        (
            "2017-07-21T17:32:28.5-05:30",
            datetime(2017, 7, 21, 23, 2, 28, 500000, tzinfo=timezone.utc),
        ),
    ],
)
def test_created_at_is_timezone_aware(text: str, expected: datetime) -> None:
    created_at = structure_message({"created_at": text}).created_at

    assert created_at is not None
    assert created_at.tzinfo is not None
    assert created_at == expected


def test_created_at_keeps_the_sent_offset() -> None:
    created_at = structure_message(
        {"created_at": "2017-07-21T17:32:28+02:00"}
    ).created_at

    assert created_at is not None
    assert created_at.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("field", SPEC_FIELDS)
def test_missing_and_null_give_none(field: str) -> None:
    assert getattr(structure_message({}), field) is None
    assert getattr(structure_message({field: None}), field) is None


@pytest.mark.parametrize("field", ["msg_type", "direction", "delivery", "created_at"])
def test_empty_string_gives_none_for_enums_and_datetime(field: str) -> None:
    assert getattr(structure_message({field: ""}), field) is None


@pytest.mark.parametrize("field", ["id", "sender", "content", "reason", "did"])
def test_empty_string_stays_empty_for_strings(field: str) -> None:
    assert getattr(structure_message({field: ""}), field) == ""


@pytest.mark.parametrize(
    ("enum_cls", "field"),
    [(MessageType, "msg_type"), (Direction, "direction"), (DeliveryStatus, "delivery")],
)
def test_unknown_enum_value_keeps_its_text(enum_cls: type[Any], field: str) -> None:
    value = structure_message({field: "RCS"})

    member = getattr(value, field)
    assert isinstance(member, enum_cls)
    assert member.value == "RCS"
    assert member == "RCS"
    assert str(member) == "RCS"
    assert member.is_known is False


@pytest.fixture
def empty_pseudo_member_cache() -> Iterator[None]:
    """Start with no unlisted MessageType values cached; restore the cache after."""
    cache = MessageType._value2member_map_
    saved = dict(cache)
    for value in [v for v in cache if v not in MessageType.__members__]:
        del cache[value]
    yield
    cache.clear()
    cache.update(saved)


@pytest.mark.usefixtures("empty_pseudo_member_cache")
def test_unknown_enum_value_is_the_same_object_on_every_lookup() -> None:
    first = structure_message({"msg_type": "TELEGRAM"}).msg_type

    assert structure_message({"msg_type": "TELEGRAM"}).msg_type is first
    assert MessageType("TELEGRAM") is first


@pytest.mark.usefixtures("empty_pseudo_member_cache")
def test_unlisted_values_cached_per_enum_are_bounded() -> None:
    """A server inventing a value per message cannot grow the cache without end."""
    members = [MessageType(f"NEW_{n}") for n in range(500)]

    cached = len(MessageType._value2member_map_) - len(MessageType.__members__)
    assert cached == 64
    assert [m.value for m in members] == [f"NEW_{n}" for n in range(500)]
    assert MessageType("NEW_499") == members[499]
    assert MessageType("NEW_0") is members[0]


def test_unknown_enum_value_is_not_listed_as_a_member() -> None:
    MessageType("RCS")

    assert "RCS" not in [member.value for member in MessageType]


def test_known_enum_value_is_known() -> None:
    assert MessageType.SMS.is_known is True
    assert MessageType("SMS") is MessageType.SMS


@pytest.mark.parametrize("value", ["", 3, None])
def test_enum_lookup_of_a_non_string_or_empty_value_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="not a valid MessageType"):
        MessageType(value)


def test_unknown_enum_value_round_trips() -> None:
    item = {"id": "x", "msg_type": "RCS", "delivery": "READ", "direction": "BOTH"}

    assert unstructure_message(structure_message(item)) == item


def test_full_item_round_trips() -> None:
    assert unstructure_message(structure_message(FULL_ITEM)) == FULL_ITEM


def test_unknown_extra_keys_are_ignored() -> None:
    message = structure_message({"id": "x", "colour": "blue", "nested": {"a": [1]}})

    assert message == ExternalMessage(id="x")


def test_page_has_count_items_and_skip() -> None:
    items = [ExternalMessage(id="a"), ExternalMessage(id="b")]

    page = Page(count=57, items=items, skip=40)

    assert (page.count, list(page.items), page.skip) == (57, items, 40)
    assert page.next_skip == 42


def test_page_skip_defaults_to_zero() -> None:
    assert Page(count=0, items=[]).skip == 0


def test_converter_unstructures_a_page() -> None:
    page = Page(count=1, items=[ExternalMessage(id="a")], skip=0)

    assert CONVERTER.unstructure(page) == {
        "count": 1,
        "items": [{"id": "a"}],
        "skip": 0,
    }
