"""checks.kube.Kube.kubelet_config against a loopback API server: the node proxy's configz.

The shape is the kubelet's `/configz` as the API server's node proxy returns it
(`kubectl get --raw /api/v1/nodes/<node>/proxy/configz`: `{"kubeletconfig": {...}}`, kubernetes
pkg/kubelet/server/server.go); a user without `nodes/proxy` gets a 403 Status.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from checks.kube import Kube, KubeError

CONFIGZ = {"kubeletconfig": {"containerLogMaxSize": "64Ki", "containerLogMaxFiles": 3,
                             "containerLogMonitorInterval": "10s"}}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    paths: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's naming)
        Handler.paths.append(self.path)
        if self.path == "/api/v1/nodes/lab2-logging-worker/proxy/configz":
            code, body = 200, CONFIGZ
        else:
            message = 'nodes "x" is forbidden: User "learner" cannot get resource "nodes/proxy"'
            code, body = 403, {"kind": "Status", "status": "Failure", "message": message,
                               "code": 403}  # fmt: skip
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def kube(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    yield Kube(path)
    server.shutdown()


def test_kubelet_config_reads_the_node_proxy_configz(kube):
    assert kube.kubelet_config("lab2-logging-worker")["containerLogMaxSize"] == "64Ki"
    assert "/api/v1/nodes/lab2-logging-worker/proxy/configz" in Handler.paths


def test_forbidden_node_proxy_is_a_kube_error_with_the_servers_message(kube):
    with pytest.raises(KubeError, match='HTTP 403: .*cannot get resource "nodes/proxy"'):
        kube.kubelet_config("other-node")
