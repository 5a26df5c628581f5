"""The Loki checkers against the real bookstore services, running as local processes.

The fake cluster invents its own log lines; this module removes that doubt. catalog and orders
run as processes (the helpers of tests/test_bookstore_processes.py), a stand-in agent ships
their real stdout into the fake Loki (labels as the Alloy pipeline sets them, timestamps from
the lines), and the real checkers send their fresh requests to the real services. So a trace
that the services do not propagate, an ERROR without `error_type`, a secret that escapes
redaction or an id that became a label would fail here.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from checks.lab import Lab
from checks.polling import SystemClock
from checks.test_lab2_error_traceable import check_error_traceable
from checks.test_lab2_json_stdout import check_json_stdout
from checks.test_lab2_low_cardinality_labels import check_low_cardinality_labels
from checks.test_lab2_no_secrets_in_loki import check_no_secrets_in_loki
from checks.test_lab2_single_request_query import check_single_request_query
from tests.fakes import LAB_NAMES, NS_AGENT, NS_LOGGING, FakeLoki
from tests.test_bookstore_processes import Service, start

NAMES = LAB_NAMES


def line_time_ns(line: str) -> int | None:
    try:
        stamp = json.loads(line)["time"]
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1e9)
    except (ValueError, KeyError, TypeError):
        return None


class ProcessCluster:
    """Kube calls answered by local processes; Loki fed from their stdout files on demand."""

    host = "local processes"

    def __init__(self, services: dict[str, Service]):
        self.services = services
        self.loki = FakeLoki(SystemClock(), ready_after=-1, ingest_delay=0)
        self.shipped = {name: 0 for name in services}

    def ship(self) -> None:
        """The agent's job: new stdout lines of every 'pod' to Loki, with the pod's labels."""
        for app, service in self.services.items():
            lines = service.raw_lines()
            labels = {"namespace": "bookstore", "pod": f"{app}-proc", "container": app,
                      "app": app, "stream": "stdout"}  # fmt: skip
            for line in lines[self.shipped[app] :]:
                self.loki.push(labels, line, line_time_ns(line))
            self.shipped[app] = len(lines)

    def loki_handler(self, request: httpx.Request) -> httpx.Response:
        self.ship()
        return self.loki.handle(request)

    # -- the Kube calls the checkers make --------------------------------------------------
    def list_daemonsets(self, namespace=None):
        # The agent lives only in its own namespace (versions.toml [charts.alloy]).
        if namespace not in (None, NS_AGENT):
            return []
        ready = {"desiredNumberScheduled": 1, "numberReady": 1}
        meta = {"name": "alloy", "namespace": NS_AGENT,
                "labels": {"app.kubernetes.io/name": "alloy"}}  # fmt: skip
        return [{"metadata": meta, "status": ready}]

    def container_log_file(self, pod, container):
        """The CRI file the runtime would write: each stream's lines, stamped now."""
        service = self.services[container]
        stamp = datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out = [f"{stamp} stdout F {line}\n" for line in service.raw_lines()]
        err = service.stderr.read_text(encoding="utf-8", errors="replace").splitlines()
        return "".join(out + [f"{stamp} stderr F {line}\n" for line in err if line])

    def list_pods(self, namespace, label_selector=None):
        return [
            {
                "metadata": {"name": f"{app}-proc", "namespace": namespace, "labels": {"app": app}},
                "spec": {"nodeName": "local", "containers": [{"name": app}]},
                "status": {"phase": "Running"},
            }
            for app in self.services
        ]

    def pod_logs(self, namespace, name, container, *, tail_lines=None):
        lines = self.services[container].raw_lines()
        return "".join(f"{line}\n" for line in lines[-(tail_lines or len(lines) or 1) :])

    def service_client(self, namespace, service, port):
        if (namespace, service) == (NS_LOGGING, "loki"):
            transport = httpx.MockTransport(self.loki_handler)
            return httpx.Client(base_url="http://loki/", transport=transport)
        return httpx.Client(base_url=self.services[service].url, timeout=10)


