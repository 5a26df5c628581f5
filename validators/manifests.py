"""Offline checks of the lab's manifests, chart values and pinned versions.

Nothing in `manifests/` can be applied to a real cluster in CI, and a learner's edits reach a
cluster only after minutes of waiting. So every fact that can be checked without a cluster is
checked here, in one pass, with a fix for each failure:

- every YAML file parses;
- every Kubernetes object validates against the OpenAPI schema of the pinned Kubernetes version
  (kubernetes-validate, strict: unknown fields are typos);
- bookstore pod templates pass Pod Security `restricted` (`validators.pss`);
- the Alloy pipeline is complete and ships the right labels to the right Loki
  (`validators.alloy_lint`);
- the parts agree: Service NodePorts == kind port mappings, names/images/enforce-version ==
  `versions.toml`, Alloy's push URL and Grafana's datasource == Loki's Service and port,
  the bookstore objects keep the service contract (ports, probes, config, replicas);
- where `helm` and the pinned charts are present locally, `helm template` renders each chart
  with our values and the rendered objects are validated too (else a clear SKIP).

`check_tree(root)` returns the findings, so the grader can run the same checks on a learner's
submission folder; `python -m validators.manifests [ROOT] [--json]` prints them and exits 1 on a
failure (`nox -s lint`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labconfig.versions import load_versions
from validators import files

MANIFESTS = Path("manifests")
KIND_CONFIG = MANIFESTS / "kind" / "cluster.yaml"
BOOKSTORE_DIR = MANIFESTS / "bookstore"
LOGGING_NAMESPACE = MANIFESTS / "logging" / "namespace.yaml"
LOADGEN = BOOKSTORE_DIR / "loadgen.yaml"

# The host ports the lab promises (docs, engine, checkers): orders, Grafana, Loki.
CONTRACT_NODEPORTS = {30080: "orders", 30300: "grafana", 30310: "loki"}
BOOKSTORE_SERVICES = ("catalog", "orders")
CONTAINER_PORT = 8080
SERVICE_PORT = 80
CONFIGMAP = "bookstore-config"
CONFIG_KEYS = ("LOG_LEVEL", "LOG_SAMPLE_RATE", "CATALOG_URL", "FAULT_RATE")
LOKI_HTTP_PORT_DEFAULT = 3100
PSS_LABEL = "pod-security.kubernetes.io/"
WORKLOAD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
HELM_TIMEOUT_S = 120


@dataclass(frozen=True)
class Finding:
    """One checked fact: `ok` with a short note, or not ok with what to change.

    `skipped` marks a check that could not run here (e.g. no helm): it is reported, not failed.
    """

    check: str
    ok: bool
    message: str
    file: str = ""
    skipped: bool = False

    def __post_init__(self) -> None:
        # Messages quote the learner's files: bounded, whatever the files hold.
        object.__setattr__(self, "message", files.clip(self.message, 2000))
        object.__setattr__(self, "file", files.clip(self.file, 300))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Tree:
    """The parsed files of one repository (or submission) folder."""

    root: Path
    versions: dict[str, Any]
    docs: dict[Path, list[Any]] = field(default_factory=dict)  # relative path -> YAML documents
    unreadable: set[Path] = field(default_factory=set)  # relative paths refused by the loader

    def absent(self, rel: Path | None) -> str:
        """Why a file the lab needs has no documents: missing, or refused (its yaml finding)."""
        if rel is not None and rel in self.unreadable:
            return "could not be read (see its yaml finding)"
        return "is missing or empty"

    def objects(self, under: Path = MANIFESTS) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Kubernetes objects (apiVersion + kind + metadata) in manifest files under `under`."""
        values_files = set(self.values_files().values())
        for rel, docs in sorted(self.docs.items()):
            if rel in values_files or not rel.is_relative_to(under):
                continue
            for doc in docs:
                if is_kubernetes_object(doc):
                    yield rel, doc

    def values_files(self) -> dict[str, Path]:
        """Chart name -> its values file, as `versions.toml` [charts.*].values names it."""
        charts = self.versions.get("charts", {})
        return {name: Path(c["values"]) for name, c in charts.items() if "values" in c}

    def values(self, chart: str) -> dict[str, Any] | None:
        rel = self.values_files().get(chart)
        docs = self.docs.get(rel) if rel else None
        if not docs:
            return None
        return docs[0] if isinstance(docs[0], dict) else None

    def find(self, kind: str, name: str) -> tuple[Path, dict[str, Any]] | None:
        for rel, obj in self.objects():
            if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
                return rel, obj
        return None


# --------------------------------------------------------------------------------------------
# Small helpers


