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
