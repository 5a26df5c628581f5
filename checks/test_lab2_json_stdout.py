"""Exercise 1: every bookstore container writes one JSON object per line to stdout.

The checker reads each container's CRI log file from its node (the kubelet serves it through
the API server's node proxy), not `kubectl logs`: the file keeps each line's stream, so JSON
written to stderr is told apart from stdout, and the whole current file is read, so a
plain-text banner at start-up is seen however many JSON lines followed it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checks.evidence import (
    CheckFailed,
    CriLine,
    Passed,
    first_bad_line,
    is_running,
    name_of,
    new_marker,
    parse_cri,
    shorten,
)
from checks.kube import KubeError, KubeUnreachable
from checks.lab import APP_NAMESPACE, APP_SERVICES, Lab

MAX_LINES = 5000  # per container: the newest ones (a lab pod writes far fewer)


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
    pods = [p for p in lab.kube.list_pods(lab.app_ns) if is_running(p)]
    if not pods:
        raise CheckFailed(
            f"no running pod in namespace {lab.app_ns}",
            "the catalog and orders pods running",
            f"kubectl -n {lab.app_ns} get deploy,rs,pods; kubectl -n {lab.app_ns} "
            "get events --field-selector reason=FailedCreate",
        )
    apps = {(p.get("metadata", {}).get("labels") or {}).get("app") for p in pods}
    missing = [app for app in APP_SERVICES if app not in apps]
    if missing:
        raise CheckFailed(
            f"no running {' or '.join(missing)} pod in {lab.app_ns}",
            f"running pods of {' and '.join(APP_SERVICES)}, each logging JSON to stdout",
            f"kubectl -n {lab.app_ns} get deploy,pods; kubectl apply -k manifests/bookstore",
        )
    read, unsplit = 0, []
    for pod in pods:
        for container in pod["spec"]["containers"]:
            lines, why = container_lines(lab, pod, container["name"])
            if why:
                unsplit.append(why)
            read += check_container(pod, container["name"], lines, validate)
    streams = f"stdout and stderr not told apart ({unsplit[0]})" if unsplit else "all on stdout"
    return Passed(f"{read} lines from {len(pods)} pods, {streams}, all validate against the schema")


def container_lines(lab: Lab, pod: dict, container: str) -> tuple[list[CriLine], str]:
    """The container's lines with their streams, from the node's CRI file; when the kubelet
    will not serve it (node proxy forbidden, log handler off), `kubectl logs` in full, with
    the reason the streams could not be told apart."""
    try:
        return parse_cri(lab.kube.container_log_file(pod, container))[-MAX_LINES:], ""
    except KubeUnreachable:
        raise
    except KubeError as e:
        text = lab.kube.pod_logs(lab.app_ns, name_of(pod), container)
        lines = [CriLine("", "stdout", line) for line in text.splitlines()][-MAX_LINES:]
        return lines, f"the node's log file was not readable: {shorten(str(e), 120)}"


def check_container(pod: dict, container: str, lines: list[CriLine], validate) -> int:
    """The number of lines read; CheckFailed for silence, stderr or a line off the contract."""
    where = f"pod {name_of(pod)} container {container}"
    namespace = pod.get("metadata", {}).get("namespace", APP_NAMESPACE)
    logs = f"kubectl -n {namespace} logs {name_of(pod)} -c {container}"
    content = [line for line in lines if line.content.strip()]
    if not content:
        raise CheckFailed(
            f"{where} has written nothing since it started",
            "every container logs at least its start-up line as JSON on stdout",
            f"{logs}; a container that logs nothing cannot be followed in Loki: log through "
            "bookstore.logs (or drop the container)",
        )
    on_stderr = [line for line in content if line.stream != "stdout"]
    if on_stderr:
        first: CriLine = on_stderr[0]
        raise CheckFailed(
            f"{where} wrote {len(on_stderr)} line(s) to {first.stream}, e.g. "
            f"{shorten(first.content)!r}",
            "every log line on stdout: the agent labels stderr lines stream=stderr and the "
            "chapter's contract is one JSON object per line on stdout",
            f"{logs}; point the logger's handler at sys.stdout (bookstore.logs writes there), "
            "not sys.stderr",
        )
    bad = first_bad_line([line.content for line in content], validate)
    if bad:
        raise CheckFailed(
            f"{where} wrote line {bad.number} of {len(content)}: {shorten(bad.line)!r}: "
            + "; ".join(bad.errors[:3]),
            "every stdout line is one JSON object with time, level, msg and service "
            "(bookstore/log-schema.json)",
            f"{logs} | head, then make that writer log through bookstore.logs",
        )
    return len(content)


@pytest.mark.checker("lab2.json-stdout")
def test_json_stdout(lab, record_outcome):
    record_outcome(check_json_stdout(lab))
