"""The Loki client and the Loki-side checkers (exercises 4-5 and the extras) against fakes."""

from __future__ import annotations

import json

import httpx
import pytest

from checks.evidence import CheckFailed, card_numbers, high_cardinality_labels, luhn_valid
from checks.loki import InstantLogQueryError, Loki, LokiError
from checks.polling import DeadlineExceeded
from checks.test_lab2_error_traceable import check_error_traceable
from checks.test_lab2_grafana_datasource import check_grafana_datasource
from checks.test_lab2_logs_survive_deletion import check_logs_survive_deletion
from checks.test_lab2_low_cardinality_labels import check_low_cardinality_labels
from checks.test_lab2_no_secrets_in_loki import check_no_secrets_in_loki, fresh_card_number
from checks.test_lab2_single_request_query import check_single_request_query
from tests.fakes import FakeClock, FakeLoki, fake_lab


def loki_with(lines=()) -> tuple[Loki, FakeLoki]:
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=0)
    for labels, line in lines:
        fake.push(labels, line)
        fake.clock.sleep(0.001)  # distinct timestamps, in push order
    fake.clock.sleep(1)
    return Loki(httpx.Client(base_url="http://loki/", transport=fake.transport)), fake


# -- the client ----------------------------------------------------------------------------
def test_query_range_sends_ns_strings_and_parses_streams():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(dict(request.url.params))
        body = {"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"pod": "b"}, "values": [["20", "second"]]},
            {"stream": {"pod": "a"}, "values": [["10", "first"]]},
        ]}}  # fmt: skip
        return httpx.Response(200, json=body)

    loki = Loki(httpx.Client(base_url="http://x/", transport=httpx.MockTransport(handler)))
    entries = loki.entries('{app="x"}', start_ns=1, end_ns=99, limit=7)
    assert seen == {"query": '{app="x"}', "start": "1", "end": "99", "limit": "7",
                    "direction": "forward"}  # fmt: skip
    assert [(e.ts_ns, e.line, e.labels["pod"]) for e in entries] == [
        (10, "first", "a"), (20, "second", "b"),
    ]  # fmt: skip


def test_instant_log_query_gets_lokis_400_as_a_teaching_error():
    loki, _ = loki_with()
    with pytest.raises(InstantLogQueryError) as caught:
        loki.query('{namespace="bookstore"} |= "x"')
    assert "query_range" in str(caught.value) and "Loki 3.2" in str(caught.value)


def test_ready_is_503_at_first_then_ready():
    fake = FakeLoki(FakeClock(), ready_after=15)
    loki = Loki(httpx.Client(base_url="http://loki/", transport=fake.transport))
    ok, text = loki.ready()
    assert not ok and text.startswith("503 Ingester not ready")
    fake.clock.sleep(15)
    assert loki.ready() == (True, "200 ready")


def test_errors_name_status_and_body_and_unreachable_loki_says_what_to_run():
    loki, _ = loki_with()
    with pytest.raises(LokiError, match="400"):
        loki.entries("not logql", start_ns=0, end_ns=10)

    def refuse(request):
        raise httpx.ConnectError("connection refused")

    down = Loki(httpx.Client(base_url="http://x/", transport=httpx.MockTransport(refuse)))
    with pytest.raises(LokiError, match="kubectl -n logging get pods"):
        down.labels(start_ns=0, end_ns=1)


def test_logql_subset_json_field_and_line_filters():
    loki, _ = loki_with([
        ({"namespace": "bookstore", "app": "orders"}, json.dumps({"trace_id": "t1", "msg": "a"})),
        ({"namespace": "bookstore", "app": "catalog"}, json.dumps({"trace_id": "t2", "msg": "b"})),
        ({"namespace": "other", "app": "x"}, json.dumps({"trace_id": "t1", "msg": "c"})),
    ])  # fmt: skip
    hits = loki.entries('{namespace="bookstore"} | json | trace_id="t1"', start_ns=0,
                        end_ns=2 * 10**18)  # fmt: skip
    assert [json.loads(h.line)["msg"] for h in hits] == ["a"]
    assert hits[0].labels["trace_id"] == "t1"  # like Loki, `| json` adds extracted labels
    assert len(loki.entries('{namespace="bookstore"} |= "t2"', start_ns=0, end_ns=2 * 10**18)) == 1
    assert loki.label_values("app", start_ns=0, end_ns=2 * 10**18) == ["catalog", "orders", "x"]
    series = loki.series(['{namespace="bookstore"}'], start_ns=0, end_ns=2 * 10**18)
    assert sorted(s["app"] for s in series) == ["catalog", "orders"]
    newest = loki.entries('{namespace="bookstore"}', start_ns=0, end_ns=2 * 10**18, limit=1,
                          direction="backward")  # fmt: skip
    assert [json.loads(e.line)["msg"] for e in newest] == ["b"]


