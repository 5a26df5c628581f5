"""Exercises 1-3 (cluster-side checkers) against the fake cluster: every right variant passes,
every wrong state fails with what was observed and the fix."""

from __future__ import annotations

import copy

import pytest

from checks.evidence import CheckFailed, nodes_for_daemonset, parse_cri
from checks.test_lab2_agent_daemonset import check_agent_daemonset
from checks.test_lab2_json_stdout import check_json_stdout
from checks.test_lab2_logs_survive_deletion import check_logs_survive_deletion
from checks.test_lab2_namespace_restricted import check_namespace_restricted
from tests.fakes import NS_AGENT, NS_LOGGING, WORKER, fake_lab


def failure(check, **switches) -> CheckFailed:
    lab, _ = fake_lab(**switches)
    with pytest.raises(CheckFailed) as caught:
        check(lab)
    return caught.value


# -- exercise 1 ----------------------------------------------------------------------------
def test_json_stdout_passes_on_json_lines_and_reads_every_container():
    lab, cluster = fake_lab()
    result = check_json_stdout(lab)
    assert "from 4 pods, all on stdout, all validate" in result.summary
    # fresh evidence: one request per service went through the service proxy first
    assert any(c.startswith("catalog GET /books") for c in cluster.calls)
    assert any(c.startswith("orders GET /orders/lab2-check-") for c in cluster.calls)


def test_json_stdout_passes_with_sampling_on_and_a_skewed_node_clock():
    lab, _ = fake_lab(sample_rate=0.0, node_clock_skew_s=-240)
    assert "all validate" in check_json_stdout(lab).summary


def test_json_stdout_names_the_first_plain_text_line_and_its_pod():
    err = failure(check_json_stdout, plain_text_line=True)
    assert "Starting catalog on 0.0.0.0:8080" in err.observed
    assert "not JSON" in err.observed
    assert "pod catalog-" in err.observed and "container catalog" in err.observed
    assert "kubectl -n bookstore logs catalog-" in err.next_step


def test_json_stdout_sees_a_banner_older_than_any_tail():
    lab, cluster = fake_lab(old_banner=True)
    pod = next(n for n in cluster.pods if n.startswith("catalog-"))
    assert "banner" not in cluster.pod_logs("bookstore", pod, "catalog", tail_lines=50)
    with pytest.raises(CheckFailed) as caught:
        check_json_stdout(lab)
    assert "plain text banner" in caught.value.observed and "line 1 of" in caught.value.observed


def test_json_stdout_fails_a_container_that_writes_nothing():
    err = failure(check_json_stdout, silent_app="orders")
    assert "container orders has written nothing" in err.observed
    assert "log through bookstore.logs" in err.next_step


def test_json_stdout_fails_json_written_to_stderr():
    lab, cluster = fake_lab(stderr_app="catalog")
    pod = next(n for n in cluster.pods if n.startswith("catalog-"))
    # kubectl logs cannot tell: the same valid JSON comes back
    assert '"service": "catalog"' in cluster.pod_logs("bookstore", pod, "catalog")
    with pytest.raises(CheckFailed) as caught:
        check_json_stdout(lab)
    assert "to stderr" in caught.value.observed and "container catalog" in caught.value.observed
    assert "sys.stdout" in caught.value.next_step


def test_json_stdout_reports_schema_errors_not_only_parse_errors():
    lab, cluster = fake_lab()
    pod = next(p for p in cluster.pods.values() if p["metadata"]["labels"].get("app") == "orders")
    cluster.write(pod, None, raw='{"time": "yesterday", "level": "WARNING", "msg": "x"}')
    with pytest.raises(CheckFailed) as caught:
        check_json_stdout(lab)
    assert "WARNING" in caught.value.observed  # the line itself is shown
    assert "service" in caught.value.observed  # ... and the schema's complaint


def test_json_stdout_fails_when_a_service_has_no_running_pod():
    lab, cluster = fake_lab()
    for name, pod in cluster.pods.items():
        if name.startswith("orders-"):
            pod["status"]["phase"] = "Pending"
    with pytest.raises(CheckFailed, match="no running orders pod in bookstore"):
        check_json_stdout(lab)
    cluster.pods = {n: p for n, p in cluster.pods.items() if not n.startswith("catalog-")}
    with pytest.raises(CheckFailed) as caught:  # the proxy's own 503, retried, then explained
        check_json_stdout(lab)
    assert 'no endpoints available for service "catalog"' in caught.value.observed
    assert "get pods,endpoints catalog" in caught.value.next_step


