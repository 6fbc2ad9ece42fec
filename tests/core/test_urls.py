"""URL building: what users type becomes the API root; ids are one segment."""

from __future__ import annotations

import pytest
from yarl import URL

from external_messages_async import ExternalMessagesClient
from external_messages_async._urls import (
    api_root,
    collection_url,
    encode_segment,
    item_url,
)


@pytest.mark.parametrize(
    "typed",
    [
        "https://pbx.example.com:8887",
        "https://pbx.example.com:8887/",
        "https://pbx.example.com:8887/api",
        "https://pbx.example.com:8887/api/",
        "  https://pbx.example.com:8887/api  ",
        "https://pbx.example.com:8887/api?x=1#frag",
    ],
)
def test_api_root_accepts_with_or_without_api_and_trailing_slash(typed: str) -> None:
    assert str(api_root(typed)) == "https://pbx.example.com:8887/api"


def test_api_root_keeps_a_path_prefix_and_adds_api() -> None:
    assert str(api_root("http://10.0.0.5/pbx/")) == "http://10.0.0.5/pbx/api"


def test_api_root_accepts_a_yarl_url() -> None:
    assert str(api_root(URL("https://pbx:8887"))) == "https://pbx:8887/api"


@pytest.mark.parametrize(
    "typed",
    [
        "pbx.example.com:8887",
        "/api",
        "",
        "ftp://pbx.example.com",
        "https://",
        "https:///api",
    ],
)
def test_api_root_without_scheme_or_host_is_a_value_error(typed: str) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        api_root(typed)


def test_api_root_refuses_credentials_in_the_url() -> None:
    with pytest.raises(ValueError, match="credentials") as info:
        api_root("https://admin:hunter2@pbx:8887")

    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "typed",
    ["admin:S3cretPw@pbx:8887", "ftp://admin:S3cretPw@pbx/api", "//admin:S3cretPw@pbx"],
)
def test_a_refused_url_does_not_echo_its_password(typed: str) -> None:
    with pytest.raises(ValueError, match=r"\*\*\*@pbx") as info:
        api_root(typed)

    assert "S3cretPw" not in str(info.value)


def test_api_root_refuses_a_non_string() -> None:
    with pytest.raises(TypeError, match="base_url"):
        api_root(8887)  # type: ignore[arg-type]  # wrong on purpose


def test_client_constructor_raises_value_error_for_a_bad_base_url() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        ExternalMessagesClient("pbx.example.com", token="t")


def test_collection_url_for_admin_and_user_scope() -> None:
    api = URL("https://pbx/api")

    assert (
        str(collection_url(api, user_scope=False))
        == "https://pbx/api/external_messages"
    )
    assert (
        str(collection_url(api, user_scope=True))
        == "https://pbx/api/user/external_messages"
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("NzAwNTUxOTA5NzczMTQ4MTYw", "NzAwNTUxOTA5NzczMTQ4MTYw"),
        ("a/b+c==", "a%2Fb%2Bc%3D%3D"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a?b#c", "a%3Fb%23c"),
        ("100%", "100%25"),
        ("a b", "a%20b"),
        ("é", "%C3%A9"),
    ],
)
def test_encode_segment_encodes_every_reserved_character(
    raw: str, encoded: str
) -> None:
    assert encode_segment(raw) == encoded


def test_item_url_puts_the_id_in_one_segment() -> None:
    url = item_url(URL("https://pbx/api"), "a/../b", user_scope=True)

    assert url.raw_path == "/api/user/external_messages/a%2F..%2Fb"
