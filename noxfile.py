"""Every entry point of the project. Sessions stay thin: they install and call into modules."""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole offline suite: services, containers, manifests, engine, checkers, docs."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff on the code, then the offline manifest checks a learner can run on their own edits."""
    session.install("-e", ".[lab]", "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "-m", "validators.manifests", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed targets of the services (cost of a log line, throughput with logging on and off)."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(name="lab-2", python=PYTHON)
def lab_2(session: nox.Session) -> None:
    """Run lab 2 step by step (`-- --dry-run`, `--until N`, `--step N`, `--check [--step N]`,
    `--fresh`)."""
    session.install("-e", ".[lab]")
    session.run("python", "-m", "labs", "run", "lab2", *session.posargs)


@nox.session(python=PYTHON)
def drill(session: nox.Session) -> None:
    """Break-and-fix drills on a working lab 2 (`-- --list`, `-- NAME`, `-- NAME --check`,
    `-- NAME --solve`, `-- NAME --hint`)."""
    session.install("-e", ".[lab]")
    session.run("python", "-m", "labs", "drill", *session.posargs)


@nox.session(python=PYTHON)
def doctor(session: nox.Session) -> None:
    """Preflight: is this machine ready for the lab, and what to fix if not."""
    session.install("-e", ".[lab]")
    session.run("python", "-m", "labs", "doctor", *session.posargs)


@nox.session(name="lab-down", python=PYTHON)
def lab_down(session: nox.Session) -> None:
    """Delete the kind cluster this lab created (and nothing else)."""
    session.install("-e", ".[lab]")
    session.run("python", "-m", "labs", "down", *session.posargs)


@nox.session(python=PYTHON)
def grade(session: nox.Session) -> None:
    """Grade a class: `-- FOLDER_OF_KUBECONFIGS` (live) or `-- --offline FOLDER_OF_SUBMISSIONS`."""
    session.install("-e", ".[lab]")
    session.run("python", "-m", "checks.grading", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the site strictly into site/, or `-- serve` to preview it."""
    session.install("-e", ".[lab,docs]")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(python=PYTHON)
def notebooks(session: nox.Session) -> None:
    """Execute every notebook with nbclient (the live one skips itself without a cluster)."""
    session.install("-e", ".[lab,docs]")
    session.run("python", "notebooks/run.py", *session.posargs)
