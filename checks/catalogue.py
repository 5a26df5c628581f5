"""The checker catalogue: every checker's stable id, title, points and static hint.

The lab definition refers to checkers by these ids, the pytest checkers register under them,
the grading reports are keyed by them, and the docs render this table. `docs` names the lab
step that runs the checker (tests/test_checkers_report.py holds it to labs.lab2); `docs_url`
turns it into a link to the published site. The static hint is what the checker verifies in
general; a failure's own `next` line (checks.evidence.CheckFailed) is what to do about it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from labconfig.versions import REPO_ROOT

DOCS_URL_ENV = "LAB_DOCS_URL"
# `mkdocs serve` (`nox -s docs -- serve`) serves the course here when no site is published.
LOCAL_DOCS_URL = "http://127.0.0.1:8000/"


@dataclass(frozen=True)
class Checker:
    id: str
    title: str
    points: int
    hint: str
    docs: str  # site-relative link to the section that teaches it, e.g. "lab-2.md#step-1"
    informational: bool = False  # 0 points, shown but never counted as a failure


def docs_base_url() -> str:
    """Where the course site lives: LAB_DOCS_URL, else mkdocs.yml's `site_url`, else the
    address `mkdocs serve` uses. Always ends with a slash."""
    base = os.environ.get(DOCS_URL_ENV, "").strip()
    if not base:
        mkdocs = REPO_ROOT / "mkdocs.yml"
        text = mkdocs.read_text(encoding="utf-8") if mkdocs.is_file() else ""
        found = re.search(r"^site_url:\s*[\"']?([^\"'\s#]+)", text, re.MULTILINE)
        base = found.group(1) if found else LOCAL_DOCS_URL
    return base.rstrip("/") + "/"


def docs_url(spec: Checker, base: str | None = None) -> str:
    """The published page of a checker's section: `lab-2.md#step-1` -> `<base>lab-2/#step-1`
    (MkDocs' directory URLs)."""
    page, _, anchor = spec.docs.partition("#")
    path = page.removesuffix(".md")
    path = "" if path == "index" else path.removesuffix("/index") + "/"
    return (base or docs_base_url()) + path + (f"#{anchor}" if anchor else "")


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
        "One agent pod on every node (a DaemonSet) reads /var/log, from a namespace of its "
        "own: `logging-agent`",
        20,
        "Install the Alloy chart into namespace `logging-agent` (the only privileged one; Loki "
        "stays in the restricted `logging`) with controller.type=daemonset and "
        "alloy.mounts.varlog=true; no log-shipping sidecar belongs in bookstore pods.",
        "lab-2.md#step-2",
    ),
    Checker(
        "lab2.namespace-restricted",
        "The bookstore namespace still enforces Pod Security `restricted`, and all replicas run",
        20,
        "Keep pod-security.kubernetes.io/enforce=restricted on `bookstore` whatever the log "
        "agent needs (its hostPath belongs to `logging-agent` alone), and fix the pod spec the "
        "ReplicaSet events name instead.",
        "lab-2.md#step-2",
    ),
    Checker(
        "lab2.logs-survive-deletion",
        "A deleted pod's log lines can still be queried in Loki",
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
        "Only namespace, pod, container, app and stream (from Alloy's stage.cri), plus Loki's "
        "own service_name, belong in labels; detected_level is structured metadata, not a "
        "label. Query ids with `| json` instead.",
        "lab-2.md#step-3",
    ),
    Checker(
        "lab2.no-secrets-in-loki",
        "No password, token or card number reached Loki",
        5,
        "Redact in the app before the line is written: the bookstore masks sensitive keys and "
        "Luhn-valid card numbers.",
        "lab-2.md#step-3",
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
        "Grafana has Loki as its default datasource (informational)",
        0,
        "Install the Grafana chart with manifests/logging/grafana-values.yaml; the datasource "
        "is provisioned from its `datasources` value.",
        "lab-2.md#step-5",
        informational=True,
    ),
    Checker(
        "lab2.alert-rules",
        "Loki's ruler runs an error-rate rule that fires and an absent_over_time rule that stays "
        "quiet",
        10,
        "Fill in exercises/lab2/alert-rules.yaml, load it with `kubectl apply -k "
        "exercises/lab2` and read Loki's /prometheus/api/v1/rules: `== 0` never fires, "
        "absent_over_time does.",
        "lab-2.md#step-8",
    ),
    Checker(
        "lab2.retention",
        "Loki's compactor applies retention, with a shorter period for one stream selector",
        5,
        "Set loki.compactor.retention_enabled and delete_request_store, "
        "limits_config.retention_period and one retention_stream (at least 24h) in "
        "manifests/logging/loki-values.yaml; check `/config` through the service proxy.",
        "lab-2.md#step-6",
    ),
    Checker(
        "lab2.node-rotation",
        "The kubelet rotates a pod's log file: `kubectl logs` loses a line that Loki keeps",
        5,
        "The kind config sets a small containerLogMaxSize; look at "
        "/var/log/pods/<namespace>_<pod>_<uid>/<container>/ with `docker exec` on the node.",
        "lab-2.md#step-7",
    ),
    Checker(
        "lab2.incident",
        "Incident challenge: the failing dependency named, with a query that shows it",
        10,
        "Write failing_dependency and the LogQL query that proves it into "
        "exercises/lab2/incident.yaml; name the dependency as the logs name it.",
        "lab-2.md#step-9",
    ),
)

BY_ID: dict[str, Checker] = {c.id: c for c in CHECKERS}


def get(checker_id: str) -> Checker:
    """The checker with this id; an unknown id is an error that lists the known ones."""
    try:
        return ALL_BY_ID[checker_id]
    except KeyError:
        known = ", ".join(ALL_BY_ID)
        raise KeyError(f"unknown checker id {checker_id!r}; known ids: {known}") from None


# -- learner mode (issue 12): the learner's own queries, run against Loki --------------------
# They judge a file on the learner's machine (exercises/lab2/queries.yaml, or LAB_QUERIES), so
# they run only when asked for by id (`--checker ID`, as learner mode does); a plain
# `pytest checks` or a class's live grading runs CHECKERS above, what the cluster alone proves.
LEARNER_CHECKERS: tuple[Checker, ...] = (
    Checker(
        "lab2.learner-queries",
        "Your `errors` and `one_request` queries (exercises/lab2/queries.yaml) find a fresh "
        "failing request",
        20,
        "one_request: select the namespace, then keep only the lines of that one trace "
        "($TRACE_ID is not a label); errors: only lines whose level is ERROR; both run as range "
        "queries. `python -m validators.exercises` judges their shape offline.",
        "lab-2.md#step-3",
    ),
    Checker(
        "lab2.learner-deleted-pod-lines",
        "The pods are deleted and your `deleted_pod_lines` query still returns their lines, "
        "up to the last",
        10,
        'Delete every catalog and orders pod; select one with `pod="$POD"` inside the braces: '
        "a deleted pod's name is still a label value in Loki.",
        "lab-2.md#step-4",
    ),
)
ON_REQUEST: dict[str, Checker] = {c.id: c for c in LEARNER_CHECKERS}
ALL_BY_ID: dict[str, Checker] = {**BY_ID, **ON_REQUEST}  # every id `--checker` accepts
