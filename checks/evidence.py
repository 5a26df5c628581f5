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
    r"(trace|span|request|req|user|order|session|correlation)_?id$|^traceparent$|^id$",
    re.IGNORECASE,
)
ID_LIKE_VALUE = re.compile(
    r"^([0-9a-f]{16}|[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
# Digits standing alone: a run inside a hex trace id (…9ba982e5856…) is not a card number.
CARD_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")


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


def not_ready_deployments(
    deployments: Iterable[dict], replicasets: list[dict], events: list[dict]
) -> list[NotReady]:
    """Deployments below their replica count, each with the FailedCreate message explaining it."""
    out = []
    for d in deployments:
        wanted = d.get("spec", {}).get("replicas", 1)
        ready = d.get("status", {}).get("readyReplicas") or 0
        if ready >= wanted:
            continue
        out.append(NotReady(name_of(d), ready, wanted, failed_create(d, replicasets, events)))
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


def high_cardinality_labels(streams: Iterable[dict[str, str]]) -> list[str]:
    """`name=value` of labels named like ids or whose values look like trace/request ids."""
    bad = set()
    for labels in streams:
        for name, value in labels.items():
            if HIGH_CARDINALITY_NAME.search(name) or ID_LIKE_VALUE.match(value or ""):
                bad.add(f"{name}={value}")
    return sorted(bad)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Luhn-valid 13-19 digit runs (spaces or dashes allowed between digits)."""
    out = []
    for match in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            out.append(digits)
    return out


def shorten(text: str, width: int = 160) -> str:
    text = text.rstrip("\n")
    return text if len(text) <= width else text[: width - 1] + "…"
