"""Exercise 4: a pod's lines are still in Loki after the pod is deleted.

The checker deletes a catalog pod on purpose; its Deployment replaces it. The lines are found
again by the deleted pod's name, which `kubectl logs` can no longer show.
"""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed, Passed, new_marker
from checks.kube import NotFound
from checks.lab import APP_NAMESPACE, Lab
from checks.polling import DeadlineExceeded, poll

SERVICE = "catalog"


def check_logs_survive_deletion(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    marker = new_marker()
    start_ns = lab.evidence_start_ns()
    response = lab.send(SERVICE, "GET", "/books", request_id=marker)
    if response.status_code >= 500:
        raise CheckFailed(
            f"GET /books on {SERVICE} answered {response.status_code}",
            "a successful request whose line the checker can then follow",
            f"kubectl -n {APP_NAMESPACE} logs deploy/{SERVICE} --tail=20",
        )
    query = f'{{namespace="{APP_NAMESPACE}"}} |= "{marker}"'
    found = lab.wait_in_loki(
        query, lambda es: bool(es), start_ns=start_ns, timeout=ingest_timeout,
        what="the marker request never reached Loki",
    )  # fmt: skip
    delay = found.seconds
    pod = found.entries[0].labels.get("pod")
    if not pod:
        raise CheckFailed(
            f"the marker line is in Loki with labels {found.entries[0].labels}, but no `pod`",
            "a `pod` label on every stream (from __meta_kubernetes_pod_name)",
            "add a relabel rule for the pod label in manifests/logging/alloy-values.yaml",
        )

    lab.kube.delete_pod(APP_NAMESPACE, pod)
    try:
        poll(
            lambda: lab.kube.get_pod(APP_NAMESPACE, pod), lambda p: p is None,
            what=f"pod {pod} to be gone", timeout=lab.timeout(120), clock=lab.clock, interval=2,
        )  # fmt: skip
    except DeadlineExceeded as e:
        raise CheckFailed(
            f"pod {pod} still exists {e.timeout:.0f} s after it was deleted",
            "the pod gone (its grace period is short)",
            f"kubectl -n {APP_NAMESPACE} get pod {pod} -o yaml | grep -A3 finalizers",
        ) from None
    try:
        lab.kube.pod_logs(APP_NAMESPACE, pod, SERVICE, tail_lines=5)
        kubectl_logs = "still answered (the pod's logs were readable after deletion)"
    except NotFound as e:
        kubectl_logs = f"no longer works: {e}"

    again = f'{{namespace="{APP_NAMESPACE}", pod="{pod}"}} |= "{marker}"'
    try:
        entries = lab.loki.entries(again, start_ns=start_ns, end_ns=lab.clock.time_ns() + 1)
    except Exception as e:
        raise CheckFailed(
            str(e), "Loki answers query_range", f"kubectl -n {lab.logging_ns} get pods"
        ) from e
    if not entries:
        raise CheckFailed(
            f"before deleting pod {pod} Loki had the marker line; after, {again} returns nothing",
            "Loki keeps lines after the pod that wrote them is gone",
            "check Loki's storage and retention (manifests/logging/loki-values.yaml) and "
            f"`kubectl -n {lab.logging_ns} logs statefulset/{lab.names['loki']} --tail=30`",
        )
    return Passed(
        f"marker line of deleted pod {pod} still in Loki; `kubectl logs {pod}` {kubectl_logs}; "
        f"request to queryable took {delay:.1f} s",
        {"request_to_queryable_seconds": round(delay, 2)},
    )


@pytest.mark.checker("lab2.logs-survive-deletion")
def test_logs_survive_deletion(lab, record_outcome):
    record_outcome(check_logs_survive_deletion(lab))
