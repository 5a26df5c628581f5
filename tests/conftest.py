"""Fixtures shared by the offline suite.

Docker (tests marked `docker`): `docker_client` finds a working engine, `bookstore_images` builds
both service images once per session. Without an engine the container tests are skipped with
the reason, except under CI=true, where they must run and a missing engine is a failure.
Settings come from the same variables the lab and `scripts/prepare-docker.sh` use:
BOOKSTORE_BASE_IMAGE (default versions.toml [python].base_image, or, when that is not on this
machine, the local base the script builds if it exists), BOOKSTORE_EXTRA_CA (a CA bundle handed
to pip as the BuildKit secret `extra_ca`; default the host's system bundle, empty to disable) and
the docker client, chosen by labconfig.docker_client (BOOKSTORE_DOCKER/LAB_DOCKER, else one
whose buildx works, else a classic pre-23 client), the same rule the script and the lab use.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from labconfig.docker_client import NoUsableClient, select_client
from labconfig.versions import REPO_ROOT, load_versions

SERVICES = ("catalog", "orders")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PREPARE_HINT = 'run `eval "$(scripts/prepare-docker.sh)"` (Linux; starts dockerd, builds a base)'
BUILD_TIMEOUT_S = 900
# The base scripts/prepare-docker.sh builds when the default one cannot be pulled.
LOCAL_BASE_IMAGE = os.environ.get("BOOKSTORE_LOCAL_BASE_IMAGE", "local/python-base:bookworm")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def find_docker_client() -> tuple[str | None, str]:
    """The docker CLI to use, by the project's one rule (labconfig.docker_client), or why none."""
    try:
        return select_client().path, ""
    except NoUsableClient as e:
        return None, str(e)


def _succeeds(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_client() -> str:
    """Path of a docker CLI whose engine answers `docker info`; skip (fail under CI) if none."""
    client, problem = find_docker_client()
    if client is not None:
        try:
            info = subprocess.run(
                [client, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if info.returncode != 0 or not info.stdout.strip():
                last = (info.stderr.strip().splitlines() or ["no output"])[-1]
                problem = f"`{client} info` failed: {last}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            problem = f"`{client} info` did not answer: {exc}"
    if problem:
        reason = f"no usable Docker ({problem}); to run these tests, {PREPARE_HINT}"
        if in_ci():
            pytest.fail(f"CI=true and {reason}. CI must run the container tests.", pytrace=False)
        pytest.skip(reason)
    return client


@dataclass(frozen=True)
class BuildSettings:
    base_image: str
    extra_ca: Path | None


def build_settings(docker: str) -> BuildSettings:
    """Base image and CA bundle for the image builds, from the environment (see module doc)."""
    base = os.environ.get("BOOKSTORE_BASE_IMAGE") or load_versions()["python"]["base_image"]
    # Prepared once on this machine (no registry): reuse that base rather than fail the pull.
    if (
        "BOOKSTORE_BASE_IMAGE" not in os.environ
        and not _image_present(docker, base)
        and _image_present(docker, LOCAL_BASE_IMAGE)
    ):
        base = LOCAL_BASE_IMAGE
    ca_env = os.environ.get("BOOKSTORE_EXTRA_CA")
    if ca_env is None:
        extra_ca = SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None
    elif ca_env == "":
        extra_ca = None
    else:
        extra_ca = Path(ca_env)
        if not extra_ca.is_file():
            pytest.fail(
                f"BOOKSTORE_EXTRA_CA={ca_env!r} is not a file: point it at a PEM CA bundle, "
                "or set it empty to build without one.",
                pytrace=False,
            )
    return BuildSettings(base_image=base, extra_ca=extra_ca)


def _image_present(docker: str, image: str) -> bool:
    return _succeeds([docker, "image", "inspect", image])


@pytest.fixture(scope="session")
def image_build_settings(docker_client: str) -> BuildSettings:
    return build_settings(docker_client)


@pytest.fixture(scope="session")
def bookstore_images(docker_client: str, image_build_settings: BuildSettings) -> dict[str, str]:
    """Build both service images once, exactly as the lab does; {service: image name}."""
    images = load_versions()["images"]
    names = {service: images[service] for service in SERVICES}
    for service, name in names.items():
        cmd = [
            docker_client,
            "build",
            "--file",
            "bookstore/Dockerfile",
            "--build-arg",
            f"SERVICE={service}",
            "--build-arg",
            f"BASE_IMAGE={image_build_settings.base_image}",
            "--tag",
            name,
        ]
        if image_build_settings.extra_ca:
            cmd += ["--secret", f"id=extra_ca,src={image_build_settings.extra_ca}"]
        cmd.append(".")
        try:
            build = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                env={**os.environ, "DOCKER_BUILDKIT": "1"},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"building {name} took over {BUILD_TIMEOUT_S}s: {' '.join(cmd)}")
        if build.returncode != 0:
            output = "\n".join((build.stdout + build.stderr).strip().splitlines()[-25:])
            pytest.fail(
                f"building {name} failed (exit {build.returncode}).\n"
                f"command: {' '.join(cmd)}\n{output}\n"
                f"Expected a successful build. If the base image "
                f"{image_build_settings.base_image!r} cannot be pulled, or pip cannot verify "
                f"TLS, {PREPARE_HINT} and run the tests again.",
                pytrace=False,
            )
    return names


# -- the lab engine's tests (test_lab_engine, test_lab_learner, test_drills) -------------------
@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    """Where the engine keeps its state (`.lab/`), inside the test's own directory."""
    return tmp_path / ".lab"


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A file standing in for the checkers' pytest plugin, which the engine only points at."""
    p = tmp_path / "checks" / "conftest.py"
    p.parent.mkdir()
    p.write_text("# stands in for the checks plugin\n")
    return p
