"""The page planner, without an event loop: plan, accept, and a model server.

A walk here is driven by hand: :func:`plan` says which requests to send, the
test answers them from an in-memory collection (at a moment it chooses, with
messages created or deleted in between), and :func:`accept` says what each
answer yields.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from external_messages_async import ExternalMessage, Page
from external_messages_async._planner import (
    REPEATED_PAGES_LIMIT,
    Request,
    Step,
    WalkState,
    accept,
    plan,
)
from external_messages_async.errors import PagingError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))

#: Messages created or deleted during one model walk, at most: more would only
#: lengthen a walk that follows a growing collection.
MAX_CHANGES = 12


def msg(message_id: str | None) -> ExternalMessage:
    return ExternalMessage(id=message_id)


def page(skip: int, ids: list[str | None], count: int) -> Page[ExternalMessage]:
    return Page(count=count, items=[msg(i) for i in ids], skip=skip)


def ids_of(step: Step) -> list[str | None]:
    return [item.id for item in step.items]


def start(**options: Any) -> WalkState:
    options.setdefault("page_size", 10)
    options.setdefault("limit", None)
    options.setdefault("skip", 0)
    options.setdefault("concurrency", 1)
    return WalkState.start(**options)


def names(first: int, stop: int) -> list[str | None]:
    return [f"m{i}" for i in range(first, stop)]


# --- plan ----------------------------------------------------------------


def test_a_sequential_walk_asks_for_one_page_at_the_cursor() -> None:
    state, requests = plan(start(skip=5))

    assert requests == (Request(5, 10),)
    assert state.head == Request(5, 10)


def test_the_first_page_of_a_concurrent_walk_is_asked_alone() -> None:
    _, requests = plan(start(concurrency=4))

    assert requests == (Request(0, 10),)


def test_once_count_is_known_the_window_is_filled_up_to_count() -> None:
    state, _ = plan(start(concurrency=4))
    state = accept(state, page(0, names(0, 10), 35), set()).state

    state, requests = plan(state)

    assert requests == (Request(10, 10), Request(20, 10), Request(30, 10))
    assert state.frontier == 40


def test_the_window_asks_only_for_what_the_limit_still_needs() -> None:
    state, _ = plan(start(concurrency=8, limit=25))
    state = accept(state, page(0, names(0, 10), 500), set()).state

    _, requests = plan(state)

    assert requests == (Request(10, 10), Request(20, 5))


def test_a_short_page_in_the_window_has_its_gap_asked_first() -> None:
    """The gap is asked for at the cap the short page showed (4)."""
    state, _ = plan(start(concurrency=3))
    state = accept(state, page(0, names(0, 10), 100), set()).state
    state, _ = plan(state)
    state = accept(state, page(10, names(10, 14), 100), set()).state

    state, requests = plan(state)

    assert requests == (Request(14, 4),)
    assert [r.skip for r in state.window] == [14, 20, 30]


def test_limit_zero_plans_nothing_and_ends_the_walk() -> None:
    state, requests = plan(start(limit=0))

    assert (requests, state.done) == ((), True)


def test_a_finished_walk_plans_nothing() -> None:
    state = start().stopped()

    assert plan(state) == (state, ())


# --- accept ----------------------------------------------------------------


def test_a_page_is_taken_and_the_cursor_moves_by_the_items_returned() -> None:
    state, _ = plan(start())

    step = accept(state, page(0, names(0, 7), 20), set())

    assert ids_of(step) == names(0, 7)
    assert (step.state.cursor, step.state.yielded, step.state.done) == (7, 7, False)


def test_the_walk_ends_when_the_cursor_reaches_count() -> None:
    state, _ = plan(start())

    step = accept(state, page(0, names(0, 10), 10), set())

    assert step.state.done
    assert step.state.window == ()


def test_ids_already_known_are_dropped_and_counted() -> None:
    state, _ = plan(start())

    step = accept(state, page(0, ["a", "b", "a", None, None], 20), {"b"})

    assert ids_of(step) == ["a", None, None]
    assert step.state.duplicates_dropped == 2


def test_a_lower_count_in_the_window_asks_the_page_again_once() -> None:
    state, _ = plan(start(concurrency=3))
    state = accept(state, page(0, names(0, 10), 50), set()).state
    state, _ = plan(state)

    step = accept(state, page(10, names(10, 20), 49), set())
    again = accept(step.state, page(10, names(10, 20), 48), set())

    assert step.refetch == Request(10, 10, again=True)
    assert step.items == []
    assert again.refetch is None
    assert ids_of(again) == names(10, 20)


def test_a_sequential_walk_never_asks_again_for_a_lower_count() -> None:
    state, _ = plan(start())
    state = accept(state, page(0, names(0, 10), 50), set()).state
    state, _ = plan(state)

    step = accept(state, page(10, names(10, 20), 40), set())

    assert step.refetch is None
    assert step.state.count_decreased
    assert step.warning is not None
    assert "count fell from 50 to 40" in step.warning


def test_items_before_the_cursor_are_trimmed_not_counted_as_duplicates() -> None:
    """A server sending more than asked moves the cursor past the next page."""
    state, _ = plan(start(concurrency=2))
    state = accept(state, page(0, names(0, 10), 50), set()).state
    state, _ = plan(state)
    over_full = names(10, 25)
    state = accept(state, page(10, over_full, 50), set(names(0, 10))).state

    step = accept(state, page(20, names(20, 30), 50), set(names(0, 25)))

    assert state.cursor == 25
    assert ids_of(step) == names(25, 30)
    assert step.state.duplicates_dropped == 0


def test_items_without_id_before_the_cursor_are_not_yielded_twice() -> None:
    """Without an id only the trim can tell an item was yielded already."""
    state, _ = plan(start(concurrency=2))
    state = accept(state, page(0, names(0, 10), 50), set()).state
    state, _ = plan(state)
    state = accept(state, page(10, [None] * 15, 50), set()).state

    step = accept(state, page(20, [None] * 10, 50), set())

    assert len(step.items) == 5
    assert step.state.yielded == 30


def test_an_over_full_page_is_cut_at_the_limit_and_resumes_after_it() -> None:
    state, _ = plan(start(limit=8))

    step = accept(state, page(0, ["a", "a", *names(0, 12)], 50), set())

    assert ids_of(step) == ["a", *names(0, 7)]
    assert (step.state.cursor, step.state.done) == (9, True)


# --- the server's page cap -------------------------------------------------


def capped(size: int, cap: int) -> Callable[[Request], Page[ExternalMessage]]:
    """A collection of ``size`` messages served at most ``cap`` a page."""
    return lambda r: page(
        r.skip, names(r.skip, min(size, r.skip + min(r.top, cap))), size
    )


@pytest.mark.parametrize("concurrency", [1, 4, 8])
def test_the_cap_is_learned_from_the_first_short_page(concurrency: int) -> None:
    asked: list[Request] = []

    def answer(request: Request) -> Page[ExternalMessage]:
        asked.append(request)
        return capped(200, 30)(request)

    yielded, state = walk_pages(start(page_size=100, concurrency=concurrency), answer)

    assert yielded == names(0, 200)
    assert state.cap == 30
    assert [(r.skip, r.top) for r in asked] == [
        (0, 100),
        *((skip, 30) for skip in range(30, 200, 30)),
    ]


def test_a_short_last_page_teaches_nothing() -> None:
    state, _ = plan(start(page_size=10))

    step = accept(state, page(0, names(0, 4), 4), set())

    assert step.state.cap is None


def test_a_page_cut_by_the_limit_is_not_short() -> None:
    state, _ = plan(start(page_size=10, limit=4))

    step = accept(state, page(0, names(0, 4), 100), set())

    assert step.state.cap is None


def test_the_cap_never_raises_the_page_size() -> None:
    state, _ = plan(start(page_size=10))
    state = accept(state, page(0, names(0, 7), 100), set()).state

    assert (state.cap, state.request_size) == (7, 7)
    assert attrs.evolve(state, cap=50).request_size == 10


# --- a server that ignores skip ---------------------------------------------


def walk_pages(
    state: WalkState, answer: Callable[[Request], Page[ExternalMessage]]
) -> tuple[list[str | None], WalkState]:
    """Walk to the end, each request answered at once, in offset order."""
    known: set[str] = set()
    yielded: list[str | None] = []
    while True:
        state, _ = plan(state)
        if state.done:
            return yielded, state
        step = accept(state, answer(state.head), known)
        state = step.state
        known.update(i.id for i in step.items if i.id is not None)
        yielded.extend(ids_of(step))


def ignoring_skip(count: int) -> Callable[[Request], Page[ExternalMessage]]:
    """Every page holds the first ``top`` messages, whatever its ``skip``."""
    return lambda request: page(request.skip, names(0, request.top), count)


@pytest.mark.parametrize("count", [10**12, 250])
@pytest.mark.parametrize("concurrency", [1, 8])
def test_full_pages_of_old_ids_while_count_holds_raise_paging_error(
    count: int, concurrency: int
) -> None:
    state = start(page_size=50, concurrency=concurrency)

    with pytest.raises(PagingError) as caught:
        walk_pages(state, ignoring_skip(count))

    assert caught.value.ignored == "skip"
    assert caught.value.resume_skip == 50
    assert "appears to ignore skip" in str(caught.value)
    assert "resume from skip=50" in str(caught.value)


def test_the_error_comes_after_the_documented_number_of_repeated_pages() -> None:
    state = start(page_size=10)
    seen: list[Request] = []

    def answer(request: Request) -> Page[ExternalMessage]:
        seen.append(request)
        return ignoring_skip(10**6)(request)

    with pytest.raises(PagingError):
        walk_pages(state, answer)

    assert REPEATED_PAGES_LIMIT == 2
    assert len(seen) == 1 + REPEATED_PAGES_LIMIT


def test_one_page_of_old_ids_alone_is_not_an_error() -> None:
    state, _ = plan(start(page_size=10))
    state = accept(state, page(0, names(0, 10), 100), set()).state
    state, _ = plan(state)
    state = accept(state, page(10, names(0, 10), 100), set(names(0, 10))).state
    state, _ = plan(state)

    step = accept(state, page(20, names(20, 30), 100), set(names(0, 10)))

    assert ids_of(step) == names(20, 30)
    assert step.state.repeats is None


def test_repeated_pages_explained_by_as_many_new_messages_are_no_error() -> None:
    """Ten messages created at the front before each page push old ones on."""
    state, _ = plan(start(page_size=10))
    state = accept(state, page(0, names(0, 10), 100), set()).state
    known = set(names(0, 10))
    for skip, count in ((10, 110), (20, 120)):
        state, _ = plan(state)
        state = accept(state, page(skip, names(0, 10), count), known).state

    assert state.repeats is not None
    assert (state.repeats.pages, state.repeats.items, state.repeats.since) == (
        2,
        20,
        10,
    )


@pytest.mark.parametrize(
    ("repeat", "count"),
    [
        pytest.param([*names(0, 9), None], 100, id="an item without id"),
        pytest.param(names(0, 9), 100, id="a short page"),
        pytest.param(names(0, 10), 90, id="a lower count"),
    ],
)
def test_a_page_that_could_hold_something_new_breaks_the_run(
    repeat: list[str | None], count: int
) -> None:
    known = set(names(0, 10))
    state, _ = plan(start(page_size=10))
    state = accept(state, page(0, names(0, 10), 100), set()).state
    state, _ = plan(state)
    state = accept(state, page(10, names(0, 10), 100), known).state

    state, _ = plan(state)
    state = accept(state, page(20, repeat, count), known).state

    assert state.repeats is None


# --- a model server --------------------------------------------------------


@attrs.define
class ModelServer:
    """An in-memory collection answering ``(skip, top)`` like PortSIP."""

    items: list[str]
    #: The most items a page holds, below ``top`` (a server's own cap).
    short: Callable[[int, int], int] = lambda skip, top: top
    #: Extra items past ``top`` a page holds (a server ignoring ``top``).
    extra: int = 0
    #: Every id that was ever in the collection, in collection order.
    history: list[str] = attrs.field(factory=list)
    created: int = 0

    def __attrs_post_init__(self) -> None:
        self.history = list(self.items)

    def answer(self, request: Request) -> Page[ExternalMessage]:
        size = min(request.top, self.short(request.skip, request.top)) + self.extra
        chunk = self.items[request.skip : request.skip + size]
        return page(request.skip, list(chunk), len(self.items))

    def insert(self, at: int) -> None:
        new = f"new{self.created}"
        self.created += 1
        at = min(at, len(self.items))
        after = self.items[at] if at < len(self.items) else None
        self.items.insert(at, new)
        self.history.insert(
            self.history.index(after) if after else len(self.history), new
        )

    def delete(self, at: int) -> None:
        if self.items:
            del self.items[at % len(self.items)]


def drive(
    state: WalkState, server: ModelServer, data: st.DataObject, *, changes: str
) -> tuple[list[str | None], WalkState, int]:
    """Walk to the end, answering requests in an order hypothesis chooses.

    Args:
        state: The walk's start.
        server: The collection.
        data: Hypothesis' draws.
        changes: The changes allowed between answers: ``""``, ``"insert"``
            or ``"insert delete"``.

    Returns:
        The ids yielded, the final state, and how many messages changed.
    """
    answers: dict[Request, Page[ExternalMessage] | None] = {}
    known: set[str] = set()
    yielded: list[str | None] = []
    changed = 0
    for _ in range(10_000):
        state, requests = plan(state)
        if state.done:
            return yielded, state, changed
        answers.update(dict.fromkeys(requests))
        for _ in range(data.draw(st.integers(0, 3))):
            event = data.draw(st.sampled_from(["answer", "insert", "delete"]))
            if event == "answer" and answers:
                waiting = [r for r, a in answers.items() if a is None]
                if waiting:
                    request = data.draw(st.sampled_from(waiting))
                    answers[request] = server.answer(request)
            elif changed < MAX_CHANGES and event in changes:
                changed += 1
                position = data.draw(st.integers(0, len(server.items)))
                if event == "insert":
                    server.insert(position)
                else:
                    server.delete(position)
        head = state.head
        answer = answers.pop(head) or server.answer(head)
        step = accept(state, answer, known)
        while step.refetch is not None:
            step = accept(step.state, server.answer(step.refetch), known)
        state = step.state
        known.update(i.id for i in step.items if i.id is not None)
        yielded.extend(i.id for i in step.items)
    raise AssertionError("the walk did not end")


walk_options = st.fixed_dictionaries(
    {
        "page_size": st.integers(1, 12),
        "limit": st.none() | st.integers(0, 60),
        "skip": st.integers(0, 5),
        "concurrency": st.integers(1, 5),
    }
)
short_pages = st.sampled_from(
    [
        lambda skip, top: top,
        lambda skip, top: 3,
        lambda skip, top: max(1, top - 1) if skip % 3 == 1 else top,
    ]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    options=walk_options,
    size=st.integers(0, 60),
    short=short_pages,
    extra=st.integers(0, 2),
    data=st.data(),
)
def test_a_still_collection_is_walked_exactly(
    options: dict[str, Any], size: int, short: Any, extra: int, data: st.DataObject
) -> None:
    """Short pages, over-full pages, any answer order: each item once, in order."""
    server = ModelServer([f"m{i}" for i in range(size)], short=short, extra=extra)
    skip, limit = options["skip"], options["limit"]

    yielded, state, _ = drive(WalkState.start(**options), server, data, changes="")

    end = size if limit is None else skip + limit
    assert yielded == server.items[skip:end]
    assert state.cursor == max(skip, min(size, end))
    assert state.yielded == len(yielded)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    options=walk_options,
    size=st.integers(0, 60),
    short=short_pages,
    deletes=st.booleans(),
    data=st.data(),
)
def test_a_changing_collection_never_yields_an_id_twice(
    options: dict[str, Any],
    size: int,
    short: Any,
    deletes: bool,
    data: st.DataObject,
) -> None:
    """Inserts (and deletes) anywhere, at any moment: once each, within limit.

    Order is not promised here: a message before ``skip`` can be shifted into
    the walk after later ones were yielded, as with any offset paging.
    """
    server = ModelServer([f"m{i}" for i in range(size)], short=short)
    first = list(server.items)
    skip, limit = options["skip"], options["limit"]

    try:
        yielded, state, changes = drive(
            WalkState.start(**options),
            server,
            data,
            changes="insert delete" if deletes else "insert",
        )
    except PagingError:
        # Messages created and deleted between the same pages can look like a
        # server ignoring skip (count holds while old ids come back); new
        # messages alone cannot.
        assert deletes
        return

    assert len(yielded) == len(set(yielded))
    assert set(yielded) <= set(server.history)
    assert limit is None or len(yielded) <= limit
    assert state.yielded == len(yielded)
    if not deletes and skip == 0 and limit is None:
        assert set(first) <= set(yielded)
    if not changes:
        assert yielded == first[skip : None if limit is None else skip + limit]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_walks_from_the_model_server_end_with_the_right_next_skip(
    concurrency: int,
) -> None:
    server = ModelServer([f"m{i}" for i in range(23)])
    state = start(concurrency=concurrency, page_size=5, limit=12, skip=3)
    yielded: list[str | None] = []

    while True:
        state, _ = plan(state)
        if state.done:
            break
        step = accept(state, server.answer(state.head), set())
        state = step.state
        yielded.extend(ids_of(step))

    assert yielded == names(3, 15)
    assert state.cursor == 15


def walk_ignoring_skip(
    state: WalkState, cap: int | None, count: int, sent: list[Request]
) -> None:
    """Walk a server serving its first messages (at most ``cap``) at any ``skip``."""
    known: set[str] = set()
    while not state.done:
        state, requests = plan(state)
        sent.extend(requests)
        top = state.head.top if cap is None else min(state.head.top, cap)
        step = accept(state, page(state.head.skip, names(0, top), count), known)
        state = step.state
        known.update(i.id for i in step.items if i.id is not None)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    options=walk_options.filter(lambda o: o["limit"] is None),
    cap=st.none() | st.integers(1, 12),
    count=st.integers(200, 10**12),
)
def test_a_server_ignoring_skip_is_always_stopped_within_a_few_requests(
    options: dict[str, Any], cap: int | None, count: int
) -> None:
    sent: list[Request] = []
    first_page = options["page_size"] if cap is None else min(cap, options["page_size"])

    with pytest.raises(PagingError) as caught:
        walk_ignoring_skip(WalkState.start(**options), cap, count, sent)

    assert caught.value.resume_skip == options["skip"] + first_page
    assert len(sent) <= 2 + REPEATED_PAGES_LIMIT + options["concurrency"]
