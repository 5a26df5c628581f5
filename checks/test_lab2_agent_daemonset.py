"""Exercise 2: one agent pod per node (a DaemonSet) reads /var/log, from a privileged namespace
that holds nothing else."""

from __future__ import annotations

import pytest

from checks.evidence import (
    AGENT_LABEL,
    CheckFailed,
    Passed,
    find_agent,
    is_ready,
    log_sidecars,
    looks_like_log_agent,
    name_of,
    nodes_for_daemonset,
    nodes_without_ready_agent,
    owned_by,
    varlog_mounts,
)
from checks.lab import Lab


def check_agent_daemonset(lab: Lab) -> Passed:
    """The contract (docs/reference/checkers.md): the agent is the DaemonSet in the agent's
    namespace (versions.toml [charts.alloy], `logging-agent`)
    labelled app.kubernetes.io/name=alloy (any release name), or named as versions.toml's
    release; the Loki checkers' readiness gate finds it the same way (checks.evidence.find_agent).
    """
    ns, release = lab.agent_ns, lab.names["alloy"]
    install = (
        f"helm upgrade --install {release} grafana/alloy -n {ns} "
        "-f manifests/logging/alloy-values.yaml"
    )
    in_logging = lab.kube.list_daemonsets(ns)
    agent = find_agent(in_logging, release)
    agents = [agent] if agent else []
    if not agents:
        others = [ds for ds in in_logging if looks_like_log_agent(ds)]
        if others:
            key, value = AGENT_LABEL
            raise CheckFailed(
                f"DaemonSet {ns}/{name_of(others[0])} looks like a log agent but is not the "
                f"Alloy chart's (no label {key}={value}, not named {release})",
                "the Alloy chart's DaemonSet: the lab's pipeline and its checkers are Alloy's",
                install,
            )
        in_app = [ds for ds in lab.kube.list_daemonsets(lab.app_ns) if looks_like_log_agent(ds)]
        if in_app:
            raise CheckFailed(
                f"log agent DaemonSet {name_of(in_app[0])} runs in namespace {lab.app_ns}",
                f"the agent in namespace {ns} (privileged), apart from the app, which stays "
                "restricted",
                f"helm uninstall {name_of(in_app[0])} -n {lab.app_ns}; {install}",
            )
        deployments = [d for d in lab.kube.list_deployments(ns) if looks_like_log_agent(d)]
        if deployments:
            raise CheckFailed(
                f"the agent {ns}/{name_of(deployments[0])} is a Deployment: it runs on "
                "whichever node the scheduler picks and cannot read the other nodes' files",
                "a DaemonSet: one agent pod on every node, tailing that node's /var/log/pods",
                f"set controller.type: daemonset in the Alloy values, then {install}",
            )
        raise CheckFailed(
            f"no log agent DaemonSet in namespace {ns}",
            f"DaemonSet {release} in {ns}",
            install,
        )
    in_app = [ds for ds in lab.kube.list_daemonsets(lab.app_ns) if looks_like_log_agent(ds)]
    if in_app:
        raise CheckFailed(
            f"besides {ns}/{name_of(agents[0])}, a log agent DaemonSet {name_of(in_app[0])} runs "
            f"in {lab.app_ns}",
            f"one agent, in {ns} only: {lab.app_ns} stays restricted and app-only",
            f"kubectl -n {lab.app_ns} delete daemonset {name_of(in_app[0])} (or helm "
            f"uninstall the release that made it)",
        )
    ds = agents[0]
    mounts = varlog_mounts(ds["spec"]["template"]["spec"])
    if not mounts:
        raise CheckFailed(
            f"DaemonSet {ns}/{name_of(ds)} mounts no hostPath /var/log: it cannot see the files "
            "the container runtime writes",
            "a hostPath volume for /var/log mounted read-only (chart value alloy.mounts.varlog)",
            f"set alloy.mounts.varlog: true in manifests/logging/alloy-values.yaml, then {install}",
        )
    writable = [f"{c}:{p}" for c, p, ro in mounts if not ro]
    if writable:
        raise CheckFailed(
            f"DaemonSet {name_of(ds)} mounts the node's log directory writable ({writable})",
            "readOnly: true: the agent only reads the node's files",
            f"kubectl -n {ns} get ds {name_of(ds)} -o yaml | grep -B2 -A3 varlog",
        )
    wanted_nodes = nodes_for_daemonset(lab.kube.list_nodes(), ds)
    status = ds.get("status", {})
    desired = status.get("desiredNumberScheduled", 0)
    if desired < len(wanted_nodes):
        selector = ds["spec"]["template"]["spec"].get("nodeSelector")
        why = f" (nodeSelector {selector})" if selector else " (a nodeSelector or node affinity)"
        raise CheckFailed(
            f"DaemonSet {name_of(ds)} schedules {desired} pod(s) but {len(wanted_nodes)} node(s) "
            f"accept it ({', '.join(wanted_nodes)}){why}",
            "one agent pod on every schedulable node: the agent reads only its own node's files",
            f"remove the nodeSelector/affinity from the Alloy values, then {install}; "
            f"kubectl -n {ns} get ds {name_of(ds)} -o wide",
        )
    app_pods = lab.kube.list_pods(lab.app_ns)
    agent_pods = [p for p in lab.kube.list_pods(ns) if owned_by(p, "DaemonSet", name_of(ds))]
    missing = nodes_without_ready_agent(app_pods, agent_pods)
    if missing:
        raise CheckFailed(
            f"node(s) {', '.join(missing)} run bookstore pods but no ready {name_of(ds)} pod",
            "a ready agent pod on every node that runs bookstore pods (else their lines are lost)",
            f"kubectl -n {ns} get pods -o wide; kubectl -n {ns} describe ds {name_of(ds)} "
            "(look for taints without tolerations and image pull errors)",
        )
    sidecars = log_sidecars(app_pods)
    if sidecars:
        raise CheckFailed(
            f"log-shipping sidecar(s) in bookstore pods: {', '.join(sidecars)}",
            "no sidecar: the node agent already reads every container's stdout",
            "remove the sidecar from the Deployment in manifests/bookstore/, then "
            "kubectl apply -k manifests/bookstore",
        )
    ready = sum(1 for p in agent_pods if is_ready(p))
    return Passed(
        f"DaemonSet {ns}/{name_of(ds)} has {ready} ready pod(s) covering all "
        f"{len(wanted_nodes)} schedulable node(s) and every bookstore node, mounting /var/log "
        "read-only; no sidecars"
    )


@pytest.mark.checker("lab2.agent-daemonset")
def test_agent_daemonset(lab, record_outcome):
    record_outcome(check_agent_daemonset(lab))
