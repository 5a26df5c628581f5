"""The lab's kind cluster, through pytest-kind's `KindCluster`, with our pinned kind and config.

pytest-kind 22.11.1 is used as a library, with its known defects worked around here:
- it defaults to kind v0.17.0 / kubectl v1.25.3 and downloads amd64 builds whatever the host:
  we always hand it the pinned binaries (labs.tools), so it never downloads anything;
- it creates `.pytest-kind/<name>/` in the current directory: we construct it inside `.lab/`;
- reusing a cluster whose kubeconfig file is gone leaves it an empty file (it `touch`es it) and
  then fails to parse it: we run `kind export kubeconfig` first when that is the case;
- `port_forward` never leaves its retry loop: the lab never calls it (NodePorts and the API
  server's service proxy instead);
- `create` runs `kind create cluster` with no timeout, so a hung creation would never end: the
  lab runs that same command itself, through the runner, which stops it at the step's deadline
  (scaled by LAB_TIMEOUT_SCALE); the node containers' state and the control plane's last log
  lines are then reported and the half-made cluster is deleted, so the next run starts clean.
  pytest-kind still reuses an existing cluster and deletes it.
The kubeconfig is the lab's own file; the learner's ~/.kube/config is never read or written.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape

from labconfig.settings import LAB_DIR
from labconfig.versions import REPO_ROOT
from labs.runner import CommandRunner, Result, format_command, kind_containers_argv

# Runs one command with a deadline and returns its Result (the runner's `run`, in practice).
RunCommand = Callable[[Sequence[str], float | None], Result]


def _flag(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name=value` or `--name value` in argv."""
    for i, word in enumerate(argv):
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


