"""The package root is the only door: a sorted, complete __all__ and py.typed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import traceback
import types
import typing
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
    """The exceptions report the root as their module; the helpers stay here."""
    assert errors.__all__ == sorted(errors.__all__)
    homes = {errors.__name__, external_messages_async.__name__}
    own = {
        name
        for name in _public_names(errors)
        if getattr(getattr(errors, name), "__module__", None) in homes
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


def _public_classes_and_functions() -> list[str]:
    return [
        name
        for name in external_messages_async.__all__
        if isinstance(
            getattr(external_messages_async, name), (type, types.FunctionType)
        )
    ]


def test_every_public_class_and_function_reports_the_root_as_its_module() -> None:
    """httpx's convention: tracebacks, reprs and docs show the import path users write."""
    elsewhere = {
        name: getattr(external_messages_async, name).__module__
        for name in _public_classes_and_functions()
        if getattr(external_messages_async, name).__module__
        != "external_messages_async"
    }

    assert elsewhere == {}
    assert len(_public_classes_and_functions()) >= 30


def test_the_name_to_module_map_is_sorted_and_covers_all() -> None:
    homes = external_messages_async._HOMES

    assert list(homes) == sorted(homes)
    assert {*homes, "__version__"} == set(external_messages_async.__all__)


def test_a_name_reports_the_root_even_before_the_root_hands_it_out() -> None:
    """Importing the client loads the models and errors; all of them are adopted."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import external_messages_async as root; root.ExternalMessagesClient; "
            "from external_messages_async._models import Page; "
            "from external_messages_async.errors import NotFoundError; "
            "print(Page.__module__, NotFoundError.__module__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.split() == ["external_messages_async"] * 2


def test_reprs_and_tracebacks_show_the_root_path() -> None:
    from external_messages_async import (
        ExternalMessage,
        ExternalMessagesClient,
        NotFoundError,
        Page,
    )

    try:
        raise NotFoundError("no such message", status=404)
    except NotFoundError:
        last_line = traceback.format_exc().splitlines()[-1]

    assert repr(ExternalMessagesClient) == (
        "<class 'external_messages_async.ExternalMessagesClient'>"
    )
    assert repr(Page[ExternalMessage]) == (
        "external_messages_async.Page[external_messages_async.ExternalMessage]"
    )
    assert last_line.startswith("external_messages_async.NotFoundError: ")


def test_adopted_classes_keep_their_type_hints() -> None:
    """cattrs resolves string annotations in the class's ``__module__``."""
    from external_messages_async import ExternalMessage, MessageType, Page

    hints = typing.get_type_hints(ExternalMessage)

    assert hints["msg_type"] == typing.Optional[MessageType]  # noqa: UP045
    assert typing.get_type_hints(Page)["count"] is int


def test_a_converter_made_after_adoption_structures_messages() -> None:
    """In a fresh interpreter the models are adopted before the converter exists."""
    script = (
        "from external_messages_async import ExternalMessage, Page; "
        "from external_messages_async import make_converter; "
        "page = make_converter().structure("
        "{'count': 1, 'items': [{'id': 'a', 'msg_type': 'SMS', "
        "'created_at': '2026-01-02T03:04:05Z'}]}, Page[ExternalMessage]); "
        "print(page.items[0].msg_type.value, page.items[0].created_at.year)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["SMS", "2026"]


def _unpickled_in_a_fresh_interpreter(value: object) -> str:
    """Unpickle ``value`` where nothing of the package has been imported yet."""
    script = (
        "import pickle, sys; "
        "value = pickle.loads(sys.stdin.buffer.read()); "
        "print(type(value).__module__, type(value).__qualname__, repr(value))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps(value),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode()


def test_every_public_class_and_function_pickles_by_its_root_name() -> None:
    for name in _public_classes_and_functions():
        value = getattr(external_messages_async, name)

        pickled = pickle.dumps(value, protocol=0)

        assert pickled.startswith(f"cexternal_messages_async\n{name}\n".encode())
        assert pickle.loads(pickled) is value


def test_public_values_pickle_into_a_fresh_interpreter() -> None:
    from external_messages_async import (
        ErrorDetail,
        ExternalMessage,
        MessageType,
        Page,
        RetryPolicy,
        WalkStats,
    )

    message = ExternalMessage(id="m1", msg_type=MessageType("RCS"), content="hi")
    values = [
        message,
        Page(count=1, items=(message,)),
        MessageType.SMS,
        RetryPolicy(max_retries=1),
        WalkStats(pages=2),
        ErrorDetail(code="E1", message="bad"),
    ]

    for value in values:
        shown = _unpickled_in_a_fresh_interpreter(value)

        assert shown == (
            f"external_messages_async {type(value).__qualname__} {value!r}\n"
        )


def test_exceptions_pickle_into_a_fresh_interpreter() -> None:
    from external_messages_async import (
        APIConnectionError,
        ClientStateError,
        ExternalMessagesError,
        ResponseDecodeError,
    )

    for error in [
        ExternalMessagesError("boom"),
        ClientStateError("closed"),
        APIConnectionError("refused"),
        ResponseDecodeError("not JSON"),
    ]:
        shown = _unpickled_in_a_fresh_interpreter(error)

        assert shown == f"external_messages_async {type(error).__name__} {error!r}\n"


def test_exceptions_with_attributes_unpickle_whole_under_the_root_name() -> None:
    """Keyword-only attributes survive, and the class is found through the root."""
    from external_messages_async import PagingError, RateLimitError

    rate_limited = RateLimitError(
        "slow down", status=429, retry_after=2.5, request_id="r-1"
    )
    paging = PagingError("skip ignored", ignored="skip")
    script = (
        "import pickle, sys; e, p = pickle.loads(sys.stdin.buffer.read()); "
        "print(type(e).__module__, e.status, e.retry_after, e.request_id, "
        "type(p).__module__, p.ignored)"
    )

    result = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps((rate_limited, paging)),
        capture_output=True,
        check=True,
    )

    assert result.stdout.decode().split() == [
        "external_messages_async", "429", "2.5", "r-1",
        "external_messages_async", "skip",
    ]  # fmt: skip
