"""lab2.alert-rules against the fake ruler: the solved rules pass, each typical mistake fails."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed
from checks.lab import REPO_ROOT
from checks.test_lab2_alerting import alerting_rules, check_alert_rules, evaluated_at_ns, kind_of
from tests.fakes_ruler import SOLVED_RULES, Extras, RuleEvaluator, fake_lab

ABSENT = 'absent_over_time({namespace="bookstore"}[5m])'
RATIO = (
    'sum(rate({namespace="bookstore"} | json | level="ERROR" [5m])) / '
    'sum(rate({namespace="bookstore"}[5m])) > 0.05'
)


def rules(error_expr: str = RATIO, absent_expr: str = ABSENT, error_for: str = "1m") -> str:
    return f"""
groups:
  - name: bookstore
    interval: 30s
    rules:
      - alert: BookstoreErrorRate
        expr: '{error_expr}'
        for: {error_for}
      - alert: BookstoreLogsMissing
        expr: '{absent_expr}'
        for: 2m
"""


def quiet(**switches) -> Extras:
    """No incident running: every ERROR line in Loki is the checker's own."""
    return Extras(incident_service=None, **switches)


def failure(**extras) -> CheckFailed:
    lab, _ = fake_lab(extras=quiet(**extras))
    with pytest.raises(CheckFailed) as caught:
        check_alert_rules(lab)
    return caught.value


def test_solved_rules_fire_on_the_checkers_failures_and_stay_quiet_otherwise():
    lab, cluster = fake_lab(extras=quiet(rules_yaml=SOLVED_RULES))
    result = check_alert_rules(lab)
    assert "alert BookstoreErrorRate fired" in result.summary
    assert "BookstoreLogsMissing stays quiet" in result.summary
    # The failures were the checker's own: orders with the fault header, through the proxy.
    assert any(c == "orders POST /orders" for c in cluster.calls)
    # `for: 1m` at a 30 s interval: firing needs at least two evaluations after the first hit.
    assert result.measurements["seconds_to_firing"] >= 60


@pytest.mark.parametrize(
    "error_expr",
    [
        RATIO,
        'sum(count_over_time({namespace="bookstore"} | json | level="ERROR" [5m])) > 3',
        'sum by (app) (rate({namespace="bookstore"} |= "ERROR" [5m])) > 0.01',
    ],
)
def test_error_rate_rule_variants_pass(error_expr):
    lab, _ = fake_lab(extras=quiet(rules_yaml=rules(error_expr)))
    assert "fired" in check_alert_rules(lab).summary


def test_no_rules_loaded_says_how_to_load_the_configmap():
    err = failure(rules_yaml=None)
    assert err.observed == "the ruler has no alerting rules"
    assert "kubectl apply -k exercises/lab2" in err.next_step
    assert "ConfigMap loki-alert-rules in logging" in err.next_step


def test_the_starter_file_fails_on_its_first_todo():
    starter = (REPO_ROOT / "exercises" / "lab2" / "alert-rules.yaml").read_text()
    err = failure(rules_yaml=starter)
    assert "no alerting rule uses absent_over_time" in err.observed
    assert "absent_over_time TODO" in err.next_step


def test_equals_zero_is_explained_not_just_rejected():
    err = failure(rules_yaml=rules(absent_expr='count_over_time({namespace="bookstore"}[5m]) == 0'))
    assert "`== 0`" in err.observed
    assert "never fires" in err.expected and "absent_over_time" in err.next_step


def test_equals_zero_really_never_holds_without_lines():
    # The fake's evaluator gives no series for an empty window, as LogQL does.
    lab, cluster = fake_lab()
    ev = RuleEvaluator(cluster.loki)
    now = cluster.clock.time_ns()
    assert ev.value('count_over_time({namespace="nothing"}[5m]) == 0', now) is None
    assert ev.value('absent_over_time({namespace="nothing"}[5m])', now) == 1.0
    assert ev.value('absent_over_time({namespace="bookstore"}[5m])', now) is None


def test_absence_rule_on_a_mistyped_selector_fires_and_is_caught():
    err = failure(rules_yaml=rules(absent_expr='absent_over_time({namespace="bookstor"}[5m])'))
    assert "BookstoreLogsMissing is pending although" in err.observed
    assert "matches no stream" in err.next_step


def test_missing_error_rate_rule_fails():
    only_absence = rules(error_expr="vector(0) > 1")
    err = failure(rules_yaml=only_absence)
    assert "no alerting rule measures errors" in err.observed
    assert "vector(0) > 1" in err.observed and "error-rate TODO" in err.next_step


def test_threshold_that_never_holds_fails_with_the_query_to_try():
    high = 'sum(count_over_time({namespace="bookstore"} | json | level="ERROR" [5m])) > 100000'
    err = failure(rules_yaml=rules(error_expr=high))
    assert "never became active" in err.observed and "failing orders" in err.observed
    assert high in err.next_step


