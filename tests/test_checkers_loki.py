"""The Loki client and the Loki-side checkers (exercises 4-5 and the extras) against fakes."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from checks import catalogue
from checks.evidence import CheckFailed, card_numbers, high_cardinality_labels, luhn_valid
from checks.loki import InstantLogQueryError, Loki, LokiError
from checks.polling import DeadlineExceeded
from checks.test_lab2_error_traceable import check_error_traceable
from checks.test_lab2_grafana_datasource import check_grafana_datasource
from checks.test_lab2_logs_survive_deletion import check_logs_survive_deletion
from checks.test_lab2_low_cardinality_labels import check_low_cardinality_labels
from checks.test_lab2_no_secrets_in_loki import check_no_secrets_in_loki, fresh_card_number
from checks.test_lab2_single_request_query import check_single_request_query
from tests.fakes import FakeClock, FakeLoki, fake_lab, proxy_status


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
    # asked for categorize-labels: the extracted field is `parsed`, not a stream label
    assert hits[0].parsed["trace_id"] == "t1" and "trace_id" not in hits[0].labels
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


def test_the_client_asks_for_categorized_labels_and_reads_structured_metadata_apart():
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=0)
    line = json.dumps({"level": "INFO", "msg": "x", "trace_id": "abc"})
    fake.push({"namespace": "bookstore", "app": "orders"}, line, metadata={"trace_id": "abc"})
    fake.clock.sleep(1)
    loki = Loki(httpx.Client(base_url="http://loki/", transport=fake.transport))
    [entry] = loki.entries('{namespace="bookstore"}', start_ns=0, end_ns=2 * 10**18)
    assert fake.headers_seen[-1]["x-loki-response-encoding-flags"] == "categorize-labels"
    assert entry.labels == {"namespace": "bookstore", "app": "orders", "service_name": "orders"}
    assert entry.structured_metadata == {"trace_id": "abc", "detected_level": "info"}
    # Without the header Loki merges metadata into the stream labels (one stream per label set)
    plain = httpx.Client(base_url="http://loki/", transport=fake.transport)
    raw = plain.get(
        "/loki/api/v1/query_range",
        params={"query": '{namespace="bookstore"}', "start": "0", "end": str(2 * 10**18)},
    ).json()["data"]
    assert raw["result"][0]["stream"]["trace_id"] == "abc" and "encodingFlags" not in raw
    assert len(raw["result"][0]["values"][0]) == 2


def test_fake_loki_refuses_too_many_series_and_aligns_metric_ranges_with_the_step():
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=0, max_series=5)
    for i in range(8):
        fake.push({"namespace": "bookstore", "app": "orders"}, json.dumps({"n": i, "msg": "x"}))
    fake.clock.sleep(120)  # past the next full minute: aligned ranges end there
    loki = Loki(httpx.Client(base_url="http://loki/", transport=fake.transport))
    end = fake.clock.time_ns()
    un_aggregated = 'count_over_time({namespace="bookstore"} | json [5m])'
    with pytest.raises(LokiError, match=r"maximum number of series \(5\) reached") as caught:
        loki.query_range(un_aggregated, start_ns=end - 600 * 10**9, end_ns=end, step="60s")
    assert "sum by" in str(caught.value)
    summed = f"sum by (app) ({un_aggregated})"
    data = loki.query_range(summed, start_ns=end - 600 * 10**9, end_ns=end, step="60s")
    [series] = data["result"]
    assert series["metric"] == {"app": "orders"}
    # align_queries_with_step: the last point is the last full minute, not "now"
    assert all(int(t) % 60 == 0 for t, _ in series["values"])


def test_a_transient_proxy_error_is_retried_within_the_deadline():
    lab, cluster = fake_lab(proxy_hiccups=1)
    assert "from catalog, orders" in check_single_request_query(lab).summary
    assert cluster.hiccups_left == 0  # the 503 Status did happen, and was ridden out


def test_a_proxy_error_that_lasts_fails_with_the_status_it_saw():
    lab, _ = fake_lab(proxy_hiccups=10_000)
    with pytest.raises(CheckFailed) as caught:
        check_single_request_query(lab)
    assert "error trying to reach service" in caught.value.observed


def test_loki_wait_rides_out_a_503_then_answers():
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=0)
    fake.push({"namespace": "bookstore"}, "marker-1")
    answers = iter([proxy_status(503, 'no endpoints available for service "loki"')])

    def flaky(request):
        return next(answers, None) or fake.handle(request)

    loki = Loki(httpx.Client(base_url="http://loki/", transport=httpx.MockTransport(flaky)))
    found = loki.wait_for('{namespace="bookstore"} |= "marker-1"', bool, start_ns=0,
                          timeout=30, clock=fake.clock)  # fmt: skip
    assert found.entries[0].line == "marker-1"


# -- every Loki checker, on every right variant ------------------------------------------
LOKI_CHECKERS = {
    "logs-survive-deletion": check_logs_survive_deletion,
    "single-request-query": check_single_request_query,
    "error-traceable": check_error_traceable,
    "low-cardinality-labels": check_low_cardinality_labels,
    "no-secrets-in-loki": check_no_secrets_in_loki,
}
RIGHT_VARIANTS = {
    "default": {},
    "sampling off for successes": {"sample_rate": 0.0},
    "half sampled": {"sample_rate": 0.5},
    "node clock 5 min ahead": {"node_clock_skew_s": 295},
    "node clock 5 min behind": {"node_clock_skew_s": -295},
    "trace_id as structured metadata": {"trace_id_metadata": True},
    "one transient proxy error": {"proxy_hiccups": 1},
    "release named grafana-alloy": {"agent_name": "grafana-alloy"},
    "slow agent batches": {},  # per-pod batches are always on; this one also slows Loki
    "FAULT_RATE fails the first order": {"unlucky_orders": 1},
}


@pytest.mark.parametrize("variant", RIGHT_VARIANTS)
@pytest.mark.parametrize("checker", LOKI_CHECKERS)
def test_every_loki_checker_passes_every_right_variant(checker, variant):
    lab, cluster = fake_lab(**RIGHT_VARIANTS[variant])
    if variant == "slow agent batches":
        cluster.loki.ingest_delay = 20
    assert LOKI_CHECKERS[checker](lab).summary


# -- exercise 4 ----------------------------------------------------------------------------
def test_logs_survive_deletion_passes_and_reports_the_delay():
    lab, cluster = fake_lab()
    result = check_logs_survive_deletion(lab)
    deleted = next(iter(cluster.deleted))
    assert f"just before pod {deleted} was deleted reached Loki" in result.summary
    assert "no longer works" in result.summary and "not found" in result.summary
    assert result.measurements["request_to_queryable_seconds"] >= cluster.loki.ingest_delay
    # only query_range was used for log queries
    assert "/loki/api/v1/query" not in cluster.loki.requests


def test_the_deleted_pods_last_line_was_not_yet_in_loki_when_it_was_deleted():
    """The checker deletes before it looks: the marker is still on its way when the pod goes."""
    lab, cluster = fake_lab()
    deletes = []
    original = cluster.delete_pod

    def spy(namespace, name):
        deletes.append([r.line for r in cluster.loki.visible(0, 2 * 10**18)])
        original(namespace, name)

    cluster.delete_pod = spy
    check_logs_survive_deletion(lab)
    markers = [c.split("/books/0")[0] for c in cluster.calls if c.endswith("/books/0")]
    assert len(markers) == 2 and len(deletes) == 1
    second = [r for r in cluster.loki.records if r.labels.get("pod") in cluster.deleted]
    last = second[-1].line
    assert last not in deletes[0]  # not queryable at the moment of deletion


def test_lines_written_just_before_the_deletion_and_lost_fail():
    lab, cluster = fake_lab(loses_lines_of_deleted_pods=True)
    with pytest.raises(CheckFailed) as caught:
        check_logs_survive_deletion(lab)
    err = caught.value
    assert next(iter(cluster.deleted)) in err.observed and "was deleted right after" in err.observed
    assert "a line of the same pod sent before was shipped" in err.observed
    assert "/var/log/pods" in err.next_step


def test_marker_never_ingested_fails_with_the_query_and_the_agent_to_look_at():
    lab, _ = fake_lab(ships=False)
    with pytest.raises(CheckFailed) as caught:
        check_logs_survive_deletion(lab)
    assert "returned 0 line(s)" in caught.value.observed
    assert "ships no catalog line at all" in caught.value.observed
    assert "logs ds/alloy" in caught.value.next_step


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


# -- low-cardinality labels ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("switches", "shown"),
    [
        ({"trace_id_label": True}, "trace_id"),
        ({"extra_label": "order"}, "order=ord-"),
        ({"extra_label": "client"}, "client"),
    ],
)
def test_id_valued_labels_fail_under_any_name(switches, shown):
    lab, _ = fake_lab(**switches)
    with pytest.raises(CheckFailed) as caught:
        check_low_cardinality_labels(lab)
    assert shown in caught.value.observed
    assert "stage.structured_metadata" in caught.value.next_step


def test_trace_id_kept_as_structured_metadata_is_not_a_label():
    lab, _ = fake_lab(trace_id_metadata=True)
    summary = check_low_cardinality_labels(lab).summary
    assert "structured metadata (not labels): detected_level, trace_id" in summary


def test_high_cardinality_rule_by_value_shape_and_cluster_bounds():
    assert high_cardinality_labels([{"app": "orders", "pod": "orders-7d9f8c6b4-x2x9q"}]) == []
    assert high_cardinality_labels([{"request_id": "r1"}]) == ["request_id=r1"]
    assert high_cardinality_labels([{"x": "0af7651916cd43dd8448eb211c80319c"}])
    assert high_cardinality_labels([{"order": "ord-0123456789abcdef"}])
    assert high_cardinality_labels([{"who": "10.244.1.7"}])
    assert high_cardinality_labels([{"u": "2f1c3a4e-8d9b-4c1a-9e7f-0a1b2c3d4e5f"}])
    pod_file = "/var/log/pods/bookstore_orders-1_2f1c3a4e-8d9b-4c1a-9e7f-0a1b2c3d4e5f/o/0.log"
    assert high_cardinality_labels([{"filename": pod_file}], bounded=["/var/log/"]) == []
    assert high_cardinality_labels([{"ip": "10.244.1.7"}], bounded=["10.244.1.7"]) == []


def test_a_label_with_more_values_than_the_cluster_has_pods_fails():
    lab, cluster = fake_lab()
    for i in range(120):
        cluster.loki.push({"namespace": "bookstore", "app": "orders", "session": f"s{i}"}, "{}")
    with pytest.raises(CheckFailed) as caught:
        check_low_cardinality_labels(lab)
    assert "session (120 values" in caught.value.observed


# -- no secrets ----------------------------------------------------------------------------
def test_no_secrets_passes_after_planting_every_kind_in_both_services():
    lab, cluster = fake_lab()
    summary = check_no_secrets_in_loki(lab).summary
    for kind in ("password", "token in the query string", "api key in a header",
                 "card number with spaces", "card number without separators"):  # fmt: skip
        assert kind in summary
    services = {c.split()[0] for c in cluster.calls}
    assert services == {"catalog", "orders"}
    assert any("?access_token=qs-" in str(r.url) for r in cluster.proxy_requests)
    assert any(r.headers.get("x-api-key", "").startswith("hdr-") for r in cluster.proxy_requests)


@pytest.mark.parametrize(
    ("switches", "kind"),
    [
        ({"redacts": False}, "password in the body"),
        ({"logs_query_string": True}, "token in the query string"),
        ({"logs_headers": True}, "api key in a header"),
    ],
)
def test_each_kind_of_leak_fails_and_the_report_does_not_repeat_the_secret(switches, kind):
    lab, _ = fake_lab(**switches)
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    err = caught.value
    assert f"the {kind} the checker sent is in Loki" in err.observed
    secret = re.search(r"(pw|qs|hdr)-([0-9a-f]{16})", str(err))
    assert secret is None, f"the diagnosis repeats a planted secret: {secret.group()}"
    assert "bookstore/redaction.py" in err.next_step


def test_an_unredacted_card_number_in_a_later_batch_of_the_other_service_fails():
    """orders' pods ship slowly; the checker must wait for both services before judging."""
    lab, cluster = fake_lab(redacts=False)
    cluster.loki.ingest_delay = 30
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    assert "the checker sent is in Loki" in caught.value.observed


