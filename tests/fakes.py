"""A fake lab cluster for the offline tests: the Kubernetes side and the bookstore behind it.

`FakeCluster` has the methods of `checks.kube.Kube` and answers in API JSON; the bookstore
behind its service proxy writes CRI log files per container and, as the agent does, ships the
lines to `tests.fake_loki.FakeLoki`. `Scenario` holds one switch per way a learner's lab can
be wrong (or right in a less common way). Each behaviour cites its upstream source:

- App pods run the pod template of manifests/bookstore (the real, restricted-compliant spec).
- The bookstore's lines follow the real services: request lines from bookstore/web.py, the
  404/400 WARN lines, `order placed` / `stock reserved`, redaction by the real
  bookstore.redaction, and `LOG_SAMPLE_RATE` by the real bookstore.sampling (only successful
  request lines can be dropped).
- The container runtime writes `<RFC3339Nano node time> <stdout|stderr> F <line>` per container
  (the CRI logging format, kubernetes pkg/kubelet/kuberuntime/logs); `kubectl logs` merges both
  streams; the kubelet serves the file under /logs/ (pkg/kubelet/server/server.go).
- The agent (Alloy: local.file_match + loki.source.file, one tailer per file; loki.write
  batches by time, `batch_wait` 1s) ships each pod's lines in its own batches, so two pods'
  lines arrive at different times; `stage.cri` keeps the CRI timestamp (the node's clock) and
  adds the `stream` label (grafana/alloy docs, loki.process stage.cri).
- The API server's service proxy strips `Authorization` after authenticating
  (k8s.io/apiserver pkg/endpoints/filters/authentication.go) and answers its own failures with
  a `Status` body: 503 "no endpoints available for service" (pkg/registry/core/service/
  storage/rest.go ResourceLocation) or 503 "error trying to reach service: ..."
  (k8s.io/apimachinery pkg/util/proxy/transport.go).
- A Deployment whose new ReplicaSet cannot create pods keeps its old ready pods:
  `updatedReplicas` 0, `readyReplicas` unchanged, a `ReplicaFailure` (FailedCreate) condition
  copied from the ReplicaSet (kubernetes pkg/controller/deployment/progress.go syncRolloutStatus,
  getReplicaFailures;
  pkg/controller/replicaset/replica_set_utils.go).
- Pod Security admission checks pods only when they are created: pods admitted while the label
  was relaxed keep running after it is restored; relabelling a namespace only returns warnings
  about the existing pods (kubernetes.io docs, Pod Security Admission; the namespace label
  validation in plugin/pkg/admission/security/podsecurity).
- The DaemonSet controller schedules one pod per node whose taints the pods tolerate and that
  matches the nodeSelector (pkg/controller/daemon/daemon_controller.go); kind taints its
  control-plane node `node-role.kubernetes.io/control-plane:NoSchedule`.

Everything runs on a `FakeClock`, so polls with deadlines finish instantly.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import yaml

from bookstore import redaction, sampling
from checks.kube import KubeUnreachable, NotFound, error_for_status
from checks.lab import Lab
from labconfig.versions import REPO_ROOT, load_versions
from tests.fake_loki import (  # noqa: F401  (re-exported for the tests)
    INSTANT_LOG_QUERY_ERROR,
    NOT_READY,
    SINGLE_TENANT,
    FakeLoki,
    parse_logql,
)

_CHARTS = load_versions()["charts"]
NS_APP = "bookstore"
# Namespaces as versions.toml places the charts: Loki (and Grafana) in one `restricted`
# namespace, the agent alone in a `privileged` one (manifests/logging/namespace.yaml).
NS_LOGGING = _CHARTS["loki"]["namespace"]
NS_AGENT = _CHARTS["alloy"]["namespace"]
NS_GRAFANA = _CHARTS["grafana"]["namespace"]
# The names a Lab reads (checks.lab: namespace, agent_namespace, grafana_namespace, releases).
LAB_NAMES = {
    "namespace": NS_LOGGING,
    "agent_namespace": NS_AGENT,
    "grafana_namespace": NS_GRAFANA,
    "loki": _CHARTS["loki"]["release"],
    "alloy": _CHARTS["alloy"]["release"],
    "grafana": _CHARTS["grafana"]["release"],
}
CONTROL_PLANE, WORKER = "lab2-logging-control-plane", "lab2-logging-worker"
NODES = (CONTROL_PLANE, WORKER)
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
ORDER_ID = re.compile(r"ord-[0-9a-f]{16}")


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
        """Now as the bookstore writes `time` (RFC 3339, UTC), for lines the fakes make up."""
        return rfc3339(self.time_ns())


def rfc3339(ns: int) -> str:
    ts = datetime.fromtimestamp(ns // 10**9, tz=UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


@dataclass
class Scenario:
    """One switch per way a learner's lab can be wrong; the defaults are a correct lab."""

    # -- the agent
    agent_kind: str = "DaemonSet"  # or "Deployment"
    agent_namespace: str = NS_AGENT
    agent_name: str = "alloy"  # the Helm release name makes the DaemonSet's name
    agent_chart_label: bool = True  # app.kubernetes.io/name=alloy, set by the Alloy chart
    agent_image: str = "grafana/alloy:v1.18.1"
    agent_node_selector: dict | None = None  # pins the DaemonSet to matching nodes
    agent_tolerates_control_plane: bool = True  # manifests/logging/alloy-values.yaml does
    varlog_mount: bool = True
    varlog_read_only: bool = True
    ships: bool = True  # the agent ships lines to Loki
    loses_lines_of_deleted_pods: bool = False  # stops reading a pod's file when it is deleted
    trace_id_label: bool = False  # agent promotes trace_id to a label
    trace_id_metadata: bool = False  # agent keeps trace_id as structured metadata (right)
    extra_label: str | None = None  # "order" (order id) or "client" (client IP) as a label
    sidecar: bool = False
    # -- the app namespace
    app_enforce: str = "restricted"
    failed_create: bool = False  # catalog's first ReplicaSet cannot create pods
    stuck_rollout: bool = False  # catalog's revision 2 is rejected; revision 1 keeps serving
    scaled_to_zero: str | None = None  # this Deployment has replicas: 0
    deleted_deployment: str | None = None  # this Deployment does not exist
    privileged_pods: str | None = None  # this app's pods were admitted privileged
    # -- the services' output
    plain_text_line: bool = False  # catalog prints one line that is not JSON, last
    old_banner: bool = False  # catalog printed a plain-text banner, then many JSON lines
    stderr_app: str | None = None  # this app writes its (JSON) lines to stderr
    silent_app: str | None = None  # this app's container writes nothing at all
    sample_rate: float = 1.0  # LOG_SAMPLE_RATE
    propagates_trace: bool = True  # orders passes traceparent on to catalog
    redacts: bool = True
    logs_query_string: bool = False  # an access log line with the URL's query string
    logs_headers: bool = False  # a debug line with the request headers
    # -- the platform
    node_clock_skew_s: float = 0.0  # the nodes' clock minus this machine's
    proxy_hiccups: int = 0  # the first N proxied requests get the API server's 503 Status
    unlucky_orders: int = 0  # FAULT_RATE > 0: the first N valid orders hit a database failure
    loki_forgets_deleted: bool = False
    grafana_default_loki: bool = True
    grafana_anonymous: bool = True  # manifests/logging/grafana-values.yaml turns it on
    grafana_url: str = "http://loki.logging.svc.cluster.local:3100"
    unreachable: bool = False
    # -- whose lab: the laptop's `bookstore` without Loki auth, or a class learner's namespace
    # with Loki's auth on and the class agent putting each line in the tenant named like its
    # namespace (classroom.values.alloy_overlay; Alloy loki.process stage.tenant).
    app_namespace: str = "bookstore"
    loki_auth: bool = False
    daemonsets_forbidden: bool = False  # RBAC: the checker's user may not list DaemonSets


