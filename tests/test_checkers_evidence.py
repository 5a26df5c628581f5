"""The pure rules of checks.evidence, each on the API JSON or lines that trigger it."""

from __future__ import annotations

from checks.evidence import (
    CheckFailed,
    failed_create,
    first_bad_line,
    fix_for_pod_security,
    log_sidecars,
    new_trace,
    nodes_without_ready_agent,
    not_ready_deployments,
    varlog_mounts,
)


def spec(volumes, mounts, init=None):
    out = {"volumes": volumes, "containers": [{"name": "agent", "volumeMounts": mounts}]}
    if init:
        out["initContainers"] = init
    return out


def test_varlog_mounts_accept_var_log_pods_and_report_read_only():
    pods_only = spec([{"name": "pl", "hostPath": {"path": "/var/log/pods/"}}],
                     [{"name": "pl", "mountPath": "/var/log/pods", "readOnly": True}])  # fmt: skip
    assert varlog_mounts(pods_only) == [("agent", "/var/log/pods", True)]
    writable = spec([{"name": "v", "hostPath": {"path": "/var/log"}}],
                    [{"name": "v", "mountPath": "/host/var/log"}])  # fmt: skip
    assert varlog_mounts(writable) == [("agent", "/host/var/log", False)]
    other = spec([{"name": "d", "hostPath": {"path": "/var/lib/docker"}}],
                 [{"name": "d", "mountPath": "/d"}])  # fmt: skip
    assert varlog_mounts(other) == []
    empty_dir = spec([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/var/log"}])
    assert varlog_mounts(empty_dir) == []  # a path that looks right but is not the node's


def test_native_sidecars_count_as_sidecars():
    pod = {"metadata": {"name": "orders-1"}, "spec": {
        "containers": [{"name": "orders", "image": "bookstore/orders:0.1.0"}],
        "initContainers": [{"name": "ship", "image": "timberio/vector:0.40", "restartPolicy":
                            "Always"}]}}  # fmt: skip
    assert log_sidecars([pod]) == ["orders-1/ship (timberio/vector:0.40)"]
    clean = {"metadata": {"name": "c"}, "spec": {"containers": [{"name": "catalog",
             "image": "bookstore/catalog:0.1.0"}]}}  # fmt: skip
    assert log_sidecars([clean]) == []


def test_nodes_without_ready_agent_ignores_finished_and_terminating_pods():
    def pod(node, phase="Running", ready=True, deleting=False):
        meta = {"deletionTimestamp": "2026-11-22T00:00:00Z"} if deleting else {}
        cond = [{"type": "Ready", "status": "True" if ready else "False"}]
        return {"metadata": meta, "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": cond}}  # fmt: skip

    app = [pod("w1"), pod("w2", phase="Succeeded"), pod("w3", deleting=True), pod("w4")]
    agents = [pod("w1"), pod("w4", ready=False)]
    assert nodes_without_ready_agent(app, agents) == ["w4"]


def test_failed_create_falls_back_to_events_and_prefers_the_newest_revision():
    deployment = {"metadata": {"name": "catalog"}}

    def rs(name, revision):
        return {"metadata": {"name": name, "ownerReferences": [{"kind": "Deployment",
                "name": "catalog"}], "annotations": {
                "deployment.kubernetes.io/revision": str(revision)}}, "status": {}}  # fmt: skip

    events = [
        {"reason": "FailedCreate", "involvedObject": {"kind": "ReplicaSet", "name": "catalog-old"},
         "message": "old problem", "lastTimestamp": "2026-11-22T00:00:00Z"},
        {"reason": "FailedCreate", "involvedObject": {"kind": "ReplicaSet", "name": "catalog-new"},
         "message": "first try", "lastTimestamp": "2026-11-22T00:00:01Z"},
        {"reason": "FailedCreate", "involvedObject": {"kind": "ReplicaSet", "name": "catalog-new"},
         "message": "latest try", "lastTimestamp": "2026-11-22T00:00:09Z"},
    ]  # fmt: skip
    replicasets = [rs("catalog-old", 1), rs("catalog-new", 2)]
    assert failed_create(deployment, replicasets, events) == "ReplicaSet catalog-new: latest try"
    assert failed_create(deployment, replicasets, []) is None
    short = not_ready_deployments(
        [{"metadata": {"name": "catalog"}, "spec": {"replicas": 2}, "status": {}}],
        replicasets, events,
    )  # fmt: skip
    assert (short[0].ready, short[0].wanted, short[0].reason) == (0, 2, "ReplicaSet catalog-new: "
                                                                  "latest try")  # fmt: skip


def test_fix_for_pod_security_names_each_field():
    message = (
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false, '
        "unrestricted capabilities, seccompProfile"
    )
    fix = fix_for_pod_security(message)
    assert "allowPrivilegeEscalation: false" in fix and "drop: [ALL]" in fix
    assert "RuntimeDefault" in fix
    assert fix_for_pod_security("something else") == "fix the pod template field the message names"


def test_first_bad_line_skips_blank_lines_and_numbers_from_one():
    def no_errors(line):
        return []

    assert first_bad_line(['{"a": 1}', "", '{"b": 2}'], no_errors) is None
    bad = first_bad_line(['{"a": 1}', "", "plain"], no_errors)
    assert (bad.number, bad.line) == (3, "plain") and bad.errors[0].startswith("not JSON")


def test_traces_are_fresh_and_well_formed():
    a, b = new_trace(), new_trace()
    assert a.trace_id != b.trace_id
    version, trace_id, span_id, flags = a.traceparent.split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "01")


