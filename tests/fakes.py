"""A fake lab cluster and a fake Loki that behave as the real ones do, for the offline tests.

- `FakeLoki` is an httpx.MockTransport-backed Loki 3.x: /ready answers 503 for its first
  seconds, pushed lines become queryable after an ingestion delay, query_range answers in the
  real JSON shape (ns timestamps as strings, limit, direction), a small LogQL subset is
  applied (`{l="v", l=~"re"}`, `|=`, `!=`, `|~`, `| json`, `| key="v"`), and a log query on
  the instant endpoint gets Loki's 400.
- `FakeCluster` has the same methods as `checks.kube.Kube` and returns API JSON; the bookstore
  behind its service proxy writes real-shaped JSON lines to the pods' logs and, when the agent
  is healthy, ships them to FakeLoki with the labels the Alloy pipeline sets.
- `Scenario` holds one switch per way a learner's lab can be wrong.

Everything runs on a `FakeClock`, so polls with deadlines finish instantly.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx

from checks.kube import NotFound
from checks.lab import Lab

NS_APP, NS_LOGGING = "bookstore", "logging"
NODES = ("lab2-logging-control-plane", "lab2-logging-worker")
INSTANT_LOG_QUERY_ERROR = (
    "log queries are not supported as an instant query type, please change your query to a "
    "range query type"
)


NOT_READY = "Ingester not ready: waiting for 15s after being ready\n"


class FakeClock:
    """Monotonic and wall time that advance only when someone sleeps."""

    def __init__(self, wall_ns: int = 1_790_000_000 * 10**9):
        self.t = 0.0
        self.wall0 = wall_ns

    def monotonic(self) -> float:
        return self.t

    def time_ns(self) -> int:
        return self.wall0 + int(self.t * 1e9)

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.001)

    def iso(self) -> str:
        ts = datetime.fromtimestamp(self.time_ns() / 1e9, tz=UTC)
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


# -- Loki ----------------------------------------------------------------------------------
SELECTOR = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
STAGE = re.compile(
    r'\s*(?:(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"|\|\s*json\b|\|\s*(\w+)\s*(=|!=)\s*"((?:[^"\\]|\\.)*)")'
)


def parse_logql(query: str):
    """(matchers, stages) of a log query; ValueError for what this subset does not know."""
    query = query.strip()
    if not query.startswith("{"):
        raise ValueError(f"not a log query: {query!r}")
    close = query.index("}")
    inner, rest = query[1:close], query[close + 1 :]
    matchers = []
    pos = 0
    while pos < len(inner):
        m = SELECTOR.match(inner, pos)
        if not m:
            raise ValueError(f"parse error in selector at {inner[pos:]!r}")
        matchers.append((m.group(1), m.group(2), m.group(3).replace('\\"', '"')))
        pos = m.end()
    stages = []
    pos = 0
    while rest[pos:].strip():
        m = STAGE.match(rest, pos)
        if not m:
            raise ValueError(f"parse error at {rest[pos:]!r}")
        if m.group(1):
            stages.append(("line", m.group(1), m.group(2).replace('\\"', '"')))
        elif m.group(3):
            stages.append(("label", m.group(3), m.group(4), m.group(5)))
        else:
            stages.append(("json",))
        pos = m.end()
    return matchers, stages


def _match_labels(labels: dict, matchers) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def _apply(labels: dict, line: str, stages) -> dict | None:
    """The labels a line carries after the pipeline, or None when a stage drops it."""
    labels = dict(labels)
    for stage in stages:
        if stage[0] == "line":
            _, op, text = stage
            hit = re.search(text, line) is not None if op in ("|~", "!~") else text in line
            if hit != (op in ("|=", "|~")):
                return None
        elif stage[0] == "json":
            try:
                obj = json.loads(line)
            except ValueError:
                labels["__error__"] = "JSONParserErr"
                continue
            for key, value in obj.items():
                if not isinstance(value, dict | list):
                    labels[key] = str(value)  # Loki adds extracted fields to stream labels
        else:
            _, name, op, value = stage
            if (labels.get(name) == value) != (op == "="):
                return None
    return labels


@dataclass
class FakeLoki:
    clock: FakeClock
    ready_after: float = 15.0  # Loki: "Ingester not ready: waiting for 15s after being ready"
    ingest_delay: float = 3.0  # agent batch + ingester: a line is queryable a few s later
    lines: list[tuple[int, dict, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    forget_pods: set[str] = field(default_factory=set)  # lines of these pods vanish

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def push(self, labels: dict, line: str, ts_ns: int | None = None) -> None:
        """Store a line as the agent would push it (timestamp: now, or the CRI one given)."""
        labels = dict(labels)
        if "app" in labels:
            labels.setdefault("service_name", labels["app"])  # Loki's discovered service_name
        self.lines.append((self.clock.time_ns() if ts_ns is None else ts_ns, labels, line))

    def visible(self, start: int, end: int):
        horizon = self.clock.time_ns() - int(self.ingest_delay * 1e9)
        for ts, labels, line in self.lines:
            if ts <= horizon and start <= ts < end and labels.get("pod") not in self.forget_pods:
                yield ts, labels, line

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        if path == "/ready":
            if self.clock.monotonic() < self.ready_after:
                return httpx.Response(503, text=NOT_READY)
            return httpx.Response(200, text="ready\n")
        if path == "/loki/api/v1/query":
            if params.get("query", "").lstrip().startswith("{"):
                return httpx.Response(400, text=INSTANT_LOG_QUERY_ERROR + "\n")
            return httpx.Response(400, text="this fake answers no metric queries\n")
        if path == "/loki/api/v1/query_range":
            return self.query_range(params)
        start = int(params.get("start", 0))
        end = int(params.get("end", self.clock.time_ns() + 1))
        if path == "/loki/api/v1/labels":
            names = sorted({k for _, labels, _ in self.visible(start, end) for k in labels})
            return httpx.Response(200, json={"status": "success", "data": names})
        m = re.fullmatch(r"/loki/api/v1/label/(\w+)/values", path)
        if m:
            values = sorted(
                {lb[m.group(1)] for _, lb, _ in self.visible(start, end) if m.group(1) in lb}
            )
            return httpx.Response(200, json={"status": "success", "data": values})
        if path == "/loki/api/v1/series":
            matches = parse_qs(request.url.query.decode()).get("match[]", [])
            try:
                selectors = [parse_logql(m)[0] for m in matches]
            except ValueError as e:
                return httpx.Response(400, text=f"parse error: {e}\n")
            series = {
                tuple(sorted(lb.items()))
                for _, lb, _ in self.visible(start, end)
                if any(_match_labels(lb, sel) for sel in selectors)
            }
            data = [dict(s) for s in sorted(series)]
            return httpx.Response(200, json={"status": "success", "data": data})
        return httpx.Response(404, text="404 page not found\n")

    def query_range(self, params: dict) -> httpx.Response:
        for key in ("start", "end"):
            if key in params and not params[key].isdigit():
                return httpx.Response(400, text=f"invalid parameter {key}: {params[key]!r}\n")
        try:
            matchers, stages = parse_logql(params["query"])
        except (KeyError, ValueError) as e:
            return httpx.Response(400, text=f"parse error: {e}\n")
        now = self.clock.time_ns()
        start = int(params.get("start", now - 3600 * 10**9))
        end = int(params.get("end", now))
        limit = int(params.get("limit", 100))
        hits = []
        for ts, labels, line in self.visible(start, end):
            if not _match_labels(labels, matchers):
                continue
            out = _apply(labels, line, stages)
            if out is not None:
                hits.append((ts, out, line))
        hits.sort(key=lambda h: h[0], reverse=params.get("direction", "backward") == "backward")
        streams: dict[tuple, list] = {}
        for ts, labels, line in hits[:limit]:
            streams.setdefault(tuple(sorted(labels.items())), []).append([str(ts), line])
        result = [{"stream": dict(k), "values": v} for k, v in streams.items()]
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"resultType": "streams", "result": result, "stats": {}},
            },
        )


# -- the cluster ---------------------------------------------------------------------------
@dataclass
class Scenario:
    """One switch per way a learner's lab can be wrong; the defaults are a correct lab."""

    agent_kind: str = "DaemonSet"  # or "Deployment"
    agent_namespace: str = NS_LOGGING
    varlog_mount: bool = True
    varlog_read_only: bool = True
    app_enforce: str = "restricted"
    failed_create: bool = False  # catalog's new ReplicaSet cannot create pods
    plain_text_line: bool = False  # catalog prints one line that is not JSON
    ships: bool = True  # the agent ships lines to Loki
    loki_forgets_deleted: bool = False
    propagates_trace: bool = True  # orders passes traceparent on to catalog
    sidecar: bool = False
    trace_id_label: bool = False  # agent promotes trace_id to a label
    redacts: bool = True
    grafana_default_loki: bool = True
    unreachable: bool = False
    daemonsets_forbidden: bool = False  # RBAC: the checker's user may not list DaemonSets


