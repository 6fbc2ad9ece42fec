"""Without the dlt extra, importing the dlt module says what to install."""

from __future__ import annotations

import subprocess
import sys


def test_without_dlt_one_line_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['dlt'] = None\n"
        "try:\n"
        "    import external_messages_async.dlt\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "external_messages_async.dlt needs the 'dlt' extra: "
        "pip install 'external-messages-async[dlt]'"
    )


def test_the_package_root_does_not_import_dlt() -> None:
    code = "import sys, external_messages_async; print('dlt' in sys.modules)"

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )

    assert done.stdout.strip() == "False"
