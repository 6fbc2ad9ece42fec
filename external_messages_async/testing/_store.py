"""The message store: list queries, their validation, and pre-serialised pages."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import attrs
import orjson

from ._data import MESSAGE_FIELDS, SEARCH_FIELDS
from ._odata import (
    ODataError,
    OrderBy,
    Predicate,
    parse_filter,
    parse_orderby,
    search_predicate,
    sort_messages,
)

MAX_TOP = 100
LIST_OPTIONS = frozenset({"skip", "top", "filter", "search", "orderby"})
"""The query options of a list request, the names ``ignore`` may hold."""
_FIELDS = frozenset(MESSAGE_FIELDS)
_TIME_FIELDS = frozenset({"created_at"})
_DEFAULT_ORDER: OrderBy = (("created_at", True),)
_INTEGER = re.compile(r"[0-9]+")
_MAX_VIEWS = 32


class QueryError(ValueError):
    """A list query PortSIP would answer with ``400 VALIDATE_FAILED``."""


@attrs.frozen
class ListQuery:
    """The validated options of one list request.

    Attributes:
        skip: Items to skip, 0 for the first page.
        top: Page size, 1 to 100.
        filter: OData filter text, ``""`` for none.
        search: Free-text search, ``""`` for none.
        orderby: OData orderby text, ``""`` for the default order.
    """

    skip: int = 0
    top: int = MAX_TOP
    filter: str = ""
    search: str = ""
    orderby: str = ""


def _integer(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise QueryError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def parse_list_query(
    params: Mapping[str, str],
    *,
    ignore: Collection[str] = (),
    max_top: int = MAX_TOP,
) -> ListQuery:
    """Validate the query parameters of a list request.

    Args:
        params: The query string, decoded.
        ignore: Options (among :data:`LIST_OPTIONS`) to treat as absent, the
            way a server that does not support them would.
        max_top: The most items the server serves per page; a larger ``top``
            (up to 100, PortSIP's maximum) is accepted and cut to it.

    Returns:
        The validated query.

    Raises:
        QueryError: If ``skip`` or ``top`` is not an integer in range, or the
            filter or orderby is malformed or names an unknown field.
    """
    if ignore:
        params = {name: value for name, value in params.items() if name not in ignore}
    skip = _integer(params, "skip", 0)
    top = _integer(params, "top", MAX_TOP)
    if not 1 <= top <= MAX_TOP:
        raise QueryError(f"top must be between 1 and {MAX_TOP}, got {top}")
    query = ListQuery(
        skip=skip,
        top=min(top, max_top),
        filter=params.get("filter", "").strip(),
        search=params.get("search", "").strip(),
        orderby=params.get("orderby", "").strip(),
    )
    try:
        if query.filter:
            parse_filter(query.filter, _FIELDS, _TIME_FIELDS)
        if query.orderby:
            parse_orderby(query.orderby, _FIELDS)
    except ODataError as error:
        raise QueryError(str(error)) from None
    return query


class MessageStore:
    """A live list of message dicts that answers list and get requests.

    Filtered and sorted views are cached per ``(filter, search, orderby)`` and
    each message's JSON per message object, so paging through a large store
    costs a slice and a join. The caches are dropped when the list's length
    changes or :meth:`changed` is called; call it after editing a message dict
    in place, or pass ``preserialize=False`` to cache nothing.

    Args:
        messages: The list to serve; it is used as is, not copied.
        preserialize: Cache views and encoded messages.
    """

    def __init__(
        self, messages: list[dict[str, Any]], *, preserialize: bool = True
    ) -> None:
        self.messages = messages
        self.preserialize = preserialize
        self._views: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._encoded: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._by_id: dict[Any, dict[str, Any]] | None = None
        self._seen_length = len(messages)

    def changed(self) -> None:
        """Drop every cache, after the messages were changed in place."""
        self._views.clear()
        self._encoded.clear()
        self._by_id = None
        self._seen_length = len(self.messages)

    def _check(self) -> None:
        if not self.preserialize or len(self.messages) != self._seen_length:
            self.changed()

    def _encode(self, message: dict[str, Any]) -> bytes:
        cached = self._encoded.get(id(message))
        if cached is not None and cached[0] is message:
            return cached[1]
        encoded = orjson.dumps(message)
        if self.preserialize:
            self._encoded[id(message)] = (message, encoded)
        return encoded

    def view(self, query: ListQuery) -> list[dict[str, Any]]:
        """Return every message matching a query, in the query's order.

        The default order is ``created_at`` descending; messages without a
        valid ``created_at`` come last and ties keep their order in the store.

        Args:
            query: A query from :func:`parse_list_query`.

        Returns:
            The matching messages, sorted.
        """
        self._check()
        key = (query.filter, query.search, query.orderby)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        predicates: list[Predicate] = []
        if query.filter:
            predicates.append(parse_filter(query.filter, _FIELDS, _TIME_FIELDS))
        if query.search:
            predicates.append(search_predicate(query.search, SEARCH_FIELDS))
        matching = [m for m in self.messages if all(p(m) for p in predicates)]
        order = (
            parse_orderby(query.orderby, _FIELDS) if query.orderby else _DEFAULT_ORDER
        )
        result = sort_messages(matching, order, _TIME_FIELDS)
        if self.preserialize:
            if len(self._views) >= _MAX_VIEWS:
                del self._views[next(iter(self._views))]
            self._views[key] = result
        return result

    def page(self, query: ListQuery) -> bytes:
        """Encode one page of a list answer.

        Args:
            query: A query from :func:`parse_list_query`.

        Returns:
            ``{"count": <all matching>, "items": [<up to top>]}`` as JSON bytes.
        """
        matching = self.view(query)
        items = b",".join(
            self._encode(m) for m in matching[query.skip : query.skip + query.top]
        )
        return b'{"count":%d,"items":[%b]}' % (len(matching), items)

    def get(self, message_id: str) -> bytes | None:
        """Encode the message with an ID.

        Args:
            message_id: The decoded ID.

        Returns:
            The message as JSON bytes, or ``None`` if no message has that ID.
        """
        self._check()
        if self._by_id is None:
            self._by_id = {}
            for message in self.messages:
                self._by_id.setdefault(message.get("id"), message)
        found = self._by_id.get(message_id)
        return None if found is None else self._encode(found)
