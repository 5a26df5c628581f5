"""A pytest plugin that points `pytest checks` at the fake lab instead of a real cluster.

Loaded with `PYTEST_PLUGINS=tests.fake_lab_plugin` (as the report and grading tests do), it
implements the checkers' `pytest_lab_connect` hook: a kubeconfig whose current context is
`fake:<preset>` gets a FakeCluster in that state; any other kubeconfig goes to the real client,
so an unreachable cluster is exercised by the product's own code.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fakes import Scenario
from tests.fakes_ruler import (
    fake_lab,
)  # tests.fakes' lab plus the ruler, /config, kubelet, incident

PRESETS = {
    "passing": Scenario(),
    # A lab with two typical mistakes: a plain-text startup line, and orders not passing the
    # trace on to catalog.
    "failing": Scenario(plain_text_line=True, propagates_trace=False),
    # The agent ships nothing and the checkers wait on the real clock: the Loki checkers hang
    # until their deadlines (90 s), so a grader's shorter timeout interrupts them.
    "stalled": Scenario(ships=False),
    # A user without RBAC permission to list DaemonSets.
    "forbidden": Scenario(daemonsets_forbidden=True),
}


def write_fake_kubeconfig(path: Path, preset: str) -> Path:
    """A syntactically real kubeconfig whose context names a preset of the fake lab."""
    context = f"fake:{preset}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": "https://fake-apiserver.invalid"}}],
        "users": [{"name": context, "user": {"token": "fake"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def write_unreachable_kubeconfig(path: Path, port: int) -> Path:
    """A kubeconfig for an API server that is not there (nothing listens on `port`)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "gone",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "insecure-skip-tls-verify": True,
                },
            }
        ],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
        "current-context": "gone",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def pytest_lab_connect(config, kubeconfig: Path):
    try:
        context = yaml.safe_load(Path(kubeconfig).read_text()).get("current-context", "")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    if not str(context).startswith("fake:"):
        return None
    preset = context.removeprefix("fake:")
    lab, _ = fake_lab(Scenario(**vars(PRESETS[preset])))
    if preset == "stalled":
        from checks.polling import SystemClock

        lab.clock = SystemClock()
    return lab
