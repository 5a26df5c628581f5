"""The notebooks execute, top to bottom, with nbclient, exactly as `nox -s notebooks` runs them.

- offline: starts the real bookstore services on loopback and must run to the end, with its own
  assertions (schema-valid lines, failures never sampled out, no process left behind) holding;
- live: without a lab cluster it says so and skips its queries; against a fake API server that
  serves Loki's API behind the service-proxy path, it runs every query through checks.loki and
  never sends a log query to the instant endpoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from labconfig.versions import REPO_ROOT, load_versions

RUN_PY = REPO_ROOT / "notebooks" / "run.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("notebooks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs(nb) -> tuple[str, list[dict]]:
    """All stream/text output of an executed notebook, and its image outputs."""
    text, images = [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"cell raised: {out.get('ename')}"
            text.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
            if "image/png" in out.get("data", {}):
                images.append(out)
    return "\n".join(text), images


def test_offline_notebook_runs_against_the_real_services():
    if importlib.util.find_spec("bookstore.__main__") is None:
        pytest.skip("the bookstore services (python -m bookstore) are not in this checkout yet")
    nb = load_runner().execute(REPO_ROOT / "notebooks" / "offline.ipynb")
    text, images = outputs(nb)
    assert "ready on http://127.0.0.1:" in text
    assert "exit codes: {'orders': 0, 'catalog': 0}" in text
    assert " 0 breaking the schema" in text
    assert "lines in ['catalog', 'orders']" in text, "the failing trace was not followed"
    assert re.search(r"parent_span_id (\w{16}) is orders' span_id \1: True", text), (
        "catalog's lines do not name orders' span as their parent"
    )
    assert "have their WARN/ERROR line" in text
    assert "processes still running: none" in text
    assert len(images) == 1, "the volume and error-rate figure is missing"


def test_runner_rejects_an_unknown_notebook(capsys):
    with pytest.raises(SystemExit, match="no notebook 'nosuch'.*available: live, offline"):
        load_runner().main(["nosuch"])


def test_live_notebook_skips_without_a_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    nb = load_runner().execute(REPO_ROOT / "notebooks" / "live.ipynb")
    text, images = outputs(nb)
    assert "No lab cluster with a ready Loki is reachable" in text
    assert "does not exist" in text, "the reason (missing kubeconfig) is not shown"
    assert text.count("skipped: no lab cluster") == 3
    assert not images


def test_runner_keeps_executed_copies_and_kernels_stay_off_tcp(tmp_path, monkeypatch, capfd):
    """`nox -s notebooks` leaves readable executed copies, and no kernel warns about plain TCP."""
    import nbformat

    monkeypatch.setenv("LAB_KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    runner = load_runner()
    out = tmp_path / "executed"
    assert runner.main(["live", "--output", str(out)]) == 0
    text, _ = outputs(nbformat.read(out / "live.ipynb", as_version=4))
    assert "skipped: no lab cluster" in text, "the executed copy has no outputs"
    printed = capfd.readouterr()
    assert f"in {out}/" in printed.out, "the run does not say where the copies are"
    # ipykernel >= 7 warns on every start over TCP without CurveZMQ keys (ipykernel/kernelapp.py,
    # init_sockets); the kernel inherits our stderr, so the warning would show here.
    assert "running over TCP" not in printed.err + printed.out
    if os.name == "posix":
        assert runner.kernel_manager(str(tmp_path)).transport == "ipc"


def test_runner_writes_into_notebooks_executed_unless_told_not_to():
    runner = load_runner()
    parser = runner.build_parser()
    assert parser.parse_args([]).output == REPO_ROOT / "notebooks" / "executed"
    assert parser.parse_args(["--no-output"]).output is None
    assert parser.parse_args(["--output", "x"]).output == Path("x")
    with pytest.raises(SystemExit):
        parser.parse_args(["--output", "x", "--no-output"])
    ignored = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "notebooks/executed/" in ignored, "executed copies would end up in commits"


# -- a fake API server with Loki behind the service proxy ------------------------------------
# Where the notebook must find Loki: versions.toml's namespace and release, as the checkers do.
_LOKI = load_versions()["charts"]["loki"]
PROXY = f"/api/v1/namespaces/{_LOKI['namespace']}/services/{_LOKI['release']}:3100/proxy"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _line(service: str, level: str, msg: str, span: str, **extra) -> str:
    return json.dumps(
        {"time": "2026-11-22T00:00:00.000Z", "level": level, "msg": msg, "service": service,
         "trace_id": TRACE, "span_id": span, "trace_flags": "01", **extra}
    )  # fmt: skip


def _streams(*entries: tuple[str, str]) -> dict:
    now = time.time_ns()
    return {
        "resultType": "streams",
        "result": [
            {"stream": {"namespace": "bookstore", "app": app, "pod": f"{app}-abc"},
             "values": [[str(now - 1000 + i), line]]}
            for i, (app, line) in enumerate(entries)
        ],
    }  # fmt: skip


class FakeApiServer(BaseHTTPRequestHandler):
    """Answers /version and, under the Loki service-proxy path, the Loki API calls."""

    seen: list[tuple[str, dict]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        type(self).seen.append((url.path, params))
        if url.path.rstrip("/") == "/version":
            return self._send(200, {"gitVersion": "v1.36.1"})
        if not url.path.startswith(PROXY):
            return self._send(404, {"kind": "Status", "message": "not found"})
        path = url.path[len(PROXY) :]
        ok = lambda data: self._send(200, {"status": "success", "data": data})  # noqa: E731
        if path == "/ready":
            return self._send(200, "ready")
        if path == "/loki/api/v1/labels":
            # The indexed labels of the lab's streams, as a real Loki 3.7.6 lists them: the
            # relabel rules' four, `stream` from Alloy's stage.cri (grafana/alloy loki.process
            # docs), `service_name` from Loki's discover_service_name (grafana/loki
            # limits_config docs). Structured metadata such as detected_level is not indexed.
            return ok(["app", "container", "namespace", "pod", "service_name", "stream"])
        if path.startswith("/loki/api/v1/label/"):
            return ok(["catalog", "orders"])
        if path == "/loki/api/v1/query":
            return self._send(400, "log queries are not supported as an instant query type")
        if path == "/loki/api/v1/query_range":
            q = params.get("query", "")
            if q.startswith("sum by (level)"):
                end = int(params["end"]) // 10**9
                values = [[end - 60 * i, str(10 + i)] for i in range(3, 0, -1)]
                return ok({"resultType": "matrix", "result": [
                    {"metric": {"level": "INFO"}, "values": values},
                    {"metric": {"level": "ERROR"}, "values": values[:1]},
                ]})  # fmt: skip
            if f'trace_id="{TRACE}"' in q:
                return ok(_streams(
                    ("orders", _line("orders", "ERROR", "catalog call failed", "00f067aa0ba902b7")),
                    ("catalog", _line("catalog", "ERROR", "Database connection failed",
                                      "b7ad6b7169203331", error_type="DatabaseConnectionError")),
                ))  # fmt: skip
            if 'level="ERROR"' in q:
                return ok(
                    _streams(("catalog", _line("catalog", "ERROR", "failed", "b7ad6b7169203331")))
                )
            return ok(_streams())
        return self._send(404, "404 page not found")


@pytest.fixture
def fake_cluster(tmp_path):
    FakeApiServer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )  # fmt: skip
    yield kubeconfig
    server.shutdown()
    server.server_close()


def test_live_notebook_queries_loki_through_the_service_proxy(fake_cluster, monkeypatch):
    monkeypatch.setenv("LAB_KUBECONFIG", str(fake_cluster))
    nb = load_runner().execute(REPO_ROOT / "notebooks" / "live.ipynb")
    text, images = outputs(nb)
    assert "Loki is ready." in text
    assert "Kubernetes v1.36.1" in text
    assert f"trace {TRACE}: 2 lines from ['catalog', 'orders']" in text
    assert len(images) == 1, "the count_over_time figure is missing"

    paths = [p for p, _ in FakeApiServer.seen]
    queries = [q["query"] for p, q in FakeApiServer.seen if p.endswith("/query_range")]
    assert f"{PROXY}/loki/api/v1/labels" in paths
    assert not any(p.endswith("/loki/api/v1/query") for p in paths), "instant query sent"
    assert '{namespace="bookstore"} | json | level="ERROR"' in queries
    assert f'{{namespace="bookstore"}} | json | trace_id="{TRACE}"' in queries
    assert any(q.startswith("sum by (level) (count_over_time(") for q in queries)


def test_notebooks_are_committed_without_outputs():
    """Outputs belong to executions (CI, the site build), not to the repository."""
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} has stored outputs"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"
