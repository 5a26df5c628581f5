"""What every lab-2 checker shares: the clients, the clock, and the actions that make evidence.

A `Lab` bundles the Kubernetes client, the Loki client and the clock; the pytest fixtures build
one from a kubeconfig, and the offline tests build one from the fakes, so the checker functions
are the same code in both. Names (namespaces, releases, ports) come from versions.toml and the
manifests contract, not from each checker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from checks.evidence import CheckFailed, Trace, find_agent, name_of, new_marker, services_of
from checks.kube import KubeError
from checks.loki import TRANSIENT_STATUSES, Loki, LokiError
from checks.polling import Clock, DeadlineExceeded, SystemClock, poll
from labconfig.versions import REPO_ROOT

APP_NAMESPACE = "bookstore"  # the laptop lab's; a class learner's is `lab2-<id>` (Lab.app_ns)
APP_SERVICES = ("catalog", "orders")
APP_PORT = 80  # Service port of catalog and orders (container port 8080 named http)
LOKI_PORT = 3100
GRAFANA_PORT = 80
# Nodes stamp lines with their own clock (the CRI timestamp the agent keeps), which may be
# minutes off this machine's (Docker Desktop/WSL2 after sleep, remote clusters). Queries for
# fresh evidence reach this far either side of now; freshness comes from the unique marker.
CLOCK_SKEW_MARGIN_S = 600
PROXY_RETRY_S = 20  # how long a request rides out the API server proxy's 502/503


def _logging_names() -> dict[str, str]:
    """Namespace and release names of the logging stack, from versions.toml."""
    from labconfig.versions import load_versions

    charts = load_versions()["charts"]
    return {
        "namespace": charts["loki"]["namespace"],
        # Only the agent's namespace is privileged (hostPath); Loki and Grafana stay restricted.
        "agent_namespace": charts["alloy"]["namespace"],
        "grafana_namespace": charts["grafana"]["namespace"],
        "loki": charts["loki"]["release"],
        "alloy": charts["alloy"]["release"],
        "grafana": charts["grafana"]["release"],
    }


EXERCISES_ENV = "LAB_EXERCISES"


def _exercises_dir() -> Path:
    """Where the learner's answer files live: exercises/lab2/ of the repository, or the folder
    LAB_EXERCISES names (relative to the repository; `--solve` points it at the reference)."""
    given = os.environ.get(EXERCISES_ENV, "").strip()
    if not given:
        return REPO_ROOT / "exercises" / "lab2"
    path = Path(given).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


@dataclass
class Lab:
    """The connection to one lab cluster, as the checkers see it."""

    kube: Any  # checks.kube.Kube, or the fake from tests/fakes.py
    clock: Clock = field(default_factory=SystemClock)
    timeout_scale: float = 1.0
    names: dict[str, str] = field(default_factory=_logging_names)
    # Whose lab: the bookstore's namespace, and the Loki tenant (X-Scope-OrgID) its lines are
    # in. The laptop lab is `bookstore` with no tenant (Loki without auth); a class learner is
    # `lab2-<id>` in tenant `lab2-<id>` (docs/class-mode.md).
    app_ns: str = APP_NAMESPACE
    tenant: str | None = None
    # Loki's root URL when it is not reached through the API server's service proxy (a class
    # grader's `kubectl port-forward`); None: the service proxy, as on the laptop.
    loki_url: str | None = None
    _clients: dict[tuple, httpx.Client] = field(default_factory=dict, repr=False)
    _loki: Loki | None = field(default=None, repr=False)
    exercises_dir: Path = field(default_factory=_exercises_dir)
    pipeline_checked: bool = False
    pipeline_failure: CheckFailed | None = None

    @property
    def logging_ns(self) -> str:
        """Loki's namespace."""
        return self.names["namespace"]

    @property
    def agent_ns(self) -> str:
        """The agent's (privileged) namespace; Loki's when the names predate the split."""
        return self.names.get("agent_namespace", self.logging_ns)

    @property
    def grafana_ns(self) -> str:
        return self.names.get("grafana_namespace", self.logging_ns)

    def timeout(self, seconds: float) -> float:
        return seconds * self.timeout_scale

    def http(self, namespace: str, service: str, port: int) -> httpx.Client:
        """A (cached) service-proxy client for one Service port."""
        key = (namespace, service, port)
        if key not in self._clients:
            self._clients[key] = self.kube.service_client(namespace, service, port)
        return self._clients[key]

    @property
    def loki(self) -> Loki:
        if self._loki is None:
            if self.loki_url:
                http = httpx.Client(base_url=self.loki_url, timeout=30)
                self._clients[("loki-url", self.loki_url, 0)] = http  # closed with the rest
                where = f"Loki at {self.loki_url}"
            else:
                http = self.http(self.logging_ns, self.names["loki"], LOKI_PORT)
                where = f"Loki (service proxy {self.logging_ns}/{self.names['loki']}:{LOKI_PORT})"
            if self.tenant:
                where += f", tenant {self.tenant}"
            self._loki = Loki(http, where=where, clock=self.clock, tenant=self.tenant)
        return self._loki

    def app(self, service: str) -> httpx.Client:
        return self.http(self.app_ns, service, APP_PORT)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def agent_name(self) -> str:
        """The agent DaemonSet's name by the contract (checks.evidence.find_agent), for
        messages; the configured release name when it cannot be read."""
        try:
            ds = find_agent(self.kube.list_daemonsets(self.agent_ns), self.names["alloy"])
        except KubeError:  # a message helper must not hide the failure it is explaining
            return self.names["alloy"]
        return name_of(ds) if ds else self.names["alloy"]

    # -- readiness before evidence --------------------------------------------------------
    def confirm_pipeline_ready(self, timeout: float = 90) -> None:
        """Wait until Loki answers /ready and every agent pod is ready, else explain which isn't.

        Evidence sent before the agent runs is never shipped, so a checker that skipped this
        would blame the learner's query for a pipeline that was still starting.
        """
        if self.pipeline_failure is not None:
            raise self.pipeline_failure  # already waited once in this run: do not wait again
        if self.pipeline_checked:
            return
        try:
            self._confirm_pipeline_ready(timeout)
        except CheckFailed as failure:
            self.pipeline_failure = failure
            raise
        self.pipeline_checked = True

    def _confirm_pipeline_ready(self, timeout: float) -> None:
        logs = f"kubectl -n {self.logging_ns} logs statefulset/{self.names['loki']} --tail=20"
        try:
            # A 404 means no such Service (the proxy says so at once): no point in waiting.
            waited = poll(
                self.loki.ready, lambda r: r[0] or r[1].startswith("404"), what="Loki /ready",
                timeout=self.timeout(timeout), clock=self.clock, interval=2,
            )  # fmt: skip
        except DeadlineExceeded as e:
            raise CheckFailed(
                f"Loki /ready still answers {e.last[1]!r} after {e.timeout:.0f} s",
                "200 ready (Loki says 503 for about 15 s after it starts, then ready)",
                f"kubectl -n {self.logging_ns} get pods; {logs}",
            ) from None
        if not waited.value[0]:
            raise CheckFailed(
                f"Loki /ready through the service proxy answers {waited.value[1]!r}",
                f"Service {self.logging_ns}/{self.names['loki']} with port {LOKI_PORT}",
                f"kubectl -n {self.logging_ns} get svc; helm -n {self.logging_ns} status "
                f"{self.names['loki']}",
            )

        def agent_status():
            ds = find_agent(self.kube.list_daemonsets(self.agent_ns), self.names["alloy"])
            if ds is None:
                return None
            agent_name[0] = name_of(ds)
            return ds.get("status", {})

        agent_name = [self.names["alloy"]]

        def all_ready(status):
            if not status:
                return False
            wanted = status.get("desiredNumberScheduled", 0)
            return wanted > 0 and status.get("numberReady", 0) >= wanted

        try:
            # A missing DaemonSet will not appear by waiting: fail at once.
            waited = poll(
                agent_status, lambda st: st is None or all_ready(st),
                what="the agent DaemonSet to be ready",
                timeout=self.timeout(timeout), clock=self.clock, interval=2,
            )  # fmt: skip
            if waited.value is None:
                raise DeadlineExceeded("the agent DaemonSet", 0, None, waited.attempts)
        except DeadlineExceeded as e:
            seen = (
                f"no agent DaemonSet in {self.agent_ns} (none labelled "
                f"app.kubernetes.io/name=alloy, none named {self.names['alloy']})"
                if e.last is None
                else f"DaemonSet {agent_name[0]} has {e.last.get('numberReady', 0)}/"
                f"{e.last.get('desiredNumberScheduled', 0)} pods ready"
            )
            raise CheckFailed(
                seen,
                "one ready agent pod per node before the checker sends fresh evidence",
                f"kubectl -n {self.agent_ns} get ds,pods -o wide; "
                f"kubectl -n {self.agent_ns} describe ds {agent_name[0]}",
            ) from None

    # -- fresh evidence ------------------------------------------------------------------
    def evidence_start_ns(self) -> int:
        """Where a query for fresh evidence starts: a little before now.

        Freshness comes from the unique marker or trace id, not from the time range; the margin
        only absorbs clock skew between this machine and the node that stamped the line.
        """
        return self.clock.time_ns() - CLOCK_SKEW_MARGIN_S * 10**9

    def evidence_end_ns(self) -> int:
        """Where a query for fresh evidence ends: a little after now (node clocks run ahead)."""
        return self.clock.time_ns() + CLOCK_SKEW_MARGIN_S * 10**9

    def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        request_id: str,
        trace: Trace | None = None,
        json_body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request to a bookstore Service through the API server's service proxy."""
        all_headers = {"X-Request-ID": request_id, **(headers or {})}
        if trace is not None:
            all_headers["traceparent"] = trace.traceparent

        def attempt():
            try:
                return self.app(service).request(method, path, headers=all_headers, json=json_body)
            except httpx.HTTPError as e:
                return e

        try:
            # A proxy 502/503 (no ready endpoint during a rollout, a dial error) is retried;
            # the bookstore's own 503 (a JSON body of its own) is an answer, kept as it is.
            waited = poll(
                attempt, lambda r: not is_proxy_failure(r),
                what=f"{method} {path} through the service proxy",
                timeout=self.timeout(PROXY_RETRY_S), clock=self.clock, interval=1,
            )  # fmt: skip
            return waited.value
        except DeadlineExceeded as e:
            last = e.last
            seen = (
                f"{type(last).__name__}: {last}"
                if isinstance(last, Exception)
                else f"{last.status_code} {proxy_status_message(last)}"
            )
            raise CheckFailed(
                f"{method} {path} to Service {self.app_ns}/{service} through the API server "
                f"failed for {e.timeout:.0f} s: {seen}",
                "the bookstore answers through the service proxy",
                f"kubectl -n {self.app_ns} get pods,endpoints {service}",
            ) from None

    def first_book_id(self, request_id: str):
        """An id that exists in the catalog and has stock left (orders for unknown books stop
        before catalog; a sold-out book answers 409): the book with the most stock."""
        response = self.send("catalog", "GET", "/books", request_id=request_id)
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError:
                data = None
            books = data.get("books", data.get("items")) if isinstance(data, dict) else data
            if isinstance(books, list):
                books = [b for b in books if isinstance(b, dict) and "id" in b]
                if books:
                    return max(books, key=lambda b: b.get("stock") or 0)["id"]
        return 1

    def place_fresh_order(
        self, trace: Trace, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, int]:
        """POST /orders for a book that exists, under a new marker and the given trace.

        Returns the response and the `start_ns` a query for the order's lines starts from.
        """
        marker = new_marker()
        start_ns = self.evidence_start_ns()
        injected = any(k.lower() == "x-inject-fault" for k in headers or {})
        response = self.order(marker, trace, headers=headers, tries=1 if injected else 3)
        return response, start_ns

    def order(
        self,
        request_id: str,
        trace: Trace,
        *,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/orders",
        tries: int = 3,
    ) -> httpx.Response:
        """POST an order of one copy of a book in stock (plus `body`'s fields). A 5xx is tried
        again (up to `tries`): with FAULT_RATE above 0 the simulated database fails some
        requests on purpose, which must not fail a checker that needs a placed order."""
        book_id = self.first_book_id(f"{request_id}-books")
        for _ in range(tries):
            response = self.send(
                "orders", "POST", path, request_id=request_id, trace=trace,
                json_body={**(body or {}), "book_id": book_id, "qty": 1}, headers=headers,
            )  # fmt: skip
            if response.status_code < 500:
                break
        return response

    def loki_entries(self, query: str, *, start_ns: int, limit: int = 1000) -> list:
        """One query for evidence from `start_ns` to a little after now; errors explained."""
        try:
            return self.loki.entries(
                query, start_ns=start_ns, end_ns=self.evidence_end_ns(), limit=limit
            )
        except LokiError as e:
            raise CheckFailed(
                str(e), "Loki answers query_range", f"kubectl -n {self.logging_ns} get pods"
            ) from None

    def wait_in_loki(
        self,
        query: str,
        predicate,
        *,
        start_ns: int,
        timeout: float,
        what: str,
        expected: str = "the fresh request's lines in Loki within the deadline",
        next_step: str | None = None,
    ):
        """Poll Loki for fresh evidence; on timeout fail with what was seen and the query."""
        try:
            return self.loki.wait_for(
                query, predicate, start_ns=start_ns, timeout=self.timeout(timeout),
                clock=self.clock, interval=1,  # 1 s: the measured delay is this precise
                ahead_ns=CLOCK_SKEW_MARGIN_S * 10**9,
            )  # fmt: skip
        except DeadlineExceeded as e:
            seen = e.last or []
            services = ", ".join(sorted(services_of(seen)))
            raise CheckFailed(
                f"after {e.timeout:.0f} s Loki returned {len(seen)} line(s) for {query}"
                + (f" (from {services})" if seen else "")
                + (f"; {what}" if what else ""),
                expected,
                next_step
                or "check that the agent ships bookstore lines: query "
                f'`{{namespace="{self.app_ns}"}}` in Grafana, and `kubectl -n {self.agent_ns} logs '
                f"ds/{self.agent_name()} --tail=30` for push errors",
            ) from None
        except LokiError as e:
            raise CheckFailed(
                str(e), "Loki answers query_range", f"kubectl -n {self.logging_ns} get pods"
            ) from None


def is_proxy_failure(response) -> bool:
    """A failed proxied call worth retrying: no answer at all, or the API server's own
    502/503/504 `Status` (kind Status, from k8s.io/apimachinery pkg/util/proxy/transport.go
    and the service REST's "no endpoints available"), not the backend's own 503."""
    if isinstance(response, Exception):
        return True
    if response.status_code not in TRANSIENT_STATUSES:
        return False
    try:
        body = response.json()
    except ValueError:
        return response.status_code == 502  # the reverse proxy's bare "Bad Gateway"
    return isinstance(body, dict) and body.get("kind") == "Status"


def proxy_status_message(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body))[:200] if isinstance(body, dict) else str(body)[:200]