FAILED_CREATE = (
    'pods "catalog-6d8f7c9b5-" is forbidden: violates PodSecurity "restricted:v1.34": '
    'allowPrivilegeEscalation != false (container "catalog" must set '
    "securityContext.allowPrivilegeEscalation=false)"
)


def _meta(name, namespace, **extra):
    return {"name": name, "namespace": namespace, "uid": secrets.token_hex(8), **extra}


def _ready_pod(name, namespace, node, containers, owner_kind, owner, labels):
    return {
        "kind": "Pod",
        "metadata": _meta(
            name, namespace, labels=labels,
            ownerReferences=[{"kind": owner_kind, "name": owner, "controller": True}],
        ),
        "spec": {"nodeName": node, "containers": containers},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


class FakeCluster:
    """A lab cluster with the methods of checks.kube.Kube, answering in API JSON."""

    host = "https://fake-apiserver.invalid:6443"

    def __init__(self, scenario: Scenario | None = None, clock: FakeClock | None = None):
        self.s = scenario or Scenario()
        self.clock = clock or FakeClock()
        self.loki = FakeLoki(self.clock)
        if self.s.loki_forgets_deleted:
            self.loki.forget_pods = self.deleted = set()
        else:
            self.deleted: set[str] = set()
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.calls: list[str] = []
        self._names = (f"{i:05x}" for i in itertools.count(0x1A2B3))
        self.pods: dict[str, dict] = {}
        self.namespaces = {
            NS_APP: {"metadata": {"name": NS_APP, "labels": {
                "pod-security.kubernetes.io/enforce": self.s.app_enforce}}},
            NS_LOGGING: {"metadata": {"name": NS_LOGGING, "labels": {
                "pod-security.kubernetes.io/enforce": "privileged"}}},
        }  # fmt: skip
        self.deployments: list[dict] = []
        self.replicasets: list[dict] = []
        self.daemonsets: list[dict] = []
        self.events: list[dict] = []
        self._build_bookstore()
        self._build_agent()

    # -- building the world --------------------------------------------------------------
    def _app_container(self, app):
        containers = [{"name": app, "image": f"bookstore/{app}:0.1.0"}]
        if self.s.sidecar:
            containers.append({"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"})
        return containers

    def _new_app_pod(self, app: str, node: str) -> dict:
        name = f"{app}-7d9f8c6b4-{next(self._names)}"
        pod = _ready_pod(
            name, NS_APP, node, self._app_container(app), "ReplicaSet", f"{app}-7d9f8c6b4",
            {"app": app},
        )  # fmt: skip
        self.pods[name] = pod
        self.write(pod, {"level": "INFO", "msg": "service starting", "port": 8080})
        if self.s.plain_text_line and app == "catalog":
            self.write(pod, None, raw="Starting catalog on 0.0.0.0:8080 (press CTRL+C to quit)")
        return pod

    def _build_bookstore(self):
        for app in ("catalog", "orders"):
            short = self.s.failed_create and app == "catalog"
            self.deployments.append({
                "kind": "Deployment",
                "metadata": _meta(app, NS_APP, labels={"app": app}),
                "spec": {"replicas": 2, "template": {"spec": {
                    "containers": self._app_container(app)}}},
                "status": {"replicas": 2, "readyReplicas": 0 if short else 2},
            })  # fmt: skip
            self.replicasets.append({
                "kind": "ReplicaSet",
                "metadata": _meta(
                    f"{app}-7d9f8c6b4", NS_APP,
                    annotations={"deployment.kubernetes.io/revision": "1"},
                    ownerReferences=[{"kind": "Deployment", "name": app}],
                ),
                "status": {"replicas": 2},
            })  # fmt: skip
            if short:
                # The learner's edit made a revision 2 whose pods Pod Security rejects.
                self.replicasets.append({
                    "kind": "ReplicaSet",
                    "metadata": _meta(
                        "catalog-6d8f7c9b5", NS_APP,
                        annotations={"deployment.kubernetes.io/revision": "2"},
                        ownerReferences=[{"kind": "Deployment", "name": app}],
                    ),
                    "status": {"replicas": 0, "conditions": [{
                        "type": "ReplicaFailure", "status": "True",
                        "reason": "FailedCreate", "message": FAILED_CREATE + "x2k9p"}]},
                })  # fmt: skip
                self.events.append({
                    "reason": "FailedCreate", "type": "Warning",
                    "involvedObject": {"kind": "ReplicaSet", "name": "catalog-6d8f7c9b5"},
                    "message": "Error creating: " + FAILED_CREATE + "x2k9p",
                    "lastTimestamp": "2026-11-22T00:00:00Z",
                })  # fmt: skip
                continue
            for node in NODES:
                self._new_app_pod(app, node)

    def _build_agent(self):
        volumes, mounts = [], []
        if self.s.varlog_mount:
            volumes.append({"name": "varlog", "hostPath": {"path": "/var/log"}})
            mount = {"name": "varlog", "mountPath": "/var/log"}
            if self.s.varlog_read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        containers = [{"name": "alloy", "image": "grafana/alloy:v1.18.1", "volumeMounts": mounts}]
        ns, kind = self.s.agent_namespace, self.s.agent_kind
        workload = {
            "kind": kind,
            "metadata": _meta("alloy", ns, labels={"app.kubernetes.io/name": "alloy"}),
            "spec": {"template": {"spec": {"containers": containers, "volumes": volumes}}},
        }
        if kind == "DaemonSet":
            workload["status"] = {"desiredNumberScheduled": len(NODES), "numberReady": len(NODES)}
            self.daemonsets.append(workload)
            for i, node in enumerate(NODES):
                name = f"alloy-{'abcdefgh'[i]}x{i}q"
                self.pods[name] = _ready_pod(name, ns, node, containers, "DaemonSet", "alloy", {})
        else:
            workload["spec"]["replicas"] = 1
            workload["status"] = {"replicas": 1, "readyReplicas": 1}
            self.deployments.append(workload)
            name = "alloy-5f6d7c8b9-q2w3e"
            self.pods[name] = _ready_pod(name, ns, NODES[1], containers, "ReplicaSet", "x", {})

    # -- the bookstore's stdout, and the agent that ships it ---------------------------------
    def write(self, pod: dict, fields: dict | None, raw: str | None = None) -> None:
        app = pod["metadata"]["labels"]["app"]
        if raw is None:
            fields = {"time": self.clock.iso(), "service": app, **fields}
            raw = json.dumps(fields)
        self.logs.setdefault((pod["metadata"]["name"], app), []).append(raw)
        if not self._agent_ships(pod):
            return
        labels = {
            "namespace": NS_APP, "pod": pod["metadata"]["name"], "container": app, "app": app,
        }  # fmt: skip
        if self.s.trace_id_label and fields and "trace_id" in fields:
            labels["trace_id"] = fields["trace_id"]
        self.loki.push(labels, raw)

    def _agent_ships(self, pod: dict) -> bool:
        return (
            self.s.ships
            and self.s.agent_kind == "DaemonSet"
            and self.s.varlog_mount
            and self.s.agent_namespace == NS_LOGGING
        )

    def _pick(self, app: str) -> dict:
        pods = [p for p in self.pods.values() if p["metadata"]["labels"].get("app") == app]
        if not pods:
            raise httpx.ConnectError(f'no endpoints available for service "{app}"')
        return pods[len(self.calls) % len(pods)]

    def bookstore(self, app: str, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{app} {request.method} {request.url.path}")
        try:
            pod = self._pick(app)
        except httpx.ConnectError as e:
            return httpx.Response(503, text=str(e))
        rid = request.headers.get("x-request-id") or secrets.token_hex(8)
        tp = request.headers.get("traceparent", "")
        trace = tp.split("-")[1] if tp.count("-") == 3 else secrets.token_hex(16)
        base = {"trace_id": trace, "span_id": secrets.token_hex(8), "trace_flags": "01",
                "request_id": rid, "method": request.method, "duration_ms": 1.5}  # fmt: skip
        fault = request.headers.get("x-inject-fault") == "database"
        path = request.url.path
        if app == "catalog" and path == "/books":
            self.write(pod, {**base, "level": "INFO", "msg": "request completed",
                             "route": "/books", "status": 200})  # fmt: skip
            return httpx.Response(200, json=[{"id": 1, "title": "Kubernetes Up"}])
        if app == "catalog" and path.startswith("/books/"):
            status = 503 if fault else 200
            if fault:
                self.write(pod, {**base, "level": "ERROR", "msg": "database connection failed",
                                 "error_type": "DatabaseConnectionError",
                                 "error": "connection refused",
                                 "stack": "Traceback ..."})  # fmt: skip
            self.write(pod, {**base, "level": "ERROR" if fault else "INFO",
                             "msg": "request completed", "route": "/books/{book_id}/reserve",
                             "status": status})  # fmt: skip
            return httpx.Response(status, json={})
        if app == "orders" and path == "/orders" and request.method == "POST":
            body = json.loads(request.content or b"{}")
            headers = {"x-request-id": rid}
            if self.s.propagates_trace:
                headers["traceparent"] = f"00-{trace}-{secrets.token_hex(8)}-01"
            if fault:
                headers["x-inject-fault"] = "database"
            reserve = httpx.Request("POST", "http://catalog/books/1/reserve", headers=headers)
            status = self.bookstore("catalog", reserve).status_code
            shown = body if not self.s.redacts else {
                k: ("[REDACTED]" if k in ("password", "card_number") else v)
                for k, v in body.items()
            }  # fmt: skip
            if status >= 500:
                self.write(pod, {**base, "level": "ERROR", "msg": "catalog unavailable",
                                 "error_type": "DatabaseConnectionError", "status": 503,
                                 "route": "/orders"})  # fmt: skip
                return httpx.Response(503, json={"error": "catalog_unavailable"})
            self.write(pod, {**base, "level": "INFO", "msg": "order placed", "order_id": "o-1",
                             "book_id": body.get("book_id"), "qty": body.get("qty"),
                             "body": shown})  # fmt: skip
            self.write(pod, {**base, "level": "INFO", "msg": "request completed",
                             "route": "/orders", "status": 201})  # fmt: skip
            return httpx.Response(201, json={"order_id": "o-1"})
        self.write(pod, {**base, "level": "WARN", "msg": "request completed",
                         "route": "unmatched", "status": 404})  # fmt: skip
        return httpx.Response(404, json={"error": "not_found"})

    def grafana(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") is None:
            return httpx.Response(401, json={"message": "Unauthorized"})
        sources = [{"name": "Loki", "type": "loki", "isDefault": self.s.grafana_default_loki,
                    "url": "http://loki.logging.svc.cluster.local:3100"}]  # fmt: skip
        return httpx.Response(200, json=sources)

    # -- the checks.kube.Kube interface --------------------------------------------------
    def server_version(self) -> str:
        if self.s.unreachable:
            from checks.kube import KubeUnreachable

            raise KubeUnreachable(f"no API server answered at {self.host} (connection refused)")
        return "v1.34.0"

    def get_namespace(self, name):
        return self.namespaces.get(name)

    def list_daemonsets(self, namespace=None):
        if self.s.daemonsets_forbidden:
            from checks.kube import KubeError

            raise KubeError(
                f"LIST daemonsets -n {namespace}: HTTP 403: daemonsets.apps is forbidden: User "
                f'"learner" cannot list resource "daemonsets" in API group "apps"'
            )
        return [d for d in self.daemonsets if namespace in (None, d["metadata"]["namespace"])]

    def list_deployments(self, namespace):
        return [d for d in self.deployments if d["metadata"]["namespace"] == namespace]

    def list_replicasets(self, namespace):
        return [r for r in self.replicasets if r["metadata"]["namespace"] == namespace]

    def list_events(self, namespace):
        return list(self.events) if namespace == NS_APP else []

    def list_pods(self, namespace, label_selector=None):
        return [p for p in self.pods.values() if p["metadata"]["namespace"] == namespace]

    def get_pod(self, namespace, name):
        return self.pods.get(name)

    def get_secret_value(self, namespace, name, key):
        return "generated-admin-password" if (namespace, name) == (NS_LOGGING, "grafana") else None

    def pod_logs(self, namespace, name, container, *, tail_lines=None):
        if name not in self.pods:
            raise NotFound(f'GET logs {namespace}/{name} -c {container}: not found '
                           f'(pods "{name}" not found)')  # fmt: skip
        lines = self.logs.get((name, container), [])
        return "".join(line + "\n" for line in lines[-(tail_lines or len(lines) or 1) :])

    def delete_pod(self, namespace, name):
        pod = self.pods.pop(name, None)
        if pod is None:
            raise NotFound(f"DELETE pod {namespace}/{name}: not found")
        self.deleted.add(name)
        app = pod["metadata"]["labels"].get("app")
        if app:  # the ReplicaSet replaces it
            self._new_app_pod(app, pod["spec"]["nodeName"])

    def dry_run_create_pod(self, namespace, pod):
        from validators.pss import evaluate

        level = self.namespaces[namespace]["metadata"]["labels"].get(
            "pod-security.kubernetes.io/enforce", "privileged"
        )
        if level == "privileged":
            return True, "accepted"
        violations = evaluate([pod], level=level)
        if not violations:
            return True, "accepted"
        name = pod["metadata"]["name"]
        titles = ", ".join(sorted({v.control for v in violations}))
        return False, (
            f'CREATE pod {namespace}/{name} (dry run): HTTP 403: pods "{name}" is forbidden: '
            f'violates PodSecurity "{level}:latest": {titles}'
        )

    def service_client(self, namespace, service, port):
        base = f"{self.host}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/"
        if (namespace, service, port) == (NS_LOGGING, "loki", 3100):
            transport = self.loki.transport
        elif (namespace, service) == (NS_LOGGING, "grafana"):
            transport = httpx.MockTransport(self.grafana)
        elif namespace == NS_APP and service in ("catalog", "orders"):
            transport = httpx.MockTransport(lambda r, s=service: self.bookstore(s, r))
        else:
            transport = httpx.MockTransport(
                lambda r: httpx.Response(404, text=f'services "{service}" not found')
            )
        return _ProxyClient(base_url=base, transport=transport)


class _ProxyClient(httpx.Client):
    """An httpx client whose requests reach the handler with the path below `/proxy`,
    as the API server forwards them."""

    def __init__(self, *, base_url: str, transport: httpx.MockTransport):
        prefix = httpx.URL(base_url).path.rstrip("/")

        def strip(request: httpx.Request) -> httpx.Response:
            path = request.url.path.removeprefix(prefix) or "/"
            inner = httpx.Request(
                request.method, request.url.copy_with(path=path),
                headers=request.headers, content=request.content,
            )  # fmt: skip
            return transport.handle_request(inner)

        super().__init__(base_url=base_url, transport=httpx.MockTransport(strip))


def fake_lab(scenario: Scenario | None = None, **switches) -> tuple[Lab, FakeCluster]:
    """A Lab over a FakeCluster (names as versions.toml sets them), and the cluster itself."""
    cluster = FakeCluster(scenario or Scenario(**switches))
    names = {"namespace": NS_LOGGING, "loki": "loki", "alloy": "alloy", "grafana": "grafana"}
    return Lab(cluster, clock=cluster.clock, names=names), cluster
