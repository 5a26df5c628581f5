"""Which `docker` client builds the bookstore images: one rule for every caller.

scripts/prepare-docker.sh (through `python3 -m labconfig.docker_client`), the test suite's
fixtures and the lab engine all ask `select_client()`, so a machine never builds with one client
in the tests and another in the lab. The rule, in order:

1. an explicit choice: LAB_DOCKER, else BOOKSTORE_DOCKER (a path or a name on PATH);
2. a client whose `docker buildx version` works: it can do BuildKit builds with `--secret`;
3. a classic client older than Docker 23 (Debian's docker.io 20.10 at /usr/bin/docker): it
   carries BuildKit inside itself and builds with `DOCKER_BUILDKIT=1`, no buildx needed;
4. otherwise `NoUsableClient`, whose message says what was found and how to fix it.

Docker 23 and newer hand every BuildKit build to the buildx plugin and refuse with "BuildKit is
enabled but the buildx component is missing" when it is absent (Docker 23.0.0 release notes:
"Alias docker build to docker buildx build", docker/cli#3314),
so a newer client without buildx is skipped, not used. Candidates are every `docker` on PATH in
PATH order, then Debian's client; a client that appears twice (a symlink, /bin on merged /usr)
is asked once. Callers that may install Docker first (prepare-docker.sh) must ask after the
install: the rule looks at the machine as it is when called.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

EXPLICIT_ENV = ("LAB_DOCKER", "BOOKSTORE_DOCKER")
# Where Debian's docker.io package puts its client; BOOKSTORE_DEBIAN_DOCKER points the rule
# elsewhere (tests, unusual layouts).
DEBIAN_CLIENT = "/usr/bin/docker"
DEBIAN_CLIENT_ENV = "BOOKSTORE_DEBIAN_DOCKER"
# The first Docker CLI release that needs the buildx plugin for BuildKit builds.
FIRST_BUILDX_ONLY_MAJOR = 23
PROBE_TIMEOUT_S = 15

FIX = (
    "Install the buildx plugin for the docker you have (Debian/Ubuntu: `apt-get install "
    "docker-buildx`; Docker's own packages: `docker-buildx-plugin`; Docker Desktop ships it), "
    "or on Debian/Ubuntu run `scripts/prepare-docker.sh`, which installs docker.io (a 20.10 "
    "client that builds with DOCKER_BUILDKIT=1), or set BOOKSTORE_DOCKER to a client that can "
    "build with BuildKit."
)


class NoUsableClient(RuntimeError):
    """No docker client here can build the images; the message says what was seen and the fix."""


@dataclass(frozen=True)
class Candidate:
    path: str
    version: str | None  # `docker --version`'s number, None when it did not run
    buildx: bool

    @property
    def classic_buildkit(self) -> bool:
        """A pre-23 client: BuildKit built in (DOCKER_BUILDKIT=1), no plugin needed."""
        major = _major(self.version)
        return major is not None and major < FIRST_BUILDX_ONLY_MAJOR

    def describe(self) -> str:
        version = self.version or "did not run"
        return f"{self.path} ({version}; buildx {'works' if self.buildx else 'missing'})"


@dataclass(frozen=True)
class Choice:
    path: str
    reason: str  # one line for a human: why this client


def _major(version: str | None) -> int | None:
    match = re.match(r"(\d+)\.", version or "")
    return int(match.group(1)) if match else None


def _run(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def probe(path: str, env: Mapping[str, str] | None = None) -> Candidate:
    """Ask one client its version and whether its buildx works (no daemon needed for either)."""
    env = os.environ if env is None else env
    version_run = _run([path, "--version"], env)
    version = None
    if version_run is not None and version_run.returncode == 0:
        # "Docker version 20.10.24+dfsg1, build 297e128"
        match = re.search(r"version (\S+?),?(?:\s|$)", version_run.stdout)
        version = match.group(1) if match else version_run.stdout.strip() or None
    buildx_run = _run([path, "buildx", "version"], env)
    return Candidate(path, version, buildx_run is not None and buildx_run.returncode == 0)


def candidates(env: Mapping[str, str] | None = None) -> list[str]:
    """Every `docker` on PATH in PATH order, then Debian's client; each real file once."""
    env = os.environ if env is None else env
    found: list[str] = []
    seen: set[str] = set()
    dirs = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    paths = [os.path.join(d, "docker") for d in dirs]
    paths.append(env.get(DEBIAN_CLIENT_ENV) or DEBIAN_CLIENT)
    for path in paths:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        found.append(path)
    return found


def _explicit(env: Mapping[str, str]) -> Choice | None:
    for name in EXPLICIT_ENV:
        value = env.get(name, "").strip()
        if not value:
            continue
        path = value if os.sep in value else _which(value, env)
        if path is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise NoUsableClient(
                f"{name}={value!r} is not an executable docker client. Expected a path (e.g. "
                f"/usr/bin/docker) or a command on PATH. Unset {name} to let the lab choose, or "
                "point it at a working client."
            )
        return Choice(path, f"{name} names it")
    return None


def _which(name: str, env: Mapping[str, str]) -> str | None:
    for d in env.get("PATH", "").split(os.pathsep):
        path = os.path.join(d, name)
        if d and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def select_client(env: Mapping[str, str] | None = None) -> Choice:
    """The docker client to build and run the images with (the rule in the module doc)."""
    env = os.environ if env is None else env
    explicit = _explicit(env)
    if explicit:
        return explicit
    probed = [probe(path, env) for path in candidates(env)]
    for c in probed:
        if c.buildx:
            return Choice(c.path, f"its buildx works ({c.version})")
    for c in probed:
        if c.classic_buildkit:
            return Choice(
                c.path, f"Docker {c.version} builds with DOCKER_BUILDKIT=1 without buildx"
            )
    if not probed:
        raise NoUsableClient(
            "no docker client was found (looked on PATH and at "
            f"{env.get(DEBIAN_CLIENT_ENV) or DEBIAN_CLIENT}). Expected Docker: install Docker "
            "Desktop (macOS/Windows) or Docker Engine (Linux); on Debian/Ubuntu "
            "`scripts/prepare-docker.sh` installs docker.io for you."
        )
    seen = "; ".join(c.describe() for c in probed)
    raise NoUsableClient(
        f"no docker client here can do BuildKit builds. Found: {seen}. Docker "
        f"{FIRST_BUILDX_ONLY_MAJOR}+ needs the buildx plugin for them. {FIX}"
    )


_CACHE: dict[tuple[str, ...], str] = {}


def docker_path(env: Mapping[str, str] | None = None) -> str:
    """`select_client().path`, remembered for as long as the variables the rule reads stay the
    same (the lab runs docker many times; the probes cost a few subprocesses each)."""
    env = os.environ if env is None else env
    key = tuple(env.get(k, "") for k in ("PATH", DEBIAN_CLIENT_ENV, *EXPLICIT_ENV))
    if key not in _CACHE:
        _CACHE[key] = select_client(env).path
    return _CACHE[key]


def main(argv: Sequence[str] | None = None) -> int:
    """`python3 -m labconfig.docker_client [--why]`: print the chosen client's path (stdout);
    with --why, also the reason (stderr). Exit 1 with the fix when there is none."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--why"]):
        print("usage: python3 -m labconfig.docker_client [--why]", file=sys.stderr)
        return 2
    try:
        choice = select_client()
    except NoUsableClient as e:
        print(f"docker client: {e}", file=sys.stderr)
        return 1
    print(choice.path)
    if args:
        print(f"docker client: {choice.path} ({choice.reason})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
