"""Argument checks shared by the public entry points. Pure."""

from __future__ import annotations

import math

__all__ = ["check_bool", "check_int", "check_number", "check_timeout"]


def check_int(
    name: str,
    value: object,
    low: int,
    high: int | None = None,
    *,
    optional: bool = False,
) -> None:
    """Refuse a value that is not an int within ``[low, high]``.

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.
        low: The smallest accepted value.
        high: The largest accepted value, or ``None`` for no bound.
        optional: Whether ``None`` is accepted too.

    Raises:
        TypeError: ``value`` is not an int (``bool`` counts as not one).
        ValueError: ``value`` is out of range.
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_number(name: str, value: object, *, positive: bool = False) -> None:
    """Refuse a value that is not a finite real number (``>= 0``, or ``> 0``).

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.
        positive: Whether 0 is refused too.

    Raises:
        TypeError: ``value`` is not an int or float (``bool`` counts as not one).
        ValueError: ``value`` is infinite, NaN, negative (or 0 when ``positive``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    low_ok = value > 0 if positive else value >= 0
    if not math.isfinite(value) or not low_ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")


def check_timeout(value: object) -> None:
    """Refuse a ``timeout`` that is not a finite number of seconds above 0.

    Args:
        value: What the caller passed.

    Raises:
        TypeError: ``value`` is not a number.
        ValueError: ``value`` is infinite, NaN, or not above 0.
    """
    check_number("timeout", value, positive=True)


def check_bool(name: str, value: object) -> None:
    """Refuse a value that is not a ``bool``.

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.

    Raises:
        TypeError: ``value`` is not ``True`` or ``False``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
