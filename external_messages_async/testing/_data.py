"""Seeded, realistic external messages: the fake server's default data set."""

from __future__ import annotations

import base64
import datetime as dt
import random
from collections.abc import Container, Mapping
from typing import Any

from ._odata import parse_rfc3339

MESSAGE_FIELDS: tuple[str, ...] = (
    "id",
    "config_id",
    "sender",
    "sender_name",
    "receiver",
    "receiver_name",
    "channel_name",
    "channel_number",
    "brand",
    "did",
    "msg_type",
    "direction",
    "content",
    "reason",
    "delivery",
    "provider_msg_id",
    "created_at",
)
"""Every field of an external message in PortSIP's published schema."""

SEARCH_FIELDS: tuple[str, ...] = (
    "sender",
    "sender_name",
    "receiver",
    "receiver_name",
    "content",
)
"""The fields PortSIP's free-text ``search`` looks in."""

_OPTIONAL_FIELDS = (
    "sender_name",
    "receiver_name",
    "brand",
    "provider_msg_id",
    "reason",
    "channel_number",
)
_FIRST_ID = 700551909773148160
_NEWEST = dt.datetime(2024, 6, 30, 18, 0, tzinfo=dt.timezone.utc)
_SPAN_SECONDS = 183 * 24 * 3600

_COUNTRIES: tuple[tuple[str, str, int], ...] = (
    ("+1", "2-9", 9),
    ("+44", "7", 9),
    ("+49", "15", 9),
    ("+81", "90", 8),
    ("+86", "13", 9),
    ("+91", "9", 9),
)
_NAMES = (
    "José Álvarez",
    "Zoë Müller",
    "François Lefèvre",
    "Łukasz Wróbel",
    "Ana Conceição",
    "Björn Ångström",
    "Alice Smith",
    "Иван Петров",
    "Олена Шевченко",
    "Γιώργος Παπαδόπουλος",
    "Ελένη Νικολάου",
    "محمد العلي",
    "فاطمة الزهراء",
    "王伟",
    "佐藤 花子",
    "김민준",
    "राहुल शर्मा",
    "प्रिया पटेल",
)
_FRAGMENTS = (
    "Your order has shipped 📦",
    "¿Dónde estás? 🙂",
    "Привет! Как дела?",
    "会議は15時からです。",
    "नमस्ते, आपका OTP 482913 है",
    "مرحبا، تم تأكيد موعدك",
    "Γεια σου! 👋",  # noqa: RUF001 - Greek on purpose, to test encodings
    "Reply STOP to unsubscribe.",
    "Tschüß, bis morgen 🍻",
    "ありがとう 🎌",
    "Family dinner 👨\u200d👩\u200d👧\u200d👦 at 7?",
    "Line one\nLine two",
    "Quote \"this\" and 'that' & <tags>",
    "Café au lait ☕ for 2,50 €",
    "你好，明天见！",  # noqa: RUF001 - full-width punctuation on purpose
)
_SHORT = ("👍", "OK", "Y", "?", "🙏🏽", "No")
_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("Twilio SMS", "twilio", "SMS"),
    ("Vonage SMS", "vonage", "SMS"),
    ("WhatsApp Business", "meta", "WHATSAPP"),
)
_ERR_REASONS = (
    "30007: Carrier violation",
    "Invalid destination number",
    "Message expired before delivery",
    "(#131047) Re-engagement message outside the 24 hour window",
)


def _phone(rng: random.Random) -> str:
    code, prefix, digits = rng.choice(_COUNTRIES)
    if "-" in prefix:
        low, high = prefix.split("-")
        prefix = str(rng.randint(int(low), int(high)))
    return code + prefix + "".join(str(rng.randrange(10)) for _ in range(digits))


def _message_id(rng: random.Random, index: int) -> str:
    if index % 100 not in (7, 42, 77):
        return base64.b64encode(str(_FIRST_ID + index).encode()).decode()
    # PortSIP calls IDs opaque; these exercise clients that forget to quote them.
    while True:
        candidate = base64.b64encode(rng.randbytes(16)).decode()
        if "/" in candidate and "+" in candidate:
            return candidate


