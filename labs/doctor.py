"""Preflight: is this machine ready for the lab, and what exactly to do when it is not.

`labs.probes.gather_facts()` tries, cheaply and with short timeouts, what the next `nox -s
lab-2` will need (Docker and a client that can build with BuildKit, a tiny BuildKit build, the
kind node image and the build's base image present or pullable, the chart repositories and the
tools' downloads reachable, memory, CPUs, inotify limits, ports, disk); `diagnose(facts)` turns
those facts into findings, each with the fix, including how to prepare a machine behind a proxy
or without internet. Any blocking finding means "not ready". Facts are plain dataclasses so tests
inject any machine they like; nothing here changes the system.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

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
    prefetched: str = ""  # the release file a learner put into LAB_TOOLS_DIR (path), if any
    url: str = ""  # where the lab downloads it from
    url_error: str | None = None  # why that URL did not answer (None: it did, or not needed)
    offline_fix: str = ""  # how to provide it without the download (labs.tools.offline_fix)


@dataclass(frozen=True)
class ImageFact:
    """An image the lab needs before the cluster can pull anything itself."""

    ref: str
    present: bool  # in the local Docker engine (`docker image inspect`)


@dataclass(frozen=True)
class RepoFact:
    """A chart repository `helm repo add` will read."""

    name: str
    url: str
    error: str | None = None  # why its index.yaml did not answer (None: it did)


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
    # The docker client the lab builds with (labconfig.docker_client) or why there is none.
    docker_client: str = ""
    docker_client_error: str = ""
    # A BuildKit build of a two-line Dockerfile with that client: None = it worked (or could not
    # be tried because Docker is unreachable), else its last error line.
    buildkit_error: str | None = None
    node_image: ImageFact | None = None  # kindest/node from versions.toml
    base_image: ImageFact | None = None  # the Dockerfile's BASE_IMAGE (or BOOKSTORE_BASE_IMAGE)
    # Docker Hub, where the node image and the charts' images come from: None = it answered.
    registry: str = ""
    registry_error: str | None = None
    chart_repos: tuple[RepoFact, ...] = ()


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
    for part in (_platform, _docker, _host, _tools, _downloads):
        out.extend(part(f))
    return out


def ready(findings: list[Finding]) -> bool:
    return not any(f.blocking for f in findings)


def _platform(f: Facts) -> list[Finding]:
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
    return out


def _docker(f: Facts) -> list[Finding]:
    out: list[Finding] = []
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
    out.extend(_builds(f))
    return out


def _host(f: Facts) -> list[Finding]:
    """inotify limits, the kind host ports, disk space."""
    out: list[Finding] = []
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
    return out


def _tools(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    for name, t in sorted(f.tools.items()):
        if t.path_version == t.version_wanted:
            out.append(Finding(name, True, f"{name} {t.version_wanted} on PATH"))
        elif t.cached:
            out.append(Finding(name, True, f"{name} {t.version_wanted} in the lab's tool cache"))
        elif not t.checksum_pinned:
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
        elif t.prefetched:
            out.append(
                Finding(
                    name,
                    True,
                    f"{name} {t.version_wanted} will be installed from {t.prefetched} "
                    "(its SHA-256 is checked first)",
                )
            )
        elif t.url_error is None:
            seen = f" (PATH has {t.path_version})" if t.path_version else ""
            out.append(
                Finding(
                    name, True, f"{name} {t.version_wanted} will be downloaded and verified{seen}"
                )
            )
        else:
            out.append(
                Finding(
                    name,
                    False,
                    f"{name} {t.version_wanted} is not on PATH and its download {t.url} does "
                    f"not answer: {t.url_error}",
                    t.offline_fix,
                    True,
                )
            )
    return out


def _builds(f: Facts) -> list[Finding]:
    """The client the images are built with, and a BuildKit build with it."""
    if f.docker_client_error:
        return [
            Finding(
                "docker-client", False, f.docker_client_error.split(". ")[0], _client_fix(f), True
            )
        ]
    if not f.docker_client:
        return []  # not probed
    out = [Finding("docker-client", True, f"images are built with {f.docker_client}")]
    if f.docker_reachable and f.buildkit_error is not None:
        out.append(
            Finding(
                "buildkit",
                False,
                f"a BuildKit build with {f.docker_client} failed: {f.buildkit_error}",
                "The bookstore images need BuildKit (`RUN --mount=type=secret`). Install the "
                "buildx plugin, or run `scripts/prepare-docker.sh` (Debian/Ubuntu), or set "
                "BOOKSTORE_DOCKER to a client that builds with DOCKER_BUILDKIT=1.",
                True,
            )
        )
    elif f.docker_reachable:
        out.append(Finding("buildkit", True, f"a BuildKit build with {f.docker_client} works"))
    return out


def _client_fix(f: Facts) -> str:
    return f.docker_client_error.split(". ", 1)[1] if ". " in f.docker_client_error else ""


def _downloads(f: Facts) -> list[Finding]:
    """What the lab fetches from the internet: images (the node, the build's base, the charts'
    images the nodes pull) and the chart repositories' indexes."""
    out: list[Finding] = []
    registry_ok = f.registry_error is None
    if f.node_image is not None:
        out.append(_image_finding("node-image", f.node_image, registry_ok, f.registry_error))
    if f.base_image is not None:
        out.append(_image_finding("base-image", f.base_image, registry_ok, f.registry_error))
    if f.registry:
        out.append(
            Finding("registry", True, f"{f.registry} answers: the cluster can pull its images")
            if registry_ok
            else Finding(
                "registry",
                False,
                f"{f.registry} does not answer ({f.registry_error}): the kind nodes cannot pull "
                "the Loki, Alloy and Grafana images the charts name",
                "Behind a proxy: give Docker the proxy (Docker Desktop: Settings → Resources → "
                "Proxies; Linux: HTTPS_PROXY in dockerd's environment) and rerun. Offline: "
                "docs/troubleshooting.md#image-pull (pre-fetch the images, `docker load` them "
                "here, `kind load docker-image` them into the nodes).",
                True,
            )
        )
    for repo in f.chart_repos:
        if repo.error is None:
            out.append(Finding(f"chart-repo {repo.name}", True, f"{repo.url} answers"))
            continue
        out.append(
            Finding(
                f"chart-repo {repo.name}",
                False,
                f"{repo.url}/index.yaml does not answer ({repo.error}): `helm repo add "
                f"{repo.name}` and the chart installs will fail",
                "Behind a proxy, export HTTPS_PROXY (helm reads it) and rerun (docs/"
                "troubleshooting.md#tool-download). The lab installs the charts from their "
                "repositories, so a machine that cannot reach them cannot run steps 2 and 5.",
                True,
            )
        )
    return out


