"""The one seam for side effects: every command, cluster operation and preflight goes through a
Runner.

This is the lowest module of the engine: it imports nothing from `labs` above it. What a real
run needs beyond running commands (creating the kind cluster, the preflight) is handed to
`CommandRunner` by whoever builds it (`labs.__main__`), so imports run one way.

`CommandRunner` does it for real (subprocesses in the repository root, live output, a spinner
that says what it waits for and for how long). Tests substitute a recording fake that lives in
tests/, so the engine's order, skips, deadlines and diagnostics are tested without a cluster.
Both print each command the way a learner would type it: `format_command` is also what the
plan and the docs page show.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.markup import escape

from labconfig.docker_client import docker_path
from labconfig.settings import DEFAULT_KUBECONFIG
from labconfig.versions import REPO_ROOT

# The label kind puts on every node container (kind: pkg/cluster/internal/providers/docker).
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def format_command(argv: Sequence[str], env: Sequence[tuple[str, str]] = ()) -> str:
    """The command as typed in a POSIX shell: env assignments first, every word quoted."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env)
    command = shlex.join(argv)
    return f"{prefix} {command}" if prefix else command


@dataclass(frozen=True)
class Result:
    """What a command did: its exit code and its combined output (stdout then stderr)."""

    returncode: int
    output: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time; tests pass a fake clock so deadlines are proven without sleeping."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Runner(Protocol):
    """What the engine needs from the outside world."""

    console: Console

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        echo: bool = True,
        show_output: bool = True,
        waiting_for: str = "",
    ) -> Result: ...

    def cluster_exists(self, name: str) -> bool: ...

    def create_cluster(self, argv: Sequence[str], timeout: float | None) -> Result: ...

    def delete_cluster(self, name: str) -> Result: ...

    def doctor(self) -> list: ...

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]: ...


# Names a learner types, mapped to what actually runs (pinned tools may live in a cache).
ToolResolver = Callable[[str], str]


class ClusterOps(Protocol):
    """Creating and deleting the kind cluster (labs.cluster.KindClusters for real)."""

    def create(
        self, runner: CommandRunner, argv: Sequence[str], timeout: float | None
    ) -> Result: ...

    def delete(self, runner: CommandRunner, name: str, kubeconfig: Path) -> Result: ...


# The preflight: a list of findings (labs.doctor.Finding), blocking ones stop the lab.
Preflight = Callable[[], list]


def kind_containers_argv(name: str) -> tuple[str, ...]:
    """`docker ps` of the node containers of kind cluster `name` (kind's own cluster label)."""
    label = f"label={KIND_CLUSTER_LABEL}={name}"
    return ("docker", "ps", "--all", "--filter", label, "--format", "{{.Names}}")


def _default_resolver(name: str) -> str:
    if name == "python":
        return sys.executable
    if name == "docker":
        # The project's one rule (labconfig.docker_client): LAB_DOCKER/BOOKSTORE_DOCKER, else a
        # client that can build with BuildKit. Its NoUsableClient is a RuntimeError whose
        # message says how to fix it; `run` reports it as the command's output.
        return docker_path()
    return name


class CommandRunner:
    """Runs commands for real, from the repository root, printing them as a learner types them."""

    def __init__(
        self,
        console: Console | None = None,
        resolve: ToolResolver | None = None,
        cwd: Path = REPO_ROOT,
        kubeconfig: Path | None = None,
        clock: Clock | None = None,
        clusters: ClusterOps | None = None,
        preflight: Preflight | None = None,
    ) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.resolve = resolve or _default_resolver
        self.cwd = cwd
        self.kubeconfig = kubeconfig
        self.clock = clock or SystemClock()
        self.clusters = clusters
        self.preflight = preflight
        self._live = None  # the active rich status, if any

    # -- commands --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        echo: bool = True,
        show_output: bool = True,
        waiting_for: str = "",
    ) -> Result:
        if echo:
            self.console.print(f"[bold cyan]$[/] {escape(format_command(argv, env))}")
        try:
            real = [self.resolve(argv[0]), *argv[1:]]
        except RuntimeError as e:  # labs.tools.ToolError: the message says what to do
            return Result(127, str(e))
        full_env = {**os.environ, **dict(env)}
        try:
            proc = subprocess.Popen(
                real,
                cwd=self.cwd,
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError:
            msg = (
                f"`{argv[0]}` was not found (looked for {real[0]!r}). "
                "Run `nox -s doctor` to see which tools are missing and how to get them."
            )
            return Result(127, msg)
        lines: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if show_output:
                    self.console.print(f"  {escape(line.rstrip())}", soft_wrap=True)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        label = waiting_for or (f"Running {argv[0]} {argv[1]}" if len(argv) > 1 else argv[0])
        timed_out = False
        try:
            with self.status(label) as update:
                start = self.clock.now()
                while proc.poll() is None:
                    elapsed = self.clock.now() - start
                    limit = f" of {int(timeout)}s" if timeout else ""
                    update(f"{label} ({int(elapsed)}s{limit})")
                    if timeout is not None and elapsed > timeout:
                        timed_out = True
                        _terminate(proc)
                        break
                    reader.join(0.5)
        except KeyboardInterrupt:
            # The command runs in its own session (so a timeout can stop its children too),
            # which also means Ctrl-C reached only us: pass it on before giving up.
            _terminate(proc)
            raise
        proc.wait()
        reader.join(5)
        output = "".join(lines)
        if timed_out:
            output += f"\n(stopped after {int(timeout or 0)}s: LAB_TIMEOUT_SCALE=2 doubles it)"
        return Result(proc.returncode if not timed_out else 124, output, timed_out)

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """A spinner naming what we wait for; `update` rewrites it with the elapsed time.

        Re-entrant: a poll's spinner stays up while its probe commands run inside it (rich
        allows one live display at a time).
        """
        if not self.console.is_terminal:
            yield lambda _text: None
            return
        if self._live is not None:
            yield lambda _text: None  # the outer spinner already says what we wait for
            return
        with self.console.status(escape(text)) as live:
            self._live = live
            try:
                yield lambda new: live.update(escape(new))
            finally:
                self._live = None

    # -- cluster -----------------------------------------------------------------------------

    def cluster_exists(self, name: str) -> bool:
        """Whether kind's node containers for `name` exist. Asks Docker for kind's cluster label
        (what `kind get clusters` reads), so no kind binary has to be fetched just to know."""
        result = self.run(kind_containers_argv(name), echo=False, show_output=False)
        return result.ok and bool(result.output.split())

    def create_cluster(self, argv: Sequence[str], timeout: float | None) -> Result:
        """Create (or reuse) the cluster `argv` describes, within `timeout` (labs.cluster)."""
        if self.clusters is None:
            raise RuntimeError("CommandRunner was built without `clusters`: cannot create one")
        return self.clusters.create(self, argv, timeout)

    def delete_cluster(self, name: str) -> Result:
        if not self.cluster_exists(name):  # asks Docker: no kind download just to find nothing
            return Result(0, f"no kind cluster named {name}: nothing to delete")
        if self.clusters is None:
            raise RuntimeError("CommandRunner was built without `clusters`: cannot delete one")
        return self.clusters.delete(self, name, self.kubeconfig or (self.cwd / DEFAULT_KUBECONFIG))

    # -- preflight ---------------------------------------------------------------------------

    def doctor(self) -> list:
        if self.preflight is None:
            raise RuntimeError("CommandRunner was built without `preflight`: cannot check")
        return list(self.preflight())


def _terminate(proc: subprocess.Popen) -> None:
    """Stop the command and whatever it started (helm and kind spawn children)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
