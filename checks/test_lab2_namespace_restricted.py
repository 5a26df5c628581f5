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
    new_marker,
    not_ready_deployments,
    violating_pod,
)
from checks.lab import APP_NAMESPACE, Lab
from checks.polling import DeadlineExceeded, poll

PROBE_IMAGE = "bookstore/catalog:0.1.0"  # never pulled: a dry run stops before scheduling


def check_namespace_restricted(lab: Lab, rollout_timeout: float = 120) -> Passed:
    ns = lab.kube.get_namespace(APP_NAMESPACE)
    if ns is None:
        raise CheckFailed(
            f"namespace {APP_NAMESPACE} does not exist",
            f"namespace {APP_NAMESPACE} labelled {ENFORCE_LABEL}=restricted",
            "kubectl apply -k manifests/bookstore",
        )
    level = enforce_level(ns)
    if level != "restricted":
        raise CheckFailed(
            f"namespace {APP_NAMESPACE} has {ENFORCE_LABEL}={level or '(unset)'}",
            f"{ENFORCE_LABEL}=restricted: the app namespace is never relaxed for logging; the "
            "agent lives in its own privileged namespace",
            f"kubectl label namespace {APP_NAMESPACE} --overwrite {ENFORCE_LABEL}=restricted",
        )
    probe = violating_pod(f"lab2-pss-probe-{new_marker()[-8:]}", PROBE_IMAGE)
    accepted, message = lab.kube.dry_run_create_pod(APP_NAMESPACE, probe)
    if accepted:
        raise CheckFailed(
            f"a pod with a hostPath volume was accepted in {APP_NAMESPACE} (server-side dry run)",
            'Pod Security rejects it (`violates PodSecurity "restricted:...": hostPath volumes`)',
            f"kubectl get namespace {APP_NAMESPACE} --show-labels; look for an exemption in the "
            "API server's PodSecurity admission configuration",
        )
    if not is_pod_security_rejection(message):
        raise CheckFailed(
            f"the dry run was rejected, but not by Pod Security: {message}",
            "a rejection that says `violates PodSecurity`",
            "kubectl auth can-i create pods -n bookstore (the checker needs that permission)",
        )

    def deployments():
        return lab.kube.list_deployments(APP_NAMESPACE)

    def none_short(ds):
        return bool(ds) and not not_ready_deployments(ds, [], [])

    try:
        waited = poll(
            deployments, none_short, what="bookstore Deployments to be ready",
            timeout=lab.timeout(rollout_timeout), clock=lab.clock, interval=3,
        )  # fmt: skip
    except DeadlineExceeded as e:
        if not e.last:
            raise CheckFailed(
                f"no Deployment in namespace {APP_NAMESPACE}",
                "Deployments catalog and orders",
                "kubectl apply -k manifests/bookstore",
            ) from None
        short = not_ready_deployments(
            e.last, lab.kube.list_replicasets(APP_NAMESPACE), lab.kube.list_events(APP_NAMESPACE)
        )
        first = short[0]
        seen = f"Deployment {first.deployment} has {first.ready}/{first.wanted} ready"
        if first.reason:
            raise CheckFailed(
                f"{seen}: {first.reason}",
                "every replica admitted and ready under `restricted`",
                f"{fix_for_pod_security(first.reason)} in manifests/bookstore/, then "
                "kubectl apply -k manifests/bookstore",
            ) from None
        raise CheckFailed(
            f"{seen} after {e.timeout:.0f} s (no FailedCreate: the pods exist but are not ready)",
            "every replica ready",
            f"kubectl -n {APP_NAMESPACE} describe pods -l app={first.deployment}; "
            f"kubectl -n {APP_NAMESPACE} logs deploy/{first.deployment} --tail=20",
        ) from None
    names = ", ".join(d["metadata"]["name"] for d in waited.value)
    reason = message.split("forbidden: ", 1)[-1]
    return Passed(
        f"{APP_NAMESPACE} enforces restricted; a hostPath pod is rejected ({reason}); "
        f"Deployments {names} are fully ready"
    )


@pytest.mark.checker("lab2.namespace-restricted")
def test_namespace_restricted(lab, record_outcome):
    record_outcome(check_namespace_restricted(lab))
