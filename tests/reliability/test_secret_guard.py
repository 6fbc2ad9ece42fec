"""The secret guard of this suite fails a test that leaks, in every phase and channel.

Without this, a guard that scans the wrong records would pass every test and
prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

LEAKS = """
import logging

import pytest

SECRET = "inner-password-5e6f7a8b"


@pytest.fixture
def leaky_setup():
    logging.getLogger("external_messages_async").debug("setup says %s", SECRET)


def test_clean():
    logging.getLogger("external_messages_async").debug("nothing to see")


def test_leaks_in_a_debug_record():
    logging.getLogger("external_messages_async").debug("password=%s", SECRET)


def test_leaks_through_aiohttp_logger():
    logging.getLogger("aiohttp.client").info("oops " + SECRET)


def test_leaks_in_a_traceback():
    try:
        raise RuntimeError(SECRET)
    except RuntimeError:
        logging.getLogger("asyncio").exception("failed")


def test_leaks_in_setup(leaky_setup):
    pass


def test_leaks_on_stdout():
    print(SECRET)
"""


def test_the_guard_fails_every_leaking_test_and_passes_the_clean_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard's conftest imports the scan from tests.conftest, at the root.
    monkeypatch.setenv("PYTHONPATH", str(CONFTEST.parents[2]))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    # The inner guard watches a password of its own, so that the leaks it must
    # catch (echoed to this test's output) do not trip this test's guard.
    conftest = CONFTEST.read_text()
    inner = conftest.replace(
        'PASSWORD = "rel-password-1a2b3c4d"', 'PASSWORD = "inner-password-5e6f7a8b"'
    )
    assert inner != conftest
    pytester.makeconftest(inner)
    pytester.makepyfile(test_leaks=LEAKS)

    # A subprocess, so that the leaks stay out of this test's own log records.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=6, errors=5)
    result.stdout.fnmatch_lines(["*secret(s) leaked*"])
