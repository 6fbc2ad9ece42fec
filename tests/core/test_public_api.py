"""The package root is the only door: a sorted, complete __all__ and py.typed."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from importlib import resources

import pytest

import external_messages_async
from external_messages_async import errors

ISSUE_NAMES = [
    "ExternalMessagesClient",
    "ExternalMessage",
    "MessageType",
    "Direction",
    "DeliveryStatus",
    "Page",
    "ExternalMessagesError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "ResponseDecodeError",
]


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_is_sorted() -> None:
    assert external_messages_async.__all__ == sorted(external_messages_async.__all__)


def test_all_has_no_duplicates() -> None:
    names = external_messages_async.__all__

    assert len(names) == len(set(names))


def test_every_public_name_in_the_root_is_in_all() -> None:
    exported = set(external_messages_async.__all__)

    assert _public_names(external_messages_async) - exported == set()


def test_every_name_in_all_exists() -> None:
    missing = [
        name
        for name in external_messages_async.__all__
        if not hasattr(external_messages_async, name)
    ]

    assert missing == []


def test_the_names_the_issue_promises_are_exported() -> None:
    assert set(ISSUE_NAMES) <= set(external_messages_async.__all__)


def test_every_exception_is_importable_from_errors_and_the_root() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert getattr(external_messages_async, name) is value


def test_errors_all_is_sorted_and_complete() -> None:
    assert errors.__all__ == sorted(errors.__all__)
    own = {
        name
        for name in _public_names(errors)
        if getattr(getattr(errors, name), "__module__", None) == errors.__name__
    }

    assert own <= set(errors.__all__)


def test_every_exported_class_and_function_has_a_docstring() -> None:
    """Type aliases (such as a ``Literal``) cannot carry one at runtime."""
    undocumented = [
        name
        for name in external_messages_async.__all__
        if callable(getattr(external_messages_async, name))
        and isinstance(
            getattr(external_messages_async, name), (type, types.FunctionType)
        )
        and not (getattr(external_messages_async, name).__doc__ or "").strip()
    ]

    assert undocumented == []


def test_version_is_a_string() -> None:
    assert isinstance(external_messages_async.__version__, str)
    assert external_messages_async.__version__.count(".") >= 1


def test_py_typed_is_shipped() -> None:
    marker = resources.files("external_messages_async").joinpath("py.typed")

    assert marker.is_file()


HEAVY = ("aiohttp", "attrs", "cattrs", "orjson", "yarl")


def _modules_loaded_by(statement: str) -> list[str]:
    """Which heavy dependencies a fresh interpreter has imported after ``statement``."""
    check = (
        f"{statement}; import json, sys; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        "import external_messages_async.testing._plugin",
        "import external_messages_async",
        "import external_messages_async.testing",
        "from external_messages_async import __version__",
    ],
)
def test_importing_the_plugin_or_the_root_imports_no_dependency(statement: str) -> None:
    """The pytest11 plugin loads in every pytest run of every project that installs us."""
    assert _modules_loaded_by(statement) == []


def test_a_public_name_is_imported_on_first_use() -> None:
    loaded = _modules_loaded_by("from external_messages_async import ExternalMessage")

    assert "attrs" in loaded
    assert "aiohttp" not in loaded


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        external_messages_async.Nope  # noqa: B018


def test_dir_lists_every_public_name() -> None:
    assert set(external_messages_async.__all__) <= set(dir(external_messages_async))
