"""Additions to tests/fakes.py for the learner-mode checkers (kept apart: fakes.py has its owner).

`GracefulCluster` is the fake cluster with two more behaviours of the real one:

- a deleted bookstore pod writes `shutdown complete` as its last line before it goes: the
  kubelet sends SIGTERM and waits for the grace period (Kubernetes docs, "Pod Lifecycle →
  Termination of Pods"), and the bookstore logs that line after a graceful stop
  (bookstore/server.py);
- `list_pods` honours an equality-based label selector (`key=value[,key=value]`), as the API
  server does (Kubernetes docs, "Labels and Selectors → Equality-based requirement").
"""

from __future__ import annotations

from checks.lab import Lab
from tests.fakes import LAB_NAMES, FakeCluster, Scenario


class GracefulCluster(FakeCluster):
    def delete_pod(self, namespace, name):
        pod = self.pods.get(name)
        if pod is not None and pod["metadata"]["labels"].get("app"):
            self.write(pod, {"level": "INFO", "msg": "shutdown complete", "signal": "SIGTERM"})
        super().delete_pod(namespace, name)

    def list_pods(self, namespace, label_selector=None):
        pods = super().list_pods(namespace)
        if not label_selector:
            return pods
        wanted = dict(term.split("=", 1) for term in label_selector.split(","))
        return [
            p
            for p in pods
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]

    def label_app_pods(self, key: str, value: str) -> list[str]:
        """What `kubectl label pods -l 'app in (catalog,orders)' key=value` does."""
        names = []
        for pod in self.pods.values():
            if pod["metadata"]["labels"].get("app") in ("catalog", "orders"):
                pod["metadata"]["labels"][key] = value
                names.append(pod["metadata"]["name"])
        return names


def graceful_lab(**switches) -> tuple[Lab, GracefulCluster]:
    cluster = GracefulCluster(Scenario(**switches))
    return Lab(cluster, clock=cluster.clock, names=dict(LAB_NAMES)), cluster
