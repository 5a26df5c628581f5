"""Pure evaluation: from what the cluster and Loki returned to a verdict that teaches.

Nothing here talks to a cluster. Every function takes API JSON (dicts as `kubectl get -o json`
prints them) or Loki entries and returns findings, so the offline tests can exercise each rule
directly, and the checkers stay a short list of "fetch, evaluate, explain".
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from checks.loki import Entry

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

# Images or container names of log shippers: as a sidecar in an app pod, or as the agent.
LOG_AGENT_PATTERN = re.compile(
    r"(alloy|grafana-agent|promtail|fluent-?bit|fluentd|vector|filebeat|logstash|"
    r"otel(col)?|opentelemetry-collector)",
    re.IGNORECASE,
)

# Label names that carry per-request or per-user values: unbounded cardinality in Loki's index.
HIGH_CARDINALITY_NAME = re.compile(
    r"(trace|span|request|req|user|order|session|correlation|client)_?(id|ip)$|^traceparent$"
    r"|^id$",
    re.IGNORECASE,
)
# Values shaped like ids, whatever the label is called: hex ids (trace 32, span 16, request
# ids), UUIDs, prefixed ids such as `ord-0123456789abcdef`, IP addresses, long numbers, e-mail.
ID_LIKE_VALUE = re.compile(
    r"^(?:[A-Za-z]+[-_])?(?:[0-9a-f]{12,}|[0-9A-F]{12,})$"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|^\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?$|^[0-9a-f:]*:[0-9a-f:]*:[0-9a-f:]+$"
    r"|^\d{6,}$|^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
    re.IGNORECASE,
)
# A card number stands alone: not inside a hex id (…9ba982e5856…), nor a segment of a dashed
# or underscored identifier (ord-0000000000000000, a UUID, lab2-check-1234…, traceparent).
CARD_CANDIDATE = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9A-Za-z][-_])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])(?![-_][0-9A-Za-z])"
)
# JSON fields the services fill with ids of their own making (bookstore/redaction.py keeps them
# unmasked on purpose): a digit run in one of them is an id, never a card number.
ID_FIELDS = frozenset(
    {"trace_id", "span_id", "parent_span_id", "request_id", "order_id", "traceparent",
     "trace_flags"}
)  # fmt: skip
# The agent contract (docs/reference/checkers.md): the log agent is the DaemonSet in the logging
# namespace that the Alloy chart made, found by the label the chart sets whatever the release
# is called (grafana/alloy operations/helm/charts/alloy/templates/_helpers.tpl,
# alloy.selectorLabels), or else by the release name versions.toml pins.
AGENT_LABEL = ("app.kubernetes.io/name", "alloy")
# Taints the DaemonSet controller tolerates for every DaemonSet pod on its own
# (kubernetes pkg/controller/daemon/util/daemonset_util.go, AddOrUpdateDaemonPodTolerations).
DAEMON_TOLERATED_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/network-unavailable",
    }
)


class CheckFailed(AssertionError):
    """A checker's verdict: what it observed, what it expected, and what to run next."""

    def __init__(self, observed: str, expected: str, next_step: str):
        self.observed, self.expected, self.next_step = observed, expected, next_step
        super().__init__(self.diagnosis)

    @property
    def diagnosis(self) -> str:
        return f"observed: {self.observed}\nexpected: {self.expected}\nnext: {self.next_step}"


@dataclass
class Passed:
    """A checker's success: what it saw (one sentence) and numbers worth reporting."""

    summary: str
    measurements: dict[str, float] = field(default_factory=dict)


# -- fresh evidence ----------------------------------------------------------------------
def new_marker() -> str:
    """A unique request id: the checker queries only for it, never for older lines."""
    return f"lab2-check-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Trace:
    trace_id: str
    span_id: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def new_trace() -> Trace:
    """A fresh W3C trace (all-zero ids are invalid, so regenerate in that 2^-128 case)."""
    while True:
        trace = Trace(secrets.token_hex(16), secrets.token_hex(8))
        if int(trace.trace_id, 16) and int(trace.span_id, 16):
            return trace


# -- exercise 1: JSON on stdout ----------------------------------------------------------
@dataclass(frozen=True)
class BadLine:
    number: int  # 1-based, within the lines read
    line: str
    errors: list[str]