def test_check_failed_prints_observed_expected_next():
    err = CheckFailed("saw x", "wanted y", "run z")
    assert str(err) == "observed: saw x\nexpected: wanted y\nnext: run z"


def test_rollout_problem_judges_like_kubectl_rollout_status():
    from checks.evidence import rollout_problem

    def deployment(replicas=2, **status):
        base = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                "readyReplicas": replicas, "availableReplicas": replicas}  # fmt: skip
        return {"metadata": {"generation": 1}, "spec": {"replicas": replicas},
                "status": {**base, **status}}  # fmt: skip

    assert rollout_problem(deployment()) is None
    assert "scaled to 0" in rollout_problem(deployment(replicas=0))
    assert "0/2 replicas of the newest revision; 2 old pod(s) still serve" in rollout_problem(
        deployment(updatedReplicas=0)
    )
    assert "still runs 1 old replica(s)" in rollout_problem(deployment(replicas=3) | {
        "status": {"observedGeneration": 1, "replicas": 4, "updatedReplicas": 3,
                   "readyReplicas": 3, "availableReplicas": 3}})  # fmt: skip
    assert "not acted on yet" in rollout_problem(deployment() | {"metadata": {"generation": 2}})
    stuck = deployment(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}])
    assert "progress deadline" in rollout_problem(stuck)


def test_find_agent_and_the_nodes_a_daemonset_owes_a_pod():
    from checks.evidence import find_agent, nodes_for_daemonset

    chart = {"metadata": {"name": "grafana-alloy", "labels": {"app.kubernetes.io/name": "alloy"}}}
    named = {"metadata": {"name": "alloy"}}
    other = {"metadata": {"name": "fluent-bit"}}
    assert find_agent([other, chart], "alloy") is chart
    assert find_agent([chart, named], "alloy") is named
    assert find_agent([other], "alloy") is None
    nodes = [
        {"metadata": {"name": "cp"}, "spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}},
        {"metadata": {"name": "w1"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}},
        {"metadata": {"name": "w2"}, "spec": {}},
    ]  # fmt: skip
    ds = {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "w2"}}}}}
    assert nodes_for_daemonset(nodes, ds) == ["w1", "w2"]  # a nodeSelector owes no less
    ds["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}
    ]
    assert nodes_for_daemonset(nodes, ds) == ["cp", "w1", "w2"]
