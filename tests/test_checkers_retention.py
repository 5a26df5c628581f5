"""lab2.retention against the fake Loki's /config: the repository's values pass, mistakes fail."""

from __future__ import annotations

import copy

import pytest

from checks.evidence import CheckFailed
from checks.test_lab2_retention import check_retention, parse_duration
from tests.fakes_ruler import Extras, config_from_values, fake_lab, prom_duration

OURS = config_from_values()


def with_config(change) -> dict:
    config = copy.deepcopy(OURS)
    change(config)
    return config


def failure(config: dict, **extras) -> CheckFailed:
    lab, _ = fake_lab(extras=Extras(config=config, **extras))
    with pytest.raises(CheckFailed) as caught:
        check_retention(lab)
    return caught.value


def test_repository_values_pass_as_loki_prints_them():
    # Loki prints durations the Prometheus way: our 168h comes back as 1w, 24h as 1d.
    assert OURS["limits_config"]["retention_period"] == "1w"
    assert OURS["limits_config"]["retention_stream"][0]["period"] == "1d"
    lab, cluster = fake_lab()
    result = check_retention(lab)
    assert "streams kept 168h" in result.summary
    assert '{namespace="bookstore", container="loadgen"} kept 24h' in result.summary
    assert "/config" in cluster.loki.requests


@pytest.mark.parametrize(
    ("selector", "period"),
    [('{app="loadgen"}', "1d"), ('{namespace="bookstore", container="loadgen"}', "3d")],
)
def test_other_right_variants_pass(selector, period):
    def change(c):
        c["limits_config"]["retention_stream"] = [
            {"selector": selector, "priority": 1, "period": period}
        ]

    lab, _ = fake_lab(extras=Extras(config=with_config(change)))
    assert "kept" in check_retention(lab).summary


def test_retention_not_enabled_fails_with_the_values_keys():
    err = failure(with_config(lambda c: c["compactor"].update(retention_enabled=False)))
    assert "retention_enabled is False" in err.observed
    assert "forever" in err.expected
    assert "loki.compactor.retention_enabled: true" in err.next_step
    assert "helm upgrade --install loki" in err.next_step


def test_zero_period_keeps_everything_and_fails():
    err = failure(with_config(lambda c: c["limits_config"].update(retention_period="0s")))
    assert "retention_period is '0s'" in err.observed and "keep forever" in err.expected


def test_no_stream_rule_fails():
    err = failure(with_config(lambda c: c["limits_config"].pop("retention_stream")))
    assert "every stream is kept 168h" in err.observed and "entries: none" in err.observed


def test_a_stream_rule_as_long_as_the_default_fails():
    def same(c):
        c["limits_config"]["retention_stream"][0]["period"] = "1w"

    err = failure(with_config(same))
    assert "every stream is kept 168h" in err.observed
    assert "less than 168h" in err.expected


def test_a_selector_that_matches_nothing_fails():
    def typo(c):
        c["limits_config"]["retention_stream"][0]["selector"] = '{container="load-gen"}'

    err = failure(with_config(typo))
    assert '{container="load-gen"} matches no stream' in err.observed


def test_before_the_traffic_job_ran_the_selector_matches_nothing():
    err = failure(OURS, loadgen_ran=False)
    assert "matches no stream" in err.observed and "traffic Job" in err.next_step


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1w", 604800), ("1d", 86400), ("168h", 604800), ("1h30m", 5400), ("0s", 0), ("500ms", 0.5)],
)
def test_durations_parse_as_loki_prints_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["week", "1x", "h1", "1h 30m"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


def test_fake_prints_durations_like_prometheus_common():
    # model.Duration.String: years and weeks only when exact.
    assert [prom_duration(s) for s in (604800, 86400 * 31, 5400, 0, 86400 * 365)] == [
        "1w", "31d", "1h30m", "0s", "1y",
    ]  # fmt: skip


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_node_clock_minutes_off_still_passes(skew):
    # The loadgen stream's only line carries the node's time, possibly ahead of this machine's.
    lab, _ = fake_lab(node_clock_skew_s=skew)
    assert 'container="loadgen"} kept 24h' in check_retention(lab).summary


def test_a_selector_that_matches_nothing_fails_with_the_node_clock_ahead_too():
    def typo(c):
        c["limits_config"]["retention_stream"][0]["selector"] = '{container="load-gen"}'

    lab, _ = fake_lab(extras=Extras(config=with_config(typo)), node_clock_skew_s=300)
    with pytest.raises(CheckFailed) as caught:
        check_retention(lab)
    assert '{container="load-gen"} matches no stream' in caught.value.observed
