"""Every check a contributor or CI runs: ``nox`` runs the default sessions."""

from __future__ import annotations

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


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite, warnings as errors, asyncio debug on, coverage >= 95%."""
    _install(session, "test")
    # coverage starts before pytest so that the package imported by our own
    # pytest plugin (the pytest11 entry point) is measured from its first line.
    session.run(
        "coverage",
        "run",
        "-m",
        "pytest",
        "-W",
        "error",
        *session.posargs,
        env={"PYTHONASYNCIODEBUG": "1", "PYTHONDEVMODE": "1"},
    )
    session.run("coverage", "report", "--fail-under=95")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    _install(session, "typecheck")
    session.run("mypy", "--strict", "external_messages_async")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the docs with warnings as errors and run every example in them."""
    _install(session, "docs")
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
