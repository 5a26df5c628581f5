"""Preflight: is this machine ready for the lab, and what exactly to do when it is not.

`gather_facts()` reads the machine (Docker, memory, CPU, inotify limits, ports, disk, tools);
`diagnose(facts)` turns facts into findings, each with the fix. Facts are a plain dataclass so
tests inject any machine they like; nothing here changes the system.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from labconfig.versions import REPO_ROOT, load_versions
from labs import tools

GIB = 1024**3
# kind extraPortMappings: host port == NodePort (orders, Grafana, Loki).
HOST_PORTS = (30080, 30300, 30310)
MIN_DOCKER_MEMORY = 4 * GIB  # Loki + Alloy + Grafana + bookstore + the control plane
GOOD_DOCKER_MEMORY = 6 * GIB
MIN_DISK = 5 * GIB
GOOD_DISK = 10 * GIB
# kind's known-issues values for "too many open files" (kubernetes-sigs/kind#2586).
INOTIFY_WATCHES = 524288
INOTIFY_INSTANCES = 512


@dataclass(frozen=True)
class ToolFact:
    version_wanted: str
    path_version: str | None  # version of the tool found on PATH (None: not found)
    cached: bool  # a verified copy is in the lab's tool cache
    checksum_pinned: bool  # a download for this platform can be verified


@dataclass
class Facts:
    os: str
    arch: str
    docker_reachable: bool
    docker_error: str = ""
    docker_memory: int | None = None
    docker_cpus: int | None = None
    inotify_watches: int | None = None
    inotify_instances: int | None = None
    busy_ports: tuple[int, ...] = ()
    cluster_exists: bool = False
    disk_free: int | None = None
    tools: dict[str, ToolFact] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    problem: str  # what was observed (or the good news)
    fix: str = ""  # what to do
    blocking: bool = False


def diagnose(f: Facts) -> list[Finding]:
    """Every check, passed or not; a blocking finding stops the lab before it starts."""
    out: list[Finding] = []
    if f.os not in ("linux", "darwin"):
        out.append(
            Finding(
                "os",
                False,
                f"{f.os!r} is not supported by the lab's tooling (Linux and macOS are)",
                "On Windows, run the lab inside WSL2 (e.g. Ubuntu) with Docker Desktop's WSL "
                "integration turned on.",
                True,
            )
        )
    if f.arch not in ("amd64", "arm64"):
        out.append(
            Finding(
                "cpu",
                False,
                f"CPU architecture {f.arch!r} has no kind node image",
                "Use an amd64 or arm64 machine.",
                True,
            )
        )
    else:
        out.append(Finding("cpu", True, f"{f.os}/{f.arch}"))
        if f.os == "darwin" and f.arch == "arm64":
            out.append(
                Finding(
                    "apple-silicon",
                    True,
                    "Apple Silicon: images are built for arm64",
                    "If `kind load docker-image` fails with `content digest ... not found`, "
                    "the lab retries with `docker save` + `kind load image-archive`; "
                    "LAB_IMAGE_LOAD=archive does that from the start.",
                )
            )
    if not f.docker_reachable:
        out.append(
            Finding(
                "docker",
                False,
                f"Docker is not reachable: {f.docker_error or 'docker info failed'}",
                "Start Docker Desktop (macOS/Windows) or the daemon (`sudo systemctl start docker` "
                "on Linux), check with `docker info`, then rerun.",
                True,
            )
        )
    else:
        out.append(Finding("docker", True, "Docker is reachable"))
        if f.docker_memory is not None:
            gib = f.docker_memory / GIB
            if f.docker_memory < MIN_DOCKER_MEMORY:
                out.append(
                    Finding(
                        "memory",
                        False,
                        f"Docker has {gib:.1f} GiB of memory; the lab needs 4 GiB "
                        "(6 GiB is comfortable)",
                        "Docker Desktop: Settings → Resources → Memory ≥ 6 GiB, Apply & restart.",
                        True,
                    )
                )
            elif f.docker_memory < GOOD_DOCKER_MEMORY:
                out.append(
                    Finding(
                        "memory",
                        False,
                        f"Docker has {gib:.1f} GiB of memory: enough, but tight",
                        "Give Docker 6 GiB if pods get OOMKilled or stay Pending.",
                    )
                )
            else:
                out.append(Finding("memory", True, f"Docker has {gib:.1f} GiB of memory"))
        if f.docker_cpus is not None and f.docker_cpus < 2:
            out.append(
                Finding(
                    "cpus",
                    False,
                    f"Docker has {f.docker_cpus} CPU; waits will be slow",
                    "Give Docker 2+ CPUs, or set LAB_TIMEOUT_SCALE=2 to double every deadline.",
                )
            )
    if f.os == "linux" and f.inotify_watches is not None and f.inotify_instances is not None:
        if f.inotify_watches < INOTIFY_WATCHES or f.inotify_instances < INOTIFY_INSTANCES:
            out.append(
                Finding(
                    "inotify",
                    False,
                    f"inotify limits are low (max_user_watches={f.inotify_watches}, "
                    f"max_user_instances={f.inotify_instances}): log agents and `kubectl logs -f` "
                    "fail with `too many open files`",
                    f"sudo sysctl fs.inotify.max_user_watches={INOTIFY_WATCHES} "
                    f"fs.inotify.max_user_instances={INOTIFY_INSTANCES}  (to keep it after a "
                    "reboot, put both settings in /etc/sysctl.d/99-kind.conf)",
                )
            )
        else:
            out.append(Finding("inotify", True, "inotify limits are high enough"))
    if f.busy_ports and not f.cluster_exists:
        ports = ", ".join(map(str, f.busy_ports))
        first = f.busy_ports[0]
        out.append(
            Finding(
                "ports",
                False,
                f"host port(s) {ports} are in use; kind maps them to the cluster",
                f"Find the owner with `lsof -nP -iTCP:{first} -sTCP:LISTEN` (or `ss -ltnp "
                f"'sport = :{first}'`) and stop it; an old lab cluster goes with "
                "`nox -s lab-down`.",
                True,
            )
        )
    else:
        why = " (held by the existing lab cluster)" if f.busy_ports else ""
        ports = ", ".join(map(str, HOST_PORTS))
        out.append(Finding("ports", True, f"host ports {ports} available{why}"))
    if f.disk_free is not None:
        gib = f.disk_free / GIB
        if f.disk_free < MIN_DISK:
            out.append(
                Finding(
                    "disk",
                    False,
                    f"{gib:.1f} GiB free on Docker's disk; the lab needs 5 GiB",
                    "Free space, e.g. `docker system prune` (removes unused images).",
                    True,
                )
            )
        elif f.disk_free < GOOD_DISK:
            out.append(
                Finding(
                    "disk",
                    False,
                    f"{gib:.1f} GiB free: enough, but tight",
                    "10 GiB free avoids image-garbage-collection surprises.",
                )
            )
        else:
            out.append(Finding("disk", True, f"{gib:.1f} GiB free"))
    for name, t in sorted(f.tools.items()):
        if t.path_version == t.version_wanted:
            out.append(Finding(name, True, f"{name} {t.version_wanted} on PATH"))
        elif t.cached:
            out.append(Finding(name, True, f"{name} {t.version_wanted} in the lab's tool cache"))
        elif t.checksum_pinned:
            seen = f" (PATH has {t.path_version})" if t.path_version else ""
            out.append(
                Finding(
                    name, True, f"{name} {t.version_wanted} will be downloaded and verified{seen}"
                )
            )
        else:
            seen = f"PATH has {t.path_version}" if t.path_version else "it is not on PATH"
            out.append(
                Finding(
                    name,
                    False,
                    f"{name} {t.version_wanted} is needed, {seen}, and no checksum is pinned for "
                    f"{f.os}-{f.arch} to verify a download",
                    f"Install {name} {t.version_wanted} ({tools.INSTALL_DOCS[name]}) and put it on "
                    "PATH.",
                    True,
                )
            )
    return out


def render(findings: list[Finding]) -> list[str]:
    """Rich-markup lines: a tick, a warning sign or a cross, then the fix indented below."""
    lines = []
    for f in findings:
        if f.ok:
            mark = "[green]✓[/]"
        elif f.blocking:
            mark = "[bold red]✗[/]"
        else:
            mark = "[yellow]![/]"
        lines.append(f"  {mark} {f.check}: {f.problem}")
        if f.fix:
            lines.append(f"      → {f.fix}")
    return lines


# -- reading the real machine --------------------------------------------------------------


def _docker_info() -> tuple[bool, str, dict]:
    from labs.runner import _default_resolver

    try:
        proc = subprocess.run(
            [_default_resolver("docker"), "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e), {}
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return False, lines[-1] if lines else "docker info failed", {}
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        return True, "", {}
    if info.get("ServerErrors"):
        return False, "; ".join(info["ServerErrors"]), info
    return True, "", info


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def _cluster_exists(name: str) -> bool:
    """Whether kind's node containers for `name` exist: the Docker label `kind get clusters`
    reads, asked the way the runner asks it (no kind binary needed)."""
    from labs.runner import _default_resolver, kind_containers_argv

    docker, *args = kind_containers_argv(name)
    argv = [_default_resolver(docker), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and bool(proc.stdout.split())


def gather_facts() -> Facts:
    """Read this machine. Slow parts (docker info) have timeouts; nothing is changed."""
    os_name, arch = tools.host_platform()
    reachable, error, info = _docker_info()
    versions = load_versions()
    tool_facts = {}
    for name in tools.TOOLS:
        spec = tools.spec_for(name, versions)
        found = shutil.which(name)
        tool_facts[name] = ToolFact(
            version_wanted=spec.version,
            path_version=tools.installed_version(name, found) if found else None,
            cached=tools.verified_cache(spec),
            checksum_pinned=bool(spec.sha256),
        )
    disk_path = Path(info.get("DockerRootDir", "")) if info.get("DockerRootDir") else REPO_ROOT
    try:
        disk_free = shutil.disk_usage(disk_path).free
    except OSError:
        disk_free = shutil.disk_usage(REPO_ROOT).free
    return Facts(
        os=os_name,
        arch=arch,
        docker_reachable=reachable,
        docker_error=error,
        docker_memory=info.get("MemTotal") if reachable else None,
        docker_cpus=info.get("NCPU") if reachable else None,
        inotify_watches=_read_int("/proc/sys/fs/inotify/max_user_watches"),
        inotify_instances=_read_int("/proc/sys/fs/inotify/max_user_instances"),
        busy_ports=tuple(p for p in HOST_PORTS if _busy(p)),
        cluster_exists=_cluster_exists(versions["kind"]["cluster_name"]),
        disk_free=disk_free,
        tools=tool_facts,
    )
