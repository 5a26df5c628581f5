"""Reading the real machine for the preflight (labs.doctor): cheap probes, short timeouts.

Each probe is a question the next `nox -s lab-2` would otherwise answer the hard way, minutes
in: can Docker build with BuildKit, is the kind node image here or pullable, do the chart
repositories and the tools' download URLs answer. Nothing here changes the machine (the
BuildKit probe builds to /dev/null and leaves no image). The two seams, `Http` and `Run`, are
what tests replace.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from labconfig.docker_client import NoUsableClient, select_client
from labconfig.versions import REPO_ROOT, load_versions
from labs import tools
from labs.doctor import HOST_PORTS, Facts, Finding, ImageFact, RepoFact, ToolFact, as_configured
from labs.doctor import diagnose as _diagnose
from labs.runner import kind_containers_argv

PROBE_TIMEOUT_S = 5.0
DOCKER_TIMEOUT_S = 30.0
# Docker Hub's registry API: `/v2/` answers 401 to anyone who can reach it (the Docker Registry
# HTTP API V2 spec, "API Version Check"); kindest/node and the charts' grafana/* images live there.
REGISTRY = "registry-1.docker.io"
REGISTRY_URL = f"https://{REGISTRY}/v2/"
# A build that needs no image: BuildKit's `FROM scratch` and a COPY, exported nowhere.
BUILDKIT_PROBE = "FROM scratch\nCOPY probe /probe\n"


@dataclass(frozen=True)
class Answer:
    returncode: int
    output: str


# (url, timeout) -> None when a server answered (any HTTP status but 404/5xx), else the error.
Http = Callable[[str, float], str | None]
# (argv, env, timeout) -> Answer
Run = Callable[[Sequence[str], dict[str, str], float], Answer]


def http_head(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Whether `url` answers: a HEAD request (follows redirects, downloads nothing)."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        # 401/403/405: a server is there (a registry wants a token; some hosts refuse HEAD).
        return None if e.code in (401, 403, 405) else f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return str(reason) or type(e).__name__


def run_command(argv: Sequence[str], env: dict[str, str], timeout: float) -> Answer:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Answer(124, f"no answer within {timeout:.0f}s")
    except OSError as e:
        return Answer(127, str(e))
    return Answer(done.returncode, (done.stdout + done.stderr).strip())


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def docker_info(docker: str, run: Run) -> tuple[bool, str, dict]:
    answer = run([docker, "info", "--format", "{{json .}}"], dict(os.environ), DOCKER_TIMEOUT_S)
    if answer.returncode != 0:
        return False, _last_line(answer.output), {}
    try:
        info = json.loads(answer.output.splitlines()[0])
    except (ValueError, IndexError):
        return True, "", {}
    if info.get("ServerErrors"):
        return False, "; ".join(info["ServerErrors"]), info
    return True, "", info


def buildkit_error(docker: str, run: Run) -> str | None:
    """Build a two-line Dockerfile with BuildKit (and a secret, as the images do); None if ok."""
    with tempfile.TemporaryDirectory(prefix="lab-buildkit-probe-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(BUILDKIT_PROBE)
        (Path(tmp) / "probe").write_text("probe\n")
        (Path(tmp) / "secret").write_text("probe\n")
        argv = [docker, "build", "--quiet", "--secret", f"id=probe,src={tmp}/secret"]
        argv += ["--output", "type=tar,dest=/dev/null", tmp]
        answer = run(argv, {**os.environ, "DOCKER_BUILDKIT": "1"}, DOCKER_TIMEOUT_S * 2)
    return None if answer.returncode == 0 else _last_line(answer.output)


def image_present(docker: str, ref: str, run: Run) -> bool:
    return (
        run([docker, "image", "inspect", ref], dict(os.environ), DOCKER_TIMEOUT_S).returncode == 0
    )


def tool_facts(http: Http) -> dict[str, ToolFact]:
    versions = load_versions()
    facts = {}
    for name in tools.TOOLS:
        spec = tools.spec_for(name, versions)
        found = shutil.which(name)
        path_version = tools.installed_version(name, found) if found else None
        cached = tools.verified_cache(spec)
        local = tools.prefetched_path(spec)
        prefetched = str(local) if local.is_file() else ""
        needs_download = path_version != spec.version and not cached and not prefetched
        facts[name] = ToolFact(
            version_wanted=spec.version,
            path_version=path_version,
            cached=cached,
            checksum_pinned=bool(spec.sha256),
            prefetched=prefetched,
            url=spec.url,
            url_error=http(spec.url, PROBE_TIMEOUT_S) if needs_download and spec.sha256 else None,
            offline_fix=tools.offline_fix(spec),
        )
    return facts


def chart_repos(http: Http) -> tuple[RepoFact, ...]:
    repos: dict[str, str] = {}
    for chart in load_versions()["charts"].values():
        repos.setdefault(chart["repo_name"], chart["repo_url"])
    return tuple(
        RepoFact(name, url, http(f"{url.rstrip('/')}/index.yaml", PROBE_TIMEOUT_S))
        for name, url in repos.items()
    )


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


def _cluster_exists(docker: str, name: str, run: Run) -> bool:
    """kind's node containers for `name`, asked the way the runner asks (no kind binary)."""
    _, *args = kind_containers_argv(name)
    answer = run([docker, *args], dict(os.environ), DOCKER_TIMEOUT_S)
    return answer.returncode == 0 and bool(answer.output.split())


