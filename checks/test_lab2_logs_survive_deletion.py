"""Exercise 4: a deleted pod's log lines can still be queried in Loki.

Two markers. The first proves the pipeline ships catalog lines at all (and measures how long a
line takes to become queryable). The second is the real test: the checker sends it, finds
the pod that wrote it (`kubectl logs`), deletes that pod at once and only then looks for the
line in Loki. An agent that loses what a pod wrote just before it went fails here; one that
keeps reading the node's file passes. Both markers are 404 lines (WARN): `LOG_SAMPLE_RATE`
never drops those, so sampling cannot fail a correct lab.
"""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed, Passed, is_running, name_of, new_marker
from checks.kube import NotFound
from checks.lab import Lab
from checks.polling import DeadlineExceeded, poll

SERVICE = "catalog"
UNKNOWN_BOOK = "/books/0"  # a 404 (WARN): never sampled out
TAIL = 500  # lines of `kubectl logs` to search: the lab's traffic Job may be running too


def send_marker(lab: Lab, marker: str) -> None:
    response = lab.send(SERVICE, "GET", UNKNOWN_BOOK, request_id=marker)
    if response.status_code >= 500:
        raise CheckFailed(
            f"GET {UNKNOWN_BOOK} on {SERVICE} answered {response.status_code}",
            "404 from catalog: a request whose WARN line the checker can then follow",
            f"kubectl -n {lab.app_ns} logs deploy/{SERVICE} --tail=20",
        )


def pod_that_wrote(lab: Lab, marker: str, timeout: float = 15) -> str:
    """The running catalog pod whose stdout holds the marker (its request line is written
    when the response is sent, so this is a matter of milliseconds)."""

    def probe():
        for pod in lab.kube.list_pods(lab.app_ns):
            labels = pod.get("metadata", {}).get("labels") or {}
            if labels.get("app") != SERVICE or not is_running(pod):
                continue
            logs = lab.kube.pod_logs(lab.app_ns, name_of(pod), SERVICE, tail_lines=TAIL)
            if marker in logs:
                return name_of(pod)
        return None

    try:
        return poll(
            probe, bool, what="the marker in a catalog pod's log", timeout=lab.timeout(timeout),
            clock=lab.clock, interval=1,
        ).value  # fmt: skip
    except DeadlineExceeded:
        raise CheckFailed(
            f"the request {marker} to {SERVICE} answered, but no running {SERVICE} pod's "
            "`kubectl logs` shows its line",
            "the request line (request_id = the marker) on the pod's stdout",
            f"kubectl -n {lab.app_ns} logs -l app={SERVICE} --tail=20 --prefix",
        ) from None


def check_logs_survive_deletion(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    control = new_marker()
    start_ns = lab.evidence_start_ns()
    send_marker(lab, control)
    found = lab.wait_in_loki(
        f'{{namespace="{lab.app_ns}"}} |= "{control}"', bool, start_ns=start_ns,
        timeout=ingest_timeout, what=f"the agent ships no {SERVICE} line at all",
    )  # fmt: skip
    delay = found.seconds
    if not found.entries[0].labels.get("pod"):
        raise CheckFailed(
            f"the marker line is in Loki with labels {found.entries[0].labels}, but no `pod`",
            "a `pod` label on every stream (from __meta_kubernetes_pod_name)",
            "add a relabel rule for the pod label in manifests/logging/alloy-values.yaml",
        )

    marker = new_marker()
    send_marker(lab, marker)
    pod = pod_that_wrote(lab, marker)
    lab.kube.delete_pod(lab.app_ns, pod)  # at once: the line may not be shipped yet
    wait_gone(lab, pod)
    try:
        lab.kube.pod_logs(lab.app_ns, pod, SERVICE, tail_lines=5)
        kubectl_logs = "still answered (the pod's logs were readable after deletion)"
    except NotFound as e:
        kubectl_logs = f"no longer works: {e}"

    query = f'{{namespace="{lab.app_ns}", pod="{pod}"}} |= "{marker}"'
    lab.wait_in_loki(
        query, bool, start_ns=start_ns, timeout=ingest_timeout,
        what=f"pod {pod} wrote it (kubectl logs showed it) and was deleted right after; a "
        "line of the same pod sent before was shipped",
        expected="a line written just before its pod was deleted still reaches Loki",
        next_step="the agent must keep reading a pod's file under /var/log/pods until it is "
        "gone (Alloy's local.file_match + loki.source.file do); an agent that follows pods "
        "through the API stops with the pod. Then check Loki keeps what it got: "
        f"`kubectl -n {lab.agent_ns} logs ds/{lab.agent_name()} --tail=30`",
    )  # fmt: skip
    return Passed(
        f"a line written just before pod {pod} was deleted reached Loki; `kubectl logs {pod}` "
        f"{kubectl_logs}; request to queryable took {delay:.1f} s",
        {"request_to_queryable_seconds": round(delay, 2)},
    )


def wait_gone(lab: Lab, pod: str) -> None:
    try:
        poll(
            lambda: lab.kube.get_pod(lab.app_ns, pod), lambda p: p is None,
            what=f"pod {pod} to be gone", timeout=lab.timeout(120), clock=lab.clock, interval=2,
        )  # fmt: skip
    except DeadlineExceeded as e:
        raise CheckFailed(
            f"pod {pod} still exists {e.timeout:.0f} s after it was deleted",
            "the pod gone (its grace period is short)",
            f"kubectl -n {lab.app_ns} get pod {pod} -o yaml | grep -A3 finalizers",
        ) from None


@pytest.mark.checker("lab2.logs-survive-deletion")
def test_logs_survive_deletion(lab, record_outcome):
    record_outcome(check_logs_survive_deletion(lab))
