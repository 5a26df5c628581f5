"""Imports run one way: the checkers and validators grade any cluster or folder without the lab
engine, so they never import `labs`; `labconfig` is the bottom and imports none of ours."""

from __future__ import annotations

import ast

import pytest

from labconfig.versions import REPO_ROOT

# package -> our packages it must never import (at module level or inside a function)
FORBIDDEN = {
    "labconfig": {"labs", "checks", "validators", "bookstore"},
    "validators": {"labs", "checks"},
    "checks": {"labs"},
    "classroom": {"labs"},
    "bookstore": {"labs", "checks", "validators", "labconfig"},
}


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_sits_below_it(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    offenders = {name: bad for name, bad in offenders.items() if bad}
    assert not offenders, f"{package} must not import {sorted(FORBIDDEN[package])}: {offenders}"


def labs_modules_imported(path) -> set[str]:
    """`labs.X` modules a file imports (anywhere in it, function bodies included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "labs":
            found.update(f"labs.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labs."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("labs."))
    return found


def test_the_runner_is_the_lowest_seam_of_the_engine() -> None:
    # The runner used to reach up into labs.cluster and labs.doctor through function-local
    # imports (a circle); the engine's entry point now hands it what it needs.
    assert labs_modules_imported(REPO_ROOT / "labs" / "runner.py") == set()
    for lower in ("cluster", "doctor", "probes", "tools"):
        above = labs_modules_imported(REPO_ROOT / "labs" / f"{lower}.py")
        assert not above & {"labs.engine", "labs.__main__", "labs.lab2"}, (lower, above)
    assert "labs.probes" not in labs_modules_imported(REPO_ROOT / "labs" / "doctor.py")