def test_the_card_scan_spares_the_ids_the_services_log_by_design():
    ids = [
        "GET /orders/ord-0000000000000000 404",
        json.dumps({"order_id": "ord-4111111111111111", "span_id": "4111111111111111"}),
        json.dumps(
            {"trace_id": "00000000000000004111111111111111", "request_id": "4111111111111111"}
        ),
        "request lab2-check-4111111111111111 failed",
        "uuid 41111111-1111-1111-1111-111111111111",
        "zeros 0000000000000000 and nines 9999999999999999999",
        "traceparent 00-0af7651916cd43dd8448eb211c80319c-4111111111111111-01",
    ]
    for text in ids:
        assert card_numbers(text) == [], text
    card = fresh_card_number()
    assert luhn_valid(card) and card_numbers(f"paid with {card[:4]} {card[4:8]} {card[8:]}")
    assert card_numbers("card 4111-1111-1111-1111") == ["4111111111111111"]
    assert card_numbers('{"note": "4111111111111111"}') == ["4111111111111111"]
    assert card_numbers("order 4111111111111112, id 12345678901") == []  # Luhn fails / too short


def test_a_card_number_anywhere_in_the_last_hour_fails_masked():
    card = fresh_card_number()
    lab, cluster = fake_lab()
    pod = next(p for p in cluster.pods.values() if p["metadata"]["labels"].get("app") == "orders")
    cluster.write(pod, {"level": "INFO", "msg": f"charged {card}"})
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    assert card not in str(caught.value) and card[-4:] in caught.value.observed


