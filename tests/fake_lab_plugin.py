"""A pytest plugin that points `pytest checks` at the fake lab instead of a real cluster.

Loaded with `PYTEST_PLUGINS=tests.fake_lab_plugin` (as the report and grading tests do), it
implements the checkers' `pytest_lab_connect` hook: a kubeconfig whose current context is
`fake:<preset>` gets a FakeCluster in that state; any other kubeconfig goes to the real client,
so an unreachable cluster is exercised by the product's own code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import yaml

from checks.conftest import learner_of
from tests.fakes import FakeClock, Scenario
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
    if preset == "class":
        return class_lab(config)
    lab, _ = fake_lab(Scenario(**vars(PRESETS[preset])))
    if preset == "stalled":
        from checks.polling import SystemClock

        lab.clock = SystemClock()
    return lab


# A shared class cluster (`fake:class`): Loki with auth on, the learner the checkers were asked
# about (--namespace lab2-<id>) set up like the laptop lab in their namespace and tenant, and a
# second learner's lines in a tenant of their own. The learner id decides their lab's state, so
# one class can hold every kind of learner: `broken*` has the failing preset's mistakes, `stall*`
# ships nothing and waits on the real clock (a grader's time limit stops it).
OTHER_LEARNER = "lab2-other"


def class_lab(config):
    namespace = learner_of(config).get("app_ns", "bookstore")
    learner = namespace.removeprefix("lab2-")
    base = "failing" if learner.startswith("broken") else "passing"
    base = "stalled" if learner.startswith("stall") else base
    scenario = Scenario(**(vars(PRESETS[base]) | {"app_namespace": namespace, "loki_auth": True}))
    lab, cluster = fake_lab(scenario)
    for answer in Path(lab.exercises_dir).glob("*.yaml"):  # a class learner queries their own
        text = answer.read_text().replace('namespace="bookstore"', f'namespace="{namespace}"')
        answer.write_text(text)
    for n in range(3):  # the other learner's request lines, in their own tenant
        cluster.loki.push(
            {"namespace": OTHER_LEARNER, "pod": "orders-0", "container": "orders", "app": "orders"},
            f'{{"level": "INFO", "msg": "request completed", "n": {n}}}',
            tenant=OTHER_LEARNER,
            delay=0,
        )
    if base == "stalled":
        from checks.polling import SystemClock

        lab.clock = SystemClock()
    latency = float(os.environ.get(LATENCY_ENV, "0") or 0)
    if latency > 0:
        at_real_speed(lab, cluster, latency)
    return lab


# For benchmarks/class_grade.py: the fake class cluster at the speed of a real one. Every API
# call and every request through the service proxy first waits LAB_FAKE_LATENCY_S of real time
# (a round trip to a remote API server), and the cluster's clock runs in real time, so each
# checker really waits for its lines' batches (3 to 7 s, tests/fakes.py _batch_delay) and polls
# once a second as it does against a real Loki. Loki has long been ready, as in a running class.
LATENCY_ENV = "LAB_FAKE_LATENCY_S"


class RealTimeClock(FakeClock):
    """The fake clock, continued at the speed of real time from where it stood."""

    def __init__(self, like: FakeClock):
        super().__init__(like.wall0)
        self.t0 = time.monotonic() - like.t

    def monotonic(self) -> float:
        return time.monotonic() - self.t0

    def time_ns(self) -> int:
        return self.wall0 + int(self.monotonic() * 1e9)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.001))


class Latent:
    """The fake cluster behind a network: each call waits `seconds`, then is answered."""

    def __init__(self, cluster, seconds: float):
        self._cluster, self._seconds = cluster, seconds

    def __getattr__(self, name):
        attr = getattr(self._cluster, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            time.sleep(self._seconds)
            result = attr(*args, **kwargs)
            if name == "service_client":
                return self._latent_client(result)
            return result

        return call

    def _latent_client(self, inner: httpx.Client) -> httpx.Client:
        def forward(request: httpx.Request) -> httpx.Response:
            time.sleep(self._seconds)
            answer = inner.send(request)
            answer.read()
            return httpx.Response(answer.status_code, headers=answer.headers,
                                  content=answer.content)  # fmt: skip

        return httpx.Client(base_url=inner.base_url, transport=httpx.MockTransport(forward))


def at_real_speed(lab, cluster, latency: float) -> None:
    clock = RealTimeClock(cluster.clock)
    cluster.clock = cluster.loki.clock = lab.clock = clock
    cluster.loki.ready_after = 0
    lab.kube = Latent(cluster, latency)