def _image_finding(check: str, image: ImageFact, registry_ok: bool, error: str | None) -> Finding:
    if image.present:
        return Finding(check, True, f"{image.ref} is present")
    if registry_ok:
        return Finding(check, True, f"{image.ref} will be pulled")
    archive = image.ref.split("@")[0].rsplit("/", 1)[-1].replace(":", "-") + ".tar"
    fix = (
        f"On a connected machine: `docker pull {image.ref}` then `docker save --output "
        f"{archive} {image.ref}`; here: `docker load --input {archive}`."
    )
    if check == "base-image":
        fix = (
            'On Linux, `eval "$(scripts/prepare-docker.sh)"` builds a local base image and '
            "exports BOOKSTORE_BASE_IMAGE; or set BOOKSTORE_BASE_IMAGE to an image with "
            f"python3 >= 3.11 you have. Or, without Linux: {fix}"
        )
    return Finding(
        check, False, f"{image.ref} is not here and cannot be pulled ({error})", fix, True
    )


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


# LAB_PREFLIGHT=warn: report blockers but let the lab go on (a machine the probes cannot see
# fully, e.g. a containerd registry mirror configured in the kind nodes).
PREFLIGHT_ENV = "LAB_PREFLIGHT"


def as_configured(findings: list[Finding], env: dict[str, str] | None = None) -> list[Finding]:
    """The findings, with blockers turned into warnings when LAB_PREFLIGHT=warn."""
    env = os.environ if env is None else env
    if env.get(PREFLIGHT_ENV, "") != "warn":
        return findings
    return [
        replace(f, blocking=False, fix=f"{f.fix} ({PREFLIGHT_ENV}=warn: the lab goes on anyway)")
        if f.blocking
        else f
        for f in findings
    ]
