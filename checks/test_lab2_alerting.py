"""Alerting on logs: Loki's ruler loads the learner's two rules, and the error-rate one fires.

The rules come from exercises/lab2/alert-rules.yaml through ConfigMap `loki-alert-rules`
(manifests/logging/loki-values.yaml mounts it where the ruler reads tenant `fake`). The checker
reads the ruler's Prometheus-compatible API through the service proxy, makes failures of its own
(orders with `X-Inject-Fault: database`) and waits for the error-rate alert to fire, while the
`absent_over_time` rule must stay quiet because lines keep arriving.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from checks.evidence import CheckFailed, Passed, new_marker, new_trace
from checks.lab import Lab
from checks.loki import LokiError
from checks.polling import DeadlineExceeded, poll

RULES_DIR = "exercises/lab2"
RULES_FILE = f"{RULES_DIR}/alert-rules.yaml"
RULES_CONFIGMAP = "loki-alert-rules"
# Go's zero time: what /prometheus/api/v1/rules shows for a rule never evaluated yet
# (grafana/loki v3.7 pkg/ruler/base/api.go marshals time.Time as RFC 3339).
NEVER_EVALUATED = "0001-01-01T00:00:00Z"
INGEST_MARGIN_S = 15  # agent batching + ingestion: a line is queryable within seconds
# The ruler's evaluation_interval default, for a group that shows no interval of its own
# (grafana/loki v3.7 pkg/ruler/base/ruler.go: evaluation_interval 1m).
DEFAULT_INTERVAL_S = 60
ERROR_SELECTOR = re.compile(
    r'ERROR|level\s*=~?\s*"\(\?i\)error|status\s*=~\s*"5|status\s*>=?\s*5\d\d', re.IGNORECASE
)
METRIC = re.compile(r"\b(rate|count_over_time|bytes_over_time|bytes_rate|sum_over_time)\s*\(")
EQUALS_ZERO = re.compile(r"==\s*0(?![.\d])")
FAULT = {"X-Inject-Fault": "database"}


def reload_command(lab: Lab) -> str:
    return (
        f"kubectl apply -k {RULES_DIR} (ConfigMap {RULES_CONFIGMAP} in {lab.logging_ns}; the "
        "ruler sees the change within about a minute)"
    )


def alerting_rules(groups: list[dict]) -> list[dict]:
    """Every alerting rule of every group, with its group's name under `group` and its group's
    evaluation interval in seconds under `group_interval`."""
    return [
        {
            **rule,
            "group": group.get("name", "?"),
            "group_interval": float(group.get("interval") or DEFAULT_INTERVAL_S),
        }
        for group in groups
        for rule in group.get("rules") or []
        if rule.get("type") == "alerting"
    ]


def kind_of(rule: dict) -> str:
    """`absence` (absent_over_time), `error-rate` (a metric over ERROR/5xx lines) or `other`."""
    query = rule.get("query", "")
    if "absent_over_time" in query:
        return "absence"
    if ERROR_SELECTOR.search(query) and METRIC.search(query):
        return "error-rate"
    return "other"


def _describe(rules: list[dict]) -> str:
    return "; ".join(f"{r.get('name')}: {r.get('query')}" for r in rules)


def _read(lab: Lab, what: str, fn):
    try:
        return fn()
    except LokiError as e:
        disabled = "404" in str(e)
        raise CheckFailed(
            f"{what}: {e}",
            "Loki's ruler answering /prometheus/api/v1/rules and /alerts (ruler enabled, API on)",
            (
                "the ruler API is missing: install Loki with manifests/logging/loki-values.yaml "
                "(loki.rulerConfig) and check `kubectl -n "
                f"{lab.logging_ns} logs statefulset/{lab.names['loki']} | grep -i ruler`"
            )
            if disabled
            else f"kubectl -n {lab.logging_ns} get pods",
        ) from None


def _healthy(lab: Lab, rules: list[dict]) -> None:
    """Fail on the first rule the ruler could not evaluate, with Loki's own error."""
    broken = [r for r in rules if r.get("health") == "err"]
    if broken:
        rule = broken[0]
        raise CheckFailed(
            f"rule {rule.get('name')} (group {rule['group']}) fails to evaluate: "
            f"{rule.get('lastError') or 'no error text'}",
            "every rule evaluates (health ok): a metric LogQL query with a comparison",
            f"run `{rule.get('query')}` in Grafana Explore, fix it in {RULES_FILE}, then "
            + reload_command(lab),
        )


