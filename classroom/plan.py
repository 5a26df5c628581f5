"""`class plan`: what a class needs and what `up` would create, computed without a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from classroom import sizing
from classroom.learners import bookstore_objects, learner_objects
from classroom.roster import Learner
from labconfig.versions import REPO_ROOT, load_versions

LOADGEN = Path("manifests/bookstore/loadgen.yaml")
# The shared stack's requests per node or per cluster, from our values files where they set
# resources; the gateway (chart default: none) is an estimate of an idle nginx.
GATEWAY_ESTIMATE = sizing.Need({"requests.cpu": 0.05, "requests.memory": 64 * 2**20,
                                "limits.cpu": 0.0, "limits.memory": 128 * 2**20})  # fmt: skip


@dataclass(frozen=True)
class ClassPlan:
    learners: list[Learner]
    per_learner_objects: dict[str, list[str]]
    bookstore_need: sizing.Need
    bookstore_pods: int
    quota: dict[str, Any]
    quota_problems: list[str]
    shared_need: sizing.Need
    total_need: sizing.Need


def _values_need(values: dict[str, Any], *path: str) -> sizing.Need:
    node: Any = values
    for key in path:
        node = (node or {}).get(key)
    return sizing.container_need({"resources": node or {}})


def shared_need(nodes: int, root: Path = REPO_ROOT) -> sizing.Need:
    """Loki (single binary) + Grafana once, Alloy once per node, the gateway (estimate)."""
    charts = load_versions(root / "versions.toml")["charts"]

    def values(chart: str) -> dict[str, Any]:
        return yaml.safe_load((root / charts[chart]["values"]).read_text()) or {}

    loki = _values_need(values("loki"), "singleBinary", "resources")
    grafana = _values_need(values("grafana"), "resources")
    alloy = _values_need(values("alloy"), "alloy", "resources").times(nodes)
    return loki + grafana + alloy + GATEWAY_ESTIMATE


def make_plan(
    learners: list[Learner], class_name: str, nodes: int, root: Path = REPO_ROOT
) -> ClassPlan:
    per_learner: dict[str, list[str]] = {}
    quota: dict[str, Any] = {}
    need, pods = sizing.Need({}), 0
    for lrn in learners:
        objs = learner_objects(lrn, class_name, root) + bookstore_objects(lrn, root)
        per_learner[lrn.id] = [f"{o['kind']}/{o['metadata']['name']}" for o in objs]
        if not quota:
            quota = next(o for o in objs if o["kind"] == "ResourceQuota")["spec"]["hard"]
            loadgen = list(yaml.safe_load_all((root / LOADGEN).read_text()))
            need, pods = sizing.workload_need(objs + [d for d in loadgen if d])
    problems = need.fits_in(quota)
    if "pods" in quota and pods > int(quota["pods"]):
        problems.append(f"pods: needs {pods}, quota {quota['pods']}")
    hard_total = sizing.Need({k: sizing.quantity(quota[k]) for k in sizing.KEYS if k in quota})
    shared = shared_need(nodes, root)
    return ClassPlan(
        learners, per_learner, need, pods, quota, problems, shared,
        hard_total.times(len(learners)) + shared,
    )  # fmt: skip


def render_plan(plan: ClassPlan, class_name: str) -> str:
    n = len(plan.learners)
    lines = [f"Class {class_name!r}: {n} learner(s). Nothing below has been created.", ""]
    lines.append("Per learner (namespace = Loki tenant):")
    for lrn in plan.learners:
        objs = ", ".join(plan.per_learner_objects[lrn.id])
        lines.append(f"  {lrn.namespace}: {objs}")
    lines += ["", "Shared: Loki (auth on, gateway with one basic-auth user per tenant), one Alloy "
              "DaemonSet setting each line's tenant from its namespace, Grafana (sign-in only; "
              "a setup Job gives each learner an organisation with their own Loki data source).",
              ""]  # fmt: skip
    lines.append("Sizing (requests / limits):")
    for key in sizing.KEYS:
        lines.append(
            f"  {key:16} bookstore needs {sizing.fmt(key, plan.bookstore_need.values[key]):>7}"
            f"  quota {plan.quota.get(key, '-'):>6}"
            f"  class total {sizing.fmt(key, plan.total_need.values[key]):>8}"
            f"  (shared stack {sizing.fmt(key, plan.shared_need.values[key])})"
        )
    lines.append(
        f"  pods             bookstore needs {plan.bookstore_pods}, quota {plan.quota.get('pods')}"
    )
    if plan.quota_problems:
        lines += ["", "The learner quota does not hold the bookstore; raise it in "
                  "manifests/class/learner.yaml:"]  # fmt: skip
        lines += [f"  - {p}" for p in plan.quota_problems]
    return "\n".join(lines)
