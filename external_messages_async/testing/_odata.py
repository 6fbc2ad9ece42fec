"""The OData subset PortSIP accepts in ``filter`` and ``orderby``, parsed and run.

Everything here is pure: a filter string becomes a predicate over message dicts,
an ``orderby`` string becomes a sort specification, and neither touches I/O.
Malformed input raises :class:`ODataError` with a message meant for a human,
which the fake server returns as a ``400 VALIDATE_FAILED`` body.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

Message = Mapping[str, Any]
Predicate = Callable[[Message], bool]
OrderBy = tuple[tuple[str, bool], ...]
"""Sort keys as ``(field, descending)`` pairs, most significant first."""
M = TypeVar("M", bound=Mapping[str, Any])

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": operator.contains,
}
_CONSTANTS: dict[str, Any] = {"null": None, "true": True, "false": False}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}))?"
)


class ODataError(ValueError):
    """A ``filter`` or ``orderby`` expression that PortSIP would reject."""


@functools.lru_cache(maxsize=1 << 18)
def parse_rfc3339(text: str) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp (or a bare date, taken as midnight UTC).

    Accepts ``Z`` or a numeric offset and any fraction of 1 to 9 digits, beyond
    microseconds truncated; works on Python 3.10, whose ``fromisoformat`` does not.

    Args:
        text: The timestamp, e.g. ``"2024-05-01T12:30:00.123Z"``.

    Returns:
        An aware datetime, or ``None`` if ``text`` is not a valid timestamp.
    """
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        hour = minute = second = "0"
        zone = "Z"
    if zone in ("Z", "z"):
        tz = dt.timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        tz = dt.timezone(sign * offset)
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[position:].lstrip())
            if text[start] == "'":
                raise ODataError(f"unterminated string literal at position {start}")
            raise ODataError(f"unexpected {text[start]!r} at position {start}")
        tokens.append((match.lastgroup, match.group(match.lastgroup), match.start(0)))
        position = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over ``or`` < ``and`` < ``not`` < comparison."""

    def __init__(
        self, text: str, fields: Collection[str], time_fields: Collection[str]
    ) -> None:
        self._tokens = _tokenize(text)
        self._index = 0
        self._fields = fields
        self._time_fields = time_fields

    def parse(self) -> Predicate:
        predicate = self._or()
        kind, value, position = self._tokens[self._index]
        if kind != "end":
            raise ODataError(f"unexpected {value!r} at position {position}")
        return predicate

    def _peek_keyword(self) -> str:
        kind, value, _ = self._tokens[self._index]
        return value.lower() if kind == "name" else ""

    def _next(self) -> tuple[str, str, int]:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, punct: str) -> None:
        kind, value, position = self._next()
        if kind != "punct" or value != punct:
            found = repr(value) if kind != "end" else "end of filter"
            raise ODataError(
                f"expected {punct!r} at position {position}, found {found}"
            )

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_keyword() == "or":
            self._index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _any_of(parts)

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self._peek_keyword() == "and":
            self._index += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _all_of(parts)

    def _not(self) -> Predicate:
        if self._peek_keyword() == "not":
            self._index += 1
            inner = self._not()
            return lambda message: not inner(message)
        return self._primary()

    def _primary(self) -> Predicate:
        kind, value, _ = self._tokens[self._index]
        if kind == "punct" and value == "(":
            self._index += 1
            inner = self._or()
            self._expect(")")
            return inner
        if kind == "name" and value.lower() in _FUNCTIONS:
            return self._function()
        return self._comparison()

    def _function(self) -> Predicate:
        _, name, _ = self._next()
        function = _FUNCTIONS[name.lower()]
        self._expect("(")
        field = self._field()
        self._expect(",")
        kind, literal, position = self._next()
        if kind != "string":
            raise ODataError(
                f"{name}() needs a quoted string as its second argument "
                f"(position {position})"
            )
        self._expect(")")
        needle = _unquote(literal)
        get = _getter(field, ())

        def call(message: Message) -> bool:
            value = get(message)
            return isinstance(value, str) and function(value, needle)

        if self._peek_keyword() in ("eq", "ne"):
            op = self._next()[1].lower()
            expected = self._literal(field="")
            if not isinstance(expected, bool):
                raise ODataError(f"{name}() can only be compared with true or false")
            wanted = expected if op == "eq" else not expected
            return lambda message: call(message) is wanted
        return call

    def _comparison(self) -> Predicate:
        kind, value, position = self._tokens[self._index]
        if kind == "name" and value.lower() not in _CONSTANTS:
            field = self._field()
            op = self._operator()
            literal = self._literal(field)
        elif kind in ("string", "number", "name"):
            literal_token = self._next()
            op = _FLIPPED[self._operator()]
            field = self._field()
            literal = self._literal_value(literal_token, field)
        else:
            found = repr(value) if kind != "end" else "end of filter"
            raise ODataError(
                f"expected a comparison at position {position}, found {found}"
            )
        get = _getter(field, self._time_fields)
        compare = _COMPARISONS[op]
        if op in ("eq", "ne"):
            return lambda message: compare(get(message), literal)
        return lambda message: _ordered(compare, get(message), literal)

    def _field(self) -> str:
        kind, value, position = self._next()
        if kind != "name" or value.lower() in _CONSTANTS:
            found = repr(value) if kind != "end" else "end of filter"
            raise ODataError(
                f"expected a field name at position {position}, found {found}"
            )
        if value not in self._fields:
            known = ", ".join(sorted(self._fields))
            raise ODataError(f"unknown field {value!r}; known fields: {known}")
        return value

    def _operator(self) -> str:
        kind, value, position = self._next()
        if kind != "name" or value.lower() not in _COMPARISONS:
            found = repr(value) if kind != "end" else "end of filter"
            raise ODataError(
                f"expected one of eq, ne, gt, ge, lt, le at position {position}, "
                f"found {found}"
            )
        return value.lower()

    def _literal(self, field: str) -> Any:
        return self._literal_value(self._next(), field)

    def _literal_value(self, token: tuple[str, str, int], field: str) -> Any:
        kind, value, position = token
        if kind == "string":
            text = _unquote(value)
            if field not in self._time_fields:
                return text
            moment = parse_rfc3339(text)
            if moment is None:
                raise ODataError(
                    f"{field} must be compared with an RFC 3339 time such as "
                    f"'2024-01-31T23:59:59Z', not {text!r}"
                )
            return moment
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "name" and value.lower() in _CONSTANTS:
            return _CONSTANTS[value.lower()]
        found = repr(value) if kind != "end" else "end of filter"
        raise ODataError(
            f"expected a quoted string, number, null, true or false at position "
            f"{position}, found {found}"
        )


def _unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def _any_of(parts: Sequence[Predicate]) -> Predicate:
    return lambda message: any(part(message) for part in parts)


def _all_of(parts: Sequence[Predicate]) -> Predicate:
    return lambda message: all(part(message) for part in parts)


def _ordered(compare: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    try:
        return compare(left, right)
    except TypeError:
        return False


def _getter(field: str, time_fields: Collection[str]) -> Callable[[Message], Any]:
    if field in time_fields:

        def get_time(message: Message) -> dt.datetime | None:
            value = message.get(field)
            return parse_rfc3339(value) if isinstance(value, str) else None

        return get_time
    return lambda message: message.get(field)


@functools.lru_cache(maxsize=256)
def parse_filter(
    text: str,
    fields: frozenset[str],
    time_fields: frozenset[str] = frozenset(),
) -> Predicate:
    """Compile an OData ``filter`` expression into a predicate over messages.

    Supports ``eq ne gt ge lt le``, ``and``/``or``/``not`` with the usual
    precedence, parentheses, ``startswith``/``endswith``/``contains`` (optionally
    compared with ``true``/``false``), single-quoted strings with ``''`` as an
    escaped quote, numbers, ``null``, ``true`` and ``false``. A missing field
    equals ``null``; ordering comparisons with ``null`` or across types are false.

    Args:
        text: The expression, e.g. ``"msg_type eq 'SMS' and direction eq 'IN'"``.
        fields: The field names a filter may use.
        time_fields: Fields compared as instants; their literals must be RFC 3339.

    Returns:
        A function telling whether a message matches.

    Raises:
        ODataError: If the expression is malformed or names an unknown field.
    """
    return _Parser(text, fields, time_fields).parse()


@functools.lru_cache(maxsize=256)
def parse_orderby(text: str, fields: frozenset[str]) -> OrderBy:
    """Parse an ``orderby`` expression such as ``"created_at desc, sender"``.

    Args:
        text: Comma-separated ``field [asc|desc]`` items; ascending by default.
        fields: The field names that may be sorted on.

    Returns:
        ``(field, descending)`` pairs, most significant first.

    Raises:
        ODataError: If an item is empty, names an unknown field or has a
            direction other than ``asc`` or ``desc``.
    """
    keys: list[tuple[str, bool]] = []
    for item in text.split(","):
        words = item.split()
        if not words:
            raise ODataError(f"empty item in orderby {text!r}")
        if words[0] not in fields:
            known = ", ".join(sorted(fields))
            raise ODataError(
                f"cannot order by unknown field {words[0]!r}; known: {known}"
            )
        direction = words[1].lower() if len(words) > 1 else "asc"
        if len(words) > 2 or direction not in ("asc", "desc"):
            raise ODataError(
                f"expected 'field asc' or 'field desc' in orderby, got {item.strip()!r}"
            )
        keys.append((words[0], direction == "desc"))
    return tuple(keys)


def _sort_key(value: Any) -> tuple[int, Any]:
    # Ranking by type first keeps one odd value from making the sort raise.
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dt.datetime):
        return (3, value)
    return (4, repr(value))


def sort_messages(
    messages: Iterable[M],
    orderby: OrderBy,
    time_fields: Collection[str] = (),
) -> list[M]:
    """Sort messages stably by several keys; missing values always sort last.

    Args:
        messages: The messages to sort; the input is not modified.
        orderby: ``(field, descending)`` pairs from :func:`parse_orderby`.
        time_fields: Fields sorted as instants rather than as strings.

    Returns:
        A new list; messages that compare equal keep their input order.
    """
    result = list(messages)
    for field, descending in reversed(orderby):
        get = _getter(field, time_fields)
        keyed = [(get(message), message) for message in result]
        present = [pair for pair in keyed if pair[0] is not None]
        present.sort(key=lambda pair: _sort_key(pair[0]), reverse=descending)
        result = [message for _, message in present]
        result.extend(message for value, message in keyed if value is None)
    return result


def search_predicate(text: str, fields: Sequence[str]) -> Predicate:
    """Build PortSIP's free-text ``search``: a case-insensitive substring match.

    Args:
        text: What to look for.
        fields: The fields searched; a message matches if any contains ``text``.

    Returns:
        A function telling whether a message matches.
    """
    needle = text.casefold()

    def matches(message: Message) -> bool:
        for field in fields:
            value = message.get(field)
            if isinstance(value, str) and needle in value.casefold():
                return True
        return False

    return matches