# -- error traceable -----------------------------------------------------------------------
def test_error_traceable_passes_and_fails_without_propagation():
    lab, _ = fake_lab()
    assert "DatabaseConnectionError" in check_error_traceable(lab).summary
    lab, _ = fake_lab(propagates_trace=False)
    with pytest.raises(CheckFailed, match="not in both services"):
        check_error_traceable(lab)


# -- grafana (informational) ---------------------------------------------------------------
def test_grafana_datasource_passes_without_sending_credentials():
    lab, cluster = fake_lab()
    assert "default datasource Loki" in check_grafana_datasource(lab).summary
    grafana = [r for r in cluster.proxy_requests if "/services/grafana:" in r.url.path]
    assert grafana and all("authorization" not in r.headers for r in grafana)
    assert catalogue.get("lab2.grafana-datasource").informational


@pytest.mark.parametrize(
    "url",
    [
        "http://loki.logging.svc.cluster.local:3100",
        "http://loki.logging:3100",
        "http://loki:3100/",
        "http://loki.logging.svc:3100",
    ],
)
def test_grafana_datasource_accepts_every_name_of_the_loki_service(url):
    lab, _ = fake_lab(grafana_url=url)
    assert url in check_grafana_datasource(lab).summary


@pytest.mark.parametrize(
    "url",
    [
        "http://loki-gateway.logging.svc.cluster.local:80",
        "http://my-loki.example.com:3100",
        "http://loki.logging.svc.cluster.local:9095",
        "http://loki.other.svc.cluster.local:3100",
        "http://loki.logging.svc.cluster.local",
    ],
)
def test_grafana_datasource_urls_that_merely_mention_loki_fail(url):
    lab, _ = fake_lab(grafana_url=url)
    with pytest.raises(CheckFailed) as caught:
        check_grafana_datasource(lab)
    assert "points at" in caught.value.observed and ":3100" in caught.value.expected


