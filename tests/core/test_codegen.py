"""The code generator refuses classes whose ``__init__`` does more than store."""

from __future__ import annotations

from datetime import datetime

import attrs
import pytest

from external_messages_async import _codegen


def _format(value: datetime) -> str:
    return value.isoformat()


@attrs.frozen
class Validated:
    name: str | None = attrs.field(
        default=None, validator=attrs.validators.instance_of(str)
    )


@attrs.frozen
class PostInit:
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        pass


@attrs.frozen
class Plain:
    name: str | None = None
    when: datetime | None = None


@pytest.mark.parametrize("cls", [Validated, PostInit])
def test_a_class_with_init_logic_is_refused(cls: type) -> None:
    with pytest.raises(TypeError, match=cls.__name__):
        _codegen.make_output(
            cls, {"name": _codegen.STRING}, shape="record", format_datetime=_format
        )


def test_a_field_without_a_kind_is_refused() -> None:
    with pytest.raises(TypeError, match=r"no kind given for Plain\.when"):
        _codegen.make_output(
            Plain, {"name": _codegen.STRING}, shape="cells", format_datetime=_format
        )


def test_without_a_fallback_the_generated_hook_raises() -> None:
    structure = _codegen.make_structure(
        Plain,
        {"name": _codegen.STRING, "when": _codegen.DATETIME},
        naive_datetime=datetime.fromisoformat,
        missing_keys=False,
    )

    with pytest.raises(KeyError):
        structure({"name": "a"}, Plain)
    assert structure({"name": "a", "when": None}, Plain) == Plain("a")
