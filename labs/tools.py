"""kind, kubectl and helm at exactly the versions in `versions.toml`.

A tool on PATH is used when its version matches. Otherwise the release binary for this OS and
CPU is downloaded into a cache (LAB_TOOLS_DIR, default ~/.cache/k8s-logging-lab/tools) and
checked against the SHA-256 pinned in `versions.toml` ([tools.<name>.sha256], with the version
those sums belong to). A machine without internet gets the same files by hand: the release
file, under its download name (`kind-linux-amd64`, `kubectl`, `helm-v4.1.4-linux-amd64.tar.gz`),
put into LAB_TOOLS_DIR is used instead of the download, after the same checksum test. Nothing
unverified is ever run: without a pinned sum for this platform the lab stops and says how to
install the tool by hand.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labconfig.versions import load_versions

TOOLS = ("kind", "kubectl", "helm")

# Official release locations (the same ones the projects' install docs use).
URLS = {
    "kind": "https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{os}-{arch}",
    "kubectl": "https://dl.k8s.io/release/{version}/bin/{os}/{arch}/kubectl",
    "helm": "https://get.helm.sh/helm-{version}-{os}-{arch}.tar.gz",
}

INSTALL_DOCS = {
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
    "helm": "https://helm.sh/docs/intro/install/",
}


class ToolError(RuntimeError):
    """A tool cannot be provided; the message says what was observed and what to do."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    version: str
    os: str
    arch: str
    url: str
    sha256: str | None  # None: no pinned sum for this platform/version (never download then)

    @property
    def platform(self) -> str:
        return f"{self.os}-{self.arch}"

    @property
    def asset(self) -> str:
        """The release file's name, as the download URL ends (what to pre-fetch offline)."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def archive_member(self) -> str | None:
        """Helm ships a tarball; the binary is `<os>-<arch>/helm` inside it."""
        return f"{self.os}-{self.arch}/helm" if self.name == "helm" else None


def host_platform() -> tuple[str, str]:
    """(os, arch) in the release-asset spelling: linux|darwin, amd64|arm64."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return system, arch


def tool_version(name: str, versions: dict[str, Any] | None = None) -> str:
    v = versions or load_versions()
    return v["kind"]["version"] if name == "kind" else v["tools"][name]["version"]


def spec_for(
    name: str,
    versions: dict[str, Any] | None = None,
    host: tuple[str, str] | None = None,
    url_template: str | None = None,
) -> ToolSpec:
    """What to fetch for `name` on this host, with its pinned checksum (if any)."""
    if name not in TOOLS:
        raise ToolError(f"unknown tool {name!r}; the lab provides {', '.join(TOOLS)}")
    v = versions or load_versions()
    os_name, arch = host or host_platform()
    version = tool_version(name, v)
    sums = v.get("tools", {}).get(name, {}).get("sha256", {})
    sha = sums.get(f"{os_name}-{arch}") if sums.get("for_version") == version else None
    url = (url_template or URLS[name]).format(version=version, os=os_name, arch=arch)
    return ToolSpec(name, version, os_name, arch, url, sha)


def cache_dir() -> Path:
    env = os.environ.get("LAB_TOOLS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k8s-logging-lab" / "tools"


def installed_version(name: str, path: str | Path) -> str | None:
    """The version a binary reports, or None when it cannot be run."""
    argv = {
        "kind": [str(path), "version"],
        "kubectl": [str(path), "version", "--client", "-o", "json"],
        "helm": [str(path), "version", "--template", "{{.Version}}"],
    }[name]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    if name == "kubectl":
        try:
            return json.loads(out)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError, TypeError):
            return None
    match = re.search(r"v\d+\.\d+\.\d+\S*", out)
    return match.group(0) if match else None


def on_path(spec: ToolSpec) -> Path | None:
    """The tool on PATH when it is exactly the pinned version."""
    found = shutil.which(spec.name)
    if found and installed_version(spec.name, found) == spec.version:
        return Path(found)
    return None


def cached_path(spec: ToolSpec, root: Path | None = None) -> Path:
    return (root or cache_dir()) / f"{spec.name}-{spec.version}-{spec.platform}" / spec.name


def prefetched_path(spec: ToolSpec, root: Path | None = None) -> Path:
    """Where a release file fetched by hand (no internet here) is looked for."""
    return (root or cache_dir()) / spec.asset