def is_kubernetes_object(doc: Any) -> bool:
    """True for a Kubernetes API object; kind's and kustomize's own config files are not."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return False
    api = str(doc["apiVersion"])
    return not (api.startswith("kind.x-k8s.io/") or api.startswith("kustomize.config.k8s.io/"))


def kube_minor(version: str) -> str:
    """'v1.36.1' -> 'v1.36' (the form Pod Security's *-version labels take)."""
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"v{m.group(1)}.{m.group(2)}"


def _minor_tuple(version: str) -> tuple[int, int]:
    major, minor = kube_minor(version).lstrip("v").split(".")
    return int(major), int(minor)


def _get(obj: Any, *path: str | int, default: Any = None) -> Any:
    for key in path:
        if isinstance(obj, dict) and isinstance(key, str):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
        if obj is None:
            return default
    return obj


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a Pod or of any workload's pod template."""
    kind = obj.get("kind")
    if kind == "Pod":
        return _get(obj, "spec")
    if kind == "CronJob":
        return _get(obj, "spec", "jobTemplate", "spec", "template", "spec")
    if kind in WORKLOAD_KINDS:
        return _get(obj, "spec", "template", "spec")
    return None


def _name(obj: dict[str, Any]) -> str:
    name = _get(obj, "metadata", "name", default="?")
    return f"{files.clip(obj.get('kind'), 60)}/{files.clip(name, 100)}"


def _service_url_target(url: str) -> tuple[str, str, int] | None:
    """'http://loki.logging.svc.cluster.local:3100/x' -> ('loki', 'logging', 3100)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    labels = host.split(".")
    if len(labels) < 2 or port is None:
        return None
    return labels[0], labels[1], port


# --------------------------------------------------------------------------------------------
# Loading


def load_tree(root: Path, versions: dict[str, Any] | None = None) -> tuple[Tree, list[Finding]]:
    """Parse every YAML file under `root/manifests`; a broken file becomes a finding."""
    findings: list[Finding] = []
    if versions is None:
        versions, findings = _load_versions_for(root)
    tree = Tree(root=root, versions=versions)
    base = root / MANIFESTS
    if not base.is_dir():
        findings.append(
            Finding(
                "yaml",
                False,
                f"{base} does not exist: expected the lab's manifests folder "
                "(kind/, bookstore/, logging/). Run from the repository root or pass it as ROOT.",
            )
        )
        return tree, findings
    paths, problems = files.yaml_files(base)
    for path in paths:
        try:
            docs = files.yaml_documents(path)
        except files.FileProblem as e:
            problems.append(e)
            continue
        tree.docs[path.relative_to(root)] = [d.value for d in docs if d.value is not None]
    findings += [_file_finding(tree, p) for p in problems]
    if not problems:
        findings.append(Finding("yaml", True, f"{len(paths)} YAML files parse"))
    return tree, findings


def _file_finding(tree: Tree, problem: files.FileProblem) -> Finding:
    """A file that was not read, named relative to the checked folder."""
    path = Path(problem.path)
    rel = path.relative_to(tree.root) if path.is_relative_to(tree.root) else path
    tree.unreadable.add(rel)
    problem.path = str(rel)
    return Finding("yaml", False, f"{problem}.", str(rel))


MAX_VERSIONS_BYTES = 1024 * 1024  # the real file is ~3 KB


def _load_versions_for(root: Path) -> tuple[dict[str, Any], list[Finding]]:
    """The submission's own versions.toml if it has one, else the repository's pins.

    Read through validators.files like every other file of a submission (a FIFO or a huge
    sparse file named versions.toml must not stall the grader); a bad one is a finding."""
    own = root / "versions.toml"
    if not os.path.lexists(own):
        return load_versions(), []
    try:
        return tomllib.loads(files.read_text(own, limit=MAX_VERSIONS_BYTES)), []
    except files.FileProblem as e:
        why = f"versions.toml {e.message}"
    except tomllib.TOMLDecodeError as e:
        why = f"versions.toml is not valid TOML: {files.clip(e)}"
    why += "; checked against the repository's own pins instead."
    return load_versions(), [Finding("versions", False, why, "versions.toml")]


# --------------------------------------------------------------------------------------------
# Checks


def check_schema(tree: Tree) -> list[Finding]:
    """Every Kubernetes object (incl. extraObjects in values) against the pinned schema."""
    # Imported here: kubernetes-validate is in the `lab` extra, and only this check needs it.
    import kubernetes_validate

    version = tree.versions["kubernetes"]["version"]
    supported = kubernetes_validate.latest_version()
    oldest = kubernetes_validate.utils.all_versions()[0]
    if _minor_tuple(version) < _minor_tuple(oldest):
        return [
            Finding(
                "schema",
                False,
                f"versions.toml pins Kubernetes {version}, older than the oldest schemas the "
                f"installed kubernetes-validate ships (v{oldest}): pin a supported release.",
            )
        ]
    if _minor_tuple(version) > _minor_tuple(supported):
        return [
            Finding(
                "schema",
                False,
                f"the installed kubernetes-validate has schemas up to v{supported} but "
                f"versions.toml pins Kubernetes {version}: `pip install -U kubernetes-validate` "
                "(or reinstall the project: pyproject.toml asks for a recent enough one).",
            )
        ]
    findings = []
    count = 0
    for rel, obj in _schema_targets(tree):
        count += 1
        problem = schema_problem(obj, version)
        if problem:
            findings.append(Finding("schema", False, f"{rel}: {_name(obj)}: {problem}", str(rel)))
    if not findings:
        findings.append(
            Finding(
                "schema",
                True,
                f"{count} Kubernetes objects valid for {kube_minor(version)} "
                f"(kubernetes-validate schemas up to v{supported}, strict)",
            )
        )
    return findings


def _schema_targets(tree: Tree) -> Iterator[tuple[Path, dict[str, Any]]]:
    yield from tree.objects()
    for chart, rel in tree.values_files().items():
        extra = _get(tree.values(chart), "extraObjects")
        if isinstance(extra, dict):
            extra = list(extra.values())
        for obj in extra or []:
            if is_kubernetes_object(obj):
                yield rel, obj


def schema_problem(obj: dict[str, Any], version: str) -> str | None:
    """None when `obj` validates, else one sentence naming the field and the fix."""
    from validators import schemas  # kubernetes-validate, an optional dependency

    try:
        schemas.validate(obj, kube_minor(version), strict=True)
    except schemas.SchemaNotFoundError:
        return (
            f"no schema for apiVersion {files.clip(repr(obj.get('apiVersion')), 100)} kind "
            f"{files.clip(repr(obj.get('kind')), 100)} in Kubernetes {kube_minor(version)}: "
            "check the apiVersion/kind spelling (`kubectl api-resources` lists them)."
        )
    except schemas.ValidationError as e:
        # kubernetes-validate's error carries jsonschema's fields: the path and the short message.
        where = files.clip("/".join(str(p) for p in e.path) or "(top level)", 200)
        msg = files.clip(e.message)  # jsonschema quotes the offending value whole
        hint = (
            "an unknown field is usually a typo or a field at the wrong indentation"
            if "Additional properties" in msg
            else f"compare with `kubectl explain {files.clip(obj.get('kind', ''), 60).lower()}`"
        )
        return f"field {where}: {msg} ({hint})."
    return None


def check_pss(tree: Tree) -> list[Finding]:
    """Every bookstore pod template (Deployments and the loadgen Job) passes `restricted`."""
    from validators import pss

    version = kube_minor(tree.versions["kubernetes"]["version"])
    findings = []
    count = 0
    for rel, obj in tree.objects(BOOKSTORE_DIR):
        try:
            count += pss.count_pod_specs([obj])
            violations = pss.evaluate([obj], level="restricted", version=version)
        except pss.InputError as e:
            findings.append(Finding("pss", False, f"{rel}: {_name(obj)}: {e}", str(rel)))
            continue
        findings += [Finding("pss", False, f"{rel}: {v}", str(rel)) for v in violations]
    if count == 0:
        findings.append(
            Finding(
                "pss",
                False,
                f"no pod templates found under {BOOKSTORE_DIR}: expected the catalog and orders "
                "Deployments and the loadgen Job.",
            )
        )
    elif not findings:
        findings.append(
            Finding("pss", True, f"{count} bookstore pod templates pass restricted ({version})")
        )
    return findings


def check_alloy(tree: Tree) -> list[Finding]:
    """The Alloy pipeline in the values, linted by `validators.alloy_lint`."""
    from validators import alloy_lint

    rel = tree.values_files().get("alloy")
    values = tree.values("alloy")
    if values is None:
        why = tree.absent(rel)
        return [Finding("alloy", False, f"{rel}: the Alloy values file {why}", str(rel))]
    problems = alloy_lint.lint_values(values, loki_values=tree.values("loki"))
    if not problems:
        return [Finding("alloy", True, f"Alloy pipeline: {alloy_lint.describe_pipeline(values)}")]
    return [Finding("alloy", False, f"{rel}: {p}", str(rel)) for p in problems]


def check_kind(tree: Tree) -> list[Finding]:
    """The kind config: the pinned name, one control plane plus workers, no stray image."""
    docs = tree.docs.get(KIND_CONFIG)
    if not docs or not isinstance(docs[0], dict):
        why = tree.absent(KIND_CONFIG)
        return [Finding("kind", False, f"{KIND_CONFIG} {why}", str(KIND_CONFIG))]
    cfg = docs[0]
    kind_pins = tree.versions["kind"]
    problems = []
    if cfg.get("kind") != "Cluster" or cfg.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        problems.append(
            "must be `kind: Cluster` with `apiVersion: kind.x-k8s.io/v1alpha4`, found "
            f"{cfg.get('kind')!r} / {cfg.get('apiVersion')!r}"
        )
    if cfg.get("name") not in (None, kind_pins["cluster_name"]):
        problems.append(
            f"name is {cfg.get('name')!r} but versions.toml [kind].cluster_name is "
            f"{kind_pins['cluster_name']!r}: the lab finds its cluster by that name"
        )
    nodes = cfg.get("nodes") or []
    roles = [n.get("role") for n in nodes if isinstance(n, dict)]
    if roles.count("control-plane") != 1 or roles.count("worker") < 1:
        problems.append(
            f"nodes have roles {roles}: use one control-plane and at least one worker, so that "
            "one agent per node is visible"
        )
    for n in nodes:
        image = n.get("image") if isinstance(n, dict) else None
        if image and image != kind_pins["node_image"]:
            problems.append(
                f"a {n.get('role')} node pins image {image!r}, not versions.toml "
                f"[kind].node_image {kind_pins['node_image']!r}: remove it (the lab passes "
                "--image) or make it equal"
            )
    if problems:
        return [Finding("kind", False, f"{KIND_CONFIG}: {p}", str(KIND_CONFIG)) for p in problems]
    return [Finding("kind", True, f"kind cluster {kind_pins['cluster_name']!r}: {roles}")]


def kind_port_mappings(tree: Tree) -> list[dict[str, Any]]:
    cfg = (tree.docs.get(KIND_CONFIG) or [{}])[0]
    maps = []
    for node in (cfg.get("nodes") if isinstance(cfg, dict) else None) or []:
        for m in (node.get("extraPortMappings") if isinstance(node, dict) else None) or []:
            if isinstance(m, dict):
                maps.append(m)
    return maps


def service_nodeports(tree: Tree) -> dict[int, str]:
    """NodePort -> where it is declared: Services in manifests, Loki's extraObjects, Grafana."""
    ports: dict[int, str] = {}

    def add_service(obj: dict[str, Any], where: str) -> None:
        if obj.get("kind") != "Service" or _get(obj, "spec", "type") != "NodePort":
            return
        for p in _get(obj, "spec", "ports", default=[]):
            if isinstance(p, dict) and "nodePort" in p:
                ports[int(p["nodePort"])] = f"{where} {_name(obj)}"

    for rel, obj in _schema_targets(tree):
        add_service(obj, str(rel))
    grafana = tree.values("grafana") or {}
    if _get(grafana, "service", "type") == "NodePort" and _get(grafana, "service", "nodePort"):
        rel = tree.values_files()["grafana"]
        ports[int(grafana["service"]["nodePort"])] = f"{rel} service.nodePort"
    return ports


def check_nodeports(tree: Tree) -> list[Finding]:
    """Every NodePort has a kind mapping (host port == NodePort) and vice versa."""
    findings = []
    nodeports = service_nodeports(tree)
    mapped: dict[int, int] = {}
    for m in kind_port_mappings(tree):
        cport, hport = m.get("containerPort"), m.get("hostPort")
        if cport != hport:
            findings.append(
                Finding(
                    "nodeports",
                    False,
                    f"{KIND_CONFIG}: extraPortMappings maps host {hport} to node {cport}; "
                    "keep them equal so the NodePort and the localhost port are the same number.",
                    str(KIND_CONFIG),
                )
            )
        if isinstance(cport, int):
            mapped[cport] = hport if isinstance(hport, int) else cport
    for port, where in sorted(nodeports.items()):
        if port not in mapped:
            findings.append(
                Finding(
                    "nodeports",
                    False,
                    f"{where} uses NodePort {port} but {KIND_CONFIG} has no extraPortMappings "
                    f"entry for it: add containerPort: {port}, hostPort: {port}.",
                    str(KIND_CONFIG),
                )
            )
    for port in sorted(set(mapped) - set(nodeports)):
        findings.append(
            Finding(
                "nodeports",
                False,
                f"{KIND_CONFIG} maps port {port} but no Service uses NodePort {port}: "
                "set that nodePort on the Service, or remove the mapping.",
                str(KIND_CONFIG),
            )
        )
    for port, owner in sorted(CONTRACT_NODEPORTS.items()):
        if port not in nodeports:
            findings.append(
                Finding(
                    "nodeports",
                    False,
                    f"NodePort {port} ({owner}) is missing: the lab, the docs and the checkers "
                    f"reach {owner} on localhost:{port}.",
                )
            )
    if not findings:
        listed = ", ".join(f"{p} ({CONTRACT_NODEPORTS.get(p, '?')})" for p in sorted(nodeports))
        findings.append(Finding("nodeports", True, f"NodePorts == kind mappings: {listed}"))
    return findings


def check_versions(tree: Tree) -> list[Finding]:
    """Names, images and the Pod Security version agree with versions.toml."""
    minor = kube_minor(tree.versions["kubernetes"]["version"])
    problems = (
        _pin_problems(tree.versions)
        + _values_file_problems(tree)
        + _bookstore_namespace_problems(tree, minor)
        + logging_namespace_problems(tree)
        + _image_problems(tree)
    )
    if problems:
        return [Finding("versions", False, f"{rel}: {p}", rel) for rel, p in problems]
    return [
        Finding(
            "versions",
            True,
            f"namespaces, images and enforce-version {minor} agree with versions.toml",
        )
    ]


def _pin_problems(v: dict[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    # The pins agree with each other: node image == Kubernetes version, pinned by digest;
    # kubectl within one minor of the server (Kubernetes' version skew policy).
    kube = v["kubernetes"]["version"]
    image = re.fullmatch(r"kindest/node:(v[\d.]+)@sha256:[0-9a-f]{64}", v["kind"]["node_image"])
    if not image:
        problems.append(
            (
                "versions.toml",
                f"[kind].node_image {v['kind']['node_image']!r} is not kindest/node:<tag>@sha256:"
                "<digest>: pin the image by digest, as kind's release notes list it",
            )
        )
    elif image.group(1) != kube:
        problems.append(
            (
                "versions.toml",
                f"[kind].node_image runs Kubernetes {image.group(1)} but [kubernetes].version is "
                f"{kube}: schemas and enforce-version would follow the wrong release",
            )
        )
    kubectl = _get(v, "tools", "kubectl", "version", default="")
    if kubectl and abs(_minor_tuple(kubectl)[1] - _minor_tuple(kube)[1]) > 1:
        problems.append(
            (
                "versions.toml",
                f"[tools.kubectl].version {kubectl} is more than one minor away from the "
                f"server {kube}; kubectl supports only one minor of skew",
            )
        )
    return problems


def _values_file_problems(tree: Tree) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    # Every values file named in versions.toml exists.
    for chart, rel in tree.values_files().items():
        if rel not in tree.docs:
            problems.append((str(rel), f"values file of chart {chart} {tree.absent(rel)}"))
    return problems


def _bookstore_namespace_problems(tree: Tree, minor: str) -> list[tuple[str, str]]:
    app_ns = _get(tree.versions, "bookstore", "namespace", default="bookstore")
    problems: list[tuple[str, str]] = []
    # The bookstore namespace: restricted, pinned to the cluster's minor.
    found = tree.find("Namespace", app_ns)
    if not found:
        problems.append((str(BOOKSTORE_DIR), f"no Namespace {app_ns!r} (versions.toml)"))
    else:
        rel, ns = found
        labels = _get(ns, "metadata", "labels", default={})
        for mode in ("enforce", "audit", "warn"):
            if labels.get(PSS_LABEL + mode) != "restricted":
                problems.append(
                    (
                        str(rel),
                        f"Namespace {app_ns} label {PSS_LABEL}{mode} is "
                        f"{labels.get(PSS_LABEL + mode)!r}; set it to restricted",
                    )
                )
        if labels.get(PSS_LABEL + "enforce-version") != minor:
            problems.append(
                (
                    str(rel),
                    f"Namespace {app_ns} label {PSS_LABEL}enforce-version is "
                    f"{labels.get(PSS_LABEL + 'enforce-version')!r}; set it to {minor!r}, the "
                    "minor of versions.toml [kubernetes].version",
                )
            )
    kustom = (tree.docs.get(BOOKSTORE_DIR / "kustomization.yaml") or [{}])[0]
    if isinstance(kustom, dict) and kustom.get("namespace") not in (None, app_ns):
        problems.append(
            (
                str(BOOKSTORE_DIR / "kustomization.yaml"),
                f"namespace: {kustom.get('namespace')!r} would move every object out of "
                f"{app_ns!r} (versions.toml [bookstore].namespace)",
            )
        )
    for rel, obj in tree.objects(BOOKSTORE_DIR):
        ns = _get(obj, "metadata", "namespace")
        if obj.get("kind") != "Namespace" and ns != app_ns:
            problems.append((str(rel), f"{_name(obj)} has namespace {ns!r}, expected {app_ns!r}"))
    return problems


def _image_problems(tree: Tree) -> list[tuple[str, str]]:
    v = tree.versions
    problems: list[tuple[str, str]] = []
    # Images: each Deployment runs the image versions.toml names; the Job reuses one of them.
    images = v.get("images", {})
    for svc in BOOKSTORE_SERVICES:
        found = tree.find("Deployment", svc)
        if not found:
            continue  # reported by check_bookstore
        rel, dep = found
        for c in _get(pod_spec(dep), "containers", default=[]):
            if c.get("image") != images.get(svc):
                problems.append(
                    (
                        str(rel),
                        f"Deployment {svc} container {c.get('name')} runs {c.get('image')!r}; "
                        f"versions.toml [images].{svc} is {images.get(svc)!r}",
                    )
                )
    for rel, obj in tree.objects(BOOKSTORE_DIR):
        if obj.get("kind") == "Job":
            for c in _get(pod_spec(obj), "containers", default=[]):
                if c.get("image") not in images.values():
                    problems.append(
                        (
                            str(rel),
                            f"{_name(obj)} runs {c.get('image')!r}: use one of the bookstore "
                            f"images {sorted(images.values())} (kind-loaded, never pulled)",
                        )
                    )
    return problems


# The chart whose pods need the node (hostPath /var/log): its namespace alone is privileged.
AGENT_CHART = "alloy"
PLATFORM_LEVELS = ("baseline", "restricted")


def logging_namespaces(tree: Tree) -> dict[str, dict[str, Any]]:
    """Name -> labels of every Namespace in manifests/logging/namespace.yaml."""
    docs = tree.docs.get(LOGGING_NAMESPACE) or []
    return {
        str(_get(d, "metadata", "name")): _get(d, "metadata", "labels", default={}) or {}
        for d in docs
        if isinstance(d, dict) and d.get("kind") == "Namespace"
    }


def logging_namespace_problems(tree: Tree) -> list[tuple[str, str]]:
    """One Namespace per chart namespace; only the agent's is privileged, the others enforce
    baseline or restricted (Loki and Grafana need nothing from the node)."""
    where = str(LOGGING_NAMESPACE)
    charts = tree.versions.get("charts", {})
    minor = kube_minor(tree.versions["kubernetes"]["version"])
    namespaces = logging_namespaces(tree)
    if not namespaces:
        return [(where, "no Namespace object")]
    problems = []
    agent_ns = _get(charts, AGENT_CHART, "namespace")
    chart_ns = {c.get("namespace") for c in charts.values()}
    for chart, pins in sorted(charts.items()):
        ns = pins.get("namespace")
        if ns not in namespaces:
            problems.append(
                (where, f"Namespace {ns!r} but versions.toml installs charts into "
                        f"{sorted(chart_ns)}; this file creates {sorted(namespaces)}")
            )  # fmt: skip
        elif chart != AGENT_CHART and ns == agent_ns:
            problems.append(
                (where, f"chart {chart} is installed into {ns!r}, the agent's privileged "
                        "namespace: only the agent needs privileged; give Loki and Grafana a "
                        "namespace that enforces restricted (versions.toml [charts.*].namespace)")
            )  # fmt: skip
    for name, labels in namespaces.items():
        if name not in chart_ns:
            problems.append(
                (where, f"Namespace {name!r} is the namespace of no chart in versions.toml "
                        f"({sorted(chart_ns)})")
            )  # fmt: skip
            continue
        enforce = labels.get(PSS_LABEL + "enforce")
        if name == agent_ns and enforce != "privileged":
            problems.append(
                (where, f"Namespace {name}: {PSS_LABEL}enforce is {enforce!r}: the agent's "
                        "hostPath /var/log needs `privileged` (baseline and restricted forbid "
                        "hostPath)")
            )  # fmt: skip
        elif name != agent_ns and enforce not in PLATFORM_LEVELS:
            problems.append(
                (where, f"Namespace {name}: {PSS_LABEL}enforce is {enforce!r}: Loki and Grafana "
                        "need nothing from the node, so their namespace enforces restricted (or "
                        "baseline); only the agent's namespace is privileged")
            )  # fmt: skip
        if labels.get(PSS_LABEL + "enforce-version") != minor:
            problems.append(
                (where, f"Namespace {name}: {PSS_LABEL}enforce-version is "
                        f"{labels.get(PSS_LABEL + 'enforce-version')!r}; set it to {minor!r}, "
                        "the minor of versions.toml [kubernetes].version")
            )  # fmt: skip
    return problems


def rendered_pss_problems(tree: Tree, chart: str, objs: list[dict[str, Any]]) -> list[str]:
    """The rendered pods of a chart pass the Pod Security level their namespace enforces, so
    `helm install` is not refused by admission (`restricted` for Loki and Grafana)."""
    from validators import pss

    ns = _get(tree.versions, "charts", chart, "namespace")
    level = logging_namespaces(tree).get(ns, {}).get(PSS_LABEL + "enforce")
    if level not in PLATFORM_LEVELS:
        return []  # privileged (the agent) or a namespace reported by check_versions
    version = kube_minor(tree.versions["kubernetes"]["version"])
    try:
        violations = pss.evaluate(objs, level=level, version=version)
    except pss.InputError as e:
        return [f"Pod Security {level} could not be evaluated: {e}"]
    return [f"namespace {ns} enforces {level}: {v}" for v in violations]


def check_bookstore(tree: Tree) -> list[Finding]:
    """The bookstore objects keep the contract the services, the lab and the checkers rely on."""
    problems: list[tuple[str, str]] = []
    kustom = tree.docs.get(BOOKSTORE_DIR / "kustomization.yaml")
    listed = set(_get((kustom or [{}])[0], "resources", default=[]) or [])
    if not kustom:
        problems.append((str(BOOKSTORE_DIR), "kustomization.yaml is missing"))
    present = {p.name for p in tree.docs if p.parent == BOOKSTORE_DIR}
    for name in sorted(present - {"kustomization.yaml", LOADGEN.name} - listed):
        problems.append((f"{BOOKSTORE_DIR}/{name}", "not listed in kustomization.yaml resources"))
    if LOADGEN.name in listed:
        problems.append(
            (
                str(LOADGEN),
                "the loadgen Job must not be in kustomization.yaml: the lab runs it on demand, "
                "and re-applying a finished Job fails",
            )
        )
    for name in sorted(listed - present):
        problems.append((str(BOOKSTORE_DIR / "kustomization.yaml"), f"lists missing {name}"))

    cm = tree.find("ConfigMap", CONFIGMAP)
    if not cm:
        problems.append((str(BOOKSTORE_DIR), f"no ConfigMap {CONFIGMAP}"))
    else:
        data = cm[1].get("data") or {}
        for key in CONFIG_KEYS:
            if key not in data:
                problems.append((str(cm[0]), f"ConfigMap {CONFIGMAP} lacks {key}"))

    for svc in BOOKSTORE_SERVICES:
        problems += _deployment_problems(tree, svc)
        problems += _service_problems(tree, svc)
        if not tree.find("ServiceAccount", svc):
            problems.append((str(BOOKSTORE_DIR), f"no ServiceAccount {svc}"))
    job = tree.find("Job", "loadgen")
    if not job:
        problems.append((str(LOADGEN), "no Job loadgen"))
    if problems:
        return [Finding("bookstore", False, f"{rel}: {p}", rel) for rel, p in problems]
    return [Finding("bookstore", True, "catalog and orders keep the service contract")]


def _deployment_problems(tree: Tree, svc: str) -> list[tuple[str, str]]:
    found = tree.find("Deployment", svc)
    if not found:
        return [(str(BOOKSTORE_DIR), f"no Deployment {svc}")]
    rel, dep = str(found[0]), found[1]
    out = []

    def bad(msg: str) -> None:
        out.append((rel, f"Deployment {svc}: {msg}"))

    if _get(dep, "spec", "replicas") != 2:
        bad(f"replicas is {_get(dep, 'spec', 'replicas')!r}; the lab expects 2")
    if _get(dep, "spec", "template", "metadata", "labels", "app") != svc:
        bad(f"pod template label app must be {svc!r} (it becomes the Loki label `app`)")
    spec = pod_spec(dep) or {}
    if spec.get("automountServiceAccountToken") is not False:
        bad("set automountServiceAccountToken: false (the service never calls the API)")
    if spec.get("serviceAccountName") != svc:
        bad(f"serviceAccountName must be {svc!r}")
    if not spec.get("terminationGracePeriodSeconds"):
        bad("set terminationGracePeriodSeconds so in-flight requests and logs are flushed")
    containers = spec.get("containers") or []
    if len(containers) != 1:
        bad(f"has {len(containers)} containers; one app container and no log sidecar")
        return out
    c = containers[0]
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    if ports.get("http") != CONTAINER_PORT:
        bad(f"container port must be {CONTAINER_PORT} named http, found {ports}")
    if c.get("imagePullPolicy") != "IfNotPresent":
        bad("imagePullPolicy must be IfNotPresent: images are kind-loaded, never pulled")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = _get(c, probe, "httpGet", default={})
        if get.get("path") != path or get.get("port") != "http":
            bad(f"{probe} must be httpGet {path} on port http, found {get or None}")
    res = c.get("resources") or {}
    if not res.get("requests") or not res.get("limits"):
        bad("set resources.requests and resources.limits")
    refs = [_get(e, "configMapRef", "name") for e in c.get("envFrom") or []]
    if CONFIGMAP not in refs:
        bad(f"envFrom must include configMapRef {CONFIGMAP}")
    mounts = {m.get("mountPath"): m.get("name") for m in c.get("volumeMounts") or []}
    vols = {v.get("name"): v for v in spec.get("volumes") or []}
    tmp = vols.get(mounts.get("/tmp"))
    if not tmp or "emptyDir" not in tmp:
        bad("mount an emptyDir at /tmp: it is the only writable path with a read-only root")
    return out


def _service_problems(tree: Tree, svc: str) -> list[tuple[str, str]]:
    found = tree.find("Service", svc)
    if not found:
        return [(str(BOOKSTORE_DIR), f"no Service {svc}")]
    rel, obj = str(found[0]), found[1]
    out = []
    if _get(obj, "spec", "selector") != {"app": svc}:
        out.append((rel, f"Service {svc} selector must be app: {svc}"))
    ports = _get(obj, "spec", "ports", default=[])
    if not any(p.get("port") == SERVICE_PORT and p.get("targetPort") == "http" for p in ports):
        out.append((rel, f"Service {svc} must expose port {SERVICE_PORT} -> targetPort http"))
    return out


def loki_service(tree: Tree) -> tuple[str, str, int]:
    """(service, namespace, port) of Loki's HTTP API as the Loki values make it."""
    pins = tree.versions["charts"]["loki"]
    values = tree.values("loki") or {}
    name = values.get("fullnameOverride") or pins["release"]
    port = _get(values, "loki", "server", "http_listen_port", default=LOKI_HTTP_PORT_DEFAULT)
    return str(name), pins["namespace"], int(port)


def alloy_push_urls(values: dict[str, Any] | None) -> list[str]:
    content = _get(values, "alloy", "configMap", "content", default="") or ""
    block = re.findall(r'loki\.write\s+"[^"]*"\s*\{(.*?)\n\}', content, flags=re.S)
    return re.findall(r'\burl\s*=\s*"([^"]+)"', "\n".join(block))


def grafana_loki_urls(values: dict[str, Any] | None) -> list[str]:
    files = _get(values, "datasources", default={}) or {}
    urls = []
    for body in files.values():
        for ds in _get(body, "datasources", default=[]) or []:
            if isinstance(ds, dict) and ds.get("type") == "loki":
                urls.append(str(ds.get("url", "")))
    return urls


def check_loki_endpoints(tree: Tree) -> list[Finding]:
    """Alloy pushes to, and Grafana reads from, the Service and port the Loki values create."""
    name, ns, port = loki_service(tree)
    expected = f"{name}.{ns}.svc.cluster.local:{port}"
    loki_values = tree.values("loki") or {}
    problems = []
    if _get(loki_values, "gateway", "enabled", default=True) is not False:
        problems.append(
            "Loki values leave gateway enabled: the push URL would be the gateway's, not "
            f"Service {name} on {port}; set gateway.enabled: false"
        )
    pushes = alloy_push_urls(tree.values("alloy"))
    if not pushes:
        problems.append("no loki.write endpoint url in alloy.configMap.content")
    for url in pushes:
        if _service_url_target(url) != (name, ns, port) or not url.endswith("/loki/api/v1/push"):
            problems.append(
                f"Alloy pushes to {url}; Loki's push API is http://{expected}/loki/api/v1/push"
            )
    reads = grafana_loki_urls(tree.values("grafana"))
    if not reads:
        problems.append("Grafana values provision no datasource of type loki")
    for url in reads:
        if _service_url_target(url) != (name, ns, port):
            problems.append(f"Grafana's Loki datasource points at {url}; use http://{expected}")
    if problems:
        return [Finding("loki-endpoints", False, p) for p in problems]
    return [Finding("loki-endpoints", True, f"Alloy and Grafana both use {expected}")]


# --------------------------------------------------------------------------------------------
# helm template (only where helm and the pinned charts are on this machine)


def find_helm() -> str | None:
    return os.environ.get("LAB_HELM") or shutil.which("helm")


def chart_dirs(root: Path) -> list[Path]:
    """Where packaged charts may be cached: $LAB_CHART_DIR, then <root>/.lab/charts."""
    dirs = [Path(p) for p in os.environ.get("LAB_CHART_DIR", "").split(os.pathsep) if p]
    return [*dirs, root / ".lab" / "charts"]


def find_chart(root: Path, chart: str, version: str) -> Path | None:
    """`<chart>-<version>.tgz`, or an unpacked `<chart>/` whose Chart.yaml has that version."""
    for d in chart_dirs(root):
        tgz = d / f"{chart}-{version}.tgz"
        if tgz.is_file():
            return tgz
        meta = d / chart / "Chart.yaml"
        if meta.is_file():
            try:
                if str(files.yaml_mapping(meta).get("version")) == version:
                    return d / chart
            except files.FileProblem:
                continue
    return None


def helm_template(
    helm: str,
    chart_ref: Path,
    pins: dict[str, Any],
    values: Path | list[Path],
    kube_version: str,
) -> list[dict[str, Any]]:
    """Render one chart as `helm install` would, with one values file or several layered in
    order; raises RuntimeError with helm's own message."""
    layers = values if isinstance(values, list) else [values]
    argv = [helm, "template", pins["release"], str(chart_ref), "--namespace", pins["namespace"]]
    for layer in layers:
        argv += ["--values", str(layer)]
    argv += ["--kube-version", kube_version]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=HELM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(argv)}` did not finish in {HELM_TIMEOUT_S}s") from None
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"helm exited {proc.returncode}")
    try:
        docs = files.parse_yaml(proc.stdout, f"helm template {pins['chart']}")
    except files.FileProblem as e:
        raise RuntimeError(str(e)) from None
    return [d.value for d in docs if isinstance(d.value, dict)]


def check_helm_render(tree: Tree) -> list[Finding]:
    """Render each pinned chart with our values; validate and inspect what a cluster would get."""
    helm = find_helm()
    if not helm:
        return [
            Finding(
                "helm-render",
                True,
                "SKIP: no `helm` on PATH (or $LAB_HELM), so the charts were not rendered. "
                "Install helm "
                + _get(tree.versions, "tools", "helm", "version", default="")
                + " to also check what the charts make of our values.",
                skipped=True,
            )
        ]
    kube_version = tree.versions["kubernetes"]["version"]
    findings = []
    for chart, pins in sorted(tree.versions.get("charts", {}).items()):
        findings += _render_chart(tree, helm, chart, pins, kube_version)
    return findings


def _render_chart(
    tree: Tree, helm: str, chart: str, pins: dict[str, Any], kube_version: str
) -> list[Finding]:
    """One pinned chart rendered with our values: its objects validated and inspected."""
    findings: list[Finding] = []
    ref = find_chart(tree.root, pins["chart"], pins["version"])
    if ref is None:
        where = ", ".join(str(d) for d in chart_dirs(tree.root))
        findings.append(
            Finding(
                "helm-render",
                True,
                f"SKIP {chart}: chart {pins['chart']}-{pins['version']} not found in {where}. "
                f"`helm pull {pins['repo_name']}/{pins['chart']} --version {pins['version']} "
                "-d .lab/charts` (or set LAB_CHART_DIR) to render it.",
                skipped=True,
            )
        )
        return findings
    values = tree.root / pins["values"]
    if not values.is_file():
        findings.append(
            Finding(
                "helm-render",
                False,
                f"{pins['values']} is missing, so chart {pins['chart']} cannot be rendered "
                "with the lab's values: restore the file (git checkout it).",
                pins["values"],
            )
        )
        return findings
    try:
        objs = helm_template(helm, ref, pins, values, kube_version)
    except RuntimeError as e:
        findings.append(
            Finding(
                "helm-render",
                False,
                f"{pins['values']}: helm template {pins['chart']} {pins['version']} failed: {e}",
                pins["values"],
            )
        )
        return findings
    problems = [
        f"{_name(o)}: {p}" for o in objs if (p := schema_problem(o, kube_version)) is not None
    ]
    problems += _selectors_without_pods(objs)
    problems += RENDER_EXPECTATIONS.get(chart, lambda _t, _o: [])(tree, objs)
    problems += rendered_pss_problems(tree, chart, objs)
    findings += check_values_keys(tree, chart, ref)
    if problems:
        findings += [
            Finding("helm-render", False, f"{pins['values']} rendered: {p}", pins["values"])
            for p in problems
        ]
    else:
        kinds = sorted({_name(o) for o in objs})
        findings.append(
            Finding(
                "helm-render",
                True,
                f"{pins['chart']} {pins['version']} renders {len(objs)} valid objects: "
                + ", ".join(kinds),
            )
        )
    return findings


