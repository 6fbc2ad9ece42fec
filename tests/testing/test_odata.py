"""The OData subset: parsing, evaluation, ordering and search, without I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from external_messages_async.testing._odata import (
    ODataError,
    parse_filter,
    parse_orderby,
    parse_rfc3339,
    search_predicate,
    sort_messages,
)

FIELDS = frozenset({"sender", "msg_type", "content", "created_at", "count", "flag"})
TIMES = frozenset({"created_at"})


def matches(text: str, message: dict[str, object]) -> bool:
    return parse_filter(text, FIELDS, TIMES)(message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("msg_type eq 'SMS'", True),
        ("msg_type ne 'SMS'", False),
        ("sender gt '+1'", True),
        ("sender ge '+1555'", True),
        ("sender lt '+1555'", False),
        ("sender le '+1555'", True),
        ("'SMS' eq msg_type", True),
        ("'+2' gt sender", True),
        ("count eq 3", True),
        ("count gt 2.5", True),
        ("count lt -1", False),
        ("flag eq true", True),
        ("flag ne false", True),
        ("content eq null", True),
        ("sender ne null", True),
        ("msg_type EQ 'SMS'", True),
    ],
)
def test_comparison_operators(text: str, expected: bool) -> None:
    message = {"sender": "+1555", "msg_type": "SMS", "count": 3, "flag": True}

    assert matches(text, message) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("msg_type eq 'SMS' or msg_type eq 'X' and sender eq 'nobody'", True),
        ("(msg_type eq 'SMS' or msg_type eq 'X') and sender eq 'nobody'", False),
        ("not msg_type eq 'SMS'", False),
        ("not (msg_type eq 'X') and not not sender eq '+1555'", True),
        ("msg_type eq 'X' or msg_type eq 'Y' or sender eq '+1555'", True),
    ],
)
def test_and_binds_tighter_than_or_and_parentheses_override(
    text: str, expected: bool
) -> None:
    message = {"sender": "+1555", "msg_type": "SMS"}

    assert matches(text, message) is expected


def test_doubled_quote_is_an_escaped_quote() -> None:
    message = {"content": "it's 'here'"}

    assert matches("content eq 'it''s ''here'''", message)
    assert not matches("content eq 'its here'", message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("startswith(sender,'+44')", True),
        ("endswith(sender, '99')", True),
        ("contains(content,'Ünï')", True),
        ("contains(content,'ünï')", False),
        ("startswith(sender,'+1') eq true", False),
        ("startswith(sender,'+1') eq false", True),
        ("contains(content,'Ünï') ne true", False),
        ("startswith(msg_type,'S')", False),
    ],
)
def test_string_functions(text: str, expected: bool) -> None:
    message = {"sender": "+447700900099", "content": "Ünïcode ✓", "msg_type": None}

    assert matches(text, message) is expected


def test_created_at_compares_as_instants_across_formats() -> None:
    message = {"created_at": "2024-03-01T10:00:00.5Z"}

    assert matches("created_at gt '2024-03-01T10:00:00Z'", message)
    assert matches("created_at lt '2024-03-01T11:00:01+01:00'", message)
    assert matches("created_at eq '2024-03-01T10:00:00.500000Z'", message)
    assert matches("created_at ge '2024-03-01'", message)


def test_ordering_against_missing_or_mismatched_values_is_false() -> None:
    message = {"sender": "+1", "created_at": "not a time"}

    assert not matches("content gt 'a'", message)
    assert not matches("sender gt 5", message)
    assert not matches("created_at lt '2030-01-01T00:00:00Z'", message)
    assert matches("created_at eq null", message)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope eq 'x'", "unknown field 'nope'"),
        ("sender eq 'x", "unterminated string literal at position 10"),
        ("sender eq", "found end of filter"),
        ("sender == 'x'", "unexpected '='"),
        ("sender 'x'", "expected one of eq, ne"),
        ("sender eq 'x' and", "expected a comparison at position 17"),
        ("(sender eq 'x'", "expected ')'"),
        ("sender eq 'x')", "unexpected ')'"),
        ("sender eq sender", "expected a quoted string, number"),
        ("eq eq 'x'", "unknown field 'eq'"),
        ("'x' eq 'y'", "expected a field name"),
        ("'x' eq", "expected a field name at position 6, found end of filter"),
        ("startswith(sender, 5)", "needs a quoted string"),
        ("startswith('x', sender)", "expected a field name"),
        ("startswith(sender 'x')", "expected ','"),
        ("contains(sender,'x') eq 'yes'", "only be compared with true or false"),
        ("created_at gt 'yesterday'", "RFC 3339"),
        ("created_at gt '2024-02-30T00:00:00Z'", "RFC 3339"),
        (")", "expected a comparison"),
        ("", "expected a comparison"),
        ("sender eq 1x", "unexpected"),
    ],
)
def test_malformed_filters_raise_helpful_errors(text: str, fragment: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_filter(text, FIELDS, TIMES)

    assert fragment in str(caught.value)


def test_orderby_parses_fields_and_directions() -> None:
    assert parse_orderby("created_at desc, sender,msg_type ASC", FIELDS) == (
        ("created_at", True),
        ("sender", False),
        ("msg_type", False),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope", "unknown field 'nope'"),
        ("sender sideways", "expected 'field asc'"),
        ("sender asc extra", "expected 'field asc'"),
        ("sender,", "empty item"),
    ],
)
def test_malformed_orderby_raises(text: str, fragment: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_orderby(text, FIELDS)

    assert fragment in str(caught.value)


def test_sort_is_stable_multi_key_with_missing_values_last() -> None:
    rows = [
        {"k": 1, "msg_type": "b", "sender": "x"},
        {"k": 2, "msg_type": "a", "sender": "y"},
        {"k": 3, "msg_type": "b", "sender": "z"},
        {"k": 4, "sender": "w"},
        {"k": 5, "msg_type": "a", "sender": "y"},
    ]

    ordered = sort_messages(rows, (("msg_type", True), ("sender", False)))

    assert [row["k"] for row in ordered] == [1, 3, 2, 5, 4]


def test_sort_by_time_uses_instants_not_strings() -> None:
    rows = [
        {"created_at": "2024-01-01T00:00:00Z"},
        {"created_at": "2024-01-01T00:00:00.001Z"},
        {"created_at": "2023-12-31T23:00:00-02:00"},
    ]

    ordered = sort_messages(rows, (("created_at", False),), TIMES)

    assert [row["created_at"] for row in ordered] == [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.001Z",
        "2023-12-31T23:00:00-02:00",
    ]


def test_sort_tolerates_values_of_mixed_types() -> None:
    rows = [
        {"v": "s"},
        {"v": 2},
        {"v": True},
        {"v": [1]},
        {"v": dt.datetime(2024, 1, 1)},
    ]

    ordered = sort_messages(rows, (("v", False),))

    assert [row["v"] for row in ordered] == [True, 2, "s", dt.datetime(2024, 1, 1), [1]]


def test_search_is_case_insensitive_over_the_given_fields() -> None:
    predicate = search_predicate("ÉLÈNE", ("sender_name", "content"))

    assert predicate({"sender_name": "Helene"}) is False
    assert predicate({"sender_name": None, "content": "to élène!"}) is True
    assert predicate({"receiver_name": "élène"}) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2024-05-01T12:30:00Z",
            dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        ),
        (
            "2024-05-01T12:30:00.1234567z",
            dt.datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=dt.timezone.utc),
        ),
        (
            "2024-05-01T14:30:00+02:00",
            dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        ),
        ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)),
        ("2024-05-01T12:30:00", None),
        ("2024-13-01T00:00:00Z", None),
        ("", None),
    ],
)
def test_parse_rfc3339(text: str, expected: dt.datetime | None) -> None:
    assert parse_rfc3339(text) == expected
