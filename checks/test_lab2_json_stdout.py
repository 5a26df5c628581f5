"""Exercise 1: every bookstore container writes one JSON object per line to stdout."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checks.evidence import (
    CheckFailed,
    Passed,
    first_bad_line,
    is_running,
    name_of,
    new_marker,
    shorten,
)
from checks.lab import APP_NAMESPACE, Lab

TAIL_LINES = 50


def schema_validator() -> Callable[[str], list[str]]:
    """bookstore.logschema.validate_line: the one log contract the services ship."""
    from bookstore.logschema import validate_line

    return validate_line


def check_json_stdout(lab: Lab, validate: Callable[[str], list[str]] | None = None) -> Passed:
    validate = validate or schema_validator()
    # Fresh lines first: one request per service, so there is something recent to read.
    # (/healthz would not do: probe requests log at DEBUG.)
    marker = new_marker()
    lab.send("catalog", "GET", "/books", request_id=marker)
    lab.send("orders", "GET", f"/orders/{marker}", request_id=marker)
    pods = [p for p in lab.kube.list_pods(APP_NAMESPACE) if is_running(p)]
    if not pods:
        raise CheckFailed(
            f"no running pod in namespace {APP_NAMESPACE}",
            "the catalog and orders pods running",
            f"kubectl -n {APP_NAMESPACE} get deploy,rs,pods; kubectl -n {APP_NAMESPACE} "
            "get events --field-selector reason=FailedCreate",
        )
    read = 0
    for pod in pods:
        for container in pod["spec"]["containers"]:
            text = lab.kube.pod_logs(
                APP_NAMESPACE, name_of(pod), container["name"], tail_lines=TAIL_LINES
            )
            lines = [line for line in text.splitlines() if line.strip()]
            read += len(lines)
            bad = first_bad_line(lines, validate)
            if bad:
                raise CheckFailed(
                    f"pod {name_of(pod)} container {container['name']} wrote line "
                    f"{bad.number} of its last {len(lines)}: {shorten(bad.line)!r}: "
                    + "; ".join(bad.errors[:3]),
                    "every stdout line is one JSON object with time, level, msg and service "
                    "(bookstore/log-schema.json)",
                    f"kubectl -n {APP_NAMESPACE} logs {name_of(pod)} -c {container['name']} "
                    "--tail=5, then make that writer log through bookstore.logs",
                )
    if read == 0:
        raise CheckFailed(
            f"{len(pods)} running pod(s) but no log lines at all",
            "recent JSON lines from every bookstore container",
            f"kubectl -n {APP_NAMESPACE} logs deploy/catalog --tail=5",
        )
    return Passed(f"{read} recent lines from {len(pods)} pods all validate against the schema")


@pytest.mark.checker("lab2.json-stdout")
def test_json_stdout(lab, record_outcome):
    record_outcome(check_json_stdout(lab))
