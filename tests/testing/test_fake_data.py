"""generate_messages: deterministic, realistic and covering every enum value."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest

from external_messages_async.testing import MESSAGE_FIELDS, generate_messages
from external_messages_async.testing._data import format_rfc3339
from external_messages_async.testing._odata import parse_rfc3339

E164 = re.compile(r"\+(1|44|49|81|86|91)[0-9]{8,11}")


@pytest.fixture(scope="module")
def thousand() -> list[dict[str, object]]:
    return generate_messages(1000, seed=1)


def test_same_seed_gives_the_same_messages() -> None:
    assert generate_messages(200, seed=5) == generate_messages(200, seed=5)


def test_different_seeds_give_different_messages() -> None:
    assert generate_messages(20, seed=1) != generate_messages(20, seed=2)


def test_negative_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_messages(-1)


def test_ids_are_unique_and_some_need_quoting(
    thousand: list[dict[str, object]],
) -> None:
    ids = [str(message["id"]) for message in thousand]

    assert len(set(ids)) == len(ids)
    assert sum("/" in i and "+" in i and i.endswith("=") for i in ids) == 30


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("msg_type", {"UNKNOWN", "SMS", "WHATSAPP"}),
        ("direction", {"IN", "OUT"}),
        ("delivery", {"ERR", "SENT", "RECV", "DELIVERED"}),
    ],
)
def test_every_enum_value_appears(
    thousand: list[dict[str, object]], field: str, values: set[str]
) -> None:
    assert {message[field] for message in thousand} == values


def test_err_messages_have_a_reason_and_others_a_blank_one(
    thousand: list[dict[str, object]],
) -> None:
    errs = [m for m in thousand if m["delivery"] == "ERR" and "reason" in m]
    others = [m for m in thousand if m["delivery"] != "ERR" and "reason" in m]

    assert all(m["reason"] for m in errs if m["reason"] is not None)
    assert {m["reason"] for m in others} <= {"", None}


def test_numbers_are_e164_from_several_countries(
    thousand: list[dict[str, object]],
) -> None:
    senders = [str(m["sender"]) for m in thousand]

    assert all(E164.fullmatch(sender) for sender in senders)
    assert {E164.fullmatch(s).group(1) for s in senders} >= {
        "1",
        "44",
        "49",
        "81",
        "86",
        "91",
    }  # type: ignore[union-attr]  # fullmatch is Optional; the line above asserts every one matches


@pytest.mark.parametrize(
    ("script", "probe"),
    [
        ("Latin with accents", lambda c: "\u00c0" <= c <= "\u017f"),
        ("Cyrillic", lambda c: "\u0400" <= c <= "\u04ff"),
        ("Greek", lambda c: "\u0370" <= c <= "\u03ff"),
        ("Arabic", lambda c: "\u0600" <= c <= "\u06ff"),
        ("CJK", lambda c: "\u4e00" <= c <= "\u9fff"),
        ("Devanagari", lambda c: "\u0900" <= c <= "\u097f"),
        ("emoji", lambda c: c >= "\U0001f300"),
    ],
)
def test_names_and_content_use_many_scripts(
    thousand: list[dict[str, object]], script: str, probe: Callable[[str], bool]
) -> None:
    text = "".join(str(m.get("sender_name")) + str(m["content"]) for m in thousand)

    assert any(probe(c) for c in text), script


def test_content_length_ranges_from_one_to_five_hundred(
    thousand: list[dict[str, object]],
) -> None:
    lengths = [len(str(m["content"])) for m in thousand]

    assert min(lengths) == 1
    assert max(lengths) == 500


def test_timestamps_are_rfc3339_utc_with_varied_precision_newest_first(
    thousand: list[dict[str, object]],
) -> None:
    stamps = [str(m["created_at"]) for m in thousand]
    moments = [parse_rfc3339(s) for s in stamps]

    assert all(s.endswith("Z") for s in stamps)
    assert {len(s) for s in stamps} == {20, 24, 27}
    assert moments == sorted(moments, reverse=True)  # type: ignore[type-var]  # parse_rfc3339 is Optional; these stamps all parse
    assert (moments[0] - moments[-1]).days >= 150  # type: ignore[operator]  # parse_rfc3339 is Optional; these stamps all parse


def test_sparse_data_has_some_nulls_and_missing_fields(
    thousand: list[dict[str, object]],
) -> None:
    assert any(None in m.values() for m in thousand)
    assert any(len(m) < len(MESSAGE_FIELDS) for m in thousand)
    assert all(set(m) <= set(MESSAGE_FIELDS) for m in thousand)


def test_strict_data_has_every_field_as_a_string() -> None:
    messages = generate_messages(300, seed=3, sparse=False)

    assert all(list(m) == list(MESSAGE_FIELDS) for m in messages)
    assert all(isinstance(v, str) for m in messages for v in m.values())


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone.utc), "2024-07-01T12:00:00Z"),
        (
            dt.datetime(
                2024, 7, 1, 0, 30, 0, 1, tzinfo=dt.timezone(-dt.timedelta(hours=2))
            ),
            "2024-07-01T02:30:00.000001Z",
        ),
    ],
)
def test_times_are_written_in_utc_with_z(when: dt.datetime, text: str) -> None:
    assert format_rfc3339(when) == text
    assert parse_rfc3339(text) == when
