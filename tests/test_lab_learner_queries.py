"""The learner's own LogQL, judged live against the fake Loki: the reference answers and other
right shapes pass; each wrong shape fails with its reason (offline and live alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from checks import catalogue
from checks.evidence import CheckFailed
from checks.loki import Entry
from checks.test_lab2_learner_queries import (
    EXERCISE_SELECTOR,
    check_learner_deleted_pod_lines,
    check_learner_queries,
    run_learner_query,
    verdict_one_request,
)
from labconfig.versions import REPO_ROOT
from labs import lab2
from tests.fake_lab_plugin import write_fake_kubeconfig
from tests.fakes import fake_lab
from tests.learner_fakes import graceful_lab
from validators.exercises import INSTANT, Query

REFERENCE = yaml.safe_load((REPO_ROOT / lab2.QUERIES_SOLUTION).read_text())
ONE = '{namespace="bookstore"} | json | trace_id="$TRACE_ID"'
ERRORS = '{namespace="bookstore"} | json | level="ERROR"'
DELETED = '{namespace="bookstore", pod="$POD"}'


def queries(tmp_path: Path, **overrides) -> Path:
    data = {"errors": ERRORS, "one_request": ONE, "deleted_pod_lines": DELETED, **overrides}
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def failure(check, *args) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        check(*args)
    return info.value


# -- one request, one query --------------------------------------------------------------------
def test_the_reference_answers_pass(tmp_path):
    lab, _ = fake_lab()
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump(REFERENCE))
    passed = check_learner_queries(lab, path)
    assert "catalog, orders" in passed.summary and "ERROR included" in passed.summary


@pytest.mark.parametrize(
    "one_request",
    [
        '{namespace="bookstore"} |= "$TRACE_ID"',
        '{namespace=~"bookstore"} | json | trace_id="$TRACE_ID"',
        '{namespace="bookstore", container=~"catalog|orders"} |= "$TRACE_ID" | json',
    ],
)
def test_other_right_shapes_pass(tmp_path, one_request):
    lab, _ = fake_lab()
    assert check_learner_queries(lab, queries(tmp_path, one_request=one_request))


@pytest.mark.parametrize(
    ("overrides", "observed", "fix"),
    [
        (
            {"one_request": '{namespace="bookstore", pod="catalog-1"} |= "$TRACE_ID"'},
            "a selector on `pod`",
            "filter on the trace id",
        ),
        (
            {"one_request": {"query": ONE, "endpoint": INSTANT}},
            "an instant query",
            "remove `endpoint: query`",
        ),
        (
            {"one_request": '{namespace="bookstore"} | json | trace_id="4bf92f35"'},
            "no $TRACE_ID",
            "write $TRACE_ID",
        ),
        (
            {"one_request": 'count_over_time({namespace="bookstore"} |= "$TRACE_ID" [5m])'},
            "a metric query",
            "stream selector",
        ),
        ({"one_request": '{trace_id="$TRACE_ID"}'}, "without the bookstore namespace", ""),
        ({"one_request": "TODO"}, "no query yet", "replace the TODO"),
        ({"errors": '{namespace="bookstore"} | json'}, "no filter on the ERROR level", "ERROR"),
    ],
)
def test_wrong_shapes_fail_with_their_reason_before_any_request(tmp_path, overrides, observed, fix):
    lab, cluster = fake_lab()
    failed = failure(check_learner_queries, lab, queries(tmp_path, **overrides))
    assert observed in failed.observed and fix in failed.next_step
    assert not cluster.calls  # judged by shape: no traffic was sent


def test_a_query_that_returns_everything_fails_on_what_loki_returned(tmp_path):
    lab, _ = fake_lab()
    path = queries(tmp_path, one_request='{namespace="bookstore"} != "never-$TRACE_ID"')
    failed = failure(check_learner_queries, lab, path)
    assert "from other requests" in failed.observed
    assert "only the lines of trace" in failed.expected
    assert 'trace_id="$TRACE_ID"' in failed.next_step


def test_a_query_of_one_service_fails_naming_the_service_it_found(tmp_path):
    lab, _ = fake_lab()
    one = '{namespace="bookstore", app="orders"} | json | trace_id="$TRACE_ID"'
    failed = failure(check_learner_queries, lab, queries(tmp_path, one_request=one))
    assert "only from orders" in failed.observed and "both" in failed.expected


def test_an_errors_query_that_also_returns_other_levels_fails(tmp_path):
    lab, _ = fake_lab()
    path = queries(tmp_path, errors='{namespace="bookstore"} |~ "ERROR|INFO"')
    failed = failure(check_learner_queries, lab, path)
    assert "not ERROR" in failed.observed and "level 'INFO'" in failed.observed
    # The checker makes a WARN line of its own, so a query that also keeps WARN always shows.
    warn = queries(tmp_path, errors='{namespace="bookstore"} |~ "ERROR|WARN"')
    failed = failure(check_learner_queries, fake_lab()[0], warn)
    assert "level 'WARN'" in failed.observed


def test_a_one_request_query_that_keeps_only_the_errors_misses_a_line(tmp_path):
    lab, _ = fake_lab()
    one = '{namespace="bookstore"} | json | trace_id="$TRACE_ID" | level="ERROR"'
    failed = failure(check_learner_queries, lab, queries(tmp_path, one_request=one))
    assert "of the request's" in failed.observed and "every line" in failed.expected


def test_an_instant_log_query_gets_lokis_own_refusal():
    lab, _ = fake_lab()
    lab.clock.sleep(20)  # past the fake Loki's start-up
    q = Query("one_request", ONE, endpoint=INSTANT)
    with pytest.raises(CheckFailed) as info:
        run_learner_query(lab, q, start_ns=lab.clock.time_ns() - 10**9, trace_id="ab" * 16)
    assert "not supported as an instant query" in info.value.observed


def test_the_error_line_filtered_out_fails_and_so_does_a_missing_line():
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    line = '{"service": "%s", "level": "%s", "msg": "m%d", "trace_id": "%s"}'
    truth = [
        Entry(1, line % ("orders", "INFO", 1, trace), {"app": "orders"}),
        Entry(2, line % ("catalog", "INFO", 2, trace), {"app": "catalog"}),
        Entry(3, line % ("catalog", "ERROR", 3, trace), {"app": "catalog"}),
    ]
    with pytest.raises(CheckFailed, match="none of the lines .* is the request's ERROR line"):
        verdict_one_request(truth[:2], truth, trace, "q")
    with pytest.raises(CheckFailed, match="returns 2 of the request's 3 lines"):
        verdict_one_request([truth[0], truth[2]], truth, trace, "q")
    verdict_one_request(truth, truth, trace, "q")  # all of them: passes


def test_a_missing_or_broken_queries_file_says_how_to_get_it_back(tmp_path):
    lab, _ = fake_lab()
    failed = failure(check_learner_queries, lab, tmp_path / "nope.yaml")
    assert "cannot read" in failed.observed and "git checkout" in failed.next_step
    bad = tmp_path / "bad.yaml"
    bad.write_text('errors: \'{namespace="bookstore"}\n  one_request: [')
    assert "not valid YAML" in failure(check_learner_queries, lab, bad).observed


def test_the_starter_file_fails_saying_nothing_is_written_yet():
    lab, _ = fake_lab()
    starter = REPO_ROOT / lab2.QUERIES_FILE
    assert "no query yet" in failure(check_learner_queries, lab, starter).observed


# -- logs survive deletion -------------------------------------------------------------------------
def deleted_by_learner(**switches):
    lab, cluster = graceful_lab(**switches)
    key, value = EXERCISE_SELECTOR.split("=")
    marked = cluster.label_app_pods(key, value)  # what step 4's set-up does
    return lab, cluster, marked


def delete_all(cluster, marked):
    cluster.clock.sleep(30)  # the pods ran a while before the learner deleted them
    for name in marked:
        cluster.delete_pod("bookstore", name)
    cluster.clock.sleep(5)  # the agent's batch and Loki's ingestion


def test_deleted_pods_lines_up_to_the_last_pass(tmp_path):
    lab, cluster, marked = deleted_by_learner()
    delete_all(cluster, marked)
    passed = check_learner_deleted_pod_lines(lab, queries(tmp_path))
    assert "catalog-" in passed.summary and "orders-" in passed.summary


def test_pods_still_running_fail_naming_them(tmp_path):
    lab, cluster, marked = deleted_by_learner()
    delete_all(cluster, [m for m in marked if m.startswith("catalog")])
    failed = failure(check_learner_deleted_pod_lines, lab, queries(tmp_path))
    assert "still exist" in failed.observed and "orders-" in failed.observed
    assert EXERCISE_SELECTOR in failed.next_step


def test_lines_of_other_pods_fail(tmp_path):
    lab, cluster, marked = deleted_by_learner()
    delete_all(cluster, marked)
    path = queries(tmp_path, deleted_pod_lines='{namespace="bookstore", pod=~"$POD|.+"}')
    failed = failure(check_learner_deleted_pod_lines, lab, path)
    assert "other pods too" in failed.observed


def test_a_query_without_pod_fails_by_shape(tmp_path):
    lab, cluster, marked = deleted_by_learner()
    path = queries(tmp_path, deleted_pod_lines='{namespace="bookstore"} |= "$POD"')
    failed = failure(check_learner_deleted_pod_lines, lab, path)
    assert "no `pod` matcher" in failed.observed


def test_lines_written_just_before_deletion_must_have_been_shipped(tmp_path):
    lab, cluster, marked = deleted_by_learner()
    cluster.s.ships = False  # the agent is down while the learner deletes the pods
    delete_all(cluster, marked)
    cluster.s.ships = True
    failed = failure(check_learner_deleted_pod_lines, lab, queries(tmp_path))
    assert "shutdown complete" in failed.observed and "agent running" in failed.next_step


def test_a_loki_that_forgets_deleted_pods_fails(tmp_path):
    lab, cluster, marked = deleted_by_learner(loki_forgets_deleted=True)
    delete_all(cluster, marked)
    failed = failure(check_learner_deleted_pod_lines, lab, queries(tmp_path))
    assert "only from catalog pods that still run" in failed.observed


def test_the_learner_checkers_are_in_the_catalogue_and_the_label_is_shared():
    for cid in ("lab2.learner-queries", "lab2.learner-deleted-pod-lines"):
        assert catalogue.get(cid).docs.startswith("lab-2.md#step-")
    assert lab2.DELETE_ME == EXERCISE_SELECTOR


# -- through `pytest checks`, as learner mode runs them ----------------------------------------
def _pytest_checks(tmp_path: Path, *extra: str, queries: Path | None = None):
    score = tmp_path / "score.json"
    env = {**os.environ, "PYTEST_PLUGINS": "tests.fake_lab_plugin"}
    env.pop("LAB_QUERIES", None)
    if queries is not None:
        env["LAB_QUERIES"] = str(queries)
    kubeconfig = write_fake_kubeconfig(tmp_path / "k", "passing")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-p", "no:cacheprovider", "--kubeconfig",
         str(kubeconfig), "--score-json", str(score), *extra],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc, json.loads(score.read_text())


def test_pytest_checks_runs_the_learner_checker_by_id_on_the_learners_file(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(REFERENCE))
    proc, score = _pytest_checks(tmp_path, "--checker", "lab2.learner-queries", queries=answers)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(score["checkers"]) == ["lab2.learner-queries"]
    starter, score = _pytest_checks(tmp_path, "--checker", "lab2.learner-queries")
    assert starter.returncode == 1  # the starter file in the repository: nothing written yet
    assert "no query yet" in score["checkers"]["lab2.learner-queries"]["diagnosis"]


def test_a_plain_pytest_checks_run_leaves_the_learner_file_checkers_out(tmp_path):
    proc, score = _pytest_checks(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(score["checkers"]) == set(catalogue.BY_ID)
    assert not set(score["checkers"]) & set(catalogue.ON_REQUEST)
