"""Diagnostics pick the lines that explain a failure out of events, ReplicaSets, logs and helm."""

from __future__ import annotations

import json

from labs import diagnostics
from labs.runner import Result
from tests.lab_fakes import FakeRunner

KC = ".lab/kubeconfig"


def test_collect_saves_everything_and_explains_with_few_lines(tmp_path):
    pods = {
        "items": [
            {"metadata": {"name": "alloy-x1"}, "status": {"containerStatuses": [{"ready": False}]}},
            {"metadata": {"name": "loki-0"}, "status": {"containerStatuses": [{"ready": True}]}},
        ]
    }
    events = {
        "items": [
            {
                "type": "Normal",
                "reason": "Pulled",
                "message": "image pulled",
                "involvedObject": {"kind": "Pod", "name": "loki-0"},
            },
            {
                "type": "Warning",
                "reason": "BackOff",
                "message": "Back-off restarting failed container",
                "involvedObject": {"kind": "Pod", "name": "alloy-x1"},
            },
        ]
    }
    runner = FakeRunner(
        responses=[
            ("get pods -n logging", Result(0, json.dumps(pods))),
            ("get events -n logging", Result(0, json.dumps(events))),
            (
                "logs -n logging alloy-x1 --all-containers --tail=80",
                Result(0, 'level=info msg=starting\nlevel=error msg="too many open files"\n'),
            ),
            ("status alloy", Result(0, "STATUS: failed\nDESCRIPTION: context deadline exceeded\n")),
        ]
    )
    found = diagnostics.collect(
        runner,
        tmp_path / "a",
        kubeconfig=KC,
        namespaces=("logging",),
        releases=(("alloy", "logging"),),
        failure="Error: UPGRADE FAILED: context deadline exceeded",
    )
    assert "Pod/alloy-x1 BackOff: Back-off restarting failed container" in found.explaining
    assert 'logging/alloy-x1: level=error msg="too many open files"' in found.explaining
    assert "helm alloy: DESCRIPTION: context deadline exceeded" in found.explaining
    assert not any("image pulled" in line for line in found.explaining)
    # Only the unready pod's logs are fetched; every command uses the lab's kubeconfig.
    assert not any("logs -n logging loki-0" in c for c in runner.commands())
    assert all(f"--kubeconfig {KC}" in c for c in runner.commands())
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"logging-alloy-x1-logs.txt", "helm-alloy.txt", "failure.txt"} <= names
    assert not runner.output  # collected quietly: only the explaining lines get printed


def test_explaining_lines_ignore_noise_and_deduplicate():
    text = "ok\nWarning FailedScheduling 0/2 nodes: Insufficient memory\n" * 2 + "all good\n"
    assert diagnostics.explaining_lines(text) == [
        "Warning FailedScheduling 0/2 nodes: Insufficient memory"
    ]


def test_image_build_failures_are_recognised():
    build = (
        "#4 [internal] load metadata for docker.io/library/python:3.12-slim-bookworm\n"
        "ERROR: failed to solve: python:3.12-slim-bookworm: failed to resolve source metadata "
        "for docker.io/library/python:3.12-slim-bookworm: dial tcp: lookup registry-1.docker.io\n"
    )
    lines = diagnostics.explaining_lines(build)
    assert len(lines) == 1 and lines[0].startswith("ERROR: failed to solve")
    pip = "  SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    assert diagnostics.explaining_lines(pip) == [pip.strip()]
