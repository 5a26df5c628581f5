"""labs.cluster drives pytest-kind's KindCluster with our kind binary, config and kubeconfig, and
works around its defects. A fake `kind` executable (a shell script in tmp_path) records what it
is asked to do, so the real pytest-kind code path runs without Docker."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from labs.cluster import LabCluster
from labs.runner import CommandRunner, Result

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: kind-lab2-logging
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: kind-lab2-logging
  context: {cluster: kind-lab2-logging, user: kind-lab2-logging}
current-context: kind-lab2-logging
users:
- name: kind-lab2-logging
  user: {token: fake}
"""

FAKE_KIND = """#!/bin/sh
# Records its arguments; `get clusters` lists $STATE/clusters; create/export write a kubeconfig.
echo "$*" >> "$STATE/calls"
kubeconfig=""
for arg in "$@"; do
  case "$arg" in --kubeconfig=*) kubeconfig="${arg#--kubeconfig=}";; esac
done
case "$1 $2" in
  "get clusters") cat "$STATE/clusters" 2>/dev/null || echo "No kind clusters found." >&2 ;;
  "create cluster") echo lab2-logging >> "$STATE/clusters"
                    cat "$STATE/kubeconfig.yaml" > "$kubeconfig" ;;
  "export kubeconfig") cat "$STATE/kubeconfig.yaml" > "$kubeconfig" ;;
  "delete cluster") : > "$STATE/clusters" ;;
esac
"""


@pytest.fixture
def fake_kind(tmp_path: Path, monkeypatch) -> Path:
    state = tmp_path / "kind-state"
    state.mkdir()
    (state / "kubeconfig.yaml").write_text(KUBECONFIG)
    kind = tmp_path / "bin" / "kind"
    kind.parent.mkdir()
    kind.write_text(FAKE_KIND)
    kind.chmod(0o755)
    monkeypatch.setenv("STATE", str(state))
    return state


ARGV = (
    "kind",
    "create",
    "cluster",
    "--name=lab2-logging",
    "--kubeconfig=.lab/kubeconfig",
    "--image=kindest/node:v1.36.1@sha256:abc",
    "--config",
    "manifests/kind/cluster.yaml",
)


def make(tmp_path: Path) -> LabCluster:
    repo = tmp_path / "repo"
    (repo / "manifests" / "kind").mkdir(parents=True, exist_ok=True)
    (repo / "manifests" / "kind" / "cluster.yaml").write_text("kind: Cluster\n")
    return LabCluster.from_argv(ARGV, resolve=tools(tmp_path).__getitem__, cwd=repo)


def tools(tmp_path: Path) -> dict[str, str]:
    # kubectl is never asked for; docker only after a timed-out creation.
    return {"kind": str(tmp_path / "bin" / "kind"), "docker": str(tmp_path / "bin" / "docker")}


def ensure(tmp_path: Path, cluster: LabCluster, timeout: float = 60) -> Result:
    """What the engine does: the displayed command, run by the real CommandRunner."""
    runner = CommandRunner(cwd=cluster.cwd, resolve=tools(tmp_path).__getitem__)

    def run(argv, limit):
        return runner.run(argv, timeout=limit, echo=False, show_output=False)

    return cluster.ensure(run, ARGV, timeout)