def test_grafana_not_default_and_no_anonymous_access_are_explained():
    lab, _ = fake_lab(grafana_default_loki=False)
    with pytest.raises(CheckFailed, match="not the default"):
        check_grafana_datasource(lab)
    lab, _ = fake_lab(grafana_anonymous=False)
    with pytest.raises(CheckFailed) as caught:
        check_grafana_datasource(lab)
    assert "401 to an anonymous request" in caught.value.observed
    assert "strips" in caught.value.expected and "auth.anonymous" in caught.value.next_step


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
    with pytest.raises(CheckFailed, match="no agent DaemonSet in logging"):
        check_single_request_query(lab)
    assert lab.clock.monotonic() <= cluster.loki.ready_after + 2  # only Loki's own start-up


def test_a_not_ready_agent_is_waited_for_then_explained():
    lab, cluster = fake_lab()
    cluster.daemonsets[0]["status"]["numberReady"] = 1
    with pytest.raises(CheckFailed, match="has 1/2 pods ready"):
        check_single_request_query(lab)
    assert lab.clock.monotonic() >= 90


def test_a_single_query_rides_out_one_proxy_error():
    fake = FakeLoki(FakeClock(), ready_after=0, ingest_delay=0)
    fake.push({"namespace": "bookstore", "app": "orders"}, "x")
    answers = iter([proxy_status(502, "error trying to reach service: EOF")])

    def flaky(request):
        return next(answers, None) or fake.handle(request)

    loki = Loki(
        httpx.Client(base_url="http://loki/", transport=httpx.MockTransport(flaky)),
        clock=fake.clock,
    )
    assert "app" in loki.labels(start_ns=0, end_ns=2 * 10**18)
    assert fake.clock.monotonic() >= 1  # waited a second before trying again