def test_cri_lines_keep_their_stream_and_join_partial_lines():
    text = (
        '2026-01-01T00:00:00.1Z stdout P {"a": \n'
        "2026-01-01T00:00:00.2Z stderr F oops\n"
        "2026-01-01T00:00:00.3Z stdout F 1}\n"
    )
    lines = parse_cri(text)
    assert [(x.stream, x.content) for x in lines] == [("stderr", "oops"), ("stdout", '{"a": 1}')]


# -- exercise 2 ----------------------------------------------------------------------------
def test_agent_daemonset_passes():
    lab, _ = fake_lab()
    summary = check_agent_daemonset(lab).summary
    assert f"DaemonSet {NS_AGENT}/alloy has 2 ready pod(s) covering all 2 schedulable" in summary


def test_a_differently_named_alloy_release_passes_the_agent_check_and_the_loki_gate():
    """The contract: the chart's app.kubernetes.io/name=alloy label, whatever the release."""
    lab, _ = fake_lab(agent_name="grafana-alloy")
    assert f"DaemonSet {NS_AGENT}/grafana-alloy" in check_agent_daemonset(lab).summary
    lab, _ = fake_lab(agent_name="grafana-alloy")
    # the Loki checkers' readiness gate finds the same DaemonSet
    assert "reached Loki" in check_logs_survive_deletion(lab).summary


def test_an_agent_without_the_chart_label_or_release_name_fails_both_alike():
    err = failure(check_agent_daemonset, agent_name="fluent-bit", agent_chart_label=False,
                  agent_image="fluent/fluent-bit:3.1")  # fmt: skip
    assert "fluent-bit looks like a log agent but is not the Alloy chart's" in err.observed
    assert "helm upgrade --install alloy grafana/alloy" in err.next_step
    lab, _ = fake_lab(agent_name="fluent-bit", agent_chart_label=False)
    with pytest.raises(CheckFailed, match=f"no agent DaemonSet in {NS_AGENT} "):
        lab.confirm_pipeline_ready()


def test_an_agent_pinned_to_one_node_fails():
    err = failure(check_agent_daemonset, agent_node_selector={"kubernetes.io/hostname": WORKER})
    assert "schedules 1 pod(s) but 2 node(s) accept it" in err.observed
    assert "nodeSelector" in err.observed and "remove the nodeSelector" in err.next_step


def test_an_agent_that_does_not_tolerate_the_control_plane_passes_when_apps_run_on_workers():
    """The chart's default (no tolerations): the tainted control plane is not owed a pod."""
    lab, cluster = fake_lab(agent_tolerates_control_plane=False)
    assert nodes_for_daemonset(cluster.nodes, cluster.daemonsets[0]) == [WORKER]
    assert "covering all 1 schedulable node(s)" in check_agent_daemonset(lab).summary


def test_agent_as_deployment_is_explained():
    err = failure(check_agent_daemonset, agent_kind="Deployment")
    assert "is a Deployment" in err.observed
    assert "controller.type: daemonset" in err.next_step


def test_agent_in_the_app_namespace_is_explained():
    err = failure(check_agent_daemonset, agent_namespace="bookstore")
    assert "runs in namespace bookstore" in err.observed
    assert f"namespace {NS_AGENT} (privileged)" in err.expected


def test_the_fake_places_the_agent_as_versions_toml_does():
    """The fake is no kinder than the lab: its agent runs where the chart is installed, apart
    from Loki's `restricted` namespace, and the checker looks for it there."""
    lab, cluster = fake_lab()
    assert NS_AGENT != NS_LOGGING and lab.agent_ns == NS_AGENT
    assert {ds["metadata"]["namespace"] for ds in cluster.daemonsets} == {NS_AGENT}
    assert f"{NS_AGENT}/alloy" in check_agent_daemonset(lab).summary


