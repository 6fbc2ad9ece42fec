"""URL building: the API root, collection paths and id segments. Pure."""

from __future__ import annotations

import re
from urllib.parse import quote

from yarl import URL

__all__ = ["api_root", "collection_url", "encode_segment", "item_url", "proxy_url"]

# Everything between "scheme://" and the last "@": "user:password". A password
# may hold "@", ":", "/", "?" or "#" unencoded, so no delimiter stops the mask
# early; masking part of a path that holds an "@" is the safe mistake.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?.*@", re.DOTALL)


def api_root(base_url: str | URL) -> URL:
    """Turn what a user typed into the API root, ending in ``/api``.

    Accepts ``https://host:8887``, ``https://host:8887/api``, with or without
    a trailing slash.

    Args:
        base_url: The PBX address.

    Returns:
        The API root URL, without query or fragment.

    Raises:
        TypeError: ``base_url`` is not a string or URL.
        ValueError: It has no ``http``/``https`` scheme or no host.
    """
    if not isinstance(base_url, (str, URL)):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        url = URL(base_url.strip()) if isinstance(base_url, str) else base_url
    except ValueError:
        raise ValueError(
            f"base_url is not a valid URL: {_without_userinfo(str(base_url))!r}"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"base_url must be an absolute http(s) URL such as "
            f"'https://pbx.example.com:8887', got {_without_userinfo(str(base_url))!r}"
        )
    if url.user is not None or url.password is not None:
        raise ValueError("base_url must not carry credentials; pass token= instead")
    path = url.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    return url.with_query(None).with_fragment(None).with_path(path)


def proxy_url(proxy: str | None) -> URL | None:
    """Check a ``proxy=`` option and turn it into a URL.

    Args:
        proxy: What the user passed, such as ``http://user:pass@proxy:3128``.

    Returns:
        The URL, or ``None`` without a proxy.

    Raises:
        TypeError: ``proxy`` is not a string.
        ValueError: It is not an absolute ``http://`` or ``https://`` URL
            (the message masks its credentials).
    """
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a str or None, got {type(proxy).__name__}")
    shown = _without_userinfo(proxy)
    try:
        url = URL(proxy.strip())
    except ValueError:
        raise ValueError(f"proxy is not a valid URL: {shown!r}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(
            f"proxy must be an absolute http(s) URL such as "
            f"'http://proxy.example.com:3128', got {shown!r}"
        )
    return url


def _without_userinfo(text: str) -> str:
    """Mask ``user:password@`` in a URL we refuse, so the error shows no secret."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m[1] or ''}***@", text, count=1)


def collection_url(api: URL, *, user_scope: bool) -> URL:
    """Return the list URL, ``/external_messages`` or ``/user/external_messages``.

    Args:
        api: The API root.
        user_scope: Whether to target the signed-in user's own messages.

    Returns:
        The collection URL.
    """
    return (
        api / "user" / "external_messages" if user_scope else api / "external_messages"
    )


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one path segment.

    Every reserved character is encoded, ``/`` included, and so are the dots
    of ``.`` and ``..``, which URL normalisation would otherwise resolve.

    Args:
        value: The raw segment, such as a message id.

    Returns:
        The encoded segment.
    """
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


def item_url(api: URL, message_id: str, *, user_scope: bool) -> URL:
    """Return the URL of one message, its id encoded as one segment.

    Args:
        api: The API root.
        message_id: The opaque message id.
        user_scope: Whether to target the signed-in user's own messages.

    Returns:
        The message URL.
    """
    base = collection_url(api, user_scope=user_scope)
    return base.joinpath(encode_segment(message_id), encoded=True)
