"""The pytest plugin's portsip_server fixture, run in isolated pytest sessions."""

from __future__ import annotations

import pytest

from external_messages_async.testing import FakePortSIPServer

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    "portsip_server", [{"messages": 7, "token": "t"}], indirect=True
)
async def test_indirect_parametrize_overrides_defaults(
    portsip_server: FakePortSIPServer,
) -> None:
    assert (len(portsip_server.messages), portsip_server.token) == (7, "t")
    assert portsip_server.url.startswith("http://127.0.0.1:")


async def test_defaults_without_options(portsip_server: FakePortSIPServer) -> None:
    assert (len(portsip_server.messages), portsip_server.token) == (100, "demo-token")


PLUGIN_TEST = """
import pytest

pytestmark = pytest.mark.portsip_server(messages=5, seed=2)


@pytest.mark.portsip_server(messages=9)
async def test_function_marker_wins(portsip_server):
    assert len(portsip_server.messages) == 9


async def test_module_marker_applies(portsip_server):
    assert len(portsip_server.messages) == 5


@pytest.mark.parametrize("portsip_server", ["nope"], indirect=True)
async def test_bad_param(portsip_server):
    pass
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_fixture_works_in_both_pytest_asyncio_modes(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(
        PLUGIN_TEST.replace("async def", "@pytest.mark.asyncio\nasync def")
    )

    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "--strict-markers",
        "-o",
        f"asyncio_mode={mode}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )

    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*parametrize portsip_server with dicts*"])