def _content(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.1:
        return rng.choice(_SHORT)
    length = rng.randint(10, 160) if shape < 0.8 else rng.randint(161, 500)
    text = rng.choice(_FRAGMENTS)
    while len(text) < length:
        text += " " + rng.choice(_FRAGMENTS)
    return text[:length].strip() or text[0]


def _timestamp(rng: random.Random) -> str:
    moment = _NEWEST - dt.timedelta(seconds=rng.randrange(_SPAN_SECONDS))
    precision = rng.random()
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if precision < 0.4:
        return base + "Z"
    if precision < 0.7:
        return f"{base}.{rng.randrange(1000):03d}Z"
    return f"{base}.{rng.randrange(1_000_000):06d}Z"


def _provider_id(rng: random.Random, brand: str) -> str:
    if brand == "meta":
        return "wamid." + base64.b64encode(rng.randbytes(24)).decode()
    if brand == "twilio":
        return "SM" + rng.randbytes(16).hex()
    return rng.randbytes(8).hex() + "-" + rng.randbytes(4).hex()


def _one(
    rng: random.Random, index: int, configs: list[dict[str, str]]
) -> dict[str, Any]:
    config = rng.choice(configs)
    direction = "IN" if rng.random() < 0.45 else "OUT"
    party, party_name = _phone(rng), rng.choice(_NAMES)
    pbx_user = rng.choice(_NAMES)
    msg_type = "UNKNOWN" if rng.random() < 0.03 else config["msg_type"]
    if direction == "IN":
        delivery = rng.choices(("RECV", "ERR"), weights=(95, 5))[0]
    else:
        delivery = rng.choices(("SENT", "DELIVERED", "ERR"), weights=(30, 60, 10))[0]
    message: dict[str, Any] = {
        "id": _message_id(rng, index),
        "config_id": config["config_id"],
        "sender": party if direction == "IN" else config["did"],
        "sender_name": party_name if direction == "IN" else pbx_user,
        "receiver": config["did"] if direction == "IN" else party,
        "receiver_name": pbx_user if direction == "IN" else party_name,
        "channel_name": config["channel_name"],
        "channel_number": config["did"],
        "brand": config["brand"],
        "did": config["did"],
        "msg_type": msg_type,
        "direction": direction,
        "content": _content(rng),
        "reason": rng.choice(_ERR_REASONS) if delivery == "ERR" else "",
        "delivery": delivery,
        "provider_msg_id": _provider_id(rng, config["brand"]),
        "created_at": _timestamp(rng),
    }
    if delivery == "ERR" and rng.random() < 0.5:
        message["provider_msg_id"] = ""
    if rng.random() < 0.1:
        message[rng.choice(("sender_name", "receiver_name"))] = ""
    return message


def _make_sparse(rng: random.Random, message: dict[str, Any]) -> None:
    roll = rng.random()
    field = rng.choice(_OPTIONAL_FIELDS)
    # PortSIP's docs say blanks arrive as null; other samples leave them out.
    if roll < 0.02:
        message[field] = None
    elif roll < 0.04:
        del message[field]


def _created(message: dict[str, Any]) -> dt.datetime:
    return parse_rfc3339(message["created_at"]) or _NEWEST


def _configs(rng: random.Random) -> list[dict[str, str]]:
    return [
        {
            "config_id": base64.b64encode(str(_FIRST_ID - 1000 - i).encode()).decode(),
            "channel_name": name,
            "brand": brand,
            "msg_type": msg_type,
            "did": _phone(rng),
        }
        for i, (name, brand, msg_type) in enumerate(_CHANNELS)
    ]


def message_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check field values given by name, writing datetimes as PortSIP does.

    Args:
        fields: Values by field name; a ``created_at`` datetime is written with
            :func:`format_rfc3339`, anything else is kept as it is.

    Returns:
        The fields, ready to store in a message dict.

    Raises:
        TypeError: If a name is not one of :data:`MESSAGE_FIELDS`.
        ValueError: If ``created_at`` is a naive datetime.
    """
    unknown = sorted(set(fields) - set(MESSAGE_FIELDS))
    if unknown:
        raise TypeError(
            f"unknown message field(s) {', '.join(unknown)}; "
            f"known: {', '.join(MESSAGE_FIELDS)}"
        )
    result = dict(fields)
    created_at = result.get("created_at")
    if isinstance(created_at, dt.datetime):
        if created_at.utcoffset() is None:
            raise ValueError(f"created_at must be timezone-aware, got {created_at!r}")
        result["created_at"] = format_rfc3339(created_at)
    return result


def format_rfc3339(when: dt.datetime) -> str:
    """Write an aware datetime as PortSIP does: UTC with ``Z``.

    Args:
        when: The time; its fraction is kept only when not zero.

    Returns:
        E.g. ``"2024-07-01T12:00:00Z"`` or ``"2024-07-01T12:00:00.250000Z"``.
    """
    utc = when.astimezone(dt.timezone.utc)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


class MessageMaker:
    """Makes realistic messages one at a time, for messages added at run time.

    They use the channels of ``generate_messages(n, seed)`` and continue its
    ID sequence, from a random stream of their own.

    Args:
        seed: The seed of the generated data they join.
        first_index: Where the ID sequence continues, e.g. how many were generated.
    """

    def __init__(self, seed: int, first_index: int) -> None:
        self._configs = _configs(random.Random(seed))
        self._rng = random.Random(f"added-{seed}")
        self._index = first_index

    def make(self, taken: Container[Any]) -> dict[str, Any]:
        """Make one message whose ID is not in ``taken``.

        Args:
            taken: IDs already in use.

        Returns:
            A new message dict with all 17 fields.
        """
        while True:
            message = _one(self._rng, self._index, self._configs)
            self._index += 1
            if message["id"] not in taken:
                return message


def generate_messages(
    n: int, seed: int = 1, *, sparse: bool = True
) -> list[dict[str, Any]]:
    """Generate ``n`` realistic external messages, the same ones for the same seed.

    Messages carry all 17 fields of PortSIP's schema: E.164 numbers from six
    countries, names and content in many scripts (emoji included, 1 to 500
    characters), every ``msg_type``, ``direction`` and ``delivery`` value, a
    non-empty ``reason`` on ``ERR`` ones and ``""`` elsewhere, and ``created_at``
    timestamps with ``Z`` over the six months before 2024-06-30, with no, milli-
    or microsecond fractions. IDs are base64 of a large decimal like PortSIP's,
    except three per hundred, which are base64 of random bytes and contain
    ``/``, ``+`` and ``=``.

    Args:
        n: How many messages to make.
        seed: Seed of the ``random.Random`` that draws everything.
        sparse: If true, about 2% of messages have an optional field set to
            ``None`` and 2% lack one, as PortSIP's documentation allows. Pass
            ``False`` for data that conforms strictly to the published schema.

    Returns:
        New message dicts, newest first (the fake server's default order).

    Raises:
        ValueError: If ``n`` is negative.

    Example:
        >>> a = generate_messages(3, seed=7)
        >>> a == generate_messages(3, seed=7) and len(a) == 3
        True
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    configs = _configs(rng)
    messages = [_one(rng, index, configs) for index in range(n)]
    if sparse:
        for message in messages:
            _make_sparse(rng, message)
    messages.sort(key=_created, reverse=True)
    return messages