def test_wait_for_polls_until_the_line_is_ingested_and_times_out_with_what_it_saw():
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=5)
    loki = Loki(httpx.Client(base_url="http://loki/", transport=fake.transport))
    start = fake.clock.time_ns()
    fake.push({"namespace": "bookstore"}, "marker-1")
    found = loki.wait_for('{namespace="bookstore"} |= "marker-1"', bool, start_ns=start,
                          timeout=30, clock=fake.clock)  # fmt: skip
    assert found.entries[0].line == "marker-1" and 5 <= found.seconds <= 6
    with pytest.raises(DeadlineExceeded) as caught:
        loki.wait_for('{namespace="bookstore"} |= "never"', bool, start_ns=start, timeout=10,
                      clock=fake.clock)  # fmt: skip
    assert caught.value.last == [] and caught.value.attempts > 1


# -- exercise 4 ----------------------------------------------------------------------------
def test_logs_survive_deletion_passes_and_reports_the_delay():
    lab, cluster = fake_lab()
    result = check_logs_survive_deletion(lab)
    deleted = next(iter(cluster.deleted))
    assert f"deleted pod {deleted} still in Loki" in result.summary
    assert "no longer works" in result.summary and "not found" in result.summary
    assert result.measurements["request_to_queryable_seconds"] >= cluster.loki.ingest_delay
    # only query_range was used for log queries
    assert "/loki/api/v1/query" not in cluster.loki.requests


def test_marker_never_ingested_fails_with_the_query_and_the_agent_to_look_at():
    lab, _ = fake_lab(ships=False)
    with pytest.raises(CheckFailed) as caught:
        check_logs_survive_deletion(lab)
    assert "returned 0 line(s)" in caught.value.observed
    assert "never reached Loki" in caught.value.observed
    assert "logs ds/alloy" in caught.value.next_step


def test_marker_gone_after_deletion_fails():
    lab, cluster = fake_lab(loki_forgets_deleted=True)
    with pytest.raises(CheckFailed) as caught:
        check_logs_survive_deletion(lab)
    assert "after, " in caught.value.observed and "returns nothing" in caught.value.observed
    assert next(iter(cluster.deleted)) in caught.value.observed


def test_pipeline_not_ready_is_reported_before_any_evidence_is_sent():
    lab, cluster = fake_lab()
    cluster.loki.ready_after = 10_000
    with pytest.raises(CheckFailed, match="Loki /ready still answers '503"):
        check_logs_survive_deletion(lab)
    assert cluster.calls == []


# -- exercise 5 ----------------------------------------------------------------------------
def test_single_request_query_finds_both_services():
    lab, cluster = fake_lab()
    result = check_single_request_query(lab)
    assert "from catalog, orders" in result.summary
    assert any(c == "orders POST /orders" for c in cluster.calls)


def test_trace_found_in_one_service_only():
    lab, _ = fake_lab(propagates_trace=False)
    with pytest.raises(CheckFailed) as caught:
        check_single_request_query(lab)
    assert "only from orders" in caught.value.observed
    assert "none from catalog" in caught.value.observed
    assert "traceparent" in caught.value.next_step


def test_single_request_query_with_nothing_ingested():
    lab, _ = fake_lab(ships=False)
    with pytest.raises(CheckFailed, match="returned 0 line"):
        check_single_request_query(lab)


# -- extras --------------------------------------------------------------------------------
def test_low_cardinality_passes_and_fails_on_a_trace_id_label():
    lab, _ = fake_lab()
    assert "none id-like" in check_low_cardinality_labels(lab).summary
    lab, _ = fake_lab(trace_id_label=True)
    with pytest.raises(CheckFailed, match="trace_id="):
        check_low_cardinality_labels(lab)


def test_no_secrets_passes_and_fails_when_not_redacted():
    lab, _ = fake_lab()
    check_no_secrets_in_loki(lab)
    lab, _ = fake_lab(redacts=False)
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    assert "password the checker sent" in caught.value.observed


