"""Every entry point of the project. Sessions stay thin: they install and call into modules.

Three environments serve them all, each installed from a hashed lock in requirements/ (`nox -s
lock` writes them) and rebuilt only when its lock or pyproject.toml changes:
- `.nox/lab`: the lab commands (lab-2, drill, doctor, lab-down, grade, class);
- `.nox/docs`: the course site and the notebooks (docs, notebooks);
- the tests' own (`nox -s tests`), and lint's and bench's.
nox gives every session a virtualenv of its own (nox 2026.10 has no way to share one), so the
sessions that share run with `venv_backend="none"` and call into the environment `_shared`
keeps; the first run creates it, later runs only compare a checksum before they start.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import nox

# `@nox.session(default=False)` (the lock session) arrived in nox 2024.04.15.
nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
# Chosen, not probed: virtualenv ships with nox, so no session looks for uv first.
nox.options.default_venv_backend = "virtualenv"
# nox still asks for uv once while it sets a session up, and says "uv binary not found." at
# info level (nox/virtualenv.py, uv_version): noise for a project that never uses uv there.
logging.getLogger("nox").addFilter(lambda record: record.getMessage() != "uv binary not found.")

PYTHON = "3"
ROOT = Path(__file__).parent
LOCKS = ROOT / "requirements"
# uv writes the locks (`nox -s lock`); pinned so a lock only changes when its inputs do.
UV = "uv==0.13.9"


def _install_locked(session: nox.Session, lock: str, *also: str) -> None:
    """The lock's exact set (hashes checked), then the project itself without dependencies."""
    session.install("--require-hashes", "--no-deps", "-r", str(LOCKS / lock))
    session.install("--no-deps", "-e", ".", *also)


def _shared(session: nox.Session, name: str, lock: str) -> str:
    """The python of `.nox/<name>`, a virtualenv several sessions share; (re)built from `lock`
    when it is missing or its lock or pyproject.toml changed."""
    env = ROOT / ".nox" / name
    python = env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    inputs = hashlib.sha256()
    for path in (LOCKS / lock, ROOT / "pyproject.toml"):
        inputs.update(path.read_bytes())
    stamp = env / "installed-from.sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == inputs.hexdigest():
        return str(python)
    if sys.version_info < (3, 11):  # noqa: UP036 (nox itself may run on an older Python)
        session.error(
            f"nox runs on Python {sys.version.split()[0]}, and .nox/{name} is built with nox's "
            "own Python; the lab needs 3.11 or newer. Install nox with a newer Python, e.g. "
            "`python3.12 -m pip install nox`, then rerun."
        )
    session.log(f"building the shared environment .nox/{name} from requirements/{lock}")
    session.run(sys.executable, "-m", "virtualenv", "--clear", str(env), external=True)
    pip = (str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet")
    session.run(*pip, "--require-hashes", "--no-deps", "-r", str(LOCKS / lock), external=True)
    session.run(*pip, "--no-deps", "-e", str(ROOT), external=True)
    stamp.write_text(inputs.hexdigest())
    return str(python)


def _lab(session: nox.Session, *args: str) -> None:
    python = _shared(session, "lab", "lab.txt")
    session.run(python, *args, *session.posargs, external=True)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole offline suite: services, containers, manifests, engine, checkers, docs."""
    _install_locked(session, "tests.txt")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff on the code, then the offline manifest checks a learner can run on their own edits."""
    _install_locked(session, "lab.txt")
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "-m", "validators.manifests", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed targets of the services (cost of a log line, throughput with logging on and off)."""
    _install_locked(session, "bookstore.txt")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(name="lab-2", venv_backend="none")
def lab_2(session: nox.Session) -> None:
    """Run lab 2 step by step (`-- --dry-run`, `--until N`, `--step N`, `--check [--step N]`,
    `--fresh`)."""
    _lab(session, "-m", "labs", "run", "lab2")


@nox.session(name="drill", venv_backend="none")
def drill(session: nox.Session) -> None:
    """Break-and-fix drills on a working lab 2 (`-- --list`, `-- NAME`, `-- NAME --check`,
    `-- NAME --solve`, `-- NAME --hint`)."""
    _lab(session, "-m", "labs", "drill")


@nox.session(name="doctor", venv_backend="none")
def doctor(session: nox.Session) -> None:
    """Preflight: is this machine ready for the lab, and what to fix if not."""
    _lab(session, "-m", "labs", "doctor")


@nox.session(name="lab-down", venv_backend="none")
def lab_down(session: nox.Session) -> None:
    """Delete the kind cluster this lab created (and nothing else)."""
    _lab(session, "-m", "labs", "down")


@nox.session(name="grade", venv_backend="none")
def grade(session: nox.Session) -> None:
    """Grade a class: `-- FOLDER_OF_KUBECONFIGS` (live), `-- --scores FOLDER` (learners' own
    score files) or `-- --offline FOLDER_OF_SUBMISSIONS`."""
    _lab(session, "-m", "checks.grading")


@nox.session(name="class", venv_backend="none")
def class_(session: nox.Session) -> None:
    """A class on one shared cluster: `-- plan|render|up|kubeconfigs|status|grade|isolation|down
    --roster roster.csv` (docs/class-mode.md)."""
    _lab(session, "-m", "classroom")


@nox.session(name="docs", venv_backend="none")
def docs(session: nox.Session) -> None:
    """Build the site strictly into site/, or `-- serve` to preview it."""
    python = _shared(session, "docs", "docs.txt")
    # mkdocs-material prints an end-of-life banner at every build unless told not to; it says
    # nothing about our site (the theme is pinned by the lock).
    quiet = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run(python, "-m", "mkdocs", "serve", *session.posargs[1:], external=True, env=quiet)
    else:
        session.run(
            python, "-m", "mkdocs", "build", "--strict", *session.posargs, external=True, env=quiet
        )


@nox.session(name="notebooks", venv_backend="none")
def notebooks(session: nox.Session) -> None:
    """Execute every notebook with nbclient (the live one skips itself without a cluster)."""
    python = _shared(session, "docs", "docs.txt")
    session.run(python, "notebooks/run.py", *session.posargs, external=True)


# What each lock holds: the extras of pyproject.toml it resolves.
LOCK_EXTRAS = {
    "bookstore.txt": (),  # the services' runtime: what bookstore/Dockerfile installs
    "lab.txt": ("lab",),
    "docs.txt": ("lab", "docs"),
    "tests.txt": ("test",),
}


@nox.session(name="lock", python=PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Rewrite requirements/*.txt from pyproject.toml: every platform (Linux, macOS, Windows;
    amd64 and arm64) and Python >= 3.11, each file with the SHA-256 of every wheel and sdist."""
    session.install(UV)
    for name, extras in LOCK_EXTRAS.items():
        session.run(
            "uv",
            "pip",
            "compile",
            "pyproject.toml",
            *(f"--extra={extra}" for extra in extras),
            "--universal",
            "--generate-hashes",
            "--python-version=3.11",
            "--custom-compile-command=nox -s lock",
            "--quiet",
            f"--output-file=requirements/{name}",
            *session.posargs,  # e.g. --upgrade, --upgrade-package NAME
        )
