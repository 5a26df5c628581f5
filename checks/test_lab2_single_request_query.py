"""Exercise 5: one request's lines, in both services, found by its trace id with LogQL."""

from __future__ import annotations

import pytest

from checks.evidence import CheckFailed, Passed, new_trace, services_of
from checks.lab import APP_NAMESPACE, APP_SERVICES, Lab


def trace_query(trace_id: str, namespace: str = APP_NAMESPACE) -> str:
    return f'{{namespace="{namespace}"}} | json | trace_id="{trace_id}"'


def check_single_request_query(lab: Lab, ingest_timeout: float = 90) -> Passed:
    lab.confirm_pipeline_ready()
    trace = new_trace()
    response, start_ns = lab.place_fresh_order(trace)
    if response.status_code >= 500:
        raise CheckFailed(
            f"POST /orders answered {response.status_code}: {response.text[:200]}",
            "201 (or a 4xx): an order that reaches catalog",
            f"kubectl -n {lab.app_ns} logs deploy/orders --tail=20",
        )
    query = trace_query(trace.trace_id, lab.app_ns)
    wanted = set(APP_SERVICES)
    try:
        found = lab.wait_in_loki(
            query, lambda es: wanted <= services_of(es), start_ns=start_ns,
            timeout=ingest_timeout, what="",
        )  # fmt: skip
    except CheckFailed as failure:
        seen = lab.loki.entries(query, start_ns=start_ns, end_ns=lab.clock.time_ns() + 1)
        services = services_of(seen)
        if seen and services < wanted:
            missing = ", ".join(sorted(wanted - services))
            raise CheckFailed(
                f"{query} returns {len(seen)} line(s), only from {', '.join(sorted(services))}; "
                f"none from {missing}",
                "lines from both orders and catalog: orders passes a child traceparent to catalog",
                "check that orders sends `traceparent` on its call to catalog and that catalog "
                "logs the inbound trace_id (bookstore/tracecontext.py)",
            ) from None
        raise failure
    return Passed(
        f"{query} returned {len(found.entries)} lines from "
        f"{', '.join(sorted(services_of(found.entries)))} after {found.seconds:.1f} s",
        {"trace_to_queryable_seconds": round(found.seconds, 2)},
    )


@pytest.mark.checker("lab2.single-request-query")
def test_single_request_query(lab, record_outcome):
    record_outcome(check_single_request_query(lab))