def _rules_in_shape(lab: Lab) -> tuple[list[dict], list[dict]]:
    """(absence rules, error-rate rules), or a failure that says which rule is missing or broken."""
    rules = alerting_rules(_read(lab, "reading the ruler's rules", lab.loki.rule_groups))
    if not rules:
        raise CheckFailed(
            "the ruler has no alerting rules",
            f"the two alerting rules of {RULES_FILE}, loaded from ConfigMap {RULES_CONFIGMAP}",
            reload_command(lab),
        )
    _healthy(lab, rules)
    absence = [r for r in rules if kind_of(r) == "absence"]
    errors = [r for r in rules if kind_of(r) == "error-rate"]
    if not absence:
        zero = [r for r in rules if EQUALS_ZERO.search(r.get("query", ""))]
        if zero:
            raise CheckFailed(
                f"rule {zero[0].get('name')} compares with `== 0`: {zero[0].get('query')}",
                "an absent_over_time rule: when no line arrives, count_over_time returns no "
                "series at all (not a 0), so `== 0` never fires",
                f"rewrite it as absent_over_time({{...}}[5m]) in {RULES_FILE}, then "
                + reload_command(lab),
            )
        raise CheckFailed(
            f"no alerting rule uses absent_over_time (rules: {_describe(rules)})",
            "one rule that fires when the bookstore's lines stop arriving",
            f"fill in the absent_over_time TODO of {RULES_FILE}, then " + reload_command(lab),
        )
    if not errors:
        raise CheckFailed(
            f"no alerting rule measures errors (rules: {_describe(rules)})",
            "an error-rate rule: a metric over the ERROR lines, e.g. sum(rate({namespace="
            '"bookstore"} | json | level="ERROR" [5m])) > 0.1',
            f"fill in the error-rate TODO of {RULES_FILE}, then " + reload_command(lab),
        )
    return absence, errors


def evaluated_at_ns(rule: dict) -> int:
    """`lastEvaluation` (RFC 3339 with up to nanoseconds, Go's zero time if never) in Unix ns."""
    text = str(rule.get("lastEvaluation") or NEVER_EVALUATED)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m or text.startswith("0001-"):
        return 0
    whole = datetime.fromisoformat(m.group(1) + m.group(3).replace("Z", "+00:00"))
    fraction = (m.group(2) or "0")[:9].ljust(9, "0")
    return int(whole.timestamp()) * 10**9 + int(fraction)


def _absence_quiet(lab: Lab, absence: list[dict], timeout: float) -> dict:
    """While the checker keeps sending requests, wait for an evaluation of each absence rule
    after the first one; none may be pending or firing then.

    Lines must be arriving when the rule is judged: after minutes without traffic a correct
    absence rule is rightly pending, and that would be the lab's quiet, not the rule's fault.

    `lastEvaluation` is on Loki's clock (the node's), which may be minutes off this machine's,
    so the evaluation to wait for is reckoned from the ruler's own times only: at the first
    request the ruler's clock read at most one interval past the evaluation it showed then
    (or, for a rule not evaluated yet, at most its first evaluation).
    """
    names = {r.get("name") for r in absence}
    every: list[dict] = []
    first_seen: dict[str, int] = {}  # lastEvaluation at the first request (0: never)
    wait_for: dict[str, int] = {}  # an evaluation at least this late saw the first request
    margin = INGEST_MARGIN_S * 10**9

    def probe() -> list[dict]:
        lab.send("catalog", "GET", "/books", request_id=new_marker())
        every[:] = alerting_rules(_read(lab, "reading the ruler's rules", lab.loki.rule_groups))
        rules = [r for r in every if r.get("name") in names]
        for r in rules:
            name, at = r.get("name"), evaluated_at_ns(r)
            before = first_seen.setdefault(name, at)
            if name not in wait_for and before:
                wait_for[name] = before + int(r["group_interval"] * 1e9) + margin
            elif name not in wait_for and at:
                wait_for[name] = at + margin
        return rules

    def settled(rules: list[dict]) -> bool:
        return bool(rules) and all(
            r.get("name") in wait_for and evaluated_at_ns(r) >= wait_for[r.get("name")]
            for r in rules
        )

    try:
        rules = poll(
            probe, settled, what="the absence rule's first evaluation",
            timeout=lab.timeout(timeout), clock=lab.clock, interval=5,
        ).value  # fmt: skip
    except DeadlineExceeded as e:
        raise CheckFailed(
            f"the ruler has not evaluated {', '.join(r.get('name', '?') for r in absence)} "
            f"after {e.timeout:.0f} s",
            "each rule evaluated once per group interval (1m unless the group sets `interval`)",
            f"kubectl -n {lab.logging_ns} logs statefulset/{lab.names['loki']} --tail=50 "
            "| grep -i rule",
        ) from None
    _healthy(lab, every)  # evaluated now: a query Loki cannot run shows up as health "err"
    loud = [r for r in rules if r.get("state") in ("pending", "firing")]
    if loud:
        rule = loud[0]
        raise CheckFailed(
            f"absence rule {rule.get('name')} is {rule.get('state')} although the bookstore's "
            f"lines arrive: {rule.get('query')}",
            "absent_over_time(...) quiet while the selector matches streams that receive lines; "
            "it fires only when they stop",
            'its selector matches no stream: run the inner selector (e.g. {namespace="bookstore"}) '
            f"in Grafana Explore, fix it in {RULES_FILE}, then " + reload_command(lab),
        )
    return rules[0]