# Sections the chart hands through as free-form maps although values.yaml shows a few entries
# (Grafana's own ini sections go straight into grafana.ini).
FREE_FORM_VALUES = {"grafana": ("grafana.ini",)}


def read_chart(ref: Path) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(default values, values.schema.json or {}, all template text) of a packaged or unpacked
    chart, without its subcharts."""
    texts: dict[str, str] = {}
    if ref.is_dir():
        for path in ref.rglob("*"):
            rel = path.relative_to(ref).as_posix()
            if path.is_file() and not rel.startswith("charts/"):
                texts[rel] = files.read_bytes(path).decode(errors="replace")
    else:
        with tarfile.open(ref) as tar:
            for member in tar.getmembers():
                top, _, rel = member.name.partition("/")
                if member.isfile() and not rel.startswith("charts/"):
                    if member.size > files.MAX_FILE_BYTES:
                        raise files.FileProblem(f"{ref}:{member.name}", "is too large to read")
                    data = tar.extractfile(member)
                    texts[rel] = data.read().decode(errors="replace") if data else ""
    docs = files.parse_yaml(texts.get("values.yaml", ""), ref / "values.yaml")
    defaults = (docs[0].value if docs else None) or {}
    schema = json.loads(texts["values.schema.json"]) if "values.schema.json" in texts else {}
    templates = "\n".join(v for k, v in sorted(texts.items()) if k.startswith("templates/"))
    return defaults, schema, templates


def _free_form(schema: dict[str, Any], keys: list[str]) -> bool:
    """True when values.schema.json declares this path an open map (additionalProperties)."""
    node = schema
    for key in keys:
        node = _get(node, "properties", key)
        if not isinstance(node, dict):
            return False
    return node.get("additionalProperties") is True and not node.get("properties")


def unknown_value_keys(
    ours: dict[str, Any],
    defaults: dict[str, Any],
    schema: dict[str, Any],
    templates: str,
    free_form: tuple[str, ...] = (),
    keys: tuple[str, ...] = (),
) -> list[str]:
    """Paths in our values that the chart neither defaults, nor declares open, nor reads.

    Helm ignores unknown keys silently, so a typo (`alloy.mount.varlog`) renders a chart that
    quietly does something else. A key counts as known when values.yaml has it, when the
    schema or FREE_FORM_VALUES makes its parent an open map, or when a template reads it
    (`.Values.service.nodePort` is read by Grafana's templates but absent from values.yaml).
    """
    found = []
    for key, value in ours.items():
        path = (*keys, str(key))
        if ".".join(path) in free_form:
            continue
        if key not in defaults:
            if keys:
                read = re.search(rf"\.{re.escape(keys[-1])}\.{re.escape(str(key))}\b", templates)
            else:
                read = re.search(
                    rf'\.Values\.{re.escape(str(key))}\b|"{re.escape(str(key))}"', templates
                )
            if not read:
                found.append(".".join(path))
            continue
        default = defaults[key]
        if (
            isinstance(value, dict)
            and isinstance(default, dict)
            and default
            and not _free_form(schema, list(path))
        ):
            found += unknown_value_keys(value, default, schema, templates, free_form, path)
    return found


def check_values_keys(tree: Tree, chart: str, ref: Path) -> list[Finding]:
    """Every key of our values means something to the pinned chart (typos render silently)."""
    rel = tree.values_files()[chart]
    pins = tree.versions["charts"][chart]
    defaults, schema, templates = read_chart(ref)
    unknown = unknown_value_keys(
        tree.values(chart) or {}, defaults, schema, templates, FREE_FORM_VALUES.get(chart, ())
    )
    if not unknown:
        return [
            Finding(
                "values-keys",
                True,
                f"every key in {rel} is known to {pins['chart']} {pins['version']}",
            )
        ]
    return [
        Finding(
            "values-keys",
            False,
            f"{rel}: `{path}` is not a value of chart {pins['chart']} {pins['version']} (not in "
            "its values.yaml, schema or templates), so helm ignores it silently. Check the "
            f"spelling against `helm show values {pins['repo_name']}/{pins['chart']} --version "
            f"{pins['version']}`.",
            str(rel),
        )
        for path in unknown
    ]


def _selectors_without_pods(objs: list[dict[str, Any]]) -> list[str]:
    """Services whose selector matches no rendered pod template (e.g. a NodePort extraObject)."""
    pod_labels = [
        _get(o, "spec", "template", "metadata", "labels", default={})
        for o in objs
        if o.get("kind") in WORKLOAD_KINDS - {"Pod", "CronJob"}
    ]
    out = []
    for svc in (o for o in objs if o.get("kind") == "Service"):
        selector = _get(svc, "spec", "selector", default={})
        if selector and not any(selector.items() <= labels.items() for labels in pod_labels):
            out.append(f"{_name(svc)} selects {selector}, which matches no pod of this release")
    return out


def _workloads(objs: Iterable[dict[str, Any]]) -> set[str]:
    return {_name(o) for o in objs if o.get("kind") in WORKLOAD_KINDS}


def _expect_loki(tree: Tree, objs: list[dict[str, Any]]) -> list[str]:
    name, _ns, port = loki_service(tree)
    out = []
    if _workloads(objs) != {f"StatefulSet/{name}"}:
        out.append(
            f"workloads are {sorted(_workloads(objs))}; a single binary should render only "
            f"StatefulSet/{name} (caches, canary, gateway, tests and read/write/backend off)"
        )
    svc = next((o for o in objs if _name(o) == f"Service/{name}"), None)
    if not svc or not any(p.get("port") == port for p in _get(svc, "spec", "ports", default=[])):
        out.append(f"no Service {name} with port {port}, which Alloy and Grafana use")
    return out


def _expect_alloy(tree: Tree, objs: list[dict[str, Any]]) -> list[str]:
    release = tree.versions["charts"]["alloy"]["release"]
    ds = next((o for o in objs if _name(o) == f"DaemonSet/{release}"), None)
    if ds is None:
        return [f"no DaemonSet/{release}; set controller.type: daemonset"]
    vols = _get(pod_spec(ds), "volumes", default=[])
    if not any(_get(v, "hostPath", "path") == "/var/log" for v in vols):
        return ["the DaemonSet mounts no hostPath /var/log; set alloy.mounts.varlog: true"]
    return []


def _expect_grafana(tree: Tree, objs: list[dict[str, Any]]) -> list[str]:
    release = tree.versions["charts"]["grafana"]["release"]
    svc = next((o for o in objs if _name(o) == f"Service/{release}"), None)
    ports = [p.get("nodePort") for p in _get(svc, "spec", "ports", default=[])] if svc else []
    if 30300 not in ports:
        return [f"Service {release} has nodePorts {ports}; expected 30300"]
    return []


RENDER_EXPECTATIONS = {"loki": _expect_loki, "alloy": _expect_alloy, "grafana": _expect_grafana}


# --------------------------------------------------------------------------------------------
# Entry points

CHECKS = (
    check_schema,
    check_pss,
    check_alloy,
    check_kind,
    check_nodeports,
    check_versions,
    check_bookstore,
    check_loki_endpoints,
)


def name_of(check: Any) -> str:
    """check_loki_endpoints -> loki-endpoints (the name its findings carry)."""
    return check.__name__.removeprefix("check_").replace("_", "-")


def check_tree(
    root: Path, versions: dict[str, Any] | None = None, *, helm: bool = True
) -> list[Finding]:
    """Run every offline check on a repository or submission folder; see the module docstring.

    A check that crashes on malformed input becomes a failed finding naming the check, so one
    broken file never hides the results of the others.
    """
    tree, findings = load_tree(Path(root), versions)
    if not tree.docs:
        return findings
    for check in (*CHECKS, *((check_helm_render,) if helm else ())):
        try:
            findings += check(tree)
        except ImportError as e:
            findings.append(
                Finding(
                    name_of(check),
                    False,
                    f"cannot run: {e}. Reinstall the project (`pip install -e .[lab]`).",
                )
            )
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            findings.append(
                Finding(
                    name_of(check),
                    False,
                    f"could not run on this tree: {type(e).__name__}: {files.clip(e)}. The "
                    "files it reads are probably malformed (see the other findings).",
                )
            )
    return findings


def render_human(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        mark = "SKIP" if f.skipped else ("ok  " if f.ok else "FAIL")
        message = f.message.removeprefix("SKIP: ").removeprefix("SKIP ") if f.skipped else f.message
        lines.append(f"{mark} [{f.check}] {message}")
    failed = sum(not f.ok for f in findings)
    skipped = sum(f.skipped for f in findings)
    lines.append(
        f"\n{len(findings) - failed - skipped} ok, {failed} failed, {skipped} skipped"
        + ("" if failed else " - manifests are consistent")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m validators.manifests",
        description="Offline checks of manifests/, the chart values and versions.toml.",
    )
    parser.add_argument(
        "root", nargs="?", default=".", type=Path, help="repository or submission folder"
    )
    parser.add_argument("--json", action="store_true", help="print findings as JSON")
    parser.add_argument(
        "--no-helm", action="store_true", help="do not run `helm template` even if available"
    )
    args = parser.parse_args(argv)
    files.safe_output()
    findings = check_tree(args.root, helm=not args.no_helm)
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        print(render_human(findings))
    return 0 if all(f.ok for f in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
