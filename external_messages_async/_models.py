"""The typed values the API returns: one external message, its enums, a page."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

__all__ = ["DeliveryStatus", "Direction", "ExternalMessage", "MessageType", "Page"]

T = TypeVar("T")
_E = TypeVar("_E", bound="OpenEnum")

#: How many unlisted values each open enum remembers.
_PSEUDO_MEMBER_CACHE = 64


class OpenEnum(str, enum.Enum):
    """A string enum that accepts values it does not list.

    PortSIP says enum codes only get added, and clients must tolerate codes they
    do not know. Looking up an unlisted value, ``MessageType("RCS")``, returns a
    *pseudo-member*: an instance of the enum whose ``.value`` and ``.name`` are
    the original string and whose :attr:`is_known` is ``False``. It compares
    equal to that string, survives a round trip through the converter, and is
    the same object on every lookup (for the first 64 unlisted values of each
    enum; later ones are equal but not cached, so that a server sending a new
    value in every message cannot grow memory without bound). It is not listed
    by iterating the enum.
    """

    @classmethod
    def _missing_(cls, value: object) -> OpenEnum | None:
        if not isinstance(value, str) or not value:
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        cache = cls._value2member_map_
        if len(cache) - len(cls.__members__) >= _PSEUDO_MEMBER_CACHE:
            return pseudo
        # Cached so that the next lookup of the same value is a dict hit.
        return cache.setdefault(value, pseudo)  # type: ignore[return-value]  # the cache holds members of this same enum

    @property
    def is_known(self) -> bool:
        """Whether this value is one the OpenAPI spec lists."""
        return self._name_ in type(self).__members__

    def __str__(self) -> str:
        return str(self.value)


class MessageType(OpenEnum):
    """The channel of a message (``msg_type``)."""

    UNKNOWN = "UNKNOWN"
    SMS = "SMS"
    WHATSAPP = "WHATSAPP"


class Direction(OpenEnum):
    """Whether the PBX received (``IN``) or sent (``OUT``) the message."""

    IN = "IN"
    OUT = "OUT"


class DeliveryStatus(OpenEnum):
    """The delivery state of a message (``delivery``)."""

    ERR = "ERR"
    SENT = "SENT"
    RECV = "RECV"
    DELIVERED = "DELIVERED"


@attrs.frozen
class ExternalMessage:
    """One SMS or WhatsApp message the PBX sent or received.

    Every field is optional, as in PortSIP's spec: a field the server left out,
    sent as ``null``, or (for the enums and ``created_at``) sent as ``""`` is
    ``None``. Field names are the API's.

    Attributes:
        id: The message's opaque id; never decode or build one.
        config_id: The id of the messaging configuration (provider) used.
        sender: The sender's number.
        sender_name: The sender's display name.
        receiver: The receiver's number.
        receiver_name: The receiver's display name.
        channel_name: The name of the channel the message went through.
        channel_number: The channel's number.
        brand: The provider brand.
        did: The DID (the PBX number) involved.
        msg_type: SMS, WhatsApp, or another channel.
        direction: ``IN`` or ``OUT``.
        content: The message text.
        reason: Why a delivery failed, when it did.
        delivery: The delivery state.
        provider_msg_id: The provider's own id of the message.
        created_at: When the message was created, timezone-aware.
    """

    id: str | None = None
    config_id: str | None = None
    sender: str | None = None
    sender_name: str | None = None
    receiver: str | None = None
    receiver_name: str | None = None
    channel_name: str | None = None
    channel_number: str | None = None
    brand: str | None = None
    did: str | None = None
    msg_type: MessageType | None = None
    direction: Direction | None = None
    content: str | None = None
    reason: str | None = None
    delivery: DeliveryStatus | None = None
    provider_msg_id: str | None = None
    created_at: datetime | None = None


@attrs.frozen
class Page(Generic[T]):
    """One page of a list call.

    Attributes:
        count: The server's total of matching items (not the page's length).
        items: The items on this page, in the server's order.
        skip: The offset this page was requested at.
    """

    count: int
    items: Sequence[T]
    skip: int = 0

    @property
    def next_skip(self) -> int:
        """The offset of the page after this one (``skip`` plus the items returned)."""
        return self.skip + len(self.items)