def run_lab(tmp_path_factory, **env):
    workdir: Path = tmp_path_factory.mktemp("services")
    catalog = start("catalog", workdir, **env)
    orders = start("orders", workdir, CATALOG_URL=catalog.url, **env)
    yield Lab(ProcessCluster({"catalog": catalog, "orders": orders}), names=NAMES)
    for service in (orders, catalog):
        service.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    yield from run_lab(tmp_path_factory)


@pytest.fixture(scope="module")
def sampled_lab(tmp_path_factory) -> Lab:
    """LOG_SAMPLE_RATE=0: every successful request line is dropped, as the chapter allows."""
    yield from run_lab(tmp_path_factory, LOG_SAMPLE_RATE="0")


def run_loadgen(lab: Lab, requests: int = 200, seed: int = 7) -> None:
    """The lab's own traffic Job (bookstore/loadgen), against the real services."""
    from bookstore import loadgen

    services = lab.kube.services
    status = asyncio.run(
        loadgen.run(services["catalog"].url, services["orders"].url, requests, 4, seed, 30)
    )
    assert status == 0
    # The id loadgen asks for by design (an all-zero, Luhn-valid order id), for certain.
    lab.send("orders", "GET", "/orders/ord-0000000000000000", request_id="loadgen-zero-id")
    time.sleep(0.2)  # the services flush each line at once; give the files a moment


def test_json_stdout_on_the_real_services(lab):
    assert "all validate against the schema" in check_json_stdout(lab).summary


def test_one_order_is_found_in_both_real_services_by_its_trace_id(lab):
    result = check_single_request_query(lab, ingest_timeout=15)
    assert "from catalog, orders" in result.summary


def test_the_injected_fault_is_traceable_across_the_real_services(lab):
    result = check_error_traceable(lab, ingest_timeout=15)
    assert "DatabaseConnectionError" in result.summary


def test_the_real_services_leak_no_secret_to_loki(lab):
    check_no_secrets_in_loki(lab, ingest_timeout=15)
    # The check meant something: the secret-bearing body did reach the log, masked.
    lines = [json.loads(line) for line in lab.kube.services["orders"].raw_lines()]
    bodies = [ln["body"] for ln in lines if isinstance(ln.get("body"), dict)]
    masked = [b for b in bodies if "password" in b and not str(b["password"]).startswith("pw-")]
    assert masked, f"no logged body carried the (masked) password: {bodies}"


def test_the_real_lines_keep_ids_out_of_labels(lab):
    assert "none id-like" in check_low_cardinality_labels(lab, ingest_timeout=15).summary


def test_the_lab_s_own_loadgen_traffic_passes_the_secret_and_label_checks(lab):
    """loadgen logs ids by design (ord-0000000000000000, span/trace/request ids): none of them
    is a card number, and the real redaction masks the card and password it sends."""
    run_loadgen(lab)
    lines = "\n".join(lab.kube.services["orders"].raw_lines())
    assert "ord-0000000000000000" in lines  # the case that fooled the card scan is there
    summary = check_no_secrets_in_loki(lab, ingest_timeout=15).summary
    scanned = int(summary.split(" digit-bearing lines")[0].rsplit(" ", 1)[-1])
    assert scanned > 0  # the scan saw the digit-bearing ids and judged them not cards
    assert "none id-like" in check_low_cardinality_labels(lab, ingest_timeout=15).summary


def test_the_loki_checkers_pass_with_sampling_on(sampled_lab):
    run_loadgen(sampled_lab, requests=60, seed=3)
    assert "from catalog, orders" in check_single_request_query(sampled_lab, 15).summary
    assert "DatabaseConnectionError" in check_error_traceable(sampled_lab, 15).summary
    assert "none id-like" in check_low_cardinality_labels(sampled_lab, 15).summary
    assert "planted secrets" in check_no_secrets_in_loki(sampled_lab, 15).summary
    assert "all validate" in check_json_stdout(sampled_lab).summary
    # sampling really was on: no successful request line was written
    done = [ln for ln in sampled_lab.kube.services["catalog"].lines()
            if ln.get("msg") == "request completed" and ln.get("status", 500) < 400]  # fmt: skip
    assert done == []
