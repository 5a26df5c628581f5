"""Extra: Loki labels stay low-cardinality (ids belong in the line, queried with `| json`).

Judged on values, not on a list of names: fresh requests (404 lines, which sampling never
drops) each carry new ids, and a stream label that changes from one of them to the next, or
whose value is shaped like an id (hex, UUID, `ord-...`, an IP address, a long number), is a
per-request label whatever it is called. Over the last hour, a label with more distinct values
than the cluster has pods for is one too. Structured metadata (Loki's recommended home for ids,
and where Loki puts `detected_level`) is read apart from the labels and is not judged.
"""

from __future__ import annotations

import pytest

from checks.evidence import (
    CheckFailed,
    Passed,
    high_cardinality_labels,
    json_field,
    new_marker,
    new_trace,
    services_of,
    varying_labels,
)
from checks.lab import APP_SERVICES, Lab

LAB_WINDOW_S = 3600
MIN_VALUES_LIMIT = 50  # a lab cluster has a handful of pods; more values than this means ids
REQUESTS_PER_SERVICE = 3
NOT_FOUND = {"catalog": "/books/0", "orders": "/orders/unknown"}  # 404s: WARN, never sampled


def bounded_by_cluster(lab: Lab) -> list[str]:
    """Strings a label may contain and still be bounded: pod names and uids, node names, pod
    IPs of the app, Loki and agent namespaces, and the node's log path prefix."""
    out = ["/var/log/"]
    for ns in dict.fromkeys((lab.app_ns, lab.logging_ns, lab.agent_ns)):
        for pod in lab.kube.list_pods(ns):
            meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
            out += [meta.get("name", ""), meta.get("uid", ""), spec.get("nodeName", "")]
            out.append(status.get("podIP", ""))
    return [s for s in out if s]


def check_low_cardinality_labels(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    base = new_marker()
    start_ns = lab.evidence_start_ns()
    sent = [f"{base}-order"]
    # One order too: `order placed` (never sampled) carries an order id a label could copy.
    lab.order(sent[0], new_trace())
    for i in range(REQUESTS_PER_SERVICE):
        for service in APP_SERVICES:
            request_id = f"{base}-{service[0]}{i}"
            lab.send(service, "GET", NOT_FOUND[service], request_id=request_id, trace=new_trace())
            sent.append(request_id)

    def ours(entries):
        return [e for e in entries if json_field(e, "request_id") in sent]

    def complete(entries):
        placed = any(json_field(e, "msg") == "order placed" for e in ours(entries))
        return placed and {json_field(e, "request_id") for e in ours(entries)} >= set(sent)

    found = lab.wait_in_loki(
        f'{{namespace="{lab.app_ns}"}} |= "{base}"', complete,
        start_ns=start_ns, timeout=ingest_timeout,
        what=f"not every one of the {len(sent)} fresh requests (an order, 404s) reached Loki",
    )  # fmt: skip
    fresh = ours(found.entries)
    bounded = bounded_by_cluster(lab)
    remove = (
        "remove the label in the Alloy pipeline (manifests/logging/alloy-values.yaml: "
        "stage.labels / discovery.relabel); keep ids in the JSON line, or as structured metadata "
        f'(stage.structured_metadata), and query them with `{{namespace="{lab.app_ns}"}} | '
        'json | trace_id="..."`'
    )
    changing = varying_labels(fresh)
    if changing:
        examples = sorted({f"{n}={e.labels.get(n)}" for e in fresh for n in changing})[:4]
        raise CheckFailed(
            f"label(s) {', '.join(changing)} take a new value on every request of the same pod "
            f"({', '.join(examples)}): id-like labels, each value a new stream",
            "stream labels that stay the same for all lines of one container",
            remove,
        )
    bad = high_cardinality_labels([e.labels for e in fresh], bounded)
    if bad:
        raise CheckFailed(
            f"the fresh requests' streams carry id-shaped labels: {', '.join(bad[:4])}",
            "only namespace, pod, container, app and stream (from stage.cri) as labels, plus "
            "Loki's own service_name; ids in the line or in structured metadata (where "
            "detected_level is too)",
            remove,
        )
    crowded = crowded_labels(lab, bounded)
    if crowded:
        raise CheckFailed(
            f"labels in the last hour with per-request values: {'; '.join(crowded)}",
            "a label's values bounded by the cluster (pods, containers, nodes), none shaped "
            "like ids",
            remove,
        )
    labels = ", ".join(sorted(fresh[0].labels))
    metadata = sorted({k for e in fresh for k in e.structured_metadata})
    kept = f"; structured metadata (not labels): {', '.join(metadata)}" if metadata else ""
    return Passed(
        f"labels of {len(fresh)} fresh lines from {', '.join(sorted(services_of(fresh)))}: "
        f"{labels}{kept}; none id-like"
    )


def crowded_labels(lab: Lab, bounded: list[str]) -> list[str]:
    end = lab.evidence_end_ns()
    start = lab.clock.time_ns() - LAB_WINDOW_S * 10**9
    limit = max(MIN_VALUES_LIMIT, len(bounded))  # about four bounded strings per pod
    crowded = []
    for name in lab.loki.labels(start_ns=start, end_ns=end):
        values = lab.loki.label_values(name, start_ns=start, end_ns=end)
        bad = high_cardinality_labels([{name: v} for v in values], bounded)
        if bad or len(values) > limit:
            shown = [b.split("=", 1)[1] for b in bad[:2]] or values[:2]
            crowded.append(f"{name} ({len(values)} values, e.g. {shown})")
    return crowded


@pytest.mark.checker("lab2.low-cardinality-labels")
def test_low_cardinality_labels(lab, record_outcome):
    record_outcome(check_low_cardinality_labels(lab))
