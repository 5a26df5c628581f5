"""The preflight with injected machine facts: every failing condition names what was observed
and the fix; a healthy machine has no blocking finding."""

from __future__ import annotations

import dataclasses

import pytest

from labs import doctor
from labs.doctor import GIB, Facts, ToolFact

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


def test_gather_facts_reads_this_machine_without_changing_it():
    facts = doctor.gather_facts()
    assert facts.arch and facts.os
    assert set(facts.tools) == {"kind", "kubectl", "helm"}
    assert all(p in doctor.HOST_PORTS for p in facts.busy_ports)
    doctor.diagnose(facts)  # any machine's facts can be diagnosed


def test_the_doctor_command_exits_non_zero_with_the_fixes(monkeypatch, capsys):
    from labs.__main__ import main

    monkeypatch.setattr(doctor, "gather_facts", lambda: healthy(docker_reachable=False))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "✗ docker: Docker is not reachable" in out and "sudo systemctl start docker" in out
    assert "Fix the items marked ✗" in out
    monkeypatch.setattr(doctor, "gather_facts", healthy)
    assert main(["doctor"]) == 0
    assert "Ready for `nox -s lab-2`" in capsys.readouterr().out
