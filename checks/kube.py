"""A small Kubernetes client: only the calls the checkers make, returning the API's own JSON.

Objects come back as plain dicts in the API server's JSON shape (`metadata.name`,
`spec.template.spec.volumes`, ...), exactly what `kubectl get -o json` shows, so the checkers
read them the way a learner reads YAML, and the fake in tests/ serves the same shape.
HTTP to Services (Loki, the bookstore, Grafana) goes through the API server's service proxy
with an httpx client built from the same kubeconfig: it needs no port-forward and keeps working
when the lab deletes a pod.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx

from checks.kubeconfig import load_client_config
from labconfig.settings import DEFAULT_KUBECONFIG, KUBECONFIG_ENV

DEFAULT_TIMEOUT = (5, 30)  # connect, read (seconds): an unreachable cluster fails fast


class KubeError(RuntimeError):
    """The API server refused or failed a call; the message names the call and the reason."""


class KubeUnreachable(KubeError):
    """No API server answered at the kubeconfig's address."""


class Unauthorized(KubeError):
    """HTTP 401: the API server did not accept the kubeconfig's credentials."""


class Forbidden(KubeError):
    """HTTP 403: authenticated, but RBAC (or admission) refused this call."""


class NotFound(KubeError):
    """The object does not exist (HTTP 404)."""


class Conflict(KubeError):
    """HTTP 409: the object changed or already exists; the call may be retried."""


class ServerError(KubeError):
    """HTTP 5xx: the API server (or what it proxies to) failed; usually transient."""


# The KubeError subclass for each HTTP status (the rest stay KubeError).
_BY_STATUS = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}


def error_for_status(status: int, message: str) -> KubeError:
    """The KubeError subclass an HTTP status stands for, carrying `message`."""
    if status >= 500:
        return ServerError(message)
    return _BY_STATUS.get(status, KubeError)(message)


