"""Retention: Loki's compactor deletes old logs, and one stream selector expires sooner.

Read from the configuration Loki actually runs with (`GET /config` through the service proxy),
not from the values file: a values key the chart ignores, or a release that was never upgraded,
shows up here as what it is.
"""

from __future__ import annotations

import re

import pytest

from checks.evidence import CheckFailed, Passed
from checks.lab import Lab
from checks.loki import LokiError

VALUES = "manifests/logging/loki-values.yaml"
# Prometheus duration units, as Loki prints them in /config (prometheus/common model.Duration:
# `168h` comes back as `1w`, `24h` as `1d`).
UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")
LOOKBACK_S = 24 * 3600


def parse_duration(text: object) -> float:
    """Seconds in a Prometheus/Go duration such as `1w`, `31d`, `168h` or `1h30m`; ValueError
    for anything else."""
    value = str(text).strip()
    if value in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
    if pos != len(value) or pos == 0:
        raise ValueError(f"not a duration: {text!r}")
    return total


def show(seconds: float) -> str:
    """168h, 24h, 90m: the way our values file writes durations."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:g}s"


def _upgrade(lab: Lab) -> str:
    return (
        f"then `helm upgrade --install {lab.names['loki']} grafana-community/loki -n "
        f"{lab.logging_ns} -f {VALUES}` (the lab's step 2 command) and wait for the pod"
    )


def _duration(value: object, where: str, lab: Lab) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise CheckFailed(
            f"Loki's /config has {where} = {value!r}",
            "a duration such as 168h",
            f"fix {where} in {VALUES}, " + _upgrade(lab),
        ) from None


def stream_rules(limits: dict, lab: Lab) -> list[tuple[str, float]]:
    """(selector, seconds) of each `retention_stream` entry."""
    rules = limits.get("retention_stream") or []
    return [
        (str(r.get("selector", "")), _duration(r.get("period"), "retention_stream period", lab))
        for r in rules
        if isinstance(r, dict)
    ]


def check_retention(lab: Lab) -> Passed:
    try:
        config = lab.loki.config()
    except LokiError as e:
        raise CheckFailed(
            str(e), "Loki answering GET /config", f"kubectl -n {lab.logging_ns} get pods"
        ) from None
    compactor = config.get("compactor") or {}
    limits = config.get("limits_config") or {}
    if compactor.get("retention_enabled") is not True:
        raise CheckFailed(
            f"compactor.retention_enabled is {compactor.get('retention_enabled')!r} in the "
            "configuration Loki runs with",
            "true: without it the compactor deletes nothing and Loki keeps every line forever, "
            "whatever retention_period says",
            f"set loki.compactor.retention_enabled: true and delete_request_store: filesystem in "
            f"{VALUES}, " + _upgrade(lab),
        )
    period = _duration(limits.get("retention_period", "0s"), "limits_config.retention_period", lab)
    if period <= 0:
        raise CheckFailed(
            f"limits_config.retention_period is {limits.get('retention_period')!r}",
            "a period such as 168h (0 means keep forever, even with retention on)",
            f"set loki.limits_config.retention_period in {VALUES}, " + _upgrade(lab),
        )
    rules = stream_rules(limits, lab)
    shorter = [(sel, p) for sel, p in rules if p < period]
    if not shorter:
        seen = ", ".join(f"{sel} {show(p)}" for sel, p in rules) or "none"
        raise CheckFailed(
            f"every stream is kept {show(period)}; retention_stream entries: {seen}",
            f"one retention_stream selector kept for less than {show(period)} (at least 24h)",
            f"add a loki.limits_config.retention_stream entry in {VALUES}, " + _upgrade(lab),
        )
    now = lab.clock.time_ns()
    start = now - LOOKBACK_S * 10**9
    matched = {}
    for selector, _ in shorter:
        try:
            # The streams' lines carry the node's clock, which may run ahead of this machine's.
            matched[selector] = lab.loki.series(
                [selector], start_ns=start, end_ns=lab.evidence_end_ns()
            )
        except LokiError as e:
            raise CheckFailed(
                f"retention_stream selector {selector} is refused by Loki's series API: {e}",
                'a stream selector such as {namespace="bookstore", container="loadgen"}',
                f"fix the selector in {VALUES}, " + _upgrade(lab),
            ) from None
    selector, seconds = next(((s, p) for s, p in shorter if matched[s]), shorter[0])
    if not matched[selector]:
        raise CheckFailed(
            f"retention_stream selector {selector} matches no stream Loki received in the last "
            "24 h, so it shortens nothing",
            "a selector over labels the agent sets (namespace, pod, container, app)",
            f'compare it with `{{namespace="bookstore"}}` streams in Grafana Explore (run the '
            f"traffic Job first if it names loadgen), fix it in {VALUES}, " + _upgrade(lab),
        )
    return Passed(
        f"compactor retention on; streams kept {show(period)}, {selector} kept {show(seconds)} "
        f"({len(matched[selector])} stream(s) match it now)"
    )


@pytest.mark.checker("lab2.retention")
def test_retention(lab, record_outcome):
    record_outcome(check_retention(lab))
