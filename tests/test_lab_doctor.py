"""The preflight with injected machine facts: every failing condition names what was observed
and the fix; a healthy machine has no blocking finding."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from labconfig.versions import load_versions
from labs import doctor, probes
from labs.doctor import GIB, Facts, ImageFact, RepoFact, ToolFact

TOOLS = {
    "kind": ToolFact("v0.32.0", "v0.32.0", False, True),
    "kubectl": ToolFact("v1.36.1", None, False, True),
    "helm": ToolFact("v4.1.4", "v3.19.0", True, True),
}


def healthy(**changes) -> Facts:
    facts = Facts(
        os="linux",
        arch="amd64",
        docker_reachable=True,
        docker_memory=8 * GIB,
        docker_cpus=4,
        inotify_watches=524288,
        inotify_instances=512,
        busy_ports=(),
        cluster_exists=False,
        disk_free=50 * GIB,
        tools=dict(TOOLS),
    )
    return dataclasses.replace(facts, **changes)


def by_check(findings, check):
    return [f for f in findings if f.check == check]


def test_a_healthy_machine_passes_every_check():
    findings = doctor.diagnose(healthy())
    assert findings and all(f.ok for f in findings)
    assert not [f for f in findings if f.blocking]
    text = "\n".join(doctor.render(findings))
    assert "kubectl v1.36.1 will be downloaded and verified" in text
    assert "helm v4.1.4 in the lab's tool cache" in text


@pytest.mark.parametrize(
    ("changes", "check", "blocking", "observed", "fix"),
    [
        (
            {"docker_reachable": False, "docker_error": "Cannot connect to the Docker daemon"},
            "docker",
            True,
            "Cannot connect to the Docker daemon",
            "sudo systemctl start docker",
        ),
        ({"docker_memory": 2 * GIB}, "memory", True, "2.0 GiB", "Resources → Memory ≥ 6 GiB"),
        ({"docker_memory": 5 * GIB}, "memory", False, "enough, but tight", "6 GiB"),
        ({"docker_cpus": 1}, "cpus", False, "1 CPU", "LAB_TIMEOUT_SCALE=2"),
        ({"arch": "riscv64"}, "cpu", True, "riscv64", "amd64 or arm64"),
        ({"os": "windows"}, "os", True, "'windows' is not supported", "WSL2"),
        (
            {"inotify_watches": 8192, "inotify_instances": 128},
            "inotify",
            False,
            "max_user_instances=128",
            "sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512",
        ),
        ({"busy_ports": (30300,)}, "ports", True, "30300", "lsof -nP -iTCP:30300"),
        ({"disk_free": 2 * GIB}, "disk", True, "2.0 GiB free", "docker system prune"),
        ({"disk_free": 7 * GIB}, "disk", False, "tight", "10 GiB"),
        (
            {"tools": {**TOOLS, "kind": ToolFact("v0.32.0", "v0.20.0", False, False)}},
            "kind",
            True,
            "PATH has v0.20.0",
            "kind.sigs.k8s.io",
        ),
    ],
)
def test_each_failing_condition_gives_its_message_and_fix(changes, check, blocking, observed, fix):
    findings = by_check(doctor.diagnose(healthy(**changes)), check)
    assert len(findings) == 1, findings
    finding = findings[0]
    assert not finding.ok
    assert finding.blocking is blocking
    assert observed in finding.problem
    assert fix in finding.fix
    rendered = "\n".join(doctor.render([finding]))
    assert ("✗" if blocking else "!") in rendered and fix in rendered


def test_ports_held_by_the_lab_cluster_itself_are_fine():
    findings = by_check(
        doctor.diagnose(healthy(busy_ports=(30080, 30300), cluster_exists=True)), "ports"
    )
    assert findings[0].ok and "held by the existing lab cluster" in findings[0].problem


def test_inotify_is_only_checked_on_linux_and_apple_silicon_gets_the_load_advice():
    findings = doctor.diagnose(
        healthy(os="darwin", arch="arm64", inotify_watches=None, inotify_instances=None)
    )
    assert not by_check(findings, "inotify")
    advice = by_check(findings, "apple-silicon")[0]
    assert "LAB_IMAGE_LOAD=archive" in advice.fix


def test_the_doctor_command_exits_non_zero_with_the_fixes(monkeypatch, capsys):
    from labs.__main__ import main

    monkeypatch.setattr(probes, "gather_facts", lambda: healthy(docker_reachable=False))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ docker: Docker is not reachable" in out and "sudo systemctl start docker" in out
    assert "Not ready: fix the items marked ✗" in out
    monkeypatch.setattr(probes, "gather_facts", healthy)
    assert main(["doctor"]) == 0
    assert "Ready for `nox -s lab-2`" in capsys.readouterr().out


# -- each probe's two outcomes, as findings ------------------------------------------------------

NODE = "kindest/node:v1.36.1@sha256:abc"
BASE = "python:3.12-slim-bookworm"
NO_DNS = "[Errno -2] Name or service not known"


def online(**changes) -> Facts:
    """A healthy machine with internet: every probe answered."""
    probed = {
        "docker_client": "/usr/bin/docker",
        "node_image": ImageFact(NODE, present=False),
        "base_image": ImageFact(BASE, present=True),
        "registry": "registry-1.docker.io",
        "chart_repos": (RepoFact("grafana", "https://grafana.github.io/helm-charts"),),
    }
    return healthy(**{**probed, **changes})


def test_a_machine_whose_probes_all_answer_is_ready():
    findings = doctor.diagnose(online())
    assert doctor.ready(findings), [f for f in findings if f.blocking]
    text = "\n".join(doctor.render(findings))
    assert f"{NODE} will be pulled" in text and f"{BASE} is present" in text
    assert "a BuildKit build with /usr/bin/docker works" in text


@pytest.mark.parametrize(
    ("changes", "check", "observed", "fix"),
    [
        (
            {
                "docker_client": "",
                "docker_client_error": "no docker client here can do BuildKit "
                "builds. Found: /usr/local/bin/docker (28.2.2; buildx missing). Install the buildx",
            },
            "docker-client",
            "no docker client here can do BuildKit builds",
            "Install the buildx",
        ),
        (
            {"buildkit_error": "BuildKit is enabled but the buildx component is missing"},
            "buildkit",
            "buildx component is missing",
            "scripts/prepare-docker.sh",
        ),
        (
            {"registry_error": NO_DNS},
            "node-image",
            f"{NODE} is not here and cannot be pulled",
            f"docker pull {NODE}",
        ),
        (
            {"registry_error": NO_DNS, "base_image": ImageFact(BASE, present=False)},
            "base-image",
            f"{BASE} is not here",
            'eval "$(scripts/prepare-docker.sh)"',
        ),
        ({"registry_error": NO_DNS}, "registry", "cannot pull the Loki", "docker load"),
        (
            {
                "chart_repos": (
                    RepoFact("grafana", "https://grafana.github.io/helm-charts", "HTTP 404"),
                )
            },
            "chart-repo grafana",
            "index.yaml does not answer (HTTP 404)",
            "HTTPS_PROXY",
        ),
        (
            {
                "tools": {
                    **TOOLS,
                    "kubectl": ToolFact(
                        "v1.36.1",
                        None,
                        False,
                        True,
                        url="https://dl.k8s.io/kubectl",
                        url_error=NO_DNS,
                        offline_fix="copy it to /cache/kubectl",
                    ),
                }
            },
            "kubectl",
            "its download https://dl.k8s.io/kubectl does not answer",
            "copy it to /cache/kubectl",
        ),
    ],
)
def test_each_probe_that_fails_makes_the_machine_not_ready(changes, check, observed, fix):
    findings = doctor.diagnose(online(**changes))
    assert not doctor.ready(findings)
    finding = by_check(findings, check)[0]
    assert finding.blocking and observed in finding.problem and fix in finding.fix


def test_a_tool_fetched_by_hand_into_the_cache_folder_needs_no_download():
    fetched = ToolFact("v1.36.1", None, False, True, prefetched="/cache/kubectl", url_error=None)
    finding = by_check(doctor.diagnose(online(tools={**TOOLS, "kubectl": fetched})), "kubectl")[0]
    assert finding.ok and "installed from /cache/kubectl" in finding.problem


def test_lab_preflight_warn_lets_the_lab_go_on_but_the_command_stays_honest(monkeypatch, capsys):
    findings = doctor.diagnose(online(registry_error=NO_DNS))
    relaxed = doctor.as_configured(findings, {"LAB_PREFLIGHT": "warn"})
    assert doctor.ready(relaxed) and not doctor.ready(findings)
    assert "LAB_PREFLIGHT=warn" in by_check(relaxed, "registry")[0].fix
    assert doctor.as_configured(findings, {}) == findings
    from labs.__main__ import main

    monkeypatch.setenv("LAB_PREFLIGHT", "warn")
    monkeypatch.setattr(probes, "gather_facts", lambda: online(registry_error=NO_DNS))
    assert main(["doctor"]) == 1


# -- the probes themselves, against fake answers --------------------------------------------------


class FakeMachine:
    """Answers the probes' docker commands like a Docker engine would (docker/cli: `info
    --format '{{json .}}'` prints one JSON object; `image inspect` exits 1 for an unknown image;
    a failed build exits 1 with the error last)."""

    def __init__(self, images=(), build_error="", info_error=""):
        self.images = set(images)
        self.build_error = build_error
        self.info_error = info_error
        self.calls: list[list[str]] = []

    def __call__(self, argv, env, timeout):
        self.calls.append(list(argv))
        verb = argv[1]
        if verb == "info":
            if self.info_error:
                return probes.Answer(1, self.info_error)
            return probes.Answer(0, '{"MemTotal": 8589934592, "NCPU": 4, "DockerRootDir": "/"}')
        if verb == "image":
            return probes.Answer(0 if argv[3] in self.images else 1, "")
        if verb == "build":
            assert env.get("DOCKER_BUILDKIT") == "1" and "--secret" in argv
            return (
                probes.Answer(1, f"step 1\n{self.build_error}")
                if self.build_error
                else probes.Answer(0, "")
            )
        if verb == "ps":
            return probes.Answer(0, "")
        raise AssertionError(f"unexpected docker call {argv}")


@pytest.fixture
def fake_client(tmp_path, monkeypatch):
    client = tmp_path / "docker"
    client.write_text("#!/bin/sh\nexit 0\n")
    client.chmod(0o755)
    monkeypatch.setenv("LAB_DOCKER", str(client))
    monkeypatch.delenv("BOOKSTORE_BASE_IMAGE", raising=False)
    monkeypatch.setenv("LAB_TOOLS_DIR", str(tmp_path / "tools"))
    return str(client)


def test_probes_on_a_connected_machine(fake_client):
    versions = load_versions()
    machine = FakeMachine(images={versions["python"]["base_image"]})
    asked: list[str] = []

    def http(url, timeout):
        asked.append(url)
        assert timeout <= 5
        return None

    facts = probes.gather_facts(http=http, run=machine)
    assert facts.docker_client == fake_client and facts.buildkit_error is None
    assert facts.node_image == ImageFact(versions["kind"]["node_image"], present=False)
    assert facts.base_image.present and facts.registry_error is None
    assert probes.REGISTRY_URL in asked
    assert f"{versions['charts']['loki']['repo_url']}/index.yaml" in asked
    # Every probe answered: none of their findings may stand in the way (ports, memory and
    # inotify are this host's own business).
    probed = {"docker-client", "buildkit", "node-image", "base-image", "registry", *TOOLS}
    probed |= {f"chart-repo {r.name}" for r in facts.chart_repos}
    findings = {f.check: f for f in doctor.diagnose(facts) if f.check in probed}
    assert set(findings) == probed
    assert all(f.ok for f in findings.values()), [f for f in findings.values() if not f.ok]


def test_probes_on_a_machine_with_no_registry_and_a_failing_build(fake_client):
    machine = FakeMachine(
        build_error="ERROR: BuildKit is enabled but the buildx component is missing"
    )
    facts = probes.gather_facts(http=lambda url, timeout: NO_DNS, run=machine)
    assert facts.buildkit_error.endswith("buildx component is missing")
    assert facts.registry_error == NO_DNS
    assert all(r.error == NO_DNS for r in facts.chart_repos)
    findings = doctor.diagnose(facts)
    assert not doctor.ready(findings)
    blocked = {f.check for f in findings if f.blocking}
    assert {"buildkit", "node-image", "base-image", "registry"} <= blocked


def test_probes_skip_the_docker_questions_when_the_engine_does_not_answer(fake_client):
    machine = FakeMachine(
        info_error="Cannot connect to the Docker daemon at unix:///var/run/docker.sock"
    )
    facts = probes.gather_facts(http=lambda url, timeout: None, run=machine)
    assert not facts.docker_reachable and "Cannot connect" in facts.docker_error
    assert facts.node_image is None and [c[1] for c in machine.calls] == ["info"]


def test_http_head_tells_a_server_from_no_server():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 (the stdlib's name)
            # A registry's /v2/ answers 401 to anonymous clients (registry API V2 spec).
            self.send_response(401 if self.path == "/v2/" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert probes.http_head(f"{base}/v2/") is None
        assert probes.http_head(f"{base}/missing") == "HTTP 404"
    finally:
        server.shutdown()
        server.server_close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert probes.http_head(f"http://127.0.0.1:{port}/", timeout=2) is not None
