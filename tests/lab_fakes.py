"""Fakes for the lab engine's seams: a recording Runner and a clock that never sleeps.

They live in tests/ only; the product always runs `labs.runner.CommandRunner`.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from labs.doctor import Finding
from labs.runner import Result, format_command

Response = Result | Callable[[str], Result]

# What a healthy lab answers to the engine's probes (used after a test's own responses).
HEALTHY: list[tuple[str, Response]] = [
    ("proxy/ready", Result(0, "ready")),
    ("query_range", Result(0, '{"status":"success","data":{"result":[{"stream":{}}]}}')),
    # Loki's ruler once the rules ConfigMap is loaded (grafana/loki v3.7 pkg/ruler/base/api.go).
    (
        "prometheus/api/v1/rules",
        Result(
            0,
            '{"status":"success","data":{"groups":[{"name":"bookstore","rules":'
            '[{"name":"BookstoreErrorRate","type":"alerting"}]}]}}',
        ),
    ),  # fmt: skip
]


@dataclass
class FakeClock:
    t: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class FakeRunner:
    """Records every command as the learner would see it and answers from a script.

    `responses` maps a substring of the displayed command to a Result (or a function of the
    command returning one); the first match wins, anything else succeeds with no output.
    """

    def __init__(
        self,
        responses: Sequence[tuple[str, Response]] = (),
        clusters: Sequence[str] = (),
        findings: Sequence[Finding] = (),
        cwd: Path | None = None,
    ) -> None:
        # Where commands "run": relative paths in them (the check action's --score-json)
        # resolve here, as they do against CommandRunner's cwd.
        self.cwd = cwd or Path(tempfile.mkdtemp(prefix="fake-runner-"))
        self.console = Console(file=io.StringIO(), width=300, force_terminal=False)
        self.responses = [*responses, *HEALTHY]
        self.clusters = set(clusters)
        self.findings = list(findings)
        self.calls: list[tuple[str, str]] = []
        self.statuses: list[str] = []

    @property
    def output(self) -> str:
        return self.console.file.getvalue()

    def commands(self, kind: str = "run") -> list[str]:
        return [cmd for k, cmd in self.calls if k == kind]

    def run(self, argv, *, env=(), timeout=None, echo=True, show_output=True, waiting_for=""):
        cmd = format_command(argv, env)
        self.calls.append(("run", cmd))
        if echo:
            self.console.print(f"$ {cmd}")
        for pattern, response in self.responses:
            if pattern in cmd:
                return response(cmd) if callable(response) else response
        return Result(0, "")

    def cluster_exists(self, name: str) -> bool:
        self.calls.append(("exists", name))
        return name in self.clusters

    def create_cluster(self, argv, timeout):
        cmd = format_command(argv)
        self.calls.append(("create", cmd))
        self.console.print(f"$ {cmd}")
        name = next(a.split("=", 1)[1] for a in argv if a.startswith("--name="))
        self.clusters.add(name)
        return Result(0, f"kind cluster {name} created")

    def delete_cluster(self, name: str) -> Result:
        self.calls.append(("delete", name))
        self.clusters.discard(name)
        return Result(0, f"kind cluster {name} deleted")

    def doctor(self) -> list:
        self.calls.append(("doctor", ""))
        return list(self.findings)

    @contextmanager
    def status(self, text: str):
        self.statuses.append(text)
        yield self.statuses.append
