"""``token_provider=``: a token fetched from the caller's code before every attempt."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from external_messages_async import AuthenticationError, ExternalMessagesClient

from .conftest import AuthServer, SecretWatch

ClientFor = Callable[..., ExternalMessagesClient]

OLD = "tok-provider-old-S3cret"
NEW = "tok-provider-new-S3cret"


class Provider:
    """Returns the tokens it is given, the last one forever; counts calls."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]


async def test_provider_is_awaited_before_every_attempt_retries_included(
    server: AuthServer, client_for: ClientFor
) -> None:
    server.static_tokens.add(OLD)
    server.data_script = [503, 503]
    provider = Provider(OLD)
    client = client_for(server, token_provider=provider)

    await client.get("m1")

    assert len(server.data_requests()) == 3
    assert provider.calls == 3
    await client.aclose()


async def test_rotated_token_is_picked_up_by_the_next_call(
    server: AuthServer, client_for: ClientFor
) -> None:
    server.static_tokens |= {OLD, NEW}
    provider = Provider(OLD, NEW)
    client = client_for(server, token_provider=provider)

    await client.get("m1")
    await client.get("m2")

    assert [r.authorization for r in server.requests] == [
        f"Bearer {OLD}",
        f"Bearer {NEW}",
    ]
    await client.aclose()


async def test_401_replays_once_when_the_provider_has_a_new_token(
    server: AuthServer, client_for: ClientFor
) -> None:
    """The old token was revoked; asking again gives the rotated one."""
    server.static_tokens.add(NEW)
    provider = Provider(OLD, NEW)
    client = client_for(server, token_provider=provider)

    message = await client.get("m1")

    assert message.id == "m1"
    assert [r.authorization for r in server.requests] == [
        f"Bearer {OLD}",
        f"Bearer {NEW}",
    ]
    assert provider.calls == 3
    await client.aclose()


async def test_401_is_final_when_the_provider_returns_the_same_token(
    server: AuthServer, client_for: ClientFor, secret_watch: SecretWatch
) -> None:
    provider = Provider(OLD)
    secret_watch.add(OLD)
    client = client_for(server, token_provider=provider)

    with pytest.raises(AuthenticationError) as caught:
        await client.get("m1")

    assert len(server.requests) == 1
    assert provider.calls == 2
    secret_watch.assert_clean(str(caught.value), repr(caught.value), repr(client))
    await client.aclose()


async def test_second_401_with_a_provider_is_final(
    server: AuthServer, client_for: ClientFor
) -> None:
    provider = Provider(OLD, NEW, "tok-provider-third-S3cret")
    client = client_for(server, token_provider=provider)

    with pytest.raises(AuthenticationError):
        await client.get("m1")

    assert len(server.requests) == 2
    await client.aclose()


async def test_provider_token_is_never_revoked_on_close(
    server: AuthServer, client_for: ClientFor
) -> None:
    server.static_tokens.add(OLD)
    client = client_for(server, token_provider=Provider(OLD))
    await client.get("m1")

    await client.aclose()

    assert server.revoked == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(("value", "error"), [(None, TypeError), (" ", ValueError)])
async def test_provider_returning_no_token_is_a_clear_error(
    server: AuthServer, client_for: ClientFor, value: object, error: type[Exception]
) -> None:
    async def provider() -> object:
        return value

    client = client_for(server, token_provider=provider)

    with pytest.raises(error, match="token provider"):
        await client.get("m1")

    assert server.requests == []
    await client.aclose()
