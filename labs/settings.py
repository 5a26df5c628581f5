"""The few knobs a learner's machine may need, read from the environment in one place.

Everything else (versions, names, paths) is fixed by `versions.toml` and the manifests; these
settings only adapt the lab to a machine: a slow laptop, a registry mirror for the base image,
a corporate TLS-intercepting proxy, an Apple Silicon Docker that cannot `kind load` directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from labconfig.docker_client import NoUsableClient, select_client
from labconfig.settings import (
    DEFAULT_KUBECONFIG,
    KUBECONFIG_ENV,
    TIMEOUT_SCALE_ENV,
    parse_timeout_scale,
)
from labconfig.versions import REPO_ROOT

LOAD_DOCKER_IMAGE = "docker-image"
LOAD_ARCHIVE = "archive"


@dataclass(frozen=True)
class Settings:
    """Machine-specific choices; the defaults are what the docs page shows."""

    # Shown to the learner as typed; resolved against the repository root when run.
    kubeconfig: str = DEFAULT_KUBECONFIG
    # Multiplies every deadline (LAB_TIMEOUT_SCALE=2 on a slow laptop doubles them).
    timeout_scale: float = 1.0
    # BOOKSTORE_BASE_IMAGE: overrides versions.toml [python].base_image (a mirror, a local build).
    base_image: str = ""
    # BOOKSTORE_EXTRA_CA: a CA bundle for pip inside `docker build` (BuildKit secret).
    extra_ca: str = ""
    # LAB_IMAGE_LOAD=archive: `docker save` + `kind load image-archive` from the start.
    image_load: str = LOAD_DOCKER_IMAGE
    # The docker client the build commands show and run (labconfig.docker_client's choice).
    docker: str = "docker"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the LAB_* and BOOKSTORE_* variables; bad values are errors that say what to set."""
        env = os.environ if env is None else env
        try:
            scale = parse_timeout_scale(env.get(TIMEOUT_SCALE_ENV, "1"))
        except ValueError as e:
            raise SystemExit(str(e)) from None
        load = env.get("LAB_IMAGE_LOAD", LOAD_DOCKER_IMAGE)
        if load not in (LOAD_DOCKER_IMAGE, LOAD_ARCHIVE):
            raise SystemExit(
                f"LAB_IMAGE_LOAD={load!r} is not understood; use {LOAD_DOCKER_IMAGE!r} "
                f"(default) or {LOAD_ARCHIVE!r} (docker save + kind load image-archive)."
            )
        extra_ca = env.get("BOOKSTORE_EXTRA_CA", "")
        if extra_ca and not os.path.isfile(extra_ca):
            raise SystemExit(
                f"BOOKSTORE_EXTRA_CA={extra_ca!r} is not a file; point it at a PEM CA bundle "
                "(e.g. /etc/ssl/certs/ca-certificates.crt) or unset it."
            )
        return cls(
            kubeconfig=env.get(KUBECONFIG_ENV, DEFAULT_KUBECONFIG),
            timeout_scale=scale,
            base_image=env.get("BOOKSTORE_BASE_IMAGE", ""),
            extra_ca=extra_ca,
            image_load=load,
            docker=shown_docker(env),
        )

    def seconds(self, base: float) -> int:
        """A deadline scaled for this machine, in whole seconds (never below one)."""
        return max(1, round(base * self.timeout_scale))

    @property
    def kubeconfig_path(self):
        """The kubeconfig as a path the engine can open (relative ones hang off the repo root)."""
        from pathlib import Path

        p = Path(self.kubeconfig).expanduser()
        return p if p.is_absolute() else REPO_ROOT / p


def shown_docker(env: Mapping[str, str]) -> str:
    """How the plan spells the chosen docker client: `docker` when that is what PATH finds,
    else its full path, so a copied command runs the same client the lab runs."""
    try:
        chosen = select_client(env).path
    except NoUsableClient:
        return "docker"  # the runner reports the rule's error when the command runs
    on_path = shutil.which("docker", path=env.get("PATH"))
    if on_path and os.path.realpath(on_path) == os.path.realpath(chosen):
        return "docker"
    return chosen
