"""The real checks.kube.Kube against a small HTTP API server on loopback.

It proves the client's edges: the kubeconfig is honoured (server, token), objects come back as
API JSON, 404/403 Status bodies become NotFound / a rejected dry run with the server's message,
the dry run really asks for dryRun=All, and the service-proxy client reaches the proxy path.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from checks.kube import (
    Conflict,
    Forbidden,
    Kube,
    KubeError,
    NotFound,
    ServerError,
    Unauthorized,
    proxy_path,
)

REJECTED = (
    'pods "probe" is forbidden: violates PodSecurity "restricted:latest": hostPath volumes '
    '(volume "varlog")'
)


def status(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "code": code}  # fmt: skip


class FakeApiServer(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict, str | None]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def reply(self, code: int, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        FakeApiServer.seen.append(
            (self.command, url.path, query, self.headers.get("Authorization"))
        )
        path = url.path
        if path in ("/version", "/version/"):  # the python client asks for /version/
            return self.reply(200, {"gitVersion": "v1.34.0"})
        if path == "/api/v1/namespaces/bookstore":
            labels = {"pod-security.kubernetes.io/enforce": "restricted"}
            return self.reply(200, {"metadata": {"name": "bookstore", "labels": labels}})
        if path == "/api/v1/namespaces/nope":
            return self.reply(404, status(404, 'namespaces "nope" not found'))
        if path == "/apis/apps/v1/namespaces/logging/daemonsets":
            return self.reply(200, {"kind": "DaemonSetList", "items": [
                {"metadata": {"name": "alloy"}, "spec": {"template": {"spec": {"volumes": [
                    {"name": "varlog", "hostPath": {"path": "/var/log"}}]}}}}]})  # fmt: skip
        if path == "/api/v1/namespaces/bookstore/pods/gone/log":
            return self.reply(404, status(404, 'pods "gone" not found'))
        if path == "/api/v1/namespaces/bookstore/pods/catalog-1/log":
            return self.reply(200, b'{"msg": "a"}\n{"msg": "b"}\n', "text/plain")
        if path == "/api/v1/namespaces/bookstore/pods" and self.command == "POST":
            assert json.loads(body)["metadata"]["name"] == "probe"
            return self.reply(403, status(403, REJECTED))
        if path == "/api/v1/nodes/worker/proxy/logs/pods/bookstore_catalog-1_u1/catalog/2.log":
            # The kubelet serves the node's /var/log (pkg/kubelet/server/server.go, /logs/).
            cri = b"2026-01-01T00:00:00.1Z stdout F {}\n2026-01-01T00:00:00.2Z stderr F oops\n"
            return self.reply(200, cri, "text/plain")
        if path.startswith("/api/v1/nodes/locked/proxy/"):
            return self.reply(403, status(403, 'nodes "locked" is forbidden: nodes/proxy'))
        if path == "/apis/apps/v1/namespaces/bookstore/deployments":
            return self.reply(401, status(401, "Unauthorized"))
        if path == "/apis/apps/v1/namespaces/busy/deployments":
            return self.reply(409, status(409, "the object has been modified"))
        if path == "/apis/apps/v1/namespaces/flaky/deployments":
            return self.reply(503, status(503, "etcdserver: leader changed"))
        if path.startswith(proxy_path("logging", "loki", 3100)):
            inner = path.removeprefix(proxy_path("logging", "loki", 3100).rstrip("/"))
            return self.reply(200, {"inner": inner, "query": query}, "application/json")
        return self.reply(404, status(404, f"no route {path}"))

    do_GET = do_POST = do_DELETE = handle_any


@pytest.fixture
def kube(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeApiServer.seen = []
    host = f"http://127.0.0.1:{server.server_address[1]}"
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": host}}],
        "users": [{"name": "lab", "user": {"token": "s3cret-token"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield Kube(path)
    server.shutdown()


def test_reads_return_api_json_and_send_the_kubeconfig_token(kube):
    assert kube.server_version() == "v1.34.0"
    ns = kube.get_namespace("bookstore")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert kube.get_namespace("nope") is None
    [ds] = kube.list_daemonsets("logging")
    assert ds["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] == "/var/log"
    assert all(auth == "Bearer s3cret-token" for *_, auth in FakeApiServer.seen)


def test_pod_logs_and_not_found(kube):
    assert kube.pod_logs("bookstore", "catalog-1", "catalog", tail_lines=2).splitlines() == [
        '{"msg": "a"}', '{"msg": "b"}',
    ]  # fmt: skip
    _, path, query, _ = FakeApiServer.seen[-1]
    assert query == {"container": ["catalog"], "tailLines": ["2"]}
    with pytest.raises(NotFound, match='pods "gone" not found'):
        kube.pod_logs("bookstore", "gone", "catalog")


def test_dry_run_sends_dry_run_all_and_returns_the_rejection(kube):
    accepted, message = kube.dry_run_create_pod(
        "bookstore", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"}}
    )
    method, path, query, _ = FakeApiServer.seen[-1]
    assert (method, path, query["dryRun"]) == ("POST", "/api/v1/namespaces/bookstore/pods", ["All"])
    assert not accepted and "violates PodSecurity" in message and "hostPath volumes" in message


def test_service_client_reaches_the_proxy_path_with_the_token(kube):
    client = kube.service_client("logging", "loki", 3100)
    response = client.get("/loki/api/v1/labels", params={"start": "1"})
    assert response.json() == {"inner": "/loki/api/v1/labels", "query": {"start": ["1"]}}
    assert FakeApiServer.seen[-1][3] == "Bearer s3cret-token"


def test_the_container_log_file_comes_from_the_kubelet_through_the_node_proxy(kube):
    pod = {
        "metadata": {"name": "catalog-1", "namespace": "bookstore", "uid": "u1"},
        "spec": {"nodeName": "worker"},
        "status": {"containerStatuses": [{"name": "catalog", "restartCount": 2}]},
    }
    text = kube.container_log_file(pod, "catalog")
    assert text.splitlines()[1] == "2026-01-01T00:00:00.2Z stderr F oops"
    assert FakeApiServer.seen[-1][3] == "Bearer s3cret-token"
    locked = {**pod, "spec": {"nodeName": "locked"}}
    with pytest.raises(Forbidden, match="nodes/proxy"):
        kube.container_log_file(locked, "catalog")


def test_each_http_status_is_its_own_error(kube):
    with pytest.raises(Unauthorized, match="HTTP 401: Unauthorized"):
        kube.list_deployments("bookstore")
    with pytest.raises(Conflict, match="HTTP 409"):
        kube.list_deployments("busy")
    with pytest.raises(ServerError, match="leader changed"):
        kube.list_deployments("flaky")
    assert issubclass(Forbidden, KubeError) and issubclass(NotFound, KubeError)


def test_bad_kubeconfigs_are_clear_errors(tmp_path):
    with pytest.raises(KubeError, match="does not exist.*nox -s lab-2"):
        Kube(tmp_path / "absent")
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(KubeError, match="cannot load kubeconfig"):
        Kube(broken)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make certs")
def test_kind_style_client_certificates_work_for_the_api_and_the_service_proxy(tmp_path):
    """kind's kubeconfig authenticates with embedded CA, client cert and key: both the kubernetes
    client and the httpx service-proxy client must present them over verified TLS."""
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lab-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subj in (("server", "/CN=127.0.0.1"), ("client", "/O=kubeadm:cluster-admins/CN=me")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)  # fmt: skip
        extra = ["-extfile", "san.cnf"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", *extra, cwd=d)  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(d / "server.crt", d / "server.key")
    tls.load_verify_locations(d / "ca.crt")
    tls.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no answer
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        b64 = {n: base64.b64encode((d / n).read_bytes()).decode() for n in
               ("ca.crt", "client.crt", "client.key")}  # fmt: skip
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "kind-lab2-logging",
            "clusters": [{"name": "kind", "cluster": {
                "server": f"https://127.0.0.1:{server.server_address[1]}",
                "certificate-authority-data": b64["ca.crt"]}}],
            "users": [{"name": "kind", "user": {
                "client-certificate-data": b64["client.crt"],
                "client-key-data": b64["client.key"]}}],
            "contexts": [{"name": "kind-lab2-logging",
                          "context": {"cluster": "kind", "user": "kind"}}],
        }  # fmt: skip
        (d / "kubeconfig").write_text(yaml.safe_dump(config))
        kube = Kube(d / "kubeconfig")
        assert kube.server_version() == "v1.34.0"
        proxied = kube.service_client("logging", "loki", 3100).get("/ready")
        assert proxied.json()["inner"] == "/ready"
    finally:
        server.shutdown()
