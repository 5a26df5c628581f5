"""When a step fails, gather what explains it and point at the lines that matter.

Kubernetes hides the most common lab failures one level down: a Pod Security rejection is only
a `FailedCreate` event on the ReplicaSet while the Deployment sits at 0 ready; an image that was
not loaded is an `ErrImageNeverPull` in the pod status; a crash is in the previous container's
log. This module saves events, ReplicaSets, pod descriptions and logs, and helm status into
`.lab/artifacts/<timestamp>/` and returns the few lines a learner should read first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Fragments that explain a failure on their own (matched case-insensitively).
EXPLAINING = (
    "violates podsecurity",
    "forbidden",
    "failedcreate",
    "errimageneverpull",
    "imagepullbackoff",
    "errimagepull",
    "crashloopbackoff",
    "oomkilled",
    "insufficient memory",
    "insufficient cpu",
    "failedscheduling",
    "too many open files",
    "no files targets were passed",
    "failed to create fsnotify watcher",
    "you must provide a schema_config",
    "context deadline exceeded",
    "address already in use",
    "port is already allocated",
    "connection refused",
    "permission denied",
    "content digest",
    # docker build: no BuildKit client (set LAB_DOCKER), no registry (BOOKSTORE_BASE_IMAGE),
    # a TLS-intercepting proxy (BOOKSTORE_EXTRA_CA)
    "buildx component is missing",
    "failed to resolve source metadata",
    "pull access denied",
    "certificate verify failed",
)

NORMAL_REASONS = {"Scheduled", "Pulled", "Created", "Started", "SuccessfulCreate", "Killing"}


@dataclass
class Diagnosis:
    folder: Path
    explaining: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def explaining_lines(text: str, limit: int = 12) -> list[str]:
    """The lines of `text` that name a known cause, deduplicated, in order."""
    seen: dict[str, None] = {}
    for raw in text.splitlines():
        line = raw.strip()
        low = line.lower()
        if line and any(marker in low for marker in EXPLAINING):
            seen.setdefault(line[:400], None)
    return list(seen)[:limit]


def _items(list_json: str) -> list[dict]:
    """The `items` of a `kubectl get -o json` list; none when the output is not such a list."""
    try:
        return json.loads(list_json).get("items") or []
    except (ValueError, AttributeError):
        return []


def _events_lines(events_json: str) -> list[str]:
    """Warning events and FailedCreate events as one readable line each."""
    lines = []
    for ev in _items(events_json):
        reason = ev.get("reason", "")
        if ev.get("type") == "Normal" and reason in NORMAL_REASONS:
            continue
        obj = ev.get("involvedObject", {})
        kind_name = f"{obj.get('kind', '?')}/{obj.get('name', '?')}"
        message = " ".join(str(ev.get("message", "")).split())
        lines.append(f"{kind_name} {reason}: {message}")
    return lines


def _replicaset_lines(rs_json: str) -> list[str]:
    """ReplicaFailure conditions: where Pod Security rejections surface for a Deployment."""
    lines = []
    for rs in _items(rs_json):
        name = rs.get("metadata", {}).get("name", "?")
        for cond in rs.get("status", {}).get("conditions", []) or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                message = " ".join(str(cond.get("message", "")).split())
                lines.append(f"ReplicaSet/{name} {cond.get('reason', '')}: {message}")
    return lines


def _unready_pods(pods_json: str) -> list[str]:
    names = []
    for pod in _items(pods_json):
        statuses = pod.get("status", {}).get("containerStatuses", []) or []
        if not statuses or not all(s.get("ready") for s in statuses):
            names.append(pod.get("metadata", {}).get("name", ""))
    return [n for n in names if n]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def collect(
    runner,
    folder: Path,
    *,
    kubeconfig: str,
    namespaces: Sequence[str] = (),
    releases: Sequence[tuple[str, str]] = (),
    failure: str = "",
) -> Diagnosis:
    """Save what explains a failure into `folder`; return the lines to print first.

    Every command goes through the runner (quietly), so a broken cluster only makes a
    diagnostic file say so; collecting never raises for a failed command.
    """
    folder.mkdir(parents=True, exist_ok=True)
    diag = Diagnosis(folder)
    explaining: list[str] = explaining_lines(failure)

    def save(name: str, argv: Sequence[str]) -> str:
        result = runner.run(argv, echo=False, show_output=False, timeout=60)
        path = folder / f"{_safe(name)}.txt"
        path.write_text(f"$ {' '.join(argv)}\n(exit code {result.returncode})\n{result.output}")
        diag.files.append(path)
        return result.output if result.ok else ""

    (folder / "failure.txt").write_text(failure)
    kc = ("--kubeconfig", kubeconfig)
    for ns in namespaces:
        events = save(f"{ns}-events", ("kubectl", *kc, "get", "events", "-n", ns, "-o", "json"))
        rs = save(
            f"{ns}-replicasets", ("kubectl", *kc, "get", "replicasets", "-n", ns, "-o", "json")
        )
        pods = save(f"{ns}-pods", ("kubectl", *kc, "get", "pods", "-n", ns, "-o", "json"))
        save(f"{ns}-describe-pods", ("kubectl", *kc, "describe", "pods", "-n", ns))
        explaining += _replicaset_lines(rs)
        # Normal lifecycle events are filtered out already: what is left is worth reading.
        explaining += _events_lines(events)
        for pod in _unready_pods(pods)[:6]:
            logs = save(
                f"{ns}-{pod}-logs",
                ("kubectl", *kc, "logs", "-n", ns, pod, "--all-containers", "--tail=80"),
            )
            save(
                f"{ns}-{pod}-previous-logs",
                (
                    "kubectl",
                    *kc,
                    "logs",
                    "-n",
                    ns,
                    pod,
                    "--all-containers",
                    "--previous",
                    "--tail=80",
                ),
            )
            explaining += [f"{ns}/{pod}: {line}" for line in explaining_lines(logs, limit=4)]
    for release, ns in releases:
        status = save(f"helm-{release}", ("helm", *kc, "status", release, "--namespace", ns))
        explaining += [f"helm {release}: {line}" for line in explaining_lines(status, limit=3)]
    diag.explaining = list(dict.fromkeys(explaining))[:15]
    (folder / "explaining.txt").write_text("\n".join(diag.explaining) + "\n")
    return diag