def _wait_for_firing(lab: Lab, errors: list[dict], timeout: float, batch: int) -> tuple:
    """Send failing orders in batches until an error-rate alert fires; (alert, seconds, sent)."""
    names = {r.get("name") for r in errors}
    sent = [0]

    def probe() -> list[dict]:
        for _ in range(batch):
            lab.place_fresh_order(new_trace(), headers=FAULT)
            sent[0] += 1
        alerts = _read(lab, "reading the ruler's alerts", lab.loki.alerts)
        return [a for a in alerts if (a.get("labels") or {}).get("alertname") in names]

    try:
        waited = poll(
            probe, lambda alerts: any(a.get("state") == "firing" for a in alerts),
            what="the error-rate alert to fire", timeout=lab.timeout(timeout), clock=lab.clock,
            interval=10,
        )  # fmt: skip
    except DeadlineExceeded as e:
        states = sorted({a.get("state", "?") for a in e.last or []})
        rule = errors[0]
        if "pending" in states:
            observed = (
                f"alert {rule.get('name')} is pending, not firing, {e.timeout:.0f} s after the "
                f"first of {sent[0]} failing orders (its `for:` is {rule.get('duration', 0):.0f} s)"
            )
            fix = f"shorten `for:` to 1m or less in {RULES_FILE}, then " + reload_command(lab)
        else:
            observed = (
                f"alert {rule.get('name')} never became active in {e.timeout:.0f} s although the "
                f"checker sent {sent[0]} failing orders (each logs level=ERROR lines in orders "
                "and catalog)"
            )
            fix = (
                f"run `{rule.get('query')}` in Grafana Explore over the last 5 minutes: lower the "
                f"threshold or fix the selector in {RULES_FILE}, then " + reload_command(lab)
            )
        expected = "the error-rate alert firing while requests fail (a `for:` of 1m or less)"
        raise CheckFailed(observed, expected, fix) from None
    firing = next(a for a in waited.value if a.get("state") == "firing")
    return firing, waited.seconds, sent[0]


def check_alert_rules(
    lab: Lab, fire_timeout: float = 300, settle_timeout: float = 150, batch: int = 3
) -> Passed:
    lab.confirm_pipeline_ready()
    absence, errors = _rules_in_shape(lab)
    quiet = _absence_quiet(lab, absence, settle_timeout)
    firing, seconds, sent = _wait_for_firing(lab, errors, fire_timeout, batch)
    name = (firing.get("labels") or {}).get("alertname")
    return Passed(
        f"alert {name} fired {seconds:.0f} s after the checker's first failing order ({sent} "
        f"sent); absence rule {quiet.get('name')} stays quiet while lines arrive",
        {"seconds_to_firing": round(seconds, 1)},
    )


@pytest.mark.checker("lab2.alert-rules")
def test_alert_rules(lab, record_outcome):
    record_outcome(check_alert_rules(lab))