def calls(state: Path) -> list[list[str]]:
    path = state / "calls"
    return [shlex.split(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_creates_the_cluster_with_our_kind_config_and_kubeconfig(tmp_path, fake_kind, monkeypatch):
    cluster = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = ensure(tmp_path, cluster)
    assert result.ok, result.output
    assert "created" in result.output
    create = next(c for c in calls(fake_kind) if c[:2] == ["create", "cluster"])
    repo = tmp_path / "repo"
    # Exactly the command the learner saw, run from the repository root.
    assert create == list(ARGV[1:])
    assert (repo / ".lab" / "kubeconfig").read_text() == KUBECONFIG


def test_reuses_an_existing_cluster_and_repairs_a_missing_kubeconfig(tmp_path, fake_kind):
    (fake_kind / "clusters").write_text("lab2-logging\n")
    cluster = make(tmp_path)
    result = ensure(tmp_path, cluster)
    assert result.ok and "reused" in result.output
    verbs = [c[:2] for c in calls(fake_kind)]
    assert ["create", "cluster"] not in verbs
    # pytest-kind would have touched an empty kubeconfig and failed to parse it: we export first.
    assert ["export", "kubeconfig"] in verbs
    assert (tmp_path / "repo" / ".lab" / "kubeconfig").read_text() == KUBECONFIG
    # pytest-kind's scratch folder lands in .lab/, not in whatever directory we run from.
    assert (tmp_path / "repo" / ".lab" / ".pytest-kind" / "lab2-logging").is_dir()


def test_delete_touches_only_an_existing_lab_cluster(tmp_path, fake_kind):
    cluster = make(tmp_path)
    assert "nothing to delete" in cluster.delete().output
    assert not any(c[:2] == ["delete", "cluster"] for c in calls(fake_kind))
    (fake_kind / "clusters").write_text("lab2-logging\nsomeone-elses\n")
    assert cluster.delete().ok
    delete = next(c for c in calls(fake_kind) if c[:2] == ["delete", "cluster"])
    assert "--name=lab2-logging" in delete
    assert cluster.delete_argv() == (
        "kind",
        "delete",
        "cluster",
        "--name=lab2-logging",
        "--kubeconfig=.lab/kubeconfig",
    )


def test_a_failing_kind_create_is_reported_not_raised(tmp_path, fake_kind):
    kind = tmp_path / "bin" / "kind"
    kind.write_text(FAKE_KIND.replace('"create cluster") echo', '"create cluster") exit 3; echo'))
    result = ensure(tmp_path, make(tmp_path))
    assert result.returncode == 3 and not result.ok


def test_a_hung_kind_create_ends_at_the_deadline_with_the_nodes_state(tmp_path, fake_kind):
    # pytest-kind 22.11.1 KindCluster.create runs `kind create cluster` without a timeout; a
    # kind stuck waiting for the control plane hangs there. Here kind "hangs" after making the
    # node container; docker reports it (kind labels its nodes, pkg/cluster/internal/providers/
    # docker) and its log.
    kind = tmp_path / "bin" / "kind"
    kind.write_text(
        FAKE_KIND.replace(
            '"create cluster") echo',
            '"create cluster") echo lab2-logging > "$STATE/clusters"; exec sleep 60; echo',
        )
    )
    docker = tmp_path / "bin" / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  ps) printf "lab2-logging-control-plane\\tUp 2 minutes\\n" ;;\n'
        '  logs) echo "Waiting for kubelet to become healthy" ;;\n'
        "esac\n"
    )
    docker.chmod(0o755)
    result = ensure(tmp_path, make(tmp_path), timeout=1)
    assert result.timed_out and result.returncode == 124
    assert "did not finish in time" in result.output
    assert "lab2-logging-control-plane\tUp 2 minutes" in result.output
    assert "Waiting for kubelet to become healthy" in result.output
    assert "half-made cluster was deleted" in result.output
    assert any(c[:2] == ["delete", "cluster"] for c in calls(fake_kind))


def test_the_command_runner_prints_runs_and_stops_at_its_deadline(tmp_path):
    runner = CommandRunner(cwd=tmp_path)
    ok = runner.run(
        ("python", "-c", "print('hello from a step')"), env=(("GREETING", "hi"),), show_output=False
    )
    assert ok.ok and ok.output == "hello from a step\n"
    slow = runner.run(
        ("python", "-c", "import time; time.sleep(30)"), timeout=0.5, show_output=False
    )
    assert slow.timed_out and slow.returncode == 124
    assert "LAB_TIMEOUT_SCALE=2" in slow.output
    missing = runner.run(("no-such-tool-for-the-lab", "x"), show_output=False)
    assert missing.returncode == 127 and "nox -s doctor" in missing.output