def test_the_lab_s_loadgen_mix_through_the_fakes_passes_the_secret_and_label_checks(
    monkeypatch,
):
    """bookstore/loadgen's own request mix (ord-0000000000000000, a body with a card number and
    a password, broken traceparents, faults) sent to the fake bookstore first."""
    import asyncio

    from bookstore import loadgen

    lab, cluster = fake_lab()

    class Routed(httpx.AsyncClient):
        def __init__(self, **kwargs):
            route = httpx.MockTransport(lambda r: cluster.bookstore(r.url.host, r))
            super().__init__(transport=route, **kwargs)

    monkeypatch.setattr(loadgen.httpx, "AsyncClient", Routed)
    assert asyncio.run(loadgen.run("http://catalog", "http://orders", 150, 4, 11, 5)) == 0
    calls = "\n".join(cluster.calls)
    assert "GET /orders/ord-0000000000000000" in calls  # the id that fooled the card scan
    cluster.clock.sleep(10)
    assert "planted secrets" in check_no_secrets_in_loki(lab).summary
    assert "none id-like" in check_low_cardinality_labels(lab).summary


def test_a_level_label_is_bounded_and_passes():
    """Lines of different kinds (INFO and WARN) differ in a `level` label; that is no id."""
    lab, cluster = fake_lab()
    original = cluster.loki.push

    def with_level(labels, line, ts_ns=None, **kw):
        level = json.loads(line).get("level", "INFO") if line.startswith("{") else "INFO"
        return original({**labels, "level": level.lower()}, line, ts_ns, **kw)

    cluster.loki.push = with_level
    assert "none id-like" in check_low_cardinality_labels(lab).summary


def test_a_leak_in_orders_arriving_after_catalogs_lines_still_fails():
    """catalog's batch arrives at once, orders' 40 s later: judging on the first marker line
    (catalog's) would see no leak yet and pass."""
    lab, cluster = fake_lab(redacts=False)
    fast = cluster._batch_delay
    cluster._batch_delay = lambda pod: fast(pod) + (40 if pod.startswith("orders-") else 0)
    with pytest.raises(CheckFailed) as caught:
        check_no_secrets_in_loki(lab)
    assert "password in the body the checker sent is in Loki, pod orders-" in caught.value.observed
