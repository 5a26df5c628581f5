"""Exercises 1-3 (cluster-side checkers) against the fake cluster: pass, and each way to fail."""

from __future__ import annotations

import copy

import pytest

from checks.evidence import CheckFailed
from checks.test_lab2_agent_daemonset import check_agent_daemonset
from checks.test_lab2_json_stdout import check_json_stdout
from checks.test_lab2_namespace_restricted import check_namespace_restricted
from tests.fakes import fake_lab


def failure(check, **switches) -> CheckFailed:
    lab, _ = fake_lab(**switches)
    with pytest.raises(CheckFailed) as caught:
        check(lab)
    return caught.value


# -- exercise 1 ----------------------------------------------------------------------------
def test_json_stdout_passes_on_json_lines_and_reads_every_container():
    lab, cluster = fake_lab()
    result = check_json_stdout(lab)
    assert "from 4 pods all validate" in result.summary
    # fresh evidence: one request per service went through the service proxy first
    assert any(c.startswith("catalog GET /books") for c in cluster.calls)
    assert any(c.startswith("orders GET /orders/lab2-check-") for c in cluster.calls)


def test_json_stdout_names_the_first_plain_text_line_and_its_pod():
    err = failure(check_json_stdout, plain_text_line=True)
    assert "Starting catalog on 0.0.0.0:8080" in err.observed
    assert "not JSON" in err.observed
    assert "pod catalog-" in err.observed and "container catalog" in err.observed
    assert "kubectl -n bookstore logs catalog-" in err.next_step


def test_json_stdout_reports_schema_errors_not_only_parse_errors():
    lab, cluster = fake_lab()
    pod = next(p for p in cluster.pods.values() if p["metadata"]["labels"].get("app") == "orders")
    cluster.write(pod, None, raw='{"time": "yesterday", "level": "WARNING", "msg": "x"}')
    with pytest.raises(CheckFailed) as caught:
        check_json_stdout(lab)
    assert "WARNING" in caught.value.observed  # the line itself is shown
    assert "service" in caught.value.observed  # ... and the schema's complaint


def test_json_stdout_fails_when_no_pod_runs():
    lab, cluster = fake_lab()
    cluster.pods = {
        name: pod
        for name, pod in cluster.pods.items()
        if pod["metadata"]["namespace"] != "bookstore"
    }
    with pytest.raises(CheckFailed, match="no running pod in namespace bookstore"):
        check_json_stdout(lab)


# -- exercise 2 ----------------------------------------------------------------------------
def test_agent_daemonset_passes():
    lab, _ = fake_lab()
    assert "DaemonSet logging/alloy has 2 ready pod(s)" in check_agent_daemonset(lab).summary


def test_agent_as_deployment_is_explained():
    err = failure(check_agent_daemonset, agent_kind="Deployment")
    assert "is a Deployment" in err.observed
    assert "controller.type: daemonset" in err.next_step


def test_agent_in_the_app_namespace_is_explained():
    err = failure(check_agent_daemonset, agent_namespace="bookstore")
    assert "runs in namespace bookstore" in err.observed
    assert "logging" in err.expected


def test_a_second_agent_in_the_app_namespace_fails_even_when_logging_has_one():
    lab, cluster = fake_lab()
    extra = copy.deepcopy(cluster.daemonsets[0])
    extra["metadata"].update(name="fluent-bit", namespace="bookstore")
    cluster.daemonsets.append(extra)
    with pytest.raises(CheckFailed) as caught:
        check_agent_daemonset(lab)
    assert "fluent-bit runs in bookstore" in caught.value.observed
    assert "delete daemonset fluent-bit" in caught.value.next_step


def test_agent_without_hostpath_is_explained():
    err = failure(check_agent_daemonset, varlog_mount=False)
    assert "mounts no hostPath /var/log" in err.observed
    assert "alloy.mounts.varlog: true" in err.next_step


def test_agent_with_writable_varlog_fails():
    err = failure(check_agent_daemonset, varlog_read_only=False)
    assert "writable" in err.observed


def test_node_without_ready_agent_is_named():
    lab, cluster = fake_lab()
    agent = next(p for n, p in cluster.pods.items() if n.startswith("alloy-"))
    agent["status"]["conditions"][0]["status"] = "False"
    with pytest.raises(CheckFailed) as caught:
        check_agent_daemonset(lab)
    assert agent["spec"]["nodeName"] in caught.value.observed


def test_log_sidecar_in_app_pods_fails():
    err = failure(check_agent_daemonset, sidecar=True)
    assert "fluent-bit" in err.observed and "sidecar" in err.observed


# -- exercise 3 ----------------------------------------------------------------------------
def test_namespace_restricted_passes_and_the_dry_run_was_rejected_by_pod_security():
    lab, _ = fake_lab()
    summary = check_namespace_restricted(lab).summary
    assert "violates PodSecurity" in summary and "hostPath" in summary


def test_namespace_relabelled_privileged_fails_with_the_label_command():
    err = failure(check_namespace_restricted, app_enforce="privileged")
    assert "enforce=privileged" in err.observed
    assert "kubectl label namespace bookstore --overwrite" in err.next_step


def test_failed_create_message_is_the_diagnosis():
    err = failure(check_namespace_restricted, failed_create=True)
    assert "Deployment catalog has 0/2 ready" in err.observed
    assert "ReplicaSet catalog-6d8f7c9b5" in err.observed  # the newest revision, not the old one
    assert "allowPrivilegeEscalation != false" in err.observed
    assert "allowPrivilegeEscalation: false" in err.next_step


def test_hostpath_pod_accepted_fails():
    lab, cluster = fake_lab()
    cluster.dry_run_create_pod = lambda ns, pod: (True, "accepted")  # an exempted namespace
    with pytest.raises(CheckFailed, match="hostPath volume was accepted"):
        check_namespace_restricted(lab)


def test_rejection_for_another_reason_is_not_taken_for_pod_security():
    lab, cluster = fake_lab()
    cluster.dry_run_create_pod = lambda ns, pod: (False, 'HTTP 403: pods is forbidden: User "x"')
    with pytest.raises(CheckFailed, match="not by Pod Security"):
        check_namespace_restricted(lab)


def test_unready_pods_without_failed_create_point_at_the_pods():
    lab, cluster = fake_lab()
    cluster.deployments[1]["status"]["readyReplicas"] = 1
    with pytest.raises(CheckFailed) as caught:
        check_namespace_restricted(lab)
    assert "orders has 1/2 ready" in caught.value.observed
    assert "describe pods -l app=orders" in caught.value.next_step


def test_the_dry_run_probe_violates_only_the_host_path_controls():
    """The probe must be rejected for hostPath alone, or a rejection would prove nothing."""
    from checks.evidence import violating_pod
    from validators.pss import evaluate

    probe = violating_pod("probe", "bookstore/catalog:0.1.0")
    paths = {v.path for v in evaluate([probe], level="restricted")}
    assert paths and all("volumes[0]" in p for p in paths), paths
    without = {**probe, "spec": {**probe["spec"], "volumes": []}}
    without["spec"]["containers"] = [{**probe["spec"]["containers"][0], "volumeMounts": []}]
    assert evaluate([without], level="restricted") == []
