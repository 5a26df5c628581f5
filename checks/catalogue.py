"""The checker catalogue: every checker's stable id, title, points and static hint.

The lab definition refers to checkers by these ids, the pytest checkers register under them,
the grading reports are keyed by them, and the docs render this table. Hints link the docs
page and section that teach the exercise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checker:
    id: str
    title: str
    points: int
    hint: str
    docs: str  # site-relative link to the section that teaches it, e.g. "lab-2.md#step-1"


CHECKERS: tuple[Checker, ...] = (
    Checker(
        "lab2.json-stdout",
        "Every bookstore container logs one JSON object per line to stdout",
        20,
        "Each line must parse as JSON and follow bookstore/log-schema.json "
        "(time, level, msg, service; trace_id on request lines). Look at "
        "`kubectl logs -n bookstore deploy/catalog --tail=5`.",
        "lab-2.md#step-1",
    ),
    Checker(
        "lab2.agent-daemonset",
        "The log agent runs as a DaemonSet in `logging`, reading the node's /var/log",
        20,
        "Install the Alloy chart into namespace `logging` with controller.type=daemonset and "
        "alloy.mounts.varlog=true; no log-shipping sidecar belongs in bookstore pods.",
        "lab-2.md#step-2",
    ),
    Checker(
        "lab2.namespace-restricted",
        "The bookstore namespace still enforces Pod Security `restricted`, and all replicas run",
        20,
        "Never relax the app namespace for logging: keep "
        "pod-security.kubernetes.io/enforce=restricted on `bookstore` and fix the pod spec "
        "the ReplicaSet events name instead.",
        "lab-2.md#step-0",
    ),
    Checker(
        "lab2.logs-survive-deletion",
        "A pod's log lines are still in Loki after the pod is deleted",
        20,
        "Loki only keeps what the agent shipped before the pod went away: check that the "
        'Alloy pods are ready and that `{namespace="bookstore"}` returns recent lines.',
        "lab-2.md#step-4",
    ),
    Checker(
        "lab2.single-request-query",
        "One request's lines are found in both services by its trace id (LogQL)",
        20,
        "Query with query_range, not an instant query: "
        '`{namespace="bookstore"} | json | trace_id="<id>"` must return lines from '
        "catalog and orders.",
        "lab-2.md#step-3",
    ),
    Checker(
        "lab2.low-cardinality-labels",
        "Loki labels stay low-cardinality (no trace, request or user ids as labels)",
        5,
        "Only namespace, pod, container and app (plus Loki's own service_name) belong in "
        "labels; query ids with `| json` instead.",
        "chapter.md#labels-are-the-index",
    ),
    Checker(
        "lab2.no-secrets-in-loki",
        "No password, token or card number reached Loki",
        5,
        "Redact in the app before the line is written: the bookstore masks sensitive keys and "
        "Luhn-valid card numbers.",
        "chapter.md#pii-and-redaction",
    ),
    Checker(
        "lab2.error-traceable",
        'An injected failure is found by level="ERROR" and followed across services',
        5,
        'Start from `{namespace="bookstore"} | json | level="ERROR"`, take the trace_id of '
        "the failing line and query for it.",
        "lab-2.md#step-3",
    ),
    Checker(
        "lab2.grafana-datasource",
        "Grafana has Loki as its default datasource",
        0,
        "Install the Grafana chart with manifests/logging/grafana-values.yaml; the datasource "
        "is provisioned from its `datasources` value.",
        "lab-2.md#step-5",
    ),
    Checker(
        "lab2.alert-rules",
        "Loki's ruler runs an error-rate rule that fires and an absent_over_time rule that stays "
        "quiet",
        10,
        "Fill in exercises/lab2/alert-rules.yaml, load it with `kubectl apply -k "
        "exercises/lab2` and read Loki's /prometheus/api/v1/rules: `== 0` never fires, "
        "absent_over_time does.",
        "hands-on-extras.md#alerting-on-logs",
    ),
    Checker(
        "lab2.retention",
        "Loki's compactor applies retention, with a shorter period for one stream selector",
        5,
        "Set loki.compactor.retention_enabled and delete_request_store, "
        "limits_config.retention_period and one retention_stream (at least 24h) in "
        "manifests/logging/loki-values.yaml; check `/config` through the service proxy.",
        "hands-on-extras.md#retention",
    ),
    Checker(
        "lab2.node-rotation",
        "The kubelet rotates a pod's log file: `kubectl logs` loses a line that Loki keeps",
        5,
        "The kind config sets a small containerLogMaxSize; look at "
        "/var/log/pods/<namespace>_<pod>_<uid>/<container>/ with `docker exec` on the node.",
        "hands-on-extras.md#the-node-rotates-the-files",
    ),
    Checker(
        "lab2.incident",
        "Incident challenge: the failing dependency named, with a query that shows it",
        10,
        "Write failing_dependency and the LogQL query that proves it into "
        "exercises/lab2/incident.yaml; name the dependency as the logs name it.",
        "hands-on-extras.md#incident-challenge",
    ),
)

BY_ID: dict[str, Checker] = {c.id: c for c in CHECKERS}


def get(checker_id: str) -> Checker:
    """The checker with this id; an unknown id is an error that lists the known ones."""
    try:
        return BY_ID[checker_id]
    except KeyError:
        known = ", ".join(BY_ID)
        raise KeyError(f"unknown checker id {checker_id!r}; known ids: {known}") from None
