"""How much of a cluster a class needs: per learner from the bookstore's own manifests, plus the
shared logging stack, and a rough Loki estimate for classes beyond one single-binary Loki.

The per-learner figure is computed, not guessed: the Deployments' replicas times their containers'
requests and limits, one rolling-update surge pod per Deployment (the default maxSurge of 25 %
rounds up to one pod for two replicas) and the loadgen Job. The quota of
`manifests/class/learner.yaml` must hold that, or `plan` says so before anything is created.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_SUFFIX = {
    "": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")

# Estimates for the sizing table, each from a documented default: Loki's `chunk_target_size`
# (1.5 MB) bounds what one active stream holds in ingester memory; a bookstore line is ~350 bytes
# of JSON; Loki's chunk compression (snappy by default in Loki 3) stores about a fifth of that.
BYTES_PER_LINE = 350
COMPRESSION_RATIO = 5
CHUNK_TARGET_BYTES = 1_572_864
STREAMS_PER_LEARNER = 5  # 2 catalog + 2 orders pods (stdout) + loadgen


def quantity(text: Any) -> float:
    """A Kubernetes quantity (`50m`, `1`, `64Mi`, `1Gi`) as a number of cores or bytes."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a Kubernetes quantity such as 50m, 1, 64Mi or 1Gi")
    return float(m.group(1)) * _SUFFIX[m.group(2) or ""]


@dataclass(frozen=True)
class Need:
    """CPU in cores and memory in bytes, requests and limits."""

    values: dict[str, float]

    def __add__(self, other: Need) -> Need:
        return Need({k: self.values.get(k, 0) + other.values.get(k, 0) for k in KEYS})

    def times(self, n: float) -> Need:
        return Need({k: self.values.get(k, 0) * n for k in KEYS})

    def fits_in(self, hard: dict[str, Any]) -> list[str]:
        """What exceeds a quota's `spec.hard` (empty when everything fits)."""
        over = []
        for key in KEYS:
            if key in hard and self.values.get(key, 0) > quantity(hard[key]) + 1e-9:
                over.append(f"{key}: needs {fmt(key, self.values[key])}, quota {hard[key]}")
        return over


def container_need(container: dict[str, Any]) -> Need:
    res = container.get("resources") or {}
    values = {}
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            raw = (res.get(kind) or {}).get(what)
            values[f"{kind}.{what}"] = quantity(raw) if raw is not None else 0.0
    return Need(values)


def pod_need(pod_spec: dict[str, Any]) -> Need:
    total = Need({})
    for c in pod_spec.get("containers") or []:
        total = total + container_need(c)
    return total


def workload_need(objects: list[dict[str, Any]]) -> tuple[Need, int]:
    """(resources, pods) of Deployments incl. one surge pod each, and Jobs (parallelism)."""
    total, pods = Need({}), 0
    for obj in objects:
        spec = obj.get("spec") or {}
        template = (spec.get("template") or {}).get("spec") or {}
        if obj.get("kind") == "Deployment":
            replicas = int(spec.get("replicas", 1))
            surge = math.ceil(replicas * 0.25) if replicas else 0
            total = total + pod_need(template).times(replicas + surge)
            pods += replicas + surge
        elif obj.get("kind") == "Job":
            parallel = int(spec.get("parallelism", 1))
            total = total + pod_need(template).times(parallel)
            pods += parallel
    return total, pods


def fmt(key: str, value: float) -> str:
    if key.endswith("cpu"):
        return f"{round(value * 1000)}m"
    return f"{value / 2**20:.0f}Mi"


@dataclass(frozen=True)
class LokiEstimate:
    lines_per_day: float
    raw_gib_per_day: float
    stored_gib_per_day: float
    ingester_memory_gib: float


def loki_estimate(learners: int, lines_per_minute_each: float) -> LokiEstimate:
    """A paper estimate (stated as such in the docs) of Loki's storage and ingester memory."""
    lines = learners * lines_per_minute_each * 60 * 24
    raw = lines * BYTES_PER_LINE / 2**30
    memory = learners * STREAMS_PER_LEARNER * CHUNK_TARGET_BYTES / 2**30
    return LokiEstimate(lines, raw, raw / COMPRESSION_RATIO, memory)
