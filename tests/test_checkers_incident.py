"""lab2.incident: the right dependency with a query that shows it passes; the rest fails
without giving the answer away."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed
from checks.lab import REPO_ROOT, Lab
from checks.test_lab2_incident import _run_query, check_incident
from tests.fakes_ruler import SOLVED_INCIDENT, Extras, fake_lab

QUERY = SOLVED_INCIDENT["query"]


def answered(dependency: str = "catalog-db", query: str = QUERY, **extras):
    return fake_lab(extras=Extras(answers={"failing_dependency": dependency, "query": query},
                                  **extras))  # fmt: skip


def failure(lab) -> CheckFailed:
    with pytest.raises(CheckFailed) as caught:
        check_incident(lab)
    return caught.value


def no_spoiler(err: CheckFailed) -> None:
    assert "catalog-db" not in err.expected + err.next_step


def test_the_fake_incident_lines_keep_the_log_contract():
    from bookstore.logschema import validate_line

    _, cluster = fake_lab()
    lines = [line for _, labels, line in cluster.loki.lines if labels.get("app") != "loadgen"]
    assert len(lines) > 30
    assert [e for line in lines for e in validate_line(line)] == []


def test_solved_answers_pass():
    lab, _ = fake_lab()
    result = check_incident(lab)
    assert "catalog-db is the injected fault (FAULT_RATE=0.3 on catalog)" in result.summary


@pytest.mark.parametrize(
    ("dependency", "query"),
    [
        ("Catalog-DB", QUERY),
        ("catalog db", QUERY),
        ("catalog_db", '{namespace="bookstore", app="catalog"} |= "catalog-db"'),
    ],
)
def test_right_variants_pass(dependency, query):
    lab, _ = answered(dependency, query)
    assert "injected fault" in check_incident(lab).summary


def test_the_answer_follows_the_injected_fault():
    lab, _ = answered("orders-db", '{namespace="bookstore"} | json | database="orders-db"',
                      incident_service="orders")  # fmt: skip
    assert "FAULT_RATE=0.3 on orders" in check_incident(lab).summary
    lab, _ = answered(incident_service="orders")
    assert "not what fails" in failure(lab).observed


def test_no_fault_injected_fails_first():
    lab, _ = fake_lab(extras=Extras(incident_service=None))
    err = failure(lab)
    assert "incident is not running" in err.observed and "set env deployment" in err.next_step


def test_missing_answers_file_fails():
    lab, _ = fake_lab(extras=Extras(answers=None))
    assert "does not exist" in failure(lab).observed


def test_the_starter_file_fails_on_its_todo():
    lab, _ = fake_lab()
    lab.exercises_dir = REPO_ROOT / "exercises" / "lab2"
    err = failure(lab)
    assert "failing_dependency is 'TODO'" in err.observed


def test_unquoted_query_yaml_error_says_to_quote(tmp_path):
    lab, _ = fake_lab()
    (tmp_path / "incident.yaml").write_text(
        'failing_dependency: x\nquery: {namespace="bookstore"} |= "x"\n'
    )
    lab.exercises_dir = tmp_path
    err = failure(lab)
    assert "not valid YAML" in err.observed and "single quotes" in err.next_step


def test_naming_the_service_is_not_enough():
    lab, _ = answered("catalog")
    err = failure(lab)
    assert "a bookstore service" in err.observed
    no_spoiler(err)


def test_a_wrong_dependency_fails_without_the_answer():
    lab, _ = answered("orders-db")
    err = failure(lab)
    assert "'orders-db', which is not what fails" in err.observed
    no_spoiler(err)


@pytest.mark.parametrize(
    "query", ['{namespace="bookstore"}', '{namespace="bookstore", app="catalog"}']
)
def test_a_query_for_everything_is_not_evidence(query):
    lab, _ = answered(query=query)
    err = failure(lab)
    assert "name the failing dependency" in err.observed and "mostly the evidence" in err.expected


def test_a_query_loki_refuses_fails_with_lokis_message():
    lab, _ = answered(query='{namespace="bookstore"')
    err = failure(lab)
    assert "your query fails in Loki" in err.observed and "400" in err.observed


class _MatrixLoki:
    """Loki answering a metric query_range (resultType matrix, as /loki/api/v1/query_range
    documents it: result = [{"metric": {...}, "values": [[ts, "v"], ...]}])."""

    def __init__(self, series):
        self.series = series

    def query_range(self, query, **_):
        return {"resultType": "matrix", "result": self.series}


class _Clock:
    def time_ns(self):
        return 1_790_000_000 * 10**9


class _Lab:
    evidence_end_ns = Lab.evidence_end_ns  # the real query window, on this stub's clock

    def __init__(self, series):
        self.loki, self.clock = _MatrixLoki(series), _Clock()


def test_metric_query_grouped_by_the_dependency_passes():
    lab = _Lab([{"metric": {"database": "catalog-db"}, "values": [[1, "7"]]}])
    assert (
        _run_query(lab, "sum by (database) (...)", "catalog-db") == "1 series labelled catalog-db"
    )


def test_metric_query_without_the_dependency_label_fails():
    lab = _Lab([{"metric": {"app": "catalog"}, "values": [[1, "7"]]}])
    with pytest.raises(CheckFailed, match="none labelled with the failing dependency"):
        _run_query(lab, "sum by (app) (...)", "catalog-db")


@pytest.mark.parametrize("skew", [-300, 300])
def test_solved_answers_pass_with_the_node_clock_minutes_off(skew):
    # The incident's lines carry the node's time, possibly ahead of this machine's.
    lab, _ = fake_lab(node_clock_skew_s=skew)
    assert "catalog-db is the injected fault" in check_incident(lab).summary


def test_a_wrong_dependency_fails_with_the_node_clock_ahead_too():
    lab, _ = fake_lab(
        extras=Extras(answers={"failing_dependency": "orders-db", "query": QUERY}),
        node_clock_skew_s=300,
    )
    err = failure(lab)
    assert "'orders-db', which is not what fails" in err.observed
    no_spoiler(err)
