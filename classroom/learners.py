"""The objects one learner receives: their namespace, identity, Role, quota and the bookstore.

`manifests/class/learner.yaml` is plain YAML with four placeholders; the bookstore comes from
`manifests/bookstore/` as the laptop lab applies it, moved into the learner's namespace. Two
things differ from the laptop and are changed here, in one place: the orders Service loses its
fixed NodePort (30080 exists once per cluster, not once per learner) and orders finds catalog in
its own namespace.
"""

from __future__ import annotations

import copy
from pathlib import Path
from string import Template
from typing import Any

import yaml

from classroom.roster import Learner
from labconfig.versions import REPO_ROOT, load_versions

LEARNER_TEMPLATE = Path("manifests/class/learner.yaml")
BOOKSTORE_DIR = Path("manifests/bookstore")
CLASS_LABEL = "lab.k8s-logging/class"
LEARNER_LABEL = "lab.k8s-logging/learner"
MANAGED_BY = ("app.kubernetes.io/managed-by", "k8s-logging-lab-class")


def pss_version(versions: dict[str, Any]) -> str:
    """`v1.N` of the pinned Kubernetes, the Pod Security version the laptop lab pins too."""
    major, minor, *_ = str(versions["kubernetes"]["version"]).lstrip("v").split(".")
    return f"v{major}.{minor}"


def learner_objects(
    learner: Learner, class_name: str, root: Path = REPO_ROOT
) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, Role, RoleBinding, ResourceQuota, LimitRange for one learner."""
    text = Template((root / LEARNER_TEMPLATE).read_text(encoding="utf-8")).substitute(
        NAMESPACE=learner.namespace,
        LEARNER=learner.id,
        CLASS=class_name,
        PSS_VERSION=pss_version(load_versions(root / "versions.toml")),
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def bookstore_objects(learner: Learner, root: Path = REPO_ROOT) -> list[dict[str, Any]]:
    """The bookstore's objects of `manifests/bookstore` (its kustomization), in the learner's
    namespace, labelled as the class's, without the namespace object itself."""
    kustomization = yaml.safe_load((root / BOOKSTORE_DIR / "kustomization.yaml").read_text())
    source_ns = kustomization.get("namespace", "bookstore")
    objects = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((root / BOOKSTORE_DIR / name).read_text(encoding="utf-8")):
            if not doc or doc.get("kind") == "Namespace":
                continue
            objects.append(_move(copy.deepcopy(doc), source_ns, learner))
    return objects


def _move(obj: dict[str, Any], source_ns: str, learner: Learner) -> dict[str, Any]:
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = learner.namespace
    meta.setdefault("labels", {})[LEARNER_LABEL] = learner.id
    if obj.get("kind") == "Service" and obj.get("spec", {}).get("type") == "NodePort":
        obj["spec"]["type"] = "ClusterIP"
        for port in obj["spec"].get("ports", []):
            port.pop("nodePort", None)
    if obj.get("kind") == "ConfigMap":
        for key, value in obj.get("data", {}).items():
            if isinstance(value, str):
                obj["data"][key] = value.replace(f".{source_ns}.svc.", f".{learner.namespace}.svc.")
    return obj


def class_selector(class_name: str) -> str:
    """The label selector that finds exactly what `up` created for this class."""
    return f"{MANAGED_BY[0]}={MANAGED_BY[1]},{CLASS_LABEL}={class_name}"