def test_card_numbers_are_found_by_luhn_and_masked_in_the_diagnosis():
    card = fresh_card_number()
    assert luhn_valid(card) and card_numbers(f"paid with {card[:4]} {card[4:8]} {card[8:]}")
    assert card_numbers("card 4111-1111-1111-1111") == ["4111111111111111"]
    assert card_numbers("order 4111111111111112, id 12345678901") == []  # Luhn fails / too short
    assert card_numbers('"trace_id": "9ba982e4111111111111111bd89dd83"') == []  # inside hex
    lab, cluster = fake_lab()
    pod = next(p for p in cluster.pods.values() if p["metadata"]["labels"].get("app") == "orders")
    cluster.write(pod, {"level": "INFO", "msg": f"charged {card}"})
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    assert card not in str(caught.value) and card[-4:] in caught.value.observed


def test_error_traceable_passes_and_fails_without_propagation():
    lab, _ = fake_lab()
    assert "DatabaseConnectionError" in check_error_traceable(lab).summary
    lab, _ = fake_lab(propagates_trace=False)
    with pytest.raises(CheckFailed, match="not in both services"):
        check_error_traceable(lab)


def test_high_cardinality_rule():
    assert high_cardinality_labels([{"app": "orders", "pod": "orders-1"}]) == []
    assert high_cardinality_labels([{"request_id": "r1"}]) == ["request_id=r1"]
    assert high_cardinality_labels([{"x": "0af7651916cd43dd8448eb211c80319c"}])


def test_grafana_datasource_passes_and_fails_when_loki_is_not_default(tmp_path):
    values = tmp_path / "grafana-values.yaml"
    values.write_text("adminUser: admin\nadminPassword: lab\n")
    lab, _ = fake_lab()
    assert "default datasource Loki" in check_grafana_datasource(lab, values).summary
    lab, _ = fake_lab(grafana_default_loki=False)
    with pytest.raises(CheckFailed, match="not the default"):
        check_grafana_datasource(lab, tmp_path / "missing.yaml")  # falls back to the Secret


def test_metric_queries_return_their_data_and_are_not_taken_for_lines():
    def handler(request: httpx.Request) -> httpx.Response:
        kind = "matrix" if request.url.path.endswith("query_range") else "vector"
        result = [{"metric": {"app": "orders"}, "value": ["1790000000", "3"]}]
        data = {"resultType": kind, "result": result}
        return httpx.Response(200, json={"status": "success", "data": data})

    loki = Loki(httpx.Client(base_url="http://x/", transport=httpx.MockTransport(handler)))
    query = 'sum by (app) (count_over_time({namespace="bookstore"} | json | level="ERROR" [5m]))'
    assert loki.query(query)["resultType"] == "vector"
    assert loki.query_range(query, start_ns=1, end_ns=2, step="60s")["resultType"] == "matrix"
    with pytest.raises(LokiError, match="metric query"):
        loki.entries(query, start_ns=1, end_ns=2)
    with pytest.raises(ValueError, match="before end"):
        loki.query_range(query, start_ns=2, end_ns=2)


def test_a_missing_loki_service_fails_at_once_and_the_verdict_is_reused():
    lab, cluster = fake_lab()
    lab.names["loki"] = "no-such-loki"  # the proxy answers 404: services "..." not found
    with pytest.raises(CheckFailed, match="404") as first:
        check_single_request_query(lab)
    assert lab.clock.monotonic() < 1  # no waiting for something that cannot appear
    assert "kubectl -n logging get svc" in first.value.next_step
    with pytest.raises(CheckFailed) as second:
        check_logs_survive_deletion(lab)
    assert second.value is first.value and cluster.calls == []


def test_a_missing_agent_daemonset_fails_without_waiting():
    lab, cluster = fake_lab()
    cluster.daemonsets.clear()
    with pytest.raises(CheckFailed, match="DaemonSet logging/alloy does not exist"):
        check_single_request_query(lab)
    assert lab.clock.monotonic() <= cluster.loki.ready_after + 2  # only Loki's own start-up


def test_a_not_ready_agent_is_waited_for_then_explained():
    lab, cluster = fake_lab()
    cluster.daemonsets[0]["status"]["numberReady"] = 1
    with pytest.raises(CheckFailed, match="has 1/2 pods ready"):
        check_single_request_query(lab)
    assert lab.clock.monotonic() >= 90