FAILED_CREATE = (
    'pods "catalog-6d8f7c9b5-" is forbidden: violates PodSecurity "restricted:v1.36": '
    'allowPrivilegeEscalation != false (container "catalog" must set '
    "securityContext.allowPrivilegeEscalation=false)"
)


def proxy_status(code: int, message: str) -> httpx.Response:
    """The API server's own error answer: a v1 Status (k8s.io/apimachinery pkg/api/errors)."""
    reason = {502: "BadGateway", 503: "ServiceUnavailable", 404: "NotFound"}.get(code, "")
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return httpx.Response(code, json=body)


def manifest_pod_spec(app: str) -> dict:
    """The pod template spec of manifests/bookstore/<app>.yaml: what the cluster really runs."""
    for doc in yaml.safe_load_all(
        (REPO_ROOT / "manifests" / "bookstore" / f"{app}.yaml").read_text()
    ):
        if doc and doc.get("kind") == "Deployment":
            return doc["spec"]["template"]["spec"]
    raise AssertionError(f"no Deployment in manifests/bookstore/{app}.yaml")


def _meta(name, namespace, **extra):
    return {"name": name, "namespace": namespace, "uid": secrets.token_hex(16), **extra}


def _pod(name, namespace, node, spec, owner_kind, owner, labels, ip):
    containers = [c["name"] for c in spec.get("containers", [])]
    return {
        "metadata": _meta(
            name, namespace, labels=labels,
            ownerReferences=[{"kind": owner_kind, "name": owner, "controller": True}],
        ),
        "spec": {**json.loads(json.dumps(spec)), "nodeName": node},
        "status": {
            "phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c, "ready": True, "restartCount": 0}
                                  for c in containers],
        },
    }  # fmt: skip