def test_agent_left_in_lokis_namespace_is_not_found():
    """The layout before the split (agent beside Loki) is wrong now: `logging` enforces
    `restricted`, and the checker names the agent's namespace and the install command."""
    err = failure(check_agent_daemonset, agent_namespace=NS_LOGGING)
    assert f"no log agent DaemonSet in namespace {NS_AGENT}" in err.observed
    assert f"-n {NS_AGENT}" in err.next_step


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
    agent = next(p for p in cluster.pods.values() if p["spec"]["nodeName"] == WORKER
                 and p["metadata"]["namespace"] == NS_AGENT)  # fmt: skip
    agent["status"]["conditions"][0]["status"] = "False"
    with pytest.raises(CheckFailed) as caught:
        check_agent_daemonset(lab)
    assert WORKER in caught.value.observed


def test_log_sidecar_in_app_pods_fails():
    err = failure(check_agent_daemonset, sidecar=True)
    assert "fluent-bit" in err.observed and "sidecar" in err.observed


# -- exercise 3 ----------------------------------------------------------------------------
def test_namespace_restricted_passes_and_the_dry_run_was_rejected_by_pod_security():
    lab, _ = fake_lab()
    summary = check_namespace_restricted(lab).summary
    assert "violates PodSecurity" in summary and "hostPath" in summary
    assert "4 running pod(s) comply with restricted" in summary


def test_namespace_relabelled_privileged_fails_with_the_label_command():
    err = failure(check_namespace_restricted, app_enforce="privileged")
    assert "enforce=privileged" in err.observed
    assert "kubectl label namespace bookstore --overwrite" in err.next_step


def test_failed_create_message_is_the_diagnosis():
    err = failure(check_namespace_restricted, failed_create=True)
    assert "Deployment catalog has 0/2 replicas of the newest revision" in err.observed
    assert "ReplicaSet catalog-6d8f7c9b5" in err.observed  # the newest revision, not the old one
    assert "allowPrivilegeEscalation != false" in err.observed
    assert "allowPrivilegeEscalation: false" in err.next_step


def test_a_violating_rollout_stuck_behind_old_ready_pods_fails():
    lab, cluster = fake_lab(stuck_rollout=True)
    catalog = cluster.deployments[0]["status"]
    assert catalog["readyReplicas"] == 2 and catalog["updatedReplicas"] == 0  # looks healthy
    with pytest.raises(CheckFailed) as caught:
        check_namespace_restricted(lab)
    err = caught.value
    assert "0/2 replicas of the newest revision; 2 old pod(s) still serve" in err.observed
    assert "violates PodSecurity" in err.observed
    assert "allowPrivilegeEscalation: false" in err.next_step


def test_a_deployment_scaled_to_zero_fails():
    err = failure(check_namespace_restricted, scaled_to_zero="orders")
    assert "Deployment orders is scaled to 0 replicas" in err.observed
    assert "--replicas=2" in err.next_step


def test_a_deleted_deployment_fails():
    err = failure(check_namespace_restricted, deleted_deployment="catalog")
    assert "no Deployment catalog in namespace bookstore" in err.observed
    assert "kubectl apply -k manifests/bookstore" in err.next_step


def test_privileged_pods_admitted_while_the_label_was_relaxed_fail():
    """The label is back to restricted and the dry run is rejected, but the running pods
    were admitted before: Pod Security never evicts them."""
    lab, cluster = fake_lab(privileged_pods="orders")
    assert cluster.namespaces["bookstore"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"  # fmt: skip
    with pytest.raises(CheckFailed) as caught:
        check_namespace_restricted(lab)
    err = caught.value
    assert "2 running pod(s) in bookstore break `restricted`" in err.observed
    assert "privileged" in err.observed.lower() and "orders-" in err.observed
    assert "kubectl -n bookstore delete pod orders-" in err.next_step


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


def test_json_stdout_falls_back_to_kubectl_logs_when_the_node_log_is_refused():
    """A user without nodes/proxy: the lines are still judged, and the report says that the
    streams could not be told apart, instead of failing a correct lab."""
    from checks.kube import error_for_status

    lab, cluster = fake_lab()

    def refuse(pod, container):
        raise error_for_status(403, 'nodes "lab2-logging-worker" is forbidden: nodes/proxy')

    cluster.container_log_file = refuse
    summary = check_json_stdout(lab).summary
    assert "stdout and stderr not told apart" in summary and "nodes/proxy" in summary
    lab, cluster = fake_lab(plain_text_line=True)
    cluster.container_log_file = refuse
    with pytest.raises(CheckFailed, match="Starting catalog"):
        check_json_stdout(lab)
