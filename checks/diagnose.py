"""From an API error to a diagnosis: each kind of failure gets its own explanation and fix.

A checker that hits an error it does not handle itself ends here (checks/conftest.py). "Check
RBAC" is the answer to a 403 only: a 404 means a name or label selector points at nothing, a
401 means the kubeconfig's credentials are refused, a 409 a concurrent change, a 5xx or a
refused connection a cluster or proxy that is failing, which a rerun often clears.
"""

from __future__ import annotations

from checks.evidence import CheckFailed
from checks.kube import (
    Conflict,
    Forbidden,
    KubeError,
    KubeUnreachable,
    NotFound,
    ServerError,
    Unauthorized,
)
from checks.loki import LokiError


def api_error_diagnosis(error: Exception, kubeconfig: str, namespace: str = "bookstore"):
    """A CheckFailed for a KubeError or LokiError, by kind; None for anything else."""
    kc = f"--kubeconfig {kubeconfig}"
    if isinstance(error, KubeUnreachable):
        return CheckFailed(
            str(error),
            "the API server answers at the kubeconfig's address",
            f"kubectl {kc} get nodes; if the cluster is gone, `nox -s lab-2` recreates it",
        )
    if isinstance(error, Unauthorized):
        return CheckFailed(
            str(error),
            "the kubeconfig's credentials accepted by the API server",
            f"kubectl {kc} get nodes; an expired or foreign kubeconfig: use the lab's own "
            "(.lab/kubeconfig), written when the cluster is created",
        )
    if isinstance(error, Forbidden):
        return CheckFailed(
            str(error),
            "the checker's user may read the lab's objects (and delete a bookstore pod)",
            f"kubectl {kc} auth can-i --list -n {namespace}; run the checkers with the lab's "
            "admin kubeconfig",
        )
    if isinstance(error, NotFound):
        return CheckFailed(
            str(error),
            "the object the checker reads exists under the name and labels the lab uses",
            f"kubectl {kc} get all -n {namespace} --show-labels: look for a renamed object or a "
            "changed label selector",
        )
    if isinstance(error, Conflict):
        return CheckFailed(
            str(error),
            "no concurrent change to the same object",
            "rerun the checker once the rollout or helm upgrade in progress has finished",
        )
    if isinstance(error, ServerError):
        return CheckFailed(
            str(error),
            "the API server (or the Service it proxies to) answers without a server error",
            f"kubectl {kc} get pods -A (look for restarting control-plane or Loki pods), then "
            "rerun: a passing 5xx clears by itself",
        )
    if isinstance(error, LokiError):
        return CheckFailed(
            str(error),
            "Loki answers the checker's queries",
            "kubectl -n logging get pods; kubectl -n logging logs statefulset/loki --tail=30",
        )
    if isinstance(error, KubeError):
        return CheckFailed(
            str(error), "the API server accepts the checker's call", f"kubectl {kc} get pods -A"
        )
    return None
