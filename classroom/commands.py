"""What `up`, `kubeconfigs`, `status` and `down` do to the shared cluster, through ClassCluster.

`up` applies each learner's objects (namespace first) and reports per learner, so one refusal
never hides the others; it never deletes anything. `down` deletes only namespaces that carry the
class's labels. Learner kubeconfigs hold a TokenRequest token that expires and the cluster's CA,
nothing of the instructor's own credentials.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from classroom.cluster import ClassCluster, ClassClusterError
from classroom.learners import CLASS_LABEL, bookstore_objects, class_selector, learner_objects
from classroom.roster import Learner
from labconfig.versions import REPO_ROOT, load_versions

LOGGING_LABEL = {"lab.k8s-logging/logging": "true"}  # what the Loki NetworkPolicy admits


@dataclass(frozen=True)
class Outcome:
    learner: str
    ok: bool
    detail: str


def up(cluster: ClassCluster, learners: list[Learner], class_name: str) -> list[Outcome]:
    """Apply every learner's objects; a learner whose apply fails is reported, others go on."""
    outcomes = []
    for lrn in learners:
        objects = learner_objects(lrn, class_name) + bookstore_objects(lrn)
        objects.sort(key=lambda o: o["kind"] != "Namespace")  # the namespace must exist first
        try:
            for obj in objects:
                cluster.apply(obj)
        except ClassClusterError as e:
            outcomes.append(Outcome(lrn.id, False, str(e)))
            continue
        outcomes.append(Outcome(lrn.id, True, f"{len(objects)} objects applied"))
    return outcomes


def logging_namespaces(root: Path = REPO_ROOT) -> list[str]:
    """The namespaces of the shared logging stack (from versions.toml), de-duplicated."""
    charts = load_versions(root / "versions.toml")["charts"]
    return sorted({chart["namespace"] for chart in charts.values()})


def label_logging_namespaces(cluster: ClassCluster, names: list[str]) -> None:
    for name in names:
        cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": name, "labels": dict(LOGGING_LABEL)}}
        )  # fmt: skip


def down(cluster: ClassCluster, class_name: str, shared: list[dict[str, Any]] = ()) -> list[str]:
    """Delete the class's learner namespaces (found by label), and those of the `shared` objects
    (the Grafana setup's Secret and ConfigMap) that carry this class's labels; returns what was
    deleted."""
    names = [ns["metadata"]["name"] for ns in cluster.namespaces(class_selector(class_name))]
    for name in names:
        cluster.delete_namespace(name)
    for obj in shared:
        found = cluster.find(obj)
        labels = (found or {}).get("metadata", {}).get("labels") or {}
        if labels.get(CLASS_LABEL) == class_name and cluster.delete(obj):
            names.append(f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}")
    return names


def status(cluster: ClassCluster, learners: list[Learner]) -> list[Outcome]:
    """Per learner: namespace present and restricted, and the bookstore's ready replicas."""
    rows = []
    for lrn in learners:
        ns = cluster.get_namespace(lrn.namespace)
        if ns is None:
            rows.append(Outcome(lrn.id, False, "no namespace: run `class up`"))
            continue
        enforce = (ns["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce")
        if enforce != "restricted":
            rows.append(Outcome(lrn.id, False, f"namespace enforces {enforce!r}, not restricted"))
            continue
        ready = []
        for dep in cluster.deployments(lrn.namespace):
            want = (dep.get("spec") or {}).get("replicas", 1)
            have = (dep.get("status") or {}).get("readyReplicas", 0)
            ready.append((dep["metadata"]["name"], have, want))
        ok = bool(ready) and all(have >= want > 0 for _, have, want in ready)
        detail = ", ".join(f"{name} {have}/{want}" for name, have, want in ready) or "no bookstore"
        rows.append(Outcome(lrn.id, ok, detail))
    return rows


def cluster_of(admin_kubeconfig: Path) -> tuple[str, str]:
    """(server, base64 CA) of the admin kubeconfig's current context, read as data only."""
    config = yaml.safe_load(admin_kubeconfig.read_text()) or {}
    current = config.get("current-context")
    contexts = {c.get("name"): c.get("context") for c in config.get("contexts") or []}
    context = contexts.get(current)
    if context is None:
        raise ClassClusterError(f"{admin_kubeconfig}: no current context to take the cluster from")
    cluster = next(
        (c["cluster"] for c in config.get("clusters") or [] if c.get("name") == context["cluster"]),
        None,
    )
    if cluster is None or "server" not in cluster:
        raise ClassClusterError(f"{admin_kubeconfig}: context {current!r} names no cluster server")
    ca = cluster.get("certificate-authority-data", "")
    if not ca and cluster.get("certificate-authority"):
        ca_path = Path(cluster["certificate-authority"])
        if not ca_path.is_absolute():
            ca_path = admin_kubeconfig.parent / ca_path
        ca = base64.b64encode(ca_path.read_bytes()).decode()
    return cluster["server"], ca


def learner_kubeconfig(learner: Learner, server: str, ca: str, token: str) -> dict[str, Any]:
    """A kubeconfig for one learner: their namespace as default, a token that expires."""
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = ca
    name = f"lab2-class-{learner.id}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "class", "cluster": cluster}],
        "users": [{"name": learner.id, "user": {"token": token}}],
        "contexts": [
            {"name": name,
             "context": {"cluster": "class", "user": learner.id, "namespace": learner.namespace}}
        ],
        "current-context": name,
    }  # fmt: skip


def write_kubeconfigs(
    cluster: ClassCluster, learners: list[Learner], admin: Path, out: Path, hours: float
) -> list[Outcome]:
    """One private kubeconfig per learner under `out`; a refused token is that learner's row."""
    server, ca = cluster_of(admin)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for lrn in learners:
        try:
            token, expires = cluster.request_token(lrn.namespace, "learner", int(hours * 3600))
        except ClassClusterError as e:
            rows.append(Outcome(lrn.id, False, str(e)))
            continue
        path = out / f"{lrn.id}.kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(learner_kubeconfig(lrn, server, ca, token), f, sort_keys=False)
        rows.append(Outcome(lrn.id, True, f"{path} (token expires {expires or 'as requested'})"))
    return rows
