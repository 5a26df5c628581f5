"""`python -m labs` end to end, as a learner runs it, against a fake toolbox on PATH.

The product code runs unmodified (CommandRunner, the pinned-tool resolver, pytest-kind through
labs.cluster, the doctor); only kind, kubectl, helm and docker are small shell scripts that
record their arguments. The repository's lab files are copied into tmp_path so `.lab/` is
created there, not in the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labconfig.versions import REPO_ROOT, load_versions
from labs import doctor
from labs.tools import tool_version

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters:\n- name: kind\n  cluster: {server: "
    '"https://127.0.0.1:6443"}\ncontexts:\n- name: kind\n  context: {cluster: kind, user: kind}\n'
    "current-context: kind\nusers:\n- name: kind\n  user: {token: fake}\n"
)

SCRIPTS = {
    "kind": """#!/bin/sh
echo "kind $*" >> "$FAKE/calls"
kc=""
for a in "$@"; do case "$a" in --kubeconfig=*) kc="${a#--kubeconfig=}";; esac; done
case "$1 $2" in
  "version ") echo "kind $KIND_VERSION go1.26 linux/amd64" ;;
  "get clusters") cat "$FAKE/clusters" 2>/dev/null || echo "No kind clusters found." >&2 ;;
  "create cluster") echo lab2-logging > "$FAKE/clusters"; cat "$FAKE/kubeconfig" > "$kc" ;;
  "delete cluster") rm -f "$FAKE/clusters" ;;
  "load docker-image") echo "Image: \\"$5\\" with ID \\"sha256:1\\" not yet present, loading..." ;;
esac
""",
    "kubectl": """#!/bin/sh
echo "kubectl $*" >> "$FAKE/calls"
case "$*" in
  "version --client -o json") echo '{"clientVersion": {"gitVersion": "'$KUBECTL_VERSION'"}}' ;;
  *"logs -n bookstore"*) echo '{"time":"2026-11-22T00:00:00Z","level":"INFO","msg":"ok"}' ;;
esac
""",
    "helm": """#!/bin/sh
echo "helm $*" >> "$FAKE/calls"
case "$*" in "version --template {{.Version}}") echo "$HELM_VERSION" ;; esac
""",
    # A client whose buildx works (docker/cli: `buildx version` exits 0 with the plugin), so
    # the client rule picks it; every other docker command succeeds.
    "docker": """#!/bin/sh
echo "docker $*" >> "$FAKE/calls"
case "$1" in
  --version) echo "Docker version 28.2.2, build e6534b4" ;;
  buildx) echo "github.com/docker/buildx v0.24.0" ;;
  info) echo '{"MemTotal": 8589934592, "NCPU": 4, "DockerRootDir": "/"}' ;;
  ps) [ -f "$FAKE/clusters" ] && echo lab2-logging-control-plane ;;
esac
exit 0
""",
}


def ports_free() -> bool:
    for port in doctor.HOST_PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


@pytest.fixture
def world(tmp_path: Path):
    """A copy of the lab's files, a fake toolbox on PATH, and a way to run `python -m labs`."""
    if not ports_free():
        pytest.skip("the lab's host ports are in use on this machine (the doctor would stop)")
    repo = tmp_path / "repo"
    for name in ("labs", "labconfig", "manifests", "checks", "validators"):
        shutil.copytree(REPO_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "versions.toml", repo / "versions.toml")
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    (fake / "kubeconfig").write_text(KUBECONFIG)
    for name, text in SCRIPTS.items():
        script = fake / "bin" / name
        script.write_text(text)
        script.chmod(0o755)
    versions = load_versions()
    env = {
        **os.environ,
        "PATH": f"{fake / 'bin'}:{os.path.dirname(sys.executable)}:/usr/bin:/bin",
        "PYTHONPATH": str(repo),
        "FAKE": str(fake),
        "KIND_VERSION": tool_version("kind", versions),
        "KUBECTL_VERSION": tool_version("kubectl", versions),
        "HELM_VERSION": tool_version("helm", versions),
        "LAB_TOOLS_DIR": str(tmp_path / "tools-cache"),  # must stay empty: PATH has them all
    }
    for name in ("LAB_DOCKER", "BOOKSTORE_DOCKER", "LAB_KUBECONFIG"):
        env.pop(name, None)
    # No registry, chart repository or download reaches this machine: the doctor says so (its
    # probes are tested in test_lab_doctor.py); here the lab is told to go on regardless.
    env["LAB_PREFLIGHT"] = "warn"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "labs", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def calls() -> list[str]:
        path = fake / "calls"
        return path.read_text().splitlines() if path.exists() else []

    return repo, run, calls, tmp_path / "tools-cache"


def test_step_zero_runs_for_real_against_the_fake_toolbox_then_resumes(world):
    repo, run, calls, tools_cache = world
    first = run("run", "lab2", "--until", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "$ python -m labs doctor" in out and "✓ docker: Docker is reachable" in out
    assert "$ kind create cluster --name=lab2-logging --kubeconfig=.lab/kubeconfig" in out
    assert "$ DOCKER_BUILDKIT=1 docker build --file bookstore/Dockerfile" in out
    assert "Your turn" in out and "--check --step 1" in out
    made = calls()
    create = next(c for c in made if c.startswith("kind create cluster"))
    # The displayed command itself ran, from the repository root (relative paths as shown).
    assert "--kubeconfig=.lab/kubeconfig" in create
    assert create.endswith("--config manifests/kind/cluster.yaml")
    assert any(c.startswith("docker build") and "SERVICE=orders" in c for c in made)
    assert any(c.startswith("kind load docker-image --name lab2-logging") for c in made)
    assert any(
        c == "kubectl --kubeconfig .lab/kubeconfig apply -k manifests/bookstore" for c in made
    )
    assert (repo / ".lab" / "kubeconfig").read_text() == KUBECONFIG
    state = json.loads((repo / ".lab" / "state.json").read_text())
    assert list(state["steps"]) == ["0"]
    assert not tools_cache.exists()  # the pinned versions on PATH were used: no download

    # Second run: the cluster is reused (Docker says it exists) and step 0 is skipped.
    before = len(calls())
    again = run("run", "lab2", "--until", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Step 0 (" in again.stdout and "is done" in again.stdout
    new = calls()[before:]
    assert not any(c.startswith(("kind create", "docker build ", "kubectl")) for c in new), new

    # `down` deletes only this lab's cluster, through kind.
    down = run("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert any(c.startswith("kind delete cluster --name=lab2-logging") for c in calls())
    assert "deleted" in down.stdout