class FakeCluster:
    """A lab cluster with the methods of checks.kube.Kube, answering in API JSON."""

    host = "https://fake-apiserver.invalid:6443"

    def __init__(self, scenario: Scenario | None = None, clock: FakeClock | None = None):
        self.s = scenario or Scenario()
        self.clock = clock or FakeClock()
        self.loki = FakeLoki(self.clock, auth_enabled=self.s.loki_auth)
        self.app_ns = self.s.app_namespace
        self.deleted: set[str] = set()
        if self.s.loki_forgets_deleted:
            self.loki.forget_pods = self.deleted
        self.cri: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
        self.calls: list[str] = []
        self.proxy_requests: list[httpx.Request] = []
        self.hiccups_left = self.s.proxy_hiccups
        self.unlucky_left = self.s.unlucky_orders
        self._names = (f"{i:05x}" for i in itertools.count(0x1A2B3))
        self._ips = (f"10.244.1.{i}" for i in itertools.count(5))
        self.pods: dict[str, dict] = {}
        self.stock = {1: 12, 2: 7, 3: 3}
        self.namespaces = {
            self.app_ns: {"metadata": {"name": self.app_ns, "labels": {
                "pod-security.kubernetes.io/enforce": self.s.app_enforce}}},
            NS_LOGGING: {"metadata": {"name": NS_LOGGING, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}},
            NS_AGENT: {"metadata": {"name": NS_AGENT, "labels": {
                "pod-security.kubernetes.io/enforce": "privileged"}}},
        }  # fmt: skip
        self.nodes = [
            {"metadata": {"name": CONTROL_PLANE}, "spec": {"taints": [CONTROL_PLANE_TAINT]}},
            {"metadata": {"name": WORKER}, "spec": {}},
        ]
        self.deployments: list[dict] = []
        self.replicasets: list[dict] = []
        self.daemonsets: list[dict] = []
        self.events: list[dict] = []
        self._build_bookstore()
        self._build_agent()

    # -- the node clock ------------------------------------------------------------------
    def node_ns(self) -> int:
        return self.clock.time_ns() + int(self.s.node_clock_skew_s * 1e9)

    # -- building the world --------------------------------------------------------------
    def _app_spec(self, app: str) -> dict:
        spec = json.loads(json.dumps(manifest_pod_spec(app)))
        if self.s.privileged_pods == app:
            for c in spec["containers"]:
                c.setdefault("securityContext", {})["privileged"] = True
                c["securityContext"]["allowPrivilegeEscalation"] = True
        if self.s.sidecar:
            spec["containers"].append({"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"})
        return spec

    def _new_app_pod(self, app: str, node: str = WORKER, rs: str | None = None) -> dict:
        rs = rs or f"{app}-7d9f8c6b4"
        name = f"{rs}-{next(self._names)}"
        pod = _pod(name, self.app_ns, node, self._app_spec(app), "ReplicaSet", rs, {"app": app},
                   next(self._ips))  # fmt: skip
        self.pods[name] = pod
        if self.s.silent_app == app:
            return pod
        if self.s.old_banner and app == "catalog":
            self.write(pod, None, raw=f"=== {app} 0.1.0 starting (plain text banner) ===")
        self.write(pod, {"level": "INFO", "msg": "service starting", "port": 8080})
        if self.s.old_banner and app == "catalog":
            for i in range(80):
                self.write(pod, {"level": "INFO", "msg": "stock reserved", "book_id": 1, "qty": i})
        if self.s.plain_text_line and app == "catalog":
            self.write(pod, None, raw="Starting catalog on 0.0.0.0:8080 (press CTRL+C to quit)")
        return pod

    def _deployment(self, app: str, replicas: int) -> dict:
        return {
            "metadata": _meta(app, self.app_ns, labels={"app": app}, generation=1),
            "spec": {"replicas": replicas, "template": {"spec": self._app_spec(app)}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "updatedReplicas": replicas, "readyReplicas": replicas,
                       "availableReplicas": replicas,
                       "conditions": [{"type": "Available", "status": "True"},
                                      {"type": "Progressing", "status": "True",
                                       "reason": "NewReplicaSetAvailable"}]},
        }  # fmt: skip

    def _replicaset(self, app: str, name: str, revision: int, replicas: int) -> dict:
        return {
            "metadata": _meta(
                name, self.app_ns, annotations={"deployment.kubernetes.io/revision": str(revision)},
                ownerReferences=[{"kind": "Deployment", "name": app}],
            ),
            "status": {"replicas": replicas, "readyReplicas": replicas},
        }  # fmt: skip

    def _build_bookstore(self):
        for app in ("catalog", "orders"):
            if self.s.deleted_deployment == app:
                continue
            replicas = 0 if self.s.scaled_to_zero == app else 2
            d = self._deployment(app, replicas)
            self.deployments.append(d)
            if self.s.failed_create and app == "catalog":
                # A first rollout whose every pod Pod Security rejects: nothing runs at all.
                d["status"].update(readyReplicas=0, availableReplicas=0, updatedReplicas=0)
                self._rejected_revision(d, app, "catalog-6d8f7c9b5", revision=2)
                self.replicasets.append(self._replicaset(app, f"{app}-7d9f8c6b4", 1, 0))
                continue
            self.replicasets.append(self._replicaset(app, f"{app}-7d9f8c6b4", 1, replicas))
            for _ in range(replicas):
                self._new_app_pod(app)
            if self.s.stuck_rollout and app == "catalog":
                # Revision 2 violates `restricted`: its ReplicaSet creates nothing, and the
                # Deployment controller keeps revision 1's pods serving.
                d["metadata"]["generation"] = d["status"]["observedGeneration"] = 2
                d["status"].update(updatedReplicas=0, readyReplicas=replicas)
                d["status"]["conditions"][1].update(reason="ReplicaSetUpdated")
                self._rejected_revision(d, app, "catalog-6d8f7c9b5", revision=2)

    def _rejected_revision(self, deployment: dict, app: str, name: str, revision: int):
        rs = self._replicaset(app, name, revision, 0)
        failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                   "message": FAILED_CREATE}  # fmt: skip
        rs["status"]["conditions"] = [failure]
        self.replicasets.append(rs)
        deployment["status"]["conditions"].append(dict(failure))
        self.events.append({
            "reason": "FailedCreate", "type": "Warning",
            "message": f"Error creating: {FAILED_CREATE}",
            "involvedObject": {"kind": "ReplicaSet", "name": name},
            "lastTimestamp": "2026-11-22T00:00:00Z",
        })  # fmt: skip

    def _build_agent(self):
        s = self.s
        volumes, mounts = [], []
        if s.varlog_mount:
            volumes.append({"name": "varlog", "hostPath": {"path": "/var/log"}})
            mount = {"name": "varlog", "mountPath": "/var/log"}
            if s.varlog_read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        spec = {"containers": [{"name": "alloy", "image": s.agent_image, "volumeMounts": mounts}],
                "volumes": volumes}  # fmt: skip
        if s.agent_tolerates_control_plane:
            spec["tolerations"] = [{**CONTROL_PLANE_TAINT, "operator": "Exists"}]
        if s.agent_node_selector:
            spec["nodeSelector"] = dict(s.agent_node_selector)
        labels = {"app.kubernetes.io/name": "alloy"} if s.agent_chart_label else {}
        workload = {
            "metadata": _meta(s.agent_name, s.agent_namespace, labels=labels),
            "spec": {"template": {"metadata": {"labels": dict(labels)}, "spec": spec}},
        }
        if s.agent_kind != "DaemonSet":
            workload["spec"]["replicas"] = 1
            workload["status"] = {"replicas": 1, "readyReplicas": 1}
            self.deployments.append(workload)
            name = f"{s.agent_name}-5f6d7c8b9-q2w3e"
            self.pods[name] = _pod(name, s.agent_namespace, WORKER, spec, "ReplicaSet", "x", {},
                                   next(self._ips))  # fmt: skip
            return
        nodes = [n["metadata"]["name"] for n in self.nodes if self._daemon_fits(n, spec)]
        workload["status"] = {"desiredNumberScheduled": len(nodes), "numberReady": len(nodes),
                              "currentNumberScheduled": len(nodes)}  # fmt: skip
        self.daemonsets.append(workload)
        for i, node in enumerate(nodes):
            name = f"{s.agent_name}-{'abcdefgh'[i]}x{i}q"
            self.pods[name] = _pod(name, s.agent_namespace, node, spec, "DaemonSet",
                                   s.agent_name, dict(labels), next(self._ips))  # fmt: skip

    def _daemon_fits(self, node: dict, spec: dict) -> bool:
        selector = spec.get("nodeSelector") or {}
        if selector and selector.get("kubernetes.io/hostname") != node["metadata"]["name"]:
            return False
        taints = node["spec"].get("taints") or []
        tolerated = {t["key"] for t in spec.get("tolerations") or []}
        return all(t["key"] in tolerated for t in taints)

    # -- the bookstore's stdout, and the agent that ships it ---------------------------------
    def write(self, pod: dict, fields: dict | None, raw: str | None = None) -> None:
        app = pod["metadata"]["labels"]["app"]
        if self.s.silent_app == app:
            return
        ts = self.node_ns()
        if raw is None:
            fields = {"time": rfc3339(ts), "service": app, **fields}
            if fields.get("trace_id") and self._sampled_out(fields):
                return
            raw = json.dumps(fields)
        stream = "stderr" if self.s.stderr_app == app else "stdout"
        name = pod["metadata"]["name"]
        self.cri.setdefault((name, app), []).append((ts, stream, raw))
        if not self._agent_ships():
            return
        labels = {"namespace": self.app_ns, "pod": name, "container": app, "app": app,
                  "stream": stream}  # fmt: skip
        metadata = {}
        trace = (fields or {}).get("trace_id")
        if trace and self.s.trace_id_label:
            labels["trace_id"] = trace
        if trace and self.s.trace_id_metadata:
            metadata["trace_id"] = trace
        if self.s.extra_label == "order" and (fields or {}).get("order_id"):
            labels["order"] = fields["order_id"]
        if self.s.extra_label == "client" and fields and fields.get("request_id"):
            labels["client"] = f"172.18.0.{len(self.cri[(name, app)]) % 250 + 1}"
        tenant = self.app_ns if self.s.loki_auth else SINGLE_TENANT
        self.loki.push(
            labels, raw, ts, metadata=metadata, delay=self._batch_delay(name), tenant=tenant
        )

    def _sampled_out(self, fields: dict) -> bool:
        """The real LOG_SAMPLE_RATE rule: only successful request lines, by trace id."""
        keep = sampling.by_trace_id(self.s.sample_rate)
        level = fields.get("level", "INFO")
        return sampling.is_sampleable(level, fields) and not keep(fields.get("trace_id"))

    def _batch_delay(self, pod_name: str) -> float:
        """Each pod's lines travel in their own batches: pods alternate between a quick and a
        slow arrival, so one request's lines from two pods are queryable at different times."""
        slow = sum(map(ord, pod_name)) % 2
        return self.loki.ingest_delay + (4.0 if slow else 0.0)

    def _agent_ships(self) -> bool:
        return (
            self.s.ships
            and self.s.agent_kind == "DaemonSet"
            and self.s.varlog_mount
            and self.s.agent_namespace == NS_AGENT
        )

    def _pick(self, app: str) -> dict | None:
        pods = [p for p in self.pods.values() if p["metadata"]["labels"].get("app") == app]
        return pods[len(self.calls) % len(pods)] if pods else None

    def bookstore(self, app: str, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{app} {request.method} {request.url.path}")
        pod = self._pick(app)
        if pod is None:
            return proxy_status(503, f'no endpoints available for service "{app}"')
        return FakeService(self, app, pod).handle(request)

    def grafana(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") is None and not self.s.grafana_anonymous:
            return httpx.Response(401, json={"message": "Unauthorized"})
        sources = [{"name": "Loki", "type": "loki", "isDefault": self.s.grafana_default_loki,
                    "url": self.s.grafana_url}]  # fmt: skip
        return httpx.Response(200, json=sources)

    # -- the checks.kube.Kube interface --------------------------------------------------
    def server_version(self) -> str:
        if self.s.unreachable:
            raise KubeUnreachable(f"no API server answered at {self.host} (connection refused)")
        return "v1.36.1"

    def get_namespace(self, name):
        return self.namespaces.get(name)

    def list_nodes(self):
        return list(self.nodes)

    def list_daemonsets(self, namespace=None):
        if self.s.daemonsets_forbidden:
            raise error_for_status(
                403,
                f"LIST daemonsets -n {namespace}: HTTP 403: daemonsets.apps is forbidden: User "
                f'"learner" cannot list resource "daemonsets" in API group "apps"',
            )
        return [d for d in self.daemonsets if namespace in (None, d["metadata"]["namespace"])]

    def list_deployments(self, namespace):
        return [d for d in self.deployments if d["metadata"]["namespace"] == namespace]

    def list_replicasets(self, namespace):
        return [r for r in self.replicasets if r["metadata"]["namespace"] == namespace]

    def list_events(self, namespace):
        return list(self.events) if namespace == self.app_ns else []

    def list_pods(self, namespace, label_selector=None):
        return [p for p in self.pods.values() if p["metadata"]["namespace"] == namespace]

    def get_pod(self, namespace, name):
        return self.pods.get(name)

    def get_secret_value(self, namespace, name, key):
        return None

    def pod_logs(self, namespace, name, container, *, tail_lines=None):
        """`kubectl logs`: both streams merged, CRI framing removed."""
        if name not in self.pods:
            raise NotFound(f'GET logs {namespace}/{name} -c {container}: not found '
                           f'(pods "{name}" not found)')  # fmt: skip
        lines = [content for _, _, content in self.cri.get((name, container), [])]
        return "".join(line + "\n" for line in lines[-(tail_lines or len(lines) or 1) :])

    def container_log_file(self, pod: dict, container: str) -> str:
        name = pod["metadata"]["name"]
        if name not in self.pods:
            raise NotFound(f"GET node log of {name}: not found")
        return "".join(
            f"{rfc3339(ts)} {stream} F {content}\n"
            for ts, stream, content in self.cri.get((name, container), [])
        )

    def delete_pod(self, namespace, name):
        pod = self.pods.pop(name, None)
        if pod is None:
            raise NotFound(f"DELETE pod {namespace}/{name}: not found")
        self.deleted.add(name)
        if self.s.loses_lines_of_deleted_pods:
            now = self.clock.monotonic()
            self.loki.records = [
                r for r in self.loki.records if r.labels.get("pod") != name or r.arrives <= now
            ]
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
            handler = self.loki.handle
        elif (namespace, service) == (NS_GRAFANA, "grafana"):
            handler = self.grafana
        elif namespace == self.app_ns and service in ("catalog", "orders"):
            handler = lambda r, s=service: self.bookstore(s, r)  # noqa: E731
        else:
            handler = lambda r: proxy_status(404, f'services "{service}" not found')  # noqa: E731
        return _ProxyClient(self, base_url=base, handler=handler)


class FakeService:
    """One request to a bookstore pod, answered and logged the way bookstore.web and the
    services do (request line last, WARN for 4xx, ERROR for 5xx)."""

    def __init__(self, cluster: FakeCluster, app: str, pod: dict):
        self.cluster, self.app, self.pod, self.s = cluster, app, pod, cluster.s

    def log(self, fields: dict) -> None:
        self.cluster.write(self.pod, {**self.base, **fields})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/readyz", "/healthz"):
            return httpx.Response(200, json={"status": "ok"})  # probes log at DEBUG: nothing
        rid = request.headers.get("x-request-id") or secrets.token_hex(8)
        tp = request.headers.get("traceparent", "")
        trace = tp.split("-")[1] if tp.count("-") == 3 else secrets.token_hex(16)
        self.base = {"trace_id": trace, "span_id": secrets.token_hex(8), "trace_flags": "01",
                     "request_id": rid}  # fmt: skip
        self.request = request
        if self.s.logs_headers:
            self.log({"level": "INFO", "msg": "headers", "headers": dict(request.headers)})
        status, body, route = self.route(request, trace, rid)
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        self.log({"level": level, "msg": "request completed", "method": request.method,
                  "route": route, "status": status, "duration_ms": 1.5})  # fmt: skip
        if self.s.logs_query_string:
            self.log({"level": "INFO", "msg": "access", "url": str(request.url)})
        return httpx.Response(status, json=body)

    def route(self, request: httpx.Request, trace: str, rid: str) -> tuple[int, dict, str]:
        path, method = request.url.path, request.method
        fault = request.headers.get("x-inject-fault") == "database"
        if self.app == "catalog" and path == "/books" and method == "GET":
            books = [{"id": i, "title": f"Book {i}", "stock": n}
                     for i, n in self.cluster.stock.items()]  # fmt: skip
            return 200, {"books": books, "count": len(books)}, "/books"
        m = re.fullmatch(r"/books/([^/]+)(/reserve)?", path)
        if self.app == "catalog" and m:
            route = "/books/{book_id}" + ("/reserve" if m.group(2) else "")
            raw = m.group(1)
            book = int(raw) if raw.isdigit() else 0
            if book not in self.cluster.stock:
                self.log({"level": "WARN", "msg": "unknown book",
                          "reason": f"no book with id {raw!r}"})  # fmt: skip
                return 404, {"error": "not_found"}, route
            if fault:
                self.log({"level": "ERROR", "msg": "database connection failed",
                          "error_type": "DatabaseConnectionError", "error": "refused",
                          "stack": "Traceback ..."})  # fmt: skip
                return 503, {"error": "unavailable"}, route
            if m.group(2):
                self.cluster.stock[book] -= 1
                self.log({"level": "INFO", "msg": "stock reserved", "book_id": book, "qty": 1,
                          "remaining": self.cluster.stock[book]})  # fmt: skip
            return 200, {"book_id": book}, route
        if self.app == "orders" and path == "/orders" and method == "POST":
            return self.place_order(request, trace, rid, fault)
        if self.app == "orders" and path.startswith("/orders/") and method == "GET":
            order_id = path.removeprefix("/orders/")
            fields = {"order_id": order_id} if ORDER_ID.fullmatch(order_id) else {}
            self.log({"level": "WARN", "msg": "unknown order", **fields})
            return 404, {"error": "not_found"}, "/orders/{order_id}"
        return 404, {"error": "not_found"}, "unmatched"

    def place_order(self, request, trace, rid, fault) -> tuple[int, dict, str]:
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = request.content.decode(errors="replace")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("qty"), int)
            or not isinstance(body.get("book_id"), int)
            or not 1 <= body["qty"] <= 100
        ):
            shown = redaction.redact_value(body) if self.s.redacts else body
            self.log({"level": "WARN", "msg": "request rejected", "reason": "qty: not an integer",
                      "body": shown})  # fmt: skip
            return 422, {"error": "invalid_input"}, "/orders"
        if self.cluster.unlucky_left > 0:  # bookstore.faults: FAULT_RATE fails some requests
            self.cluster.unlucky_left -= 1
            fault = True
        headers = {"x-request-id": rid}
        if self.s.propagates_trace:
            headers["traceparent"] = f"00-{trace}-{secrets.token_hex(8)}-01"
        if fault:
            headers["x-inject-fault"] = "database"
        reserve = httpx.Request(
            "POST", f"http://catalog/books/{body['book_id']}/reserve", headers=headers
        )
        status = self.cluster.bookstore("catalog", reserve).status_code
        if status >= 500:
            self.log({"level": "ERROR", "msg": "catalog unavailable", "status_upstream": status,
                      "error_type": "DatabaseConnectionError"})  # fmt: skip
            return 503, {"error": "catalog_unavailable"}, "/orders"
        if status >= 400:
            return status, {"error": "not_found"}, "/orders"
        order_id = "ord-" + secrets.token_hex(8)
        self.log({"level": "INFO", "msg": "order placed", "order_id": order_id,
                  "book_id": body["book_id"], "qty": body["qty"]})  # fmt: skip
        return 201, {"order_id": order_id}, "/orders"