def offline_fix(spec: ToolSpec, root: Path | None = None) -> str:
    """How to provide the tool without the lab's download (proxy, offline machine)."""
    return (
        f"Behind a proxy, set HTTPS_PROXY (and your CA in SSL_CERT_FILE) and rerun. Offline: on "
        f"a connected machine download {spec.url}, copy it to "
        f"{prefetched_path(spec, root)} (LAB_TOOLS_DIR; the lab checks its SHA-256), or install "
        f"{spec.name} {spec.version} on PATH ({INSTALL_DOCS[spec.name]})."
    )


def download(spec: ToolSpec, root: Path | None = None, timeout: float = 120) -> Path:
    """Fetch (or take the pre-fetched file), verify and install one tool into the cache; return
    the binary's path."""
    if not spec.sha256:
        raise ToolError(
            f"{spec.name} {spec.version} is not on PATH and versions.toml pins no SHA-256 for "
            f"{spec.platform}, so the lab will not download an unverified binary. Install "
            f"{spec.name} {spec.version} yourself ({INSTALL_DOCS[spec.name]}) and put it on PATH."
        )
    local = prefetched_path(spec, root)
    if local.is_file():
        data = local.read_bytes()
    else:
        try:
            with urllib.request.urlopen(spec.url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ToolError(
                f"could not download {spec.name} {spec.version} from {spec.url}: {e}. "
                + offline_fix(spec, root)
            ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ToolError(
            f"checksum mismatch for {local if local.is_file() else spec.url}: got sha256 "
            f"{digest}, versions.toml pins "
            f"{spec.sha256}. The download was discarded; nothing was installed. A proxy may "
            "have altered it, or the pin is wrong: do not run this file."
        )
    if spec.archive_member:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                member = tar.extractfile(spec.archive_member)
                if member is None:
                    raise KeyError(spec.archive_member)
                data = member.read()
        except (tarfile.TarError, KeyError) as e:
            raise ToolError(f"{spec.url} does not contain {spec.archive_member}: {e}") from None
    target = cached_path(spec, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{spec.name}-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    (target.parent / "SHA256").write_text(f"{spec.sha256}  {spec.url}\n")
    return target


def ensure(
    name: str,
    versions: dict[str, Any] | None = None,
    root: Path | None = None,
    host: tuple[str, str] | None = None,
    url_template: str | None = None,
    use_path: bool = True,
) -> Path:
    """The pinned tool: from PATH, from the verified cache, or downloaded and verified now."""
    spec = spec_for(name, versions, host, url_template)
    if use_path and (found := on_path(spec)):
        return found
    if verified_cache(spec, root):
        return cached_path(spec, root)
    return download(spec, root)


def verified_cache(spec: ToolSpec, root: Path | None = None) -> bool:
    """A cached copy that was verified against the sum pinned now."""
    cached = cached_path(spec, root)
    marker = cached.parent / "SHA256"
    return bool(
        spec.sha256
        and cached.exists()
        and marker.exists()
        and marker.read_text().split()[:1] == [spec.sha256]
    )


class ToolResolver:
    """Maps the names a learner types (kind, kubectl, helm) to the pinned binaries, lazily.

    `notify` hears about each download before it starts (it can take a minute on a slow line).
    """

    def __init__(self, fallback, notify=None) -> None:
        self.fallback = fallback
        self.notify = notify or (lambda _message: None)
        self.paths: dict[str, Path] = {}
        self.errors: dict[str, ToolError] = {}

    def __call__(self, name: str) -> str:
        if name not in TOOLS:
            return self.fallback(name)
        if name in self.errors:  # tried once this run: do not download again
            raise self.errors[name]
        if name not in self.paths:
            spec = spec_for(name)
            found = on_path(spec)
            if found is None and not verified_cache(spec):
                local = prefetched_path(spec)
                source = local if local.is_file() else spec.url
                verb = "installing" if local.is_file() else "downloading"
                self.notify(
                    f"{name} {spec.version} is not on PATH: {verb} {source} into "
                    f"{cached_path(spec).parent} and checking its SHA-256"
                )
            try:
                self.paths[name] = found or ensure(name, use_path=False)
            except ToolError as e:
                self.errors[name] = e
                raise
        return str(self.paths[name])

    def downloaded_dirs(self) -> list[Path]:
        root = cache_dir()
        return sorted({p.parent for p in self.paths.values() if root in p.parents})
