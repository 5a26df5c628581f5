"""The platform namespaces: only the agent's is privileged; Loki and Grafana stay restricted.

Offline checks of manifests/logging/namespace.yaml against versions.toml, and (with helm and the
pinned charts, see tests/test_manifests_helm.py) the Pod Security level of the rendered Loki and
Grafana pods against the level their namespace enforces.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from labconfig.versions import REPO_ROOT
from tests.test_manifests_helm import edit_values, failed, needs_helm, render
from validators.manifests import check_tree

NAMESPACES = Path("manifests/logging/namespace.yaml")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", tmp_path / "versions.toml")
    return tmp_path


def edit_namespaces(root: Path, change) -> None:
    path = root / NAMESPACES
    docs = list(yaml.safe_load_all(path.read_text()))
    change({d["metadata"]["name"]: d for d in docs})
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def version_failures(root: Path) -> list[str]:
    findings = check_tree(root, helm=False)
    others = {f.check for f in findings if not f.ok} - {"versions"}
    assert not others, others
    return [f.message for f in findings if not f.ok]


def test_the_repository_splits_agent_and_backend():
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all((REPO_ROOT / NAMESPACES).open())}
    label = "pod-security.kubernetes.io/enforce"
    assert docs["logging-agent"]["metadata"]["labels"][label] == "privileged"
    assert docs["logging"]["metadata"]["labels"][label] == "restricted"
    assert not [f for f in check_tree(REPO_ROOT, helm=False) if not f.ok]


@pytest.mark.parametrize("level", ["privileged", None])
def test_loki_and_grafana_namespace_must_not_be_privileged(tree: Path, level):
    def relax(ns):
        labels = ns["logging"]["metadata"]["labels"]
        if level is None:
            labels.pop("pod-security.kubernetes.io/enforce")
        else:
            labels["pod-security.kubernetes.io/enforce"] = level

    edit_namespaces(tree, relax)
    [msg] = version_failures(tree)
    assert "Namespace logging" in msg and "only the agent's namespace is privileged" in msg


def test_baseline_is_accepted_for_loki_and_grafana(tree: Path):
    def baseline(ns):
        ns["logging"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"

    edit_namespaces(tree, baseline)
    assert version_failures(tree) == []


def test_loki_in_the_agents_namespace_fails(tree: Path):
    pinned = 'release = "loki"\nnamespace = "logging"'
    text = (tree / "versions.toml").read_text()
    assert pinned in text
    moved = text.replace(pinned, 'release = "loki"\nnamespace = "logging-agent"')
    (tree / "versions.toml").write_text(moved)
    findings = check_tree(tree, helm=False)
    msgs = [f.message for f in findings if not f.ok and f.check == "versions"]
    assert any("chart loki is installed into 'logging-agent'" in m for m in msgs)
    # ... and the push URL no longer names Loki's Service: reported on its own.
    assert {f.check for f in findings if not f.ok} == {"versions", "loki-endpoints"}


def test_a_namespace_no_chart_uses_fails(tree: Path):
    path = tree / NAMESPACES
    extra = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "observability",
             "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "v1.36"}}}  # fmt: skip
    path.write_text(path.read_text() + "---\n" + yaml.safe_dump(extra))
    [msg] = version_failures(tree)
    assert "Namespace 'observability' is the namespace of no chart" in msg


def test_enforce_version_of_the_backend_namespace_is_pinned(tree: Path):
    def old(ns):
        ns["logging"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] = "v1.30"

    edit_namespaces(tree, old)
    [msg] = version_failures(tree)
    assert "Namespace logging" in msg and "set it to 'v1.36'" in msg


@needs_helm
def test_rendered_loki_and_grafana_pods_pass_restricted():
    text = "\n".join(f.message for f in render(REPO_ROOT))
    assert "enforces restricted" not in text
    assert "loki 18.11.0 renders" in text and "grafana 12.11.1 renders" in text


@needs_helm
def test_a_loki_pod_running_as_root_fails_the_namespace_level(tree: Path):
    edit_values(tree, "loki", lambda v: v["loki"].update(podSecurityContext={"runAsUser": 0}))
    text = failed(render(tree))
    assert "StatefulSet" in text and "namespace logging enforces restricted" in text