def first_bad_line(lines: Iterable[str], validate: Callable[[str], list[str]]) -> BadLine | None:
    """The first non-empty line that is not one valid JSON log object, with the reasons."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError as e:
            return BadLine(number, line, [f"not JSON ({e})"])
        errors = validate(line)
        if errors:
            return BadLine(number, line, list(errors))
    return None


# -- exercise 2: the agent ---------------------------------------------------------------
def pod_spec(workload: dict) -> dict:
    """The pod spec of a Pod or of a workload's template."""
    if workload.get("kind") == "Pod" or "template" not in workload.get("spec", {}):
        return workload.get("spec", {})
    return workload["spec"]["template"].get("spec", {})


def name_of(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "?")


def varlog_mounts(spec: dict) -> list[tuple[str, str, bool]]:
    """(container, mountPath, readOnly) for every mount of a hostPath at or under /var/log."""
    host_volumes = {
        v["name"]: v["hostPath"].get("path", "")
        for v in spec.get("volumes") or []
        if "hostPath" in v
    }
    wanted = {n for n, p in host_volumes.items() if p.rstrip("/") in ("/var/log", "/var/log/pods")}
    out = []
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for m in c.get("volumeMounts") or []:
            if m.get("name") in wanted:
                out.append((c.get("name", "?"), m.get("mountPath", "?"), bool(m.get("readOnly"))))
    return out


def is_lab_agent(ds: dict, release: str) -> bool:
    """The agent contract: the Alloy chart's label on the DaemonSet (or on its pod template),
    or the configured release name."""
    key, value = AGENT_LABEL
    labels = ds.get("metadata", {}).get("labels") or {}
    template = ds.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    return labels.get(key) == value or template.get(key) == value or name_of(ds) == release


def find_agent(daemonsets: Iterable[dict], release: str) -> dict | None:
    """The log agent DaemonSet by the contract: the one named `release` first, else the first
    one carrying the Alloy chart's label; None when there is none."""
    agents = [ds for ds in daemonsets if is_lab_agent(ds, release)]
    return next((d for d in agents if name_of(d) == release), agents[0] if agents else None)


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def nodes_for_daemonset(nodes: Iterable[dict], ds: dict) -> list[str]:
    """Nodes a DaemonSet must cover: every node whose NoSchedule/NoExecute taints its pods
    tolerate. A nodeSelector or affinity does not shrink the list: an agent pinned to some nodes
    leaves the others' logs unread."""
    tolerations = pod_spec(ds).get("tolerations") or []
    out = []
    for node in nodes:
        taints = [
            t
            for t in node.get("spec", {}).get("taints") or []
            if t.get("effect") in ("NoSchedule", "NoExecute")
            and t.get("key") not in DAEMON_TOLERATED_TAINTS
        ]
        if all(_tolerates(tolerations, t) for t in taints):
            out.append(name_of(node))
    return sorted(out)


def looks_like_log_agent(workload: dict) -> bool:
    """A workload that ships logs: named like an agent, or running an agent image."""
    if LOG_AGENT_PATTERN.search(name_of(workload)):
        return True
    containers = pod_spec(workload).get("containers") or []
    return any(LOG_AGENT_PATTERN.search(c.get("image", "")) for c in containers)


def log_sidecars(pods: Iterable[dict]) -> list[str]:
    """`pod/container (image)` for every log-shipping container inside an app pod."""
    out = []
    for pod in pods:
        spec = pod.get("spec", {})
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            if LOG_AGENT_PATTERN.search(c.get("image", "")) or LOG_AGENT_PATTERN.search(
                c.get("name", "")
            ):
                out.append(f"{name_of(pod)}/{c.get('name')} ({c.get('image')})")
    return out


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_running(pod: dict) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and not pod.get("metadata", {}).get(
        "deletionTimestamp"
    )


def owned_by(obj: dict, kind: str, name: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("kind") == kind and r.get("name") == name for r in refs)


def nodes_without_ready_agent(app_pods: Iterable[dict], agent_pods: Iterable[dict]) -> list[str]:
    """Nodes that run app pods but no ready agent pod, sorted."""
    app_nodes = {p.get("spec", {}).get("nodeName") for p in app_pods if is_running(p)}
    agent_nodes = {p.get("spec", {}).get("nodeName") for p in agent_pods if is_ready(p)}
    return sorted(n for n in app_nodes - agent_nodes if n)


# -- exercise 3: the namespace -----------------------------------------------------------
def enforce_level(namespace: dict) -> str | None:
    return (namespace.get("metadata", {}).get("labels") or {}).get(ENFORCE_LABEL)