def proxy_path(namespace: str, service: str, port: int | str) -> str:
    """The service-proxy path of a Service port (a number or the port's name both work)."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/"


class Kube:
    """Kubernetes through one kubeconfig. Construction reads the file but contacts nothing."""

    def __init__(self, kubeconfig: str | Path, *, context: str | None = None):
        from kubernetes import client

        self.kubeconfig = Path(kubeconfig)
        if not self.kubeconfig.is_file():
            raise KubeError(
                f"kubeconfig {self.kubeconfig} does not exist. The lab writes its own at "
                f"{DEFAULT_KUBECONFIG} when it creates the cluster (`nox -s lab-2`); pass another "
                f"with --kubeconfig PATH or {KUBECONFIG_ENV}."
            )
        cfg = client.Configuration()
        try:
            # A vetted copy: the client never sees an exec or auth-provider plugin to run.
            load_client_config(self.kubeconfig, cfg, context=context)
        except Exception as e:  # the loader raises ConfigException, ValueError, YAML errors...
            raise KubeError(f"cannot load kubeconfig {self.kubeconfig}: {e}") from e
        cfg.retries = 1  # an unreachable cluster is reported quickly, not after 3 retries
        self.config = cfg
        self.host = cfg.host
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self._ssl = _ssl_context(cfg)

    # -- plumbing -----------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        kwargs.setdefault("_request_timeout", DEFAULT_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            message = _status_message(e.body) or e.reason
            if e.status == 404:
                raise NotFound(f"{what}: not found ({message})") from None
            raise error_for_status(e.status, f"{what}: HTTP {e.status}: {message}") from None
        except Urllib3Error as e:
            # MaxRetryError wraps the real cause (refused, timed out, bad certificate...).
            reason = str(getattr(e, "reason", None) or e).split("): ", 1)[-1]
            raise KubeUnreachable(
                f"no API server answered at {self.host}: {reason}. Is the cluster running? "
                f"Try `kubectl --kubeconfig {self.kubeconfig} get nodes`."
            ) from None

    def _json(self, what: str, fn, *args, **kwargs) -> dict:
        response = self._call(what, fn, *args, _preload_content=False, **kwargs)
        return json.loads(response.data)

    def _items(self, what: str, fn, *args, **kwargs) -> list[dict]:
        return self._json(what, fn, *args, **kwargs).get("items") or []

    # -- reads --------------------------------------------------------------------------
    def server_version(self) -> str:
        """The API server's gitVersion: the cheapest call that proves the cluster answers."""
        from kubernetes import client

        data = self._json("GET /version", client.VersionApi(self.api).get_code)
        return data.get("gitVersion", "?")

    def get_namespace(self, name: str) -> dict | None:
        try:
            return self._json(f"GET namespace {name}", self.core.read_namespace, name)
        except NotFound:
            return None

    def list_daemonsets(self, namespace: str | None = None) -> list[dict]:
        """DaemonSets in one namespace, or in every namespace when `namespace` is None."""
        if namespace is None:
            return self._items(
                "LIST daemonsets (all namespaces)", self.apps.list_daemon_set_for_all_namespaces
            )
        return self._items(
            f"LIST daemonsets -n {namespace}", self.apps.list_namespaced_daemon_set, namespace
        )

    def list_nodes(self) -> list[dict]:
        return self._items("LIST nodes", self.core.list_node)

    def list_deployments(self, namespace: str) -> list[dict]:
        return self._items(
            f"LIST deployments -n {namespace}", self.apps.list_namespaced_deployment, namespace
        )

    def list_replicasets(self, namespace: str) -> list[dict]:
        return self._items(
            f"LIST replicasets -n {namespace}", self.apps.list_namespaced_replica_set, namespace
        )

    def list_events(self, namespace: str) -> list[dict]:
        return self._items(
            f"LIST events -n {namespace}", self.core.list_namespaced_event, namespace
        )

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        return self._items(
            f"LIST pods -n {namespace}", self.core.list_namespaced_pod, namespace, **kwargs
        )

    def get_pod(self, namespace: str, name: str) -> dict | None:
        try:
            return self._json(
                f"GET pod {namespace}/{name}", self.core.read_namespaced_pod, name, namespace
            )
        except NotFound:
            return None

    def get_secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One decoded value of a Secret (e.g. Grafana's generated admin password)."""
        import base64

        try:
            secret = self._json(
                f"GET secret {namespace}/{name}", self.core.read_namespaced_secret, name, namespace
            )
        except NotFound:
            return None
        raw = (secret.get("data") or {}).get(key)
        return base64.b64decode(raw).decode() if raw else None

    def pod_logs(
        self, namespace: str, name: str, container: str, *, tail_lines: int | None = None
    ) -> str:
        """What `kubectl logs` shows; NotFound once the pod is gone."""
        kwargs = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        response = self._call(
            f"GET logs {namespace}/{name} -c {container}",
            self.core.read_namespaced_pod_log, name, namespace,
            _preload_content=False, **kwargs,
        )  # fmt: skip
        return response.data.decode("utf-8", errors="replace")

    def container_log_file(self, pod: dict, container: str) -> str:
        """The container's current CRI log file, as the node's kubelet serves it.

        Unlike `kubectl logs` (which merges them), each CRI line keeps its stream (`stdout` or
        `stderr`). The kubelet serves the node's /var/log under /logs/ (its system log handler,
        kubernetes pkg/kubelet/server/server.go), reached through the API server's node proxy;
        the file is /var/log/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log
        (kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go, BuildContainerLogsDirectory).
        """
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        restarts = next(
            (
                c.get("restartCount", 0)
                for c in status.get("containerStatuses") or []
                if c.get("name") == container
            ),
            0,
        )
        node = pod.get("spec", {}).get("nodeName", "")
        path = (
            f"logs/pods/{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}/"
            f"{container}/{restarts}.log"
        )
        what = f"GET node {node} /{path} (kubelet, through the node proxy)"
        client = httpx.Client(
            base_url=f"{self.host.rstrip('/')}/api/v1/nodes/{node}/proxy/",
            verify=self._ssl, headers=self._auth_headers(), timeout=DEFAULT_TIMEOUT[1],
        )  # fmt: skip
        try:
            with client:
                response = client.get(path)
        except httpx.HTTPError as e:
            raise KubeUnreachable(f"{what}: {type(e).__name__}: {e}") from None
        if response.status_code != 200:
            message = _status_message(response.text) or response.reason_phrase
            raise error_for_status(
                response.status_code, f"{what}: HTTP {response.status_code}: {message}"
            )
        return response.text

    def kubelet_config(self, node: str) -> dict:
        """The kubelet's running configuration, as
        `kubectl get --raw /api/v1/nodes/<node>/proxy/configz` shows it (its `kubeletconfig`)."""
        data = self._json(
            f"GET node {node} proxy/configz",
            self.core.connect_get_node_proxy_with_path, node, "configz",
        )  # fmt: skip
        return data.get("kubeletconfig") or {}

    # -- writes -------------------------------------------------------------------------
    def delete_pod(self, namespace: str, name: str) -> None:
        self._call(
            f"DELETE pod {namespace}/{name}", self.core.delete_namespaced_pod, name, namespace
        )

    def dry_run_create_pod(self, namespace: str, pod: dict) -> tuple[bool, str]:
        """Server-side dry run of creating `pod`: (accepted, the API server's message).

        Admission (Pod Security included) runs as for a real create, but nothing is stored.
        """
        name = pod.get("metadata", {}).get("name", "?")
        try:
            self._call(
                f"CREATE pod {namespace}/{name} (dry run)",
                self.core.create_namespaced_pod, namespace, pod,
                dry_run="All", _preload_content=False,
            )  # fmt: skip
        except KubeUnreachable:
            raise
        except KubeError as e:
            return False, str(e)
        return True, "accepted"

    # -- service proxy ------------------------------------------------------------------
    def service_client(
        self, namespace: str, service: str, port: int | str, *, timeout: float = 30.0
    ) -> httpx.Client:
        """An httpx client whose base URL is the Service's proxy path on the API server."""
        return self.http_client(proxy_path(namespace, service, port), timeout=timeout)

    def http_client(self, path: str = "/", *, timeout: float = 30.0) -> httpx.Client:
        """An httpx client on the API server (base URL: `path`), with the kubeconfig's TLS and
        credentials, for the few calls the generated client makes awkward (server-side apply,
        TokenRequest, service proxy)."""
        return httpx.Client(
            base_url=self.host.rstrip("/") + path,
            verify=self._ssl,
            headers=self._auth_headers(),
            timeout=timeout,
        )

    def _auth_headers(self) -> dict[str, str]:
        # kubernetes>=29 stores the kubeconfig token as api_key["BearerToken"] ("authorization"
        # in older releases).
        token = self.config.get_api_key_with_prefix("BearerToken", alias="authorization")
        return {"Authorization": token} if token else {}


def _ssl_context(cfg) -> ssl.SSLContext:
    """TLS for httpx from the kubeconfig: the cluster CA, client cert/key, or no verification."""
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if not cfg.verify_ssl:  # insecure-skip-tls-verify: true in the kubeconfig
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    return ctx


def _status_message(body) -> str:
    """The `message` of a Kubernetes Status body, or the raw body."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return str(body)[:500]
    return data.get("message") or str(body)[:500]
