"""Extra: an injected failure is found by level="ERROR" and followed across services."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed, Passed, json_field, new_trace, services_of
from checks.lab import APP_SERVICES, Lab
from checks.test_lab2_single_request_query import trace_query


def errors_query(namespace: str) -> str:
    return f'{{namespace="{namespace}"}} | json | level="ERROR"'


def check_error_traceable(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    trace = new_trace()
    response, start_ns = lab.place_fresh_order(trace, headers={"X-Inject-Fault": "database"})
    if response.status_code < 500:
        raise CheckFailed(
            f"POST /orders with X-Inject-Fault: database answered {response.status_code}",
            "503: the injected database failure",
            "check the fault switch: `curl -H 'X-Inject-Fault: database' ...` against orders, "
            "and that orders forwards the header to catalog",
        )

    def ours(entries):
        return [e for e in entries if json_field(e, "trace_id") == trace.trace_id]

    found = lab.wait_in_loki(
        errors_query(lab.app_ns), lambda es: bool(ours(es)), start_ns=start_ns,
        timeout=ingest_timeout,
        what="no ERROR line carries the failed request's trace_id",
    )  # fmt: skip
    error = ours(found.entries)[0]
    error_type = json_field(error, "error_type")
    followed = trace_query(json_field(error, "trace_id"), lab.app_ns)
    wanted = set(APP_SERVICES)
    chain = lab.wait_in_loki(
        followed, lambda es: wanted <= services_of(es), start_ns=start_ns,
        timeout=ingest_timeout, what="the trace id of the ERROR line is not in both services",
        expected="the failing request's lines in both orders and catalog, joined by trace_id",
        next_step="check that orders passes `traceparent` (and X-Inject-Fault) on to catalog; "
        f"then run {followed} yourself in Grafana Explore",
    )  # fmt: skip
    return Passed(
        f"ERROR ({error_type or 'no error_type'}) found by level, and its trace "
        f"{trace.trace_id[:8]}… leads to {len(chain.entries)} lines in "
        f"{', '.join(sorted(services_of(chain.entries)))}"
    )


@pytest.mark.checker("lab2.error-traceable")
def test_error_traceable(lab, record_outcome):
    record_outcome(check_error_traceable(lab))
