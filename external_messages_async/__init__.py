"""Asyncio client for the PortSIP PBX REST API's external messages.

External messages are the SMS and WhatsApp messages a self-hosted PortSIP PBX
sends and receives. Start with :class:`ExternalMessagesClient`::

    async with ExternalMessagesClient("https://pbx.example.com:8887", token=token) as client:
        async for message in client.list():
            ...

Errors live in :mod:`external_messages_async.errors` and are re-exported here;
a stand-in PBX for tests lives in :mod:`external_messages_async.testing`.
"""

import importlib
import sys
import types
import typing

from ._version import __version__

if typing.TYPE_CHECKING:
    from ._archive import SyncSummary, sync_to_sqlite
    from ._auth import Auth, AuthTransport, RawResponse, TokenAuth, TokenProviderAuth
    from ._changes import ChangeFeed, Checkpoint
    from ._client import ExternalMessagesClient, WithRawResponse
    from ._converter import make_converter
    from ._filters import build_filter, quote_literal
    from ._keywalk import MessageScan
    from ._login import LoginFlow, PasswordAuth
    from ._models import DeliveryStatus, Direction, ExternalMessage, MessageType, Page
    from ._pagination import MessagePager, WalkStats
    from ._response import APIResponse
    from ._retry import RetryPolicy
    from ._scan import ScanStats
    from ._watch import MessageWatch
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        ArchiveError,
        AuthenticationError,
        BadRequestError,
        ClientStateError,
        ErrorDetail,
        ExternalMessagesError,
        NotFoundError,
        PagingError,
        PermissionDeniedError,
        RateLimitError,
        ResponseDecodeError,
        ServerError,
    )

__all__ = [
    "APIConnectionError",
    "APIResponse",
    "APIStatusError",
    "APITimeoutError",
    "ArchiveError",
    "Auth",
    "AuthTransport",
    "AuthenticationError",
    "BadRequestError",
    "ChangeFeed",
    "Checkpoint",
    "ClientStateError",
    "DeliveryStatus",
    "Direction",
    "ErrorDetail",
    "ExternalMessage",
    "ExternalMessagesClient",
    "ExternalMessagesError",
    "LoginFlow",
    "MessagePager",
    "MessageScan",
    "MessageType",
    "MessageWatch",
    "NotFoundError",
    "Page",
    "PagingError",
    "PasswordAuth",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "ResponseDecodeError",
    "RetryPolicy",
    "ScanStats",
    "ServerError",
    "SyncSummary",
    "TokenAuth",
    "TokenProviderAuth",
    "WalkStats",
    "WithRawResponse",
    "__version__",
    "build_filter",
    "make_converter",
    "quote_literal",
    "sync_to_sqlite",
]

# Where each public name is defined. Names are imported on first use: the
# pytest plugin (a pytest11 entry point) imports this package in every test run
# of every project that installs it, and most runs never need aiohttp.
_HOMES = {
    "APIConnectionError": ".errors",
    "APIResponse": "._response",
    "APIStatusError": ".errors",
    "APITimeoutError": ".errors",
    "ArchiveError": ".errors",
    "Auth": "._auth",
    "AuthTransport": "._auth",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "ChangeFeed": "._changes",
    "Checkpoint": "._changes",
    "ClientStateError": ".errors",
    "DeliveryStatus": "._models",
    "Direction": "._models",
    "ErrorDetail": ".errors",
    "ExternalMessage": "._models",
    "ExternalMessagesClient": "._client",
    "ExternalMessagesError": ".errors",
    "LoginFlow": "._login",
    "MessagePager": "._pagination",
    "MessageScan": "._keywalk",
    "MessageType": "._models",
    "MessageWatch": "._watch",
    "NotFoundError": ".errors",
    "Page": "._models",
    "PagingError": ".errors",
    "PasswordAuth": "._login",
    "PermissionDeniedError": ".errors",
    "RateLimitError": ".errors",
    "RawResponse": "._auth",
    "ResponseDecodeError": ".errors",
    "RetryPolicy": "._retry",
    "ScanStats": "._scan",
    "ServerError": ".errors",
    "SyncSummary": "._archive",
    "TokenAuth": "._auth",
    "TokenProviderAuth": "._auth",
    "WalkStats": "._pagination",
    "WithRawResponse": "._client",
    "build_filter": "._filters",
    "make_converter": "._converter",
    "quote_literal": "._filters",
    "sync_to_sqlite": "._archive",
}


def __getattr__(name: str) -> typing.Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    importlib.import_module(home, __name__)
    # Importing one module imports others (the client brings the models and
    # the errors): adopt every public name now loaded, not only this one.
    for loaded, module in _HOMES.items():
        if loaded not in globals() and __name__ + module in sys.modules:
            globals()[loaded] = _adopt(getattr(sys.modules[__name__ + module], loaded))
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _adopt(value: typing.Any) -> typing.Any:
    """Make a public class or function report this package as its module.

    Tracebacks, reprs, pickles and the docs then show the import path users
    write, ``external_messages_async.ExternalMessage`` (httpx does the same).
    A class's string annotations are resolved first, in the module that
    defines them: ``typing.get_type_hints`` (which cattrs relies on) looks
    names up in the globals of the class's ``__module__``, and this package's
    root has none of them.

    Args:
        value: A public name's value.

    Returns:
        The same value.
    """
    if not isinstance(value, (type, types.FunctionType)):
        return value  # a type alias such as LoginFlow has no module of its own
    if isinstance(value, type):
        import inspect  # here: the root itself stays cheap to import

        own = inspect.get_annotations(value)
        if any(isinstance(annotation, str) for annotation in own.values()):
            hints = typing.get_type_hints(value, include_extras=True)
            value.__annotations__ = {key: hints[key] for key in own}
    value.__module__ = __name__
    return value
