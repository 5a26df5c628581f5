"""The real checks.kube.Kube against a small HTTP API server on loopback.

It proves the client's edges: the kubeconfig is honoured (server, token), objects come back as
API JSON, 404/403 Status bodies become NotFound / a rejected dry run with the server's message,
the dry run really asks for dryRun=All, and the service-proxy client reaches the proxy path.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from checks.kube import Kube, KubeError, NotFound, proxy_path

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


def test_bad_kubeconfigs_are_clear_errors(tmp_path):
    with pytest.raises(KubeError, match="does not exist.*nox -s lab-2"):
        Kube(tmp_path / "absent")
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(KubeError, match="cannot load kubeconfig"):
        Kube(broken)
