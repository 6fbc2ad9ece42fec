"""Argument checks shared by the public entry points. Pure."""

from __future__ import annotations

__all__ = ["check_int"]


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
