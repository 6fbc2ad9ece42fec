"""Functions generated per model class for the converter's hot paths.

Each function is Python source written for one attrs class, field by field,
and compiled once at import: no loop over fields, no per-field hook call, no
keyword-argument dict. :mod:`._converter` registers them with its cattrs
converter; this module only knows how to write them.

What a field needs is given as a :class:`FieldKind`: a plain optional string,
an :class:`~._models.OpenEnum`, or an aware datetime. The structure functions
are *optimistic*: they inline the common case of the converter's rules and
raise on anything else, so that the caller can fall back to the rules one by
one (which have the last word on what is accepted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

import attrs
import orjson

__all__ = [
    "DATETIME",
    "JSON_LINE_OPTIONS",
    "STRING",
    "FieldKind",
    "OutputShape",
    "make_output",
    "make_structure",
]

#: A field's kind: ``STRING``, ``DATETIME``, or the enum class of the field.
FieldKind = Any

STRING: FieldKind = str
DATETIME: FieldKind = datetime


def _refuse_non_string(value: Any) -> None:
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _compile(name: str, lines: list[str], namespace: dict[str, Any]) -> Any:
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<generated {name}>", "exec"), namespace)
    return namespace[name]


def _builder(cls: type[Any]) -> type[Any]:
    """A subclass of ``cls`` whose instances may be written, slot by slot.

    A frozen attrs class refuses ``__setattr__``, and its ``__init__`` pays a
    method call per field to get around that. This subclass adds no slots and
    restores ``object``'s attribute setting, so CPython stores each field
    straight into its slot; the finished instance then becomes a ``cls`` by
    ``__class__`` assignment, which Python allows between classes of the same
    layout. The result is an ordinary, frozen ``cls`` instance.
    """
    return type(
        f"_{cls.__name__}Builder",
        (cls,),
        {
            "__slots__": (),
            "__module__": cls.__module__,
            # Both must be object's own for CPython to use its generic (and
            # specialisable) attribute store instead of a Python-level one.
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            # Made empty by a bare call, cheaper than ``object.__new__(cls)``.
            "__init__": object.__init__,
        },
    )


def _check_plain(cls: type[Any], kinds: Mapping[str, FieldKind]) -> None:
    """Refuse a class whose ``__init__`` does more than store its arguments."""
    if "__attrs_post_init__" in vars(cls) or "__attrs_pre_init__" in vars(cls):
        raise TypeError(f"{cls.__name__} has an init hook; it cannot be generated")
    for field in attrs.fields(cls):
        if field.validator or field.converter or not field.init:
            raise TypeError(f"{cls.__name__}.{field.name} is not a plain field")
        if field.name not in kinds:
            raise TypeError(f"no kind given for {cls.__name__}.{field.name}")


def make_structure(
    cls: type[Any],
    kinds: Mapping[str, FieldKind],
    *,
    naive_datetime: Callable[[Any], Any],
    missing_keys: bool,
    fallback: Callable[[Any, Any], Any] | None = None,
) -> Callable[[Any, Any], Any]:
    """Generate an optimistic structure function ``(mapping, cls) -> instance``.

    Per field: a string passes when its class is exactly ``str`` or it is
    ``None``; an enum is one dict lookup over its listed values plus ``None``
    and ``""`` (both ``None``); a datetime is ``None`` or
    :meth:`datetime.fromisoformat`, with ``naive_datetime`` called for a value
    without an offset. Anything else (an unlisted enum value, ``""`` for a
    datetime, a wrong JSON type, and a missing key unless ``missing_keys``)
    is handed to ``fallback``, or raises without one.

    Args:
        cls: A frozen, slotted attrs class whose fields are all plain.
        kinds: Each field's kind.
        naive_datetime: The rule for a timestamp without an offset.
        missing_keys: Read keys with ``dict.get`` (a missing key is ``None``)
            instead of subscripting; a little slower.
        fallback: The hook for what this one does not take; it is called
            from inside the generated function, so that a caller's loop
            needs no ``try`` of its own.

    Returns:
        The function.

    Raises:
        TypeError: ``cls`` cannot be generated for.
    """
    _check_plain(cls, kinds)
    name = f"structure_{cls.__name__}{'_sparse' if missing_keys else ''}"
    namespace: dict[str, Any] = {
        "_builder": _builder(cls),
        "_cls": cls,
        "_get": dict.get,
        "_refuse": _refuse_non_string,
        "_fromisoformat": datetime.fromisoformat,
        "_naive": naive_datetime,
        "_fallback": fallback,
    }
    body = ["s = _builder()"]
    for field in attrs.fields(cls):
        key = field.name
        value = f"_get(o, {key!r})" if missing_keys else f"o[{key!r}]"
        kind = kinds[key]
        if kind is STRING:
            expression = (
                f"v if (v := {value}).__class__ is str or v is None else _refuse(v)"
            )
        elif kind is DATETIME:
            expression = (
                f"None if (v := {value}) is None else d "
                "if (d := _fromisoformat(v)).tzinfo is not None else _naive(v)"
            )
        else:
            table: dict[Any, Any] = {None: None, "": None}
            table.update((member.value, member) for member in kind)
            namespace[f"_known_{key}"] = table
            expression = f"_known_{key}[{value}]"
        body.append(f"s.{key} = {expression}")
    body += ["s.__class__ = _cls", "return s"]
    if fallback is None:
        lines = [f"    {line}" for line in body]
    else:
        lines = [
            "    try:",
            *(f"        {line}" for line in body),
            "    except Exception:",
            "        return _fallback(o, _)",
        ]
    return _compile(name, [f"def {name}(o, _):", *lines], namespace)  # type: ignore[no-any-return]  # exec fills a dict[str, Any]


def _out(kind: FieldKind, value: str) -> str:
    """The expression turning a present field value into its JSON value."""
    if kind is STRING:
        return value
    if kind is DATETIME:
        return f"_format_datetime({value})"
    return f"{value}._value_"


#: What :func:`make_output` can generate, by the shape of its result.
OutputShape = Literal["dict", "record", "cells", "json_line"]

#: orjson's options for a ``"json_line"``: a datetime in UTC ends in ``Z``.
JSON_LINE_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


def _output_lines(
    name: str, fields: list[tuple[str, FieldKind]], shape: OutputShape
) -> list[str]:
    if shape == "dict":
        lines = [f"def {name}(m):", "    d = {}"]
        for key, kind in fields:
            lines += [
                f"    if (v := m.{key}) is not None:",
                f"        d[{key!r}] = {_out(kind, 'v')}",
            ]
        return [*lines, "    return d"]
    absent = "''" if shape == "cells" else "None"
    values = []
    for key, kind in fields:
        if kind is STRING:
            # None stays None in a record; None and "" both give "" as a cell.
            values.append(f"m.{key} or ''" if shape == "cells" else f"m.{key}")
        elif kind is DATETIME and shape == "json_line":
            # orjson writes a UTC datetime as format_datetime does, except
            # for a whole number of milliseconds (it writes six digits).
            values.append(
                f"v if (v := m.{key}) is None or v.tzinfo is _UTC and "
                f"(not (u := v.microsecond) or u % 1000) else {_out(kind, 'v')}"
            )
        else:
            values.append(f"{absent} if (v := m.{key}) is None else {_out(kind, 'v')}")
    if shape != "cells":
        items = [
            f"        {key!r}: {value},"
            for (key, _), value in zip(fields, values, strict=True)
        ]
        opening = "    return _dumps({" if shape == "json_line" else "    return {"
        closing = "    }, option=_options)" if shape == "json_line" else "    }"
        return [f"def {name}(m):", opening, *items, closing]
    return [
        f"def {name}(m):",
        "    return [",
        *(f"        {v}," for v in values),
        "    ]",
    ]


def make_output(
    cls: type[Any],
    kinds: Mapping[str, FieldKind],
    *,
    shape: OutputShape,
    format_datetime: Callable[[datetime], str],
) -> Callable[[Any], Any]:
    """Generate a function writing an instance out, field by field.

    Enums are written as their ``.value``, datetimes by ``format_datetime``,
    strings as they are. The shapes:

    - ``"dict"``: PortSIP's JSON shape, fields that are ``None`` left out
      (what cattrs' unstructuring with ``omit_if_default`` gives).
    - ``"record"``: a dict of every field, in order, ``None`` kept.
    - ``"cells"``: a list of every field as text, ``""`` for ``None``.
    - ``"json_line"``: the ``"record"`` as one line of JSON, ``bytes`` ending
      in a line feed; a datetime is left to orjson where it writes the same
      text as ``format_datetime``.

    Args:
        cls: The attrs class.
        kinds: Each field's kind.
        shape: What to return.
        format_datetime: How a datetime is written.

    Returns:
        The function.
    """
    _check_plain(cls, kinds)
    name = f"{shape}_{cls.__name__}"
    fields = [(field.name, kinds[field.name]) for field in attrs.fields(cls)]
    namespace = {
        "_format_datetime": format_datetime,
        "_dumps": orjson.dumps,
        "_options": JSON_LINE_OPTIONS,
        "_UTC": timezone.utc,
    }
    return _compile(name, _output_lines(name, fields, shape), namespace)  # type: ignore[no-any-return]  # exec fills a dict[str, Any]
