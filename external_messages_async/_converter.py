"""The package's own cattrs converter, and the decoding of response bodies."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, TypeVar, get_type_hints

import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from . import _codegen
from ._models import (
    DeliveryStatus,
    Direction,
    ExternalMessage,
    MessageType,
    OpenEnum,
    Page,
)
from .errors import ResponseDecodeError

__all__ = [
    "CONVERTER",
    "decode_json",
    "format_datetime",
    "make_converter",
    "message_cells",
    "message_json_line",
    "message_record",
    "parse_datetime",
    "structure_message",
    "structure_page",
    "unstructure_message",
]

logger = logging.getLogger("external_messages_async")

_E = TypeVar("_E", bound=OpenEnum)

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d\d):?(\d\d))?\Z"
)


def _parse_rfc3339_slow(value: str) -> datetime:
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second, frac, _zulu, sign, oh, om = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
    )


def parse_datetime(value: str) -> datetime:
    """Parse PortSIP's ``created_at`` into a timezone-aware datetime.

    Accepts ``Z`` or ``±HH:MM`` offsets and any number of fractional-second
    digits (beyond six are cut). A timestamp without an offset is taken as UTC.

    Args:
        value: The timestamp text.

    Returns:
        An aware :class:`~datetime.datetime`.

    Raises:
        ValueError: ``value`` is not a timestamp.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # Python 3.10's fromisoformat knows neither "Z" nor 1-2 or 7+ fraction digits.
        parsed = _parse_rfc3339_slow(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed


_UTC = timezone.utc
_UTC_Z = orjson.OPT_UTC_Z


def format_datetime(value: datetime) -> str:
    """Format a datetime the way PortSIP sends it: RFC 3339, ``Z`` for UTC.

    Fractions are written as milliseconds when that loses nothing, else as
    microseconds, so that timestamps PortSIP sent round-trip to the same text.

    Args:
        value: An aware datetime (a naive one is taken as UTC).

    Returns:
        The timestamp text.
    """
    if value.tzinfo is _UTC:
        # The common case, every timestamp PortSIP sends with "Z". orjson
        # writes the same text (with all six fraction digits) several times
        # faster than isoformat(); the quotes and unneeded digits are cut.
        text = orjson.dumps(value, option=_UTC_Z).decode()
        micro = value.microsecond
        if micro and not micro % 1000:
            return text[1:-5] + "Z"  # '"....123000Z"' -> '....123Z'
        return text[1:-1]
    return _format_datetime_isoformat(value)


def _format_datetime_isoformat(value: datetime) -> str:
    """:func:`format_datetime` by :meth:`datetime.isoformat`, for any time zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    offset = value.utcoffset()
    if value.microsecond == 0:
        timespec = "seconds"
    elif value.microsecond % 1000 == 0:
        timespec = "milliseconds"
    else:
        timespec = "microseconds"
    text = value.isoformat(timespec=timespec)
    if offset == timedelta(0):
        return text[:-6] + "Z"
    return text


def _structure_optional_str(value: Any, _: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_optional_datetime(value: Any, _: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if value.__class__ is not str:
        raise TypeError(f"expected an RFC 3339 string, got {type(value).__name__}")
    return parse_datetime(value)


def _enum_hook(enum_cls: type[_E]) -> Callable[[Any, Any], _E | None]:
    known: dict[str, _E] = {member.value: member for member in enum_cls}

    def structure(value: Any, _: Any) -> _E | None:
        member = known.get(value) if value.__class__ is str else None
        if member is not None:
            return member
        if value is None or value == "":
            return None
        if value.__class__ is not str:
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return enum_cls(value)

    return structure


_ENUMS: tuple[type[OpenEnum], ...] = (MessageType, Direction, DeliveryStatus)


def _naive_is_utc(value: Any) -> datetime | None:
    return _structure_optional_datetime(value, None)


def _field_kinds(cls: type[Any]) -> dict[str, _codegen.FieldKind]:
    """Which of the rules above each field of ``cls`` follows."""
    kinds: dict[str, _codegen.FieldKind] = {}
    for name, hint in get_type_hints(cls).items():
        if hint == Optional[str]:  # noqa: UP045
            kinds[name] = _codegen.STRING
        elif hint == Optional[datetime]:  # noqa: UP045
            kinds[name] = _codegen.DATETIME
        else:
            kinds[name] = next(e for e in _ENUMS if hint == Optional[e])  # noqa: UP045
    return kinds


_KINDS = _field_kinds(ExternalMessage)


def _objects_only(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Refuse what is not a JSON object before cattrs reads it like one."""

    def structure(o: Any, cls: Any) -> Any:
        if o.__class__ is not dict:
            raise TypeError(f"expected a JSON object, got {type(o).__name__}")
        return hook(o, cls)

    return structure


def _make_fast_structure(
    *, missing_keys: bool, fallback: Callable[[Any, Any], Any] | None = None
) -> Callable[[Any, Any], Any]:
    return _codegen.make_structure(
        ExternalMessage,
        _KINDS,
        naive_datetime=_naive_is_utc,
        missing_keys=missing_keys,
        fallback=fallback,
    )


def _make_output(shape: _codegen.OutputShape) -> Callable[[Any], Any]:
    return _codegen.make_output(
        ExternalMessage, _KINDS, shape=shape, format_datetime=format_datetime
    )


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """Build the converter this package uses; the global one is never touched.

    Rules it applies:

    - Optional strings pass through as they are (``""`` stays ``""``); any
      other JSON type is an error.
    - ``created_at``: an RFC 3339 string becomes an aware ``datetime``
      (``parse_datetime``); ``null`` and ``""`` become ``None``. On the way
      out, ``format_datetime`` writes it back with ``Z`` for UTC.
    - Enums (:class:`MessageType`, :class:`Direction`, :class:`DeliveryStatus`):
      a dict lookup for listed values; an unlisted string becomes a
      pseudo-member that keeps the original text in ``.value`` (see
      ``OpenEnum``); ``null`` and ``""``
      become ``None``; on the way out the member's ``.value``.
    - Missing keys give ``None``; unknown keys are ignored.
    - Unstructuring leaves out fields that are ``None``, so an item PortSIP
      sent comes back as the same JSON.
    - ``detailed_validation`` (off on the hot path) collects every error with
      its path; ``structure_page`` re-runs a failed item through a
      detailed converter only to build the error message.
    - Speed: without ``detailed_validation``, the :class:`ExternalMessage`
      hooks are functions generated for its 17 fields (``_codegen``), which
      build the frozen instance slot by slot instead of through ``__init__``.
      Structuring first tries one that inlines the common case of the rules
      above (every key present, listed enum values, offset timestamps), then
      one that also allows missing keys; anything else falls back to cattrs'
      generated hook applying the rules one by one, so all accept and refuse
      exactly the same items. Unstructuring is one generated function giving
      the same dict as cattrs' (see ``docs/benchmarks.md`` for the cost).
      With ``detailed_validation`` every hook is cattrs' own: the reference
      the fast ones are tested against.

    Args:
        detailed_validation: Whether structuring errors carry paths.

    Returns:
        A new :class:`cattrs.Converter`.
    """
    converter = cattrs.Converter(detailed_validation=detailed_validation)
    converter.register_structure_hook(Optional[str], _structure_optional_str)  # noqa: UP045
    converter.register_structure_hook(Optional[datetime], _structure_optional_datetime)  # noqa: UP045
    converter.register_unstructure_hook(datetime, format_datetime)
    for enum_cls in _ENUMS:
        converter.register_structure_hook(Optional[enum_cls], _enum_hook(enum_cls))  # noqa: UP045
        converter.register_unstructure_hook(enum_cls, lambda member: member.value)
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(
        ExternalMessage,
        converter,
        _cattrs_detailed_validation=detailed_validation,
    )
    unstructure: Callable[[Any], Any] = make_dict_unstructure_fn(
        ExternalMessage,
        converter,
        _cattrs_omit_if_default=True,
    )
    if not detailed_validation:
        sparse = _make_fast_structure(
            missing_keys=True, fallback=_objects_only(structure)
        )
        structure = _make_fast_structure(missing_keys=False, fallback=sparse)
        unstructure = _make_output("dict")
    converter.register_structure_hook(ExternalMessage, structure)
    converter.register_unstructure_hook(ExternalMessage, unstructure)
    return converter


CONVERTER = make_converter()
_DETAILED = make_converter(detailed_validation=True)
_structure_fast = CONVERTER.get_structure_hook(ExternalMessage)
_structure_optimistic = _make_fast_structure(missing_keys=False)
_unstructure = CONVERTER.get_unstructure_hook(ExternalMessage)

#: Every field of a message, in the schema's order, ``None`` kept: a JSON-ready
#: dict with all 17 keys, the values as :func:`unstructure_message` gives them.
#: (The generated function itself, without a wrapper: the CLI calls it per row.)
message_record: Callable[[ExternalMessage], dict[str, Any]] = _make_output("record")

#: Every field of a message as text, in the schema's order: 17 strings as
#: :data:`message_record` gives them, ``""`` for ``None``.
message_cells: Callable[[ExternalMessage], list[str]] = _make_output("cells")

#: :data:`message_record` as one line of JSON (``bytes``, ending in a line
#: feed): ``orjson.dumps(message_record(m)) + b"\n"``, in one generated call.
message_json_line: Callable[[ExternalMessage], bytes] = _make_output("json_line")


def _preview(data: Any) -> str:
    try:
        return orjson.dumps(data)[:200].decode("utf-8", "replace")
    except TypeError:  # pragma: no cover - data always came from orjson.loads
        return repr(data)[:200]


def _decode_error(item: Any, path: str) -> ResponseDecodeError:
    """Re-run a failed item through the detailed converter to say what is wrong."""
    if not isinstance(item, dict):
        return ResponseDecodeError(
            f"expected a JSON object at {path}, got {type(item).__name__}",
            path=path,
            body=_preview(item),
        )
    try:
        _DETAILED.structure(item, ExternalMessage)
    except Exception as exc:  # any failure here is the data's fault
        problems = cattrs.transform_error(exc, path=path)
        first_path = problems[0].rpartition(" @ ")[2] if problems else path
        return ResponseDecodeError(
            "response does not fit the ExternalMessage schema: " + "; ".join(problems),
            path=first_path,
            body=_preview(item),
        )
    return ResponseDecodeError(  # pragma: no cover - fast and detailed paths agree
        f"could not decode the item at {path}", path=path, body=_preview(item)
    )


def structure_message(item: Any, *, path: str = "$") -> ExternalMessage:
    """Structure one decoded JSON item into an :class:`ExternalMessage`.

    Args:
        item: The decoded JSON value.
        path: Where the item sits in the response, for error messages.

    Returns:
        The message.

    Raises:
        ResponseDecodeError: ``item`` does not fit the schema.
    """
    if item.__class__ is dict:
        try:
            return _structure_fast(item, ExternalMessage)  # type: ignore[no-any-return]  # cattrs hooks return Any
        except Exception:  # re-run below to explain
            pass
    raise _decode_error(item, path) from None


def structure_page(data: Any, *, skip: int) -> Page[ExternalMessage]:
    """Structure a decoded list answer, ``{"count": n, "items": [...]}``.

    Args:
        data: The decoded JSON body.
        skip: The offset the page was requested at.

    Returns:
        The page.

    Raises:
        ResponseDecodeError: The body does not have that shape, or an item
            does not fit the schema.
    """
    if not isinstance(data, dict):
        raise ResponseDecodeError(
            f"expected a JSON object with 'count' and 'items', got {type(data).__name__}",
            body=_preview(data),
        )
    count = data.get("count")
    if count.__class__ is not int or count < 0:
        raise ResponseDecodeError(
            f"expected a non-negative integer at $.count, got {count!r}"[:200],
            path="$.count",
            body=_preview(data),
        )
    items = data.get("items")
    if items is None:
        items = []
    elif items.__class__ is not list:
        raise ResponseDecodeError(
            f"expected a list at $.items, got {type(items).__name__}",
            path="$.items",
            body=_preview(data),
        )
    structure = _structure_fast
    try:
        messages = [structure(item, ExternalMessage) for item in items]
    except Exception:  # the rules refused an item: say which, and why
        for index, item in enumerate(items):
            structure_message(item, path=f"$.items[{index}]")
        raise  # pragma: no cover - the loop above raised for the same item
    return Page(count=count, items=messages, skip=skip)


def unstructure_message(message: ExternalMessage) -> dict[str, Any]:
    """Turn a message back into PortSIP's JSON shape (``None`` fields left out).

    Args:
        message: The message.

    Returns:
        A JSON-ready dict.
    """
    return _unstructure(message)  # type: ignore[no-any-return]  # the generated function returns Any


def decode_json(body: bytes) -> Any:
    r"""Parse a response body as JSON.

    The fast parser (orjson) reads every body first. JSON's grammar allows a
    lone UTF-16 surrogate escape (``"\ud83d"``, RFC 8259 section 8.2), which
    orjson refuses; only for a body it refused, the standard library's parser
    reads it again and every lone surrogate becomes U+FFFD, with one WARNING
    naming where (such as ``$.items[3].content``). Anything else a strict
    parser refuses is still an error.

    Args:
        body: The raw body.

    Returns:
        The decoded value.

    Raises:
        ResponseDecodeError: The body is not JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    repaired = _decode_lone_surrogates(body)
    if repaired is not None:
        return repaired
    preview = body[:200].decode("utf-8", "replace")
    raise ResponseDecodeError(
        f"response body is not JSON ({error.msg} at byte {error.pos})",
        body=preview,
    ) from None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode_lone_surrogates(body: bytes) -> Any:
    """Read a body orjson refused; return it only if lone surrogates were the cause."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    paths: list[str] = []
    data = _replace_surrogates(data, "$", paths)
    if not paths:
        return None  # refused for another reason, such as NaN: stay strict
    logger.warning(
        "the response holds lone UTF-16 surrogates, replaced with U+FFFD at %s",
        ", ".join(paths[:10])
        + (f" (+{len(paths) - 10} more)" if len(paths) > 10 else ""),
    )
    return data


def _replace_surrogates(value: Any, path: str, paths: list[str]) -> Any:
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value) is None:
            return value
        paths.append(path)
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [
            _replace_surrogates(item, f"{path}[{index}]", paths)
            for index, item in enumerate(value)
        ]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            clean = _replace_surrogates(key, f"{path}.<key>", paths)
            result[clean] = _replace_surrogates(item, f"{path}.{clean}", paths)
        return result
    return value