def violating_pod(name: str, image: str) -> dict:
    """A pod that is restricted-compliant except for one hostPath volume.

    Pod Security must reject it in `bookstore`; its only violation is the one the agent needs,
    so a rejection proves the namespace would also refuse an agent placed there.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "lab2-checker"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 10001,
                    },
                    "volumeMounts": [{"name": "varlog", "mountPath": "/var/log", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log"}}],
        },
    }


def is_pod_security_rejection(message: str) -> bool:
    return "violates PodSecurity" in message


@dataclass(frozen=True)
class NotReady:
    deployment: str
    ready: int
    wanted: int
    reason: str | None  # the ReplicaSet's FailedCreate message, when there is one
    problem: str = ""  # what is wrong, in a sentence (scaled to 0, stuck rollout, not ready)


def rollout_problem(d: dict) -> str | None:
    """Why a Deployment is not fully rolled out, the way `kubectl rollout status` judges it
    (kubernetes staging/src/k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), plus
    "scaled to 0", which rollout status calls done; None when every replica is new and ready."""
    spec, status = d.get("spec", {}), d.get("status", {})
    wanted = spec.get("replicas", 1)
    if wanted == 0:
        return "is scaled to 0 replicas: nothing serves, nothing logs"
    if status.get("observedGeneration", 0) < d.get("metadata", {}).get("generation", 0):
        return "has a change the controller has not acted on yet"
    updated = status.get("updatedReplicas") or 0
    ready = status.get("readyReplicas") or 0
    available = status.get("availableReplicas", ready) or 0
    total = status.get("replicas") or 0
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return (
            f"exceeded its progress deadline with {updated}/{wanted} replicas of the newest "
            f"revision ({ready} ready in all)"
        )
    if updated < wanted:
        old = f"; {ready} old pod(s) still serve" if ready else ""
        return f"has {updated}/{wanted} replicas of the newest revision{old}"
    if total > updated:
        return f"still runs {total - updated} old replica(s) beside {updated} new one(s)"
    if available < updated or ready < wanted:
        return f"has {ready}/{wanted} ready"
    return None


def not_ready_deployments(
    deployments: Iterable[dict], replicasets: list[dict], events: list[dict]
) -> list[NotReady]:
    """Deployments not fully rolled out, each with the FailedCreate message explaining it."""
    out = []
    for d in deployments:
        problem = rollout_problem(d)
        if problem is None:
            continue
        wanted = d.get("spec", {}).get("replicas", 1)
        ready = d.get("status", {}).get("readyReplicas") or 0
        reason = failed_create(d, replicasets, events)
        out.append(NotReady(name_of(d), ready, wanted, reason, problem))
    return out


def failed_create(deployment: dict, replicasets: list[dict], events: list[dict]) -> str | None:
    """The newest ReplicaSet's FailedCreate message (condition first, then events)."""
    mine = [rs for rs in replicasets if owned_by(rs, "Deployment", name_of(deployment))]
    mine.sort(key=_revision, reverse=True)
    for rs in mine:
        for cond in rs.get("status", {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("reason") == "FailedCreate":
                return f"ReplicaSet {name_of(rs)}: {cond.get('message', '')}"
        rs_events = [
            e
            for e in events
            if e.get("reason") == "FailedCreate"
            and e.get("involvedObject", {}).get("kind") == "ReplicaSet"
            and e.get("involvedObject", {}).get("name") == name_of(rs)
        ]
        if rs_events:
            latest = max(rs_events, key=lambda e: e.get("lastTimestamp") or "")
            return f"ReplicaSet {name_of(rs)}: {latest.get('message', '')}"
    return None


def _revision(rs: dict) -> int:
    annotations = rs.get("metadata", {}).get("annotations") or {}
    try:
        return int(annotations.get("deployment.kubernetes.io/revision", "0"))
    except ValueError:
        return 0


def fix_for_pod_security(message: str) -> str:
    """The edit that answers a Pod Security rejection message, in the learner's words."""
    fixes = [
        ("allowPrivilegeEscalation", "set securityContext.allowPrivilegeEscalation: false"),
        ("unrestricted capabilities", "set securityContext.capabilities.drop: [ALL]"),
        ("runAsNonRoot", "set securityContext.runAsNonRoot: true (and a numeric runAsUser)"),
        ("seccompProfile", "set securityContext.seccompProfile.type: RuntimeDefault"),
        ("hostPath", "remove the hostPath volume: app pods never read node files"),
        ("privileged", "remove securityContext.privileged: true"),
    ]
    found = [fix for key, fix in fixes if key in message]
    return "; ".join(found) or "fix the pod template field the message names"


# -- Loki evidence -----------------------------------------------------------------------
def service_of(entry: Entry) -> str:
    """Which service wrote a line: its JSON `service` field, else the stream's labels."""
    try:
        service = json.loads(entry.line).get("service")
    except (ValueError, AttributeError):
        service = None
    return service or entry.labels.get("app") or entry.labels.get("container") or "?"


def services_of(entries: Iterable[Entry]) -> set[str]:
    return {service_of(e) for e in entries}


def json_field(entry: Entry, key: str):
    try:
        return json.loads(entry.line).get(key)
    except (ValueError, AttributeError):
        return None


def high_cardinality_labels(
    streams: Iterable[dict[str, str]], bounded: Iterable[str] = ()
) -> list[str]:
    """`name=value` of labels named like ids or whose values are shaped like ids.

    `bounded` are strings the cluster itself bounds (pod names and uids, node names, pod IPs):
    a value containing one (`pod=catalog-7d9f8c6b4-x2x9q`, a `filename` with the pod's uid) has
    as many values as there are pods, not one per request, so its shape does not count.
    """
    bounded = [b for b in bounded if b]
    bad = set()
    for labels in streams:
        for name, value in labels.items():
            value = value or ""
            if any(b in value for b in bounded):
                continue
            if HIGH_CARDINALITY_NAME.search(name) or ID_LIKE_VALUE.search(value):
                bad.add(f"{name}={value}")
    return sorted(bad)


def varying_labels(entries: Iterable[Entry]) -> list[str]:
    """Stream labels whose value differs between lines of the same kind (same pod, container,
    stream, message and level) for different requests: such a label takes a new value per
    request. (A `level` or `stream` label differs between kinds of line, and is bounded.)"""
    by_source: dict[tuple, dict[str, set[str]]] = {}
    for e in entries:
        source = (
            e.labels.get("pod", "?"), e.labels.get("container", "?"), e.labels.get("stream"),
            json_field(e, "msg"), json_field(e, "level"), json_field(e, "status"),
        )  # fmt: skip
        values = by_source.setdefault(source, {})
        for name, value in e.labels.items():
            values.setdefault(name, set()).add(value)
    out = set()
    for values in by_source.values():
        out |= {name for name, seen in values.items() if len(seen) > 1}
    return sorted(out)


# -- the CRI log file (exercise 1) -------------------------------------------------------
@dataclass(frozen=True)
class CriLine:
    timestamp: str
    stream: str  # stdout or stderr
    content: str


def parse_cri(text: str) -> list[CriLine]:
    """Lines of a CRI log file (`<RFC3339Nano> <stdout|stderr> <P|F> <content>`), partial
    lines (P) joined to the full line they belong to, per stream (kubernetes
    staging/src/k8s.io/cri-api, the CRI logging format; pkg/kubelet/kuberuntime/logs)."""
    out, partial = [], {}
    for raw in text.splitlines():
        parts = raw.split(" ", 3)
        if len(parts) < 3:
            continue
        ts, stream, tag = parts[0], parts[1], parts[2]
        content = parts[3] if len(parts) > 3 else ""
        if tag == "P":
            partial[stream] = partial.get(stream, "") + content
            continue
        out.append(CriLine(ts, stream, partial.pop(stream, "") + content))
    return out


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Luhn-valid 13-19 digit runs (spaces or dashes allowed between digits) that are not ids.

    In a JSON line the values of the id fields the services log by design are left out; a run
    of one repeated digit (0000000000000000 passes Luhn) is no card number.
    """
    out = []
    for match in CARD_CANDIDATE.finditer(_without_id_fields(text)):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_valid(digits):
            out.append(digits)
    return out


def _without_id_fields(text: str) -> str:
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if not isinstance(obj, dict):
        return text
    return json.dumps(_drop_ids(obj))


def _drop_ids(value):
    if isinstance(value, dict):
        return {k: _drop_ids(v) for k, v in value.items() if k not in ID_FIELDS}
    if isinstance(value, list):
        return [_drop_ids(v) for v in value]
    return value


def shorten(text: str, width: int = 160) -> str:
    text = text.rstrip("\n")
    return text if len(text) <= width else text[: width - 1] + "…"
