"""Exercise 3: `bookstore` still enforces Pod Security `restricted`, and all replicas run."""

from __future__ import annotations

import pytest

from checks.evidence import (
    ENFORCE_LABEL,
    CheckFailed,
    Passed,
    enforce_level,
    fix_for_pod_security,
    is_pod_security_rejection,
    is_running,
    new_marker,
    not_ready_deployments,
    violating_pod,
)
from checks.lab import APP_SERVICES, Lab
from checks.polling import DeadlineExceeded, poll
from validators.pss import evaluate

PROBE_IMAGE = "bookstore/catalog:0.1.0"  # never pulled: a dry run stops before scheduling


def check_namespace_restricted(lab: Lab, rollout_timeout: float = 120) -> Passed:
    ns = lab.kube.get_namespace(lab.app_ns)
    if ns is None:
        raise CheckFailed(
            f"namespace {lab.app_ns} does not exist",
            f"namespace {lab.app_ns} labelled {ENFORCE_LABEL}=restricted",
            "kubectl apply -k manifests/bookstore",
        )
    level = enforce_level(ns)
    if level != "restricted":
        raise CheckFailed(
            f"namespace {lab.app_ns} has {ENFORCE_LABEL}={level or '(unset)'}",
            f"{ENFORCE_LABEL}=restricted, whatever the log agent needs: the agent's hostPath "
            "belongs to its own privileged namespace, not to the app's",
            f"kubectl label namespace {lab.app_ns} --overwrite {ENFORCE_LABEL}=restricted",
        )
    probe = violating_pod(f"lab2-pss-probe-{new_marker()[-8:]}", PROBE_IMAGE)
    accepted, message = lab.kube.dry_run_create_pod(lab.app_ns, probe)
    if accepted:
        raise CheckFailed(
            f"a pod with a hostPath volume was accepted in {lab.app_ns} (server-side dry run)",
            'Pod Security rejects it (`violates PodSecurity "restricted:...": hostPath volumes`)',
            f"kubectl get namespace {lab.app_ns} --show-labels; look for an exemption in the "
            "API server's PodSecurity admission configuration",
        )
    if not is_pod_security_rejection(message):
        raise CheckFailed(
            f"the dry run was rejected, but not by Pod Security: {message}",
            "a rejection that says `violates PodSecurity`",
            "kubectl auth can-i create pods -n bookstore (the checker needs that permission)",
        )

    waited = wait_for_rollouts(lab, rollout_timeout)
    # List items carry no `kind`; the evaluator needs it to find the pod spec.
    running = [{**p, "kind": "Pod"} for p in lab.kube.list_pods(lab.app_ns) if is_running(p)]
    violations = evaluate(running, level="restricted")
    if violations:
        first = violations[0]
        pods = sorted({v.name for v in violations})
        raise CheckFailed(
            f"{len(pods)} running pod(s) in {lab.app_ns} break `restricted`, e.g. "
            f"{first.object}: {first.path} is {first.found} ({first.control}); pods: "
            f"{', '.join(pods)}",
            "every running pod restricted-compliant: Pod Security checks pods only when they "
            "are created, so pods admitted while the label was relaxed keep running after it "
            "is restored",
            f"fix the pod template ({first.fix}), then `kubectl -n {lab.app_ns} delete pod "
            f"{' '.join(pods)}` so that new pods are admitted under `restricted`",
        )
    names = ", ".join(d["metadata"]["name"] for d in waited)
    reason = message.split("forbidden: ", 1)[-1]
    return Passed(
        f"{lab.app_ns} enforces restricted; a hostPath pod is rejected ({reason}); "
        f"Deployments {names} are fully rolled out and ready; {len(running)} running pod(s) "
        "comply with restricted"
    )


def wait_for_rollouts(lab: Lab, rollout_timeout: float) -> list[dict]:
    """Both Deployments present and fully rolled out, or a failure that says which and why."""

    def deployments():
        return lab.kube.list_deployments(lab.app_ns)

    def done(ds):
        names = {d["metadata"]["name"] for d in ds}
        return set(APP_SERVICES) <= names and not not_ready_deployments(ours(ds), [], [])

    def ours(ds):
        return [d for d in ds if d["metadata"]["name"] in APP_SERVICES]

    try:
        waited = poll(
            deployments, done, what="bookstore Deployments to be rolled out",
            timeout=lab.timeout(rollout_timeout), clock=lab.clock, interval=3,
        )  # fmt: skip
    except DeadlineExceeded as e:
        present = {d["metadata"]["name"] for d in e.last or []}
        missing = [name for name in APP_SERVICES if name not in present]
        if missing:
            raise CheckFailed(
                f"no Deployment {', '.join(missing)} in namespace {lab.app_ns}"
                + (f" (found: {', '.join(sorted(present))})" if present else ""),
                f"Deployments {' and '.join(APP_SERVICES)}, each with all replicas ready",
                "kubectl apply -k manifests/bookstore",
            ) from None
        short = not_ready_deployments(
            ours(e.last), lab.kube.list_replicasets(lab.app_ns),
            lab.kube.list_events(lab.app_ns),
        )  # fmt: skip
        first = short[0]
        seen = f"Deployment {first.deployment} {first.problem}"
        if first.wanted == 0:
            raise CheckFailed(
                seen,
                "every bookstore Deployment running its replicas (the lab's manifests set 2)",
                "kubectl apply -k manifests/bookstore (or kubectl -n "
                f"{lab.app_ns} scale deploy/{first.deployment} --replicas=2)",
            ) from None
        if first.reason:
            raise CheckFailed(
                f"{seen}: {first.reason}",
                "every replica of the newest revision admitted and ready under `restricted`",
                f"{fix_for_pod_security(first.reason)} in manifests/bookstore/, then "
                "kubectl apply -k manifests/bookstore",
            ) from None
        raise CheckFailed(
            f"{seen} after {e.timeout:.0f} s (no FailedCreate: the pods exist but are not ready)",
            "every replica of the newest revision ready",
            f"kubectl -n {lab.app_ns} rollout status deploy/{first.deployment}; "
            f"kubectl -n {lab.app_ns} describe pods -l app={first.deployment}; "
            f"kubectl -n {lab.app_ns} logs deploy/{first.deployment} --tail=20",
        ) from None
    return ours(waited.value)


@pytest.mark.checker("lab2.namespace-restricted")
def test_namespace_restricted(lab, record_outcome):
    record_outcome(check_namespace_restricted(lab))
