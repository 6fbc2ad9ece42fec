"""The public surface of external_messages_async.testing and the wire helpers."""

from __future__ import annotations

import pytest

import external_messages_async.testing as testing
from external_messages_async.testing._wire import error_code


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    assert all(getattr(testing, name) is not None for name in testing.__all__)


def test_public_names_are_listed_by_dir() -> None:
    assert set(testing.__all__) <= set(dir(testing))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        testing.Nope  # noqa: B018


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "VALIDATE_FAILED"),
        (401, "UNAUTHORIZED"),
        (404, "NOT_FOUND"),
        (429, "TOO_MANY_REQUESTS"),
        (503, "SERVICE_UNAVAILABLE"),
        (599, "UNKNOWN"),
    ],
)
def test_error_codes_follow_portsip_style(status: int, code: str) -> None:
    assert error_code(status) == code
