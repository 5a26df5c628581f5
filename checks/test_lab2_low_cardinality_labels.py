"""Extra: Loki labels stay low-cardinality (ids belong in the line, queried with `| json`)."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed, Passed, high_cardinality_labels, new_marker, new_trace
from checks.lab import APP_NAMESPACE, Lab

LAB_WINDOW_S = 3600
MAX_VALUES_PER_LABEL = 200  # a lab cluster has a handful of pods; thousands means ids


def check_low_cardinality_labels(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    marker, trace = new_marker(), new_trace()
    start_ns = lab.evidence_start_ns()
    lab.send("catalog", "GET", "/books", request_id=marker, trace=trace)
    found = lab.wait_in_loki(
        f'{{namespace="{APP_NAMESPACE}"}} |= "{marker}"', lambda es: bool(es),
        start_ns=start_ns, timeout=ingest_timeout, what="the marker request never reached Loki",
    )  # fmt: skip
    fresh_labels = [e.labels for e in found.entries]
    bad = high_cardinality_labels(fresh_labels)
    if bad:
        raise CheckFailed(
            f"the fresh request's stream carries id-like labels: {', '.join(bad)}",
            "only namespace, pod, container, app (and service_name) as labels; ids stay in the "
            "JSON line",
            "remove those labels from the Alloy pipeline (manifests/logging/alloy-values.yaml) and "
            'query ids with `{namespace="bookstore"} | json | trace_id="..."`',
        )
    window = (lab.clock.time_ns() - LAB_WINDOW_S * 10**9, lab.clock.time_ns() + 1)
    names = lab.loki.labels(start_ns=window[0], end_ns=window[1])
    crowded = []
    for name in names:
        values = lab.loki.label_values(name, start_ns=window[0], end_ns=window[1])
        bad = high_cardinality_labels([{name: v} for v in values])
        if bad or len(values) > MAX_VALUES_PER_LABEL:
            crowded.append(f"{name} ({len(values)} values, e.g. {values[:2]})")
    if crowded:
        raise CheckFailed(
            f"labels in the last hour with per-request values: {'; '.join(crowded)}",
            f"at most {MAX_VALUES_PER_LABEL} values per label and none that look like ids",
            "drop the label in the agent's relabel rules; every distinct value is a new stream",
        )
    labels = ", ".join(sorted(found.entries[0].labels))
    return Passed(f"labels of fresh lines: {labels}; {len(names)} label names, none id-like")


@pytest.mark.checker("lab2.low-cardinality-labels")
def test_low_cardinality_labels(lab, record_outcome):
    record_outcome(check_low_cardinality_labels(lab))