def test_a_long_for_leaves_the_alert_pending_and_says_so():
    err = failure(rules_yaml=rules(error_for="30m"))
    assert "is pending, not firing" in err.observed and "1800 s" in err.observed
    assert "shorten `for:`" in err.next_step


def test_rule_that_fails_to_evaluate_shows_lokis_error():
    msg = "maximum number of series (500) reached for a single query"
    err = failure(eval_error=msg)
    assert msg in err.observed and "fails to evaluate" in err.observed


def test_ruler_api_missing_is_a_clear_failure():
    err = failure(ruler_enabled=False)
    assert "404" in err.observed
    assert "ruler API is missing" in err.next_step


def test_rules_are_classified_by_their_query():
    groups = [{"name": "g", "rules": [
        {"type": "alerting", "name": "a", "query": ABSENT},
        {"type": "alerting", "name": "b", "query": RATIO},
        {"type": "recording", "name": "c", "query": RATIO},
        {"type": "alerting", "name": "d", "query": "vector(1) > 0"},
    ]}]  # fmt: skip
    found = {r["name"]: kind_of(r) for r in alerting_rules(groups)}
    assert found == {"a": "absence", "b": "error-rate", "d": "other"}


def test_a_quiet_lab_is_not_blamed_on_the_absence_rule():
    # Ten minutes without a single line: the solved absence rule is rightly pending. The checker
    # sends traffic first and judges the rule on an evaluation that saw it.
    lab, cluster = fake_lab(extras=quiet())
    cluster.clock.sleep(600)
    rules_before = cluster.loki._groups  # evaluated lazily on the first API call
    cluster.loki._evaluate()
    states = {r["name"]: r["state"] for g in rules_before() for r in g["rules"]}
    assert states["BookstoreLogsMissing"] == "firing"
    assert "stays quiet" in check_alert_rules(lab).summary


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-12-01T14:00:00.123456789Z", 1796133600_123456789),
        ("2026-12-01T14:00:00Z", 1796133600_000000000),
        ("2026-12-01T15:00:00.5+01:00", 1796133600_500000000),
        ("0001-01-01T00:00:00Z", 0),
        ("garbage", 0),
    ],
)
def test_last_evaluation_times_parse_to_unix_ns(text, ns):
    assert evaluated_at_ns({"lastEvaluation": text}) == ns


def test_fake_alert_values_are_formatted_like_go():
    from tests.fakes_ruler import go_float_e

    assert [go_float_e(v) for v in (0.15, 2.0, 0.0, 1e-7)] == ["1.5e-01", "2e+00", "0e+00", "1e-07"]


# Loki runs on a cluster node: its ruler stamps evaluations with the node's clock, which may be
# minutes off this machine's (Docker Desktop's VM clock drifts after a sleep).
SKEWS = [-300, 300]


@pytest.mark.parametrize("skew", SKEWS)
def test_solved_rules_pass_with_the_node_clock_minutes_off(skew):
    lab, _ = fake_lab(extras=quiet(), node_clock_skew_s=skew)
    result = check_alert_rules(lab)
    assert "alert BookstoreErrorRate fired" in result.summary
    assert "BookstoreLogsMissing stays quiet" in result.summary


@pytest.mark.parametrize("skew", SKEWS)
def test_a_quiet_lab_is_not_blamed_on_the_absence_rule_with_the_node_clock_off(skew):
    # With the node ahead, an evaluation from before the checker's first request must not be
    # taken for one that saw it (it would still be firing from the quiet minutes).
    lab, cluster = fake_lab(extras=quiet(), node_clock_skew_s=skew)
    cluster.clock.sleep(600)
    assert "stays quiet" in check_alert_rules(lab).summary


@pytest.mark.parametrize("skew", SKEWS)
def test_a_mistyped_absence_selector_fails_with_the_node_clock_off(skew):
    broken = rules(absent_expr='absent_over_time({namespace="bookstor"}[5m])')
    lab, _ = fake_lab(extras=quiet(rules_yaml=broken), node_clock_skew_s=skew)
    with pytest.raises(CheckFailed) as caught:
        check_alert_rules(lab)
    assert "BookstoreLogsMissing is pending although" in caught.value.observed


def test_the_fake_ruler_keeps_the_nodes_time():
    lab, cluster = fake_lab(extras=quiet(), node_clock_skew_s=300)
    cluster.clock.sleep(120)
    groups = lab.loki.rule_groups()
    last = max(evaluated_at_ns(r) for r in alerting_rules(groups))
    assert cluster.node_ns() - 30 * 10**9 <= last <= cluster.node_ns()
