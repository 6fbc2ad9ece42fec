"""Asyncio client for the PortSIP PBX REST API's external messages.

External messages are the SMS and WhatsApp messages a self-hosted PortSIP PBX
sends and receives. Start with :class:`ExternalMessagesClient`::

    async with ExternalMessagesClient("https://pbx.example.com:8887", token=token) as client:
        async for message in client.list():
            ...

Errors live in :mod:`external_messages_async.errors` and are re-exported here;
a stand-in PBX for tests lives in :mod:`external_messages_async.testing`.
"""

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
from ._version import __version__
from ._watch import MessageWatch
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
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
    "TokenAuth",
    "TokenProviderAuth",
    "WalkStats",
    "WithRawResponse",
    "__version__",
    "build_filter",
    "make_converter",
    "quote_literal",
]
