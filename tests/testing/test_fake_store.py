"""List query validation and the message store, without I/O."""

from __future__ import annotations

import orjson
import pytest

from external_messages_async.testing import generate_messages
from external_messages_async.testing._store import (
    ListQuery,
    MessageStore,
    QueryError,
    parse_list_query,
)


def test_defaults_are_first_page_of_one_hundred() -> None:
    assert parse_list_query({}) == ListQuery(skip=0, top=100)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"top": "0"}, "top must be between 1 and 100, got 0"),
        ({"top": "101"}, "top must be between 1 and 100, got 101"),
        ({"top": "ten"}, "top must be a non-negative integer"),
        ({"skip": "-1"}, "skip must be a non-negative integer"),
        ({"skip": "+1"}, "skip must be a non-negative integer"),
        ({"filter": "sender eq"}, "found end of filter"),
        ({"orderby": "bogus desc"}, "unknown field 'bogus'"),
    ],
)
def test_invalid_queries_are_rejected(params: dict[str, str], fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_list_query(params)

    assert fragment in str(caught.value)


def test_blank_options_mean_none() -> None:
    assert (
        parse_list_query({"filter": " ", "orderby": "", "search": "  "}) == ListQuery()
    )


def page(store: MessageStore, **params: str) -> dict[str, object]:
    result: dict[str, object] = orjson.loads(store.page(parse_list_query(params)))
    return result


def test_views_are_cached_until_the_list_length_changes() -> None:
    messages = generate_messages(30, seed=2)
    store = MessageStore(messages)
    first = store.view(ListQuery())

    same = store.view(ListQuery())
    messages.append({"id": "new", "created_at": "2030-01-01T00:00:00Z"})
    fresh = store.view(ListQuery())

    assert same is first
    assert fresh[0]["id"] == "new"


def test_in_place_edits_need_changed() -> None:
    messages = generate_messages(5, seed=2)
    store = MessageStore(messages)
    before = store.get(messages[0]["id"])
    messages[0]["content"] = "edited"

    stale = store.get(messages[0]["id"])
    store.changed()

    assert stale == before
    assert orjson.loads(store.get(messages[0]["id"]) or b"")["content"] == "edited"


def test_without_preserialize_edits_show_at_once() -> None:
    messages = generate_messages(5, seed=2)
    store = MessageStore(messages, preserialize=False)
    store.get(messages[0]["id"])
    messages[0]["content"] = "edited"

    assert orjson.loads(store.get(messages[0]["id"]) or b"")["content"] == "edited"
    assert page(store, top="1")["items"] == [messages[0]]


def test_view_cache_is_bounded() -> None:
    store = MessageStore(generate_messages(10, seed=2))

    for n in range(40):
        store.view(ListQuery(search=str(n)))

    assert len(store._views) == 32


def test_first_message_wins_for_duplicate_ids() -> None:
    store = MessageStore([{"id": "a", "n": 1}, {"id": "a", "n": 2}])

    assert orjson.loads(store.get("a") or b"") == {"id": "a", "n": 1}
    assert store.get("b") is None


def test_ignored_options_are_treated_as_absent() -> None:
    params = {"skip": "5", "top": "abc", "filter": "bad (", "orderby": "sender"}

    query = parse_list_query(params, ignore={"top", "filter", "skip"})

    assert query == ListQuery(skip=0, top=100, orderby="sender")


def test_max_top_cuts_top_but_keeps_its_validation() -> None:
    assert parse_list_query({"top": "100"}, max_top=10).top == 10
    assert parse_list_query({"top": "3"}, max_top=10).top == 3
    with pytest.raises(QueryError, match="between 1 and 100"):
        parse_list_query({"top": "101"}, max_top=10)
