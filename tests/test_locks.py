"""The hashed locks in requirements/ agree with pyproject.toml (else: run `nox -s lock`).

The locks are what actually gets installed: bookstore.txt into the images, lab.txt, docs.txt and
tests.txt into the nox environments. A dependency declared in pyproject.toml but missing from
its lock, or pinned outside the declared range, means the lock is stale; a pin without a hash
would make `pip install --require-hashes` refuse the whole file.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from labconfig.versions import REPO_ROOT

# lock -> the pyproject.toml extras it resolves (noxfile.py LOCK_EXTRAS says the same).
LOCKS = {
    "bookstore.txt": (),
    "lab.txt": ("lab",),
    "docs.txt": ("lab", "docs"),
    "tests.txt": ("test",),
}
PROJECT = "k8s-logging-lab"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+?)(?: ; (.+?))? \\$")


def pins(lock: str) -> dict[str, tuple[str, str | None]]:
    """{name: (version, marker)} of a lock file."""
    found = {}
    for line in (REPO_ROOT / "requirements" / lock).read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match[1])] = (match[2], match[3])
    return found


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    """The project's dependencies plus those of `extras`, following self-references."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted, seen, out = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == PROJECT:
                wanted.extend(requirement.extras)
            else:
                out.append(requirement)
    return out


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_declared_dependency_is_locked_within_its_range(lock: str) -> None:
    locked = pins(lock)
    for requirement in declared(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is declared but not in requirements/{lock}: nox -s lock"
        version, _marker = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, outside {requirement}: nox -s lock"
        )


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_carries_hashes_and_markers_that_parse(lock: str) -> None:
    text = (REPO_ROOT / "requirements" / lock).read_text()
    locked = pins(lock)
    assert locked, f"requirements/{lock} pins nothing"
    for name, (version, marker) in locked.items():
        if marker:
            Marker(marker)  # raises on a marker pip could not read
        block = re.search(
            rf"^{re.escape(name)}=={re.escape(version)}.*?(?=^\S|\Z)", text, re.M | re.S | re.I
        )
        assert block and re.search(r"--hash=sha256:[0-9a-f]{64}", block[0]), f"{name} has no hash"


def test_the_noxfile_installs_the_locks_this_test_knows() -> None:
    noxfile = (REPO_ROOT / "noxfile.py").read_text()
    for lock in LOCKS:
        assert f'"{lock}"' in noxfile, f"noxfile.py never uses requirements/{lock}"
