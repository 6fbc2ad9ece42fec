"""Every check a contributor or CI runs: ``nox`` runs the default sessions."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The interpreter nox itself runs on, so that any Python 3.10+ will do.
PYTHON = None


def _install(session: nox.Session, *groups: str, extras: str = "cli") -> None:
    session.install("--upgrade", "pip")
    requirements = [
        req
        for group in groups
        for req in nox.project.dependency_groups(PYPROJECT, group)
    ]
    session.install("-e", f".[{extras}]" if extras else ".", *requirements)


def _pytest_with_coverage(session: nox.Session, *args: str) -> None:
    # coverage starts before pytest so that the package imported by our own
    # pytest plugin (the pytest11 entry point) is measured from its first line.
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-W",
        "error",
        *args,
        env={"PYTHONASYNCIODEBUG": "1", "PYTHONDEVMODE": "1"},
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite, warnings as errors, asyncio debug on, branch coverage 100%."""
    _install(session, "test")
    _pytest_with_coverage(session, *session.posargs)
    # external_messages_async.dlt needs the dlt extra: `nox -s dlt` covers it.
    session.run(
        "coverage",
        "report",
        "--fail-under=100",
        "--omit=external_messages_async/dlt.py",
    )


@nox.session(python=PYTHON)
def dlt(session: nox.Session) -> None:
    """The dlt resource: real pipelines into DuckDB, 100% coverage, mypy with dlt."""
    _install(session, "test", "dlt", "typecheck", extras="cli,dlt")
    _pytest_with_coverage(session, "tests/dlt", *session.posargs)
    session.run(
        "coverage",
        "report",
        "--fail-under=100",
        "--include=external_messages_async/dlt.py",
    )
    session.run("mypy", "--strict", "external_messages_async")


# A suppression must say why, after it: "# type: ignore[code]  # reason" and
# "# pragma: no cover - reason". (Spelt in pieces so this file passes itself.)
_SUPPRESSION = re.compile(
    r"#\s*(?P<what>type:\s*" + "ignore" + r"(\[[^\]]*\])?|pragma:\s*no " + "cover)"
    r"(?P<reason>\s*(#|-)\s*\S)?"
)


def _unexplained_suppressions(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            for match in _SUPPRESSION.finditer(line):
                if match["reason"] is None:
                    found.append(f"{path}:{number}: {match['what']} without a reason")
    return found


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check; every type: ignore and no-cover pragma says why."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    tracked = session.run("git", "ls-files", "*.py", external=True, silent=True)
    unexplained = _unexplained_suppressions(sorted(set(str(tracked).split())))
    if unexplained:
        session.error("\n".join(unexplained))


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, and the public types asserted in tests/typing."""
    _install(session, "typecheck")
    session.run("mypy", "--strict", "external_messages_async", "tests/typing")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors and run every example in them."""
    # With the dlt extra: its reference page and its how-to's examples run.
    _install(session, "docs", "dlt", extras="cli,dlt")
    # The offline intersphinx inventories must match the names listed for them.
    session.run("python", "docs/_inventories/make_inventories.py", "--check")
    session.run("python", "docs/run_examples.py")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmarks; not part of the default run. ``nox -s bench -- --quick``."""
    _install(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_scan(session: nox.Session) -> None:
    """scan() against list() at 0 and 5 ms; not part of the default run."""
    _install(session, "bench")
    session.run("python", "benchmarks/scan.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_sync(session: nox.Session) -> None:
    """sync into SQLite against list --format jsonl; not part of the default run."""
    _install(session, "bench")
    session.run("python", "benchmarks/sync.py", *session.posargs)


@nox.session(python=PYTHON)
def startup(session: nox.Session) -> None:
    """Start-up costs of the command and the pytest plugin; not in the default run."""
    _install(session, "test")
    session.run("python", "benchmarks/startup.py", *session.posargs)


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """A longer fuzz run of the response decoding path."""
    _install(session, "test")
    session.run(
        "pytest",
        "tests/reliability/test_fuzz.py",
        # Long runs by design: no per-test time limit.
        "--timeout=0",
        *session.posargs,
        env={"FUZZ_EXAMPLES": "20000"},
    )


def _version() -> str:
    source = Path("external_messages_async/_version.py").read_text()
    match = re.fullmatch(r'__version__ = "([^"]+)"\n', source)
    if match is None:
        raise ValueError('_version.py must hold only __version__ = "..."')
    return match[1]


def _check_wheel_contents(wheel: Path, version: str) -> None:
    """The wheel ships the typing marker and the fake server, and no tests."""
    names = zipfile.ZipFile(wheel).namelist()
    wanted = [
        "external_messages_async/py.typed",
        "external_messages_async/testing/__init__.py",
        "external_messages_async/testing/_plugin.py",
        f"external_messages_async-{version}.dist-info/entry_points.txt",
    ]
    missing = [name for name in wanted if name not in names]
    strays = [name for name in names if not name.startswith("external_messages_async")]
    tests = [name for name in names if "tests/" in name or "/test_" in name]
    if missing or strays or tests:
        raise ValueError(f"{wheel.name}: {missing=} {strays=} {tests=}")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them, and run the CLI from the wheel."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "build"))
    version = _version()
    dist = Path("dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist))
    wheel = dist / f"external_messages_async-{version}-py3-none-any.whl"
    sdist = dist / f"external_messages_async-{version}.tar.gz"
    session.run("twine", "check", "--strict", str(sdist), str(wheel))
    _check_wheel_contents(wheel, version)
    session.log(f"{wheel.name}: py.typed, testing/ and no tests")

    # A clean venv outside the repository, so that nothing runs from the
    # source tree: the wheel (not an editable install) provides the command.
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        session.run("python", "-m", "venv", str(venv))
        bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
        python = str(bin_dir / "python")
        session.run(
            python, "-m", "pip", "install", "--quiet", f"{wheel}[cli]", external=True
        )
        with session.chdir(tmp):
            where = session.run(
                python,
                "-c",
                "import external_messages_async as m; print(m.__file__)",
                external=True,
                silent=True,
            )
            if not str(where).strip().startswith(str(venv)):
                session.error(f"the package came from {where!r}, not the wheel")
            session.run(str(bin_dir / "external-messages"), "--version", external=True)
            session.run(str(bin_dir / "external-messages"), "demo", external=True)


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """Mutation testing of the pure decision modules; not part of the default run.

    Configured in pyproject.toml's [tool.mutmut]; ``nox -s mutation -- results``
    lists the survivors of the last run.
    """
    _install(session, "test", "mutation")
    args = session.posargs or ["run", "--max-children", "2"]
    # 100 hypothesis examples per property instead of 300: every mutant
    # reruns the tests that cover it, the planner's properties among them.
    session.run("mutmut", *args, env={"FUZZ_EXAMPLES": "100"})
    if args[0] == "run":
        session.run("mutmut", "results")