class _ProxyClient(httpx.Client):
    """An httpx client whose requests reach the handler with the path below `/proxy`, as the
    API server forwards them: `Authorization` removed (the API server consumed it), and the
    first `proxy_hiccups` requests answered by the proxy's own 503 Status."""

    def __init__(self, cluster: FakeCluster, *, base_url: str, handler):
        prefix = httpx.URL(base_url).path.rstrip("/")
        service = prefix.rsplit("/", 2)[-2]

        def forward(request: httpx.Request) -> httpx.Response:
            cluster.proxy_requests.append(request)
            if cluster.hiccups_left > 0:
                cluster.hiccups_left -= 1
                return proxy_status(
                    503,
                    f"error trying to reach service: dial tcp 10.244.1.9:8080: connect: "
                    f"connection refused ({service})",
                )
            path = request.url.path.removeprefix(prefix) or "/"
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            inner = httpx.Request(
                request.method, request.url.copy_with(path=path),
                headers=headers, content=request.content,
            )  # fmt: skip
            return handler(inner)

        super().__init__(base_url=base_url, transport=httpx.MockTransport(forward))


def fake_lab(scenario: Scenario | None = None, **switches) -> tuple[Lab, FakeCluster]:
    """A Lab over a FakeCluster (names as versions.toml sets them), and the cluster itself."""
    cluster = FakeCluster(scenario or Scenario(**switches))
    return Lab(cluster, clock=cluster.clock, names=dict(LAB_NAMES)), cluster