def _ask_ahead(http: Http, pool: ThreadPoolExecutor) -> Http:
    """Ask every URL the probes may need at once, in the background (offline, each would
    otherwise wait out its own failure in turn); the returned Http answers from those."""
    versions = load_versions()
    urls = [REGISTRY_URL]
    urls += [tools.spec_for(name, versions).url for name in tools.TOOLS]
    urls += [f"{c['repo_url'].rstrip('/')}/index.yaml" for c in versions["charts"].values()]
    pending: dict[str, Future] = {
        url: pool.submit(http, url, PROBE_TIMEOUT_S) for url in dict.fromkeys(urls)
    }

    def answer(url: str, timeout: float) -> str | None:
        future = pending.get(url)
        return future.result() if future else http(url, timeout)

    return answer


def gather_facts(http: Http = http_head, run: Run = run_command) -> Facts:
    """Read this machine. Every probe has a short timeout; nothing is changed."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return _gather(_ask_ahead(http, pool), run)


def _gather(http: Http, run: Run) -> Facts:
    os_name, arch = tools.host_platform()
    versions = load_versions()
    try:
        docker, client_error = select_client().path, ""
    except NoUsableClient as e:
        docker, client_error = shutil.which("docker") or "docker", str(e)
    reachable, error, info = docker_info(docker, run)
    facts = Facts(
        os=os_name,
        arch=arch,
        docker_reachable=reachable,
        docker_error=error,
        docker_memory=info.get("MemTotal") if reachable else None,
        docker_cpus=info.get("NCPU") if reachable else None,
        inotify_watches=_read_int("/proc/sys/fs/inotify/max_user_watches"),
        inotify_instances=_read_int("/proc/sys/fs/inotify/max_user_instances"),
        busy_ports=tuple(p for p in HOST_PORTS if _busy(p)),
        cluster_exists=reachable and _cluster_exists(docker, versions["kind"]["cluster_name"], run),
        disk_free=_disk_free(info),
        tools=tool_facts(http),
        docker_client="" if client_error else docker,
        docker_client_error=client_error,
        registry=REGISTRY,
        registry_error=http(REGISTRY_URL, PROBE_TIMEOUT_S),
        chart_repos=chart_repos(http),
    )
    if reachable and not client_error:
        base = os.environ.get("BOOKSTORE_BASE_IMAGE") or versions["python"]["base_image"]
        node = versions["kind"]["node_image"]
        facts.buildkit_error = buildkit_error(docker, run)
        facts.node_image = ImageFact(node, image_present(docker, node, run))
        facts.base_image = ImageFact(base, image_present(docker, base, run))
    return facts


def _disk_free(info: dict) -> int:
    root = info.get("DockerRootDir")
    try:
        return shutil.disk_usage(Path(root) if root else REPO_ROOT).free
    except OSError:
        return shutil.disk_usage(REPO_ROOT).free


def preflight() -> list[Finding]:
    """What the lab's step 0 and `python -m labs doctor` run (see LAB_PREFLIGHT in doctor)."""
    return as_configured(_diagnose(gather_facts()))