@dataclass
class LabCluster:
    name: str
    kubeconfig: Path
    resolve: Callable[[str], str]
    cwd: Path = REPO_ROOT
    image: str | None = None
    config: Path | None = None

    @classmethod
    def from_argv(
        cls, argv: Sequence[str], resolve: Callable[[str], str], cwd: Path = REPO_ROOT
    ) -> LabCluster:
        """Build from the displayed `kind create cluster ...` command, so what runs is what the
        learner saw."""
        name = _flag(argv, "--name")
        kubeconfig = _flag(argv, "--kubeconfig")
        if not name or not kubeconfig:
            raise ValueError(f"not a kind create command with --name and --kubeconfig: {argv}")
        config = _flag(argv, "--config")
        return cls(
            name=name,
            kubeconfig=_absolute(kubeconfig, cwd),
            resolve=resolve,
            cwd=cwd,
            image=_flag(argv, "--image"),
            config=_absolute(config, cwd) if config else None,
        )

    def delete_argv(self) -> tuple[str, ...]:
        shown = _shown(self.kubeconfig, self.cwd)
        return ("kind", "delete", "cluster", f"--name={self.name}", f"--kubeconfig={shown}")

    def _kind(self) -> str:
        return self.resolve("kind")

    def exists(self) -> bool:
        out = subprocess.run(
            [self._kind(), "get", "clusters"], capture_output=True, text=True, timeout=60
        )
        return out.returncode == 0 and self.name in out.stdout.split()

    def _pytest_kind(self):
        from pytest_kind import KindCluster

        lab_dir = self.cwd / LAB_DIR
        lab_dir.mkdir(parents=True, exist_ok=True)
        # KindCluster.__init__ creates `.pytest-kind/<name>` relative to the cwd: keep it in .lab.
        with contextlib.chdir(lab_dir):
            return KindCluster(
                self.name,
                kubeconfig=self.kubeconfig,
                image=self.image,
                kind_path=Path(self._kind()),
                # Never used: the lab runs kubectl itself (KindCluster only touches this path in
                # .kubectl(), which would download v1.25.3 for amd64 if it were missing).
                kubectl_path=self.kubeconfig.parent / "unused-kubectl",
            )

    def export_kubeconfig(self) -> subprocess.CompletedProcess:
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [
                self._kind(),
                "export",
                "kubeconfig",
                f"--name={self.name}",
                f"--kubeconfig={self.kubeconfig}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ensure(self, run: RunCommand, argv: Sequence[str], timeout: float | None) -> Result:
        """Reuse the cluster (repairing a missing kubeconfig first), or create it by running
        `argv` (the displayed `kind create cluster ...`) within `timeout` seconds."""
        try:
            if self.exists():
                if not self.kubeconfig.exists() or self.kubeconfig.stat().st_size == 0:
                    exported = self.export_kubeconfig()
                    if exported.returncode != 0:
                        return Result(exported.returncode, exported.stdout + exported.stderr)
                self._pytest_kind().create(config_file=self.config)  # reuse: reads the config
                return Result(0, f"kind cluster {self.name} reused")
        except subprocess.CalledProcessError as e:
            return Result(
                e.returncode or 1,
                f"`{' '.join(map(str, e.cmd))}` failed with exit code {e.returncode}; "
                "kind's output is above.",
            )
        except (OSError, RuntimeError, ValueError) as e:
            return Result(1, f"could not reuse the kind cluster: {e}")
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        created = run(argv, timeout)
        if created.timed_out:
            return Result(124, created.output + "\n" + self._after_timeout(run), True)
        if not created.ok:
            return created
        return Result(0, f"kind cluster {self.name} created")

    def _after_timeout(self, run: RunCommand) -> str:
        """What the nodes looked like when creation was stopped; then remove the half cluster."""
        lines = [f"kind create cluster did not finish in time; state of the `{self.name}` nodes:"]
        docker, *args = kind_containers_argv(self.name)
        listing = run((docker, *args[:-1], "{{.Names}}\t{{.Status}}"), 60)
        lines.append(listing.output.strip() or "(no node containers)")
        control_plane = f"{self.name}-control-plane"
        if control_plane in listing.output:
            logs = run((docker, "logs", "--tail", "30", control_plane), 60)
            lines += [f"last lines of `docker logs {control_plane}`:", logs.output.strip()]
        deleted = self.delete()
        lines.append(
            f"the half-made cluster was deleted ({deleted.output}); "
            "`kind export logs` on a new attempt collects more"
            if deleted.ok
            else f"could not delete the half-made cluster: {deleted.output}; run `nox -s lab-down`"
        )
        return "\n".join(lines)

    def delete(self) -> Result:
        """Delete only this lab's cluster (and only if it exists)."""
        try:
            if not self.exists():
                return Result(0, f"no kind cluster named {self.name}: nothing to delete")
            self._pytest_kind().delete()
        except subprocess.CalledProcessError as e:
            return Result(e.returncode or 1, f"kind delete cluster failed ({e.returncode})")
        except (OSError, RuntimeError) as e:
            return Result(1, f"could not delete the kind cluster: {e}")
        return Result(0, f"kind cluster {self.name} deleted")


def _absolute(path: str, cwd: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else cwd / p


def _shown(path: Path, cwd: Path) -> str:
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


class KindClusters:
    """The runner's ClusterOps: the lab cluster through LabCluster, commands through the runner."""

    def create(self, runner: CommandRunner, argv: Sequence[str], timeout: float | None) -> Result:
        runner.console.print(f"[bold cyan]$[/] {escape(format_command(argv))}")
        cluster = LabCluster.from_argv(argv, resolve=runner.resolve, cwd=runner.cwd)
        label = f"Creating kind cluster {cluster.name}"

        def run(command: Sequence[str], limit: float | None) -> Result:
            return runner.run(command, timeout=limit, echo=False, waiting_for=label)

        return cluster.ensure(run, argv, timeout)

    def delete(self, runner: CommandRunner, name: str, kubeconfig: Path) -> Result:
        cluster = LabCluster(
            name=name, kubeconfig=kubeconfig, resolve=runner.resolve, cwd=runner.cwd
        )
        runner.console.print(f"[bold cyan]$[/] {escape(format_command(cluster.delete_argv()))}")
        return cluster.delete()
