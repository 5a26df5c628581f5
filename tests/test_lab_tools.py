"""Tool provisioning against a real HTTP server on 127.0.0.1: a good binary is installed, a
tampered one is rejected by its checksum, an unreachable server and a missing pin are clear."""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import os
import socket
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labconfig.versions import load_versions
from labs import tools

HOST = ("linux", "amd64")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """A proxy from the environment must not swallow requests to the loopback server."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server(tmp_path: Path):
    """Serves tmp_path/www over HTTP on a free loopback port; yields (www dir, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def pinned(name: str, sha: str | None) -> dict:
    """versions.toml with this tool's linux-amd64 sum replaced (or removed)."""
    v = copy.deepcopy(load_versions())
    sums = {"for_version": tools.tool_version(name, v)}
    if sha:
        sums["linux-amd64"] = sha
    v.setdefault("tools", {}).setdefault(name, {})["sha256"] = sums
    return v


BINARY = b"#!/bin/sh\necho 'kind v0.0.0-test'\n"


def test_a_good_binary_is_downloaded_verified_and_installed(server, tmp_path):
    www, base = server
    (www / "kind-linux-amd64").write_bytes(BINARY)
    versions = pinned("kind", hashlib.sha256(BINARY).hexdigest())
    cache = tmp_path / "cache"
    path = tools.ensure("kind", versions, cache, HOST, f"{base}/kind-{{os}}-{{arch}}", False)
    assert path == tools.cached_path(tools.spec_for("kind", versions, HOST), cache)
    assert path.read_bytes() == BINARY
    assert os.access(path, os.X_OK)
    # A second call uses the verified cache: the server is not needed any more.
    (www / "kind-linux-amd64").unlink()
    again = tools.ensure("kind", versions, cache, HOST, f"{base}/kind-{{os}}-{{arch}}", False)
    assert again == path


def test_a_tampered_binary_is_rejected_and_nothing_is_installed(server, tmp_path):
    www, base = server
    (www / "kind-linux-amd64").write_bytes(BINARY + b"rm -rf ~\n")
    versions = pinned("kind", hashlib.sha256(BINARY).hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(tools.ToolError, match="checksum mismatch") as info:
        tools.ensure("kind", versions, cache, HOST, f"{base}/kind-{{os}}-{{arch}}", False)
    assert hashlib.sha256(BINARY).hexdigest() in str(info.value)
    assert "nothing was installed" in str(info.value)
    assert not tools.cached_path(tools.spec_for("kind", versions, HOST), cache).exists()


def test_helm_is_taken_out_of_its_verified_tarball(server, tmp_path):
    www, base = server
    helm_binary = b"#!/bin/sh\necho v0.0.0\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("linux-amd64/helm")
        info.size = len(helm_binary)
        tar.addfile(info, io.BytesIO(helm_binary))
    archive = buf.getvalue()
    (www / "helm.tar.gz").write_bytes(archive)
    versions = pinned("helm", hashlib.sha256(archive).hexdigest())
    path = tools.ensure("helm", versions, tmp_path / "c", HOST, f"{base}/helm.tar.gz", False)
    assert path.name == "helm" and path.read_bytes() == helm_binary


def test_an_unreachable_server_gives_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    versions = pinned("kubectl", "0" * 64)
    with pytest.raises(tools.ToolError) as info:
        tools.ensure("kubectl", versions, tmp_path, HOST, f"http://127.0.0.1:{port}/kubectl", False)
    message = str(info.value)
    assert f"could not download kubectl {tools.tool_version('kubectl', versions)}" in message
    assert "HTTPS_PROXY" in message and "kubernetes.io/docs/tasks/tools" in message


def test_without_a_pinned_sum_nothing_is_downloaded(server, tmp_path):
    www, base = server
    (www / "kind-linux-amd64").write_bytes(BINARY)
    versions = pinned("kind", None)
    with pytest.raises(tools.ToolError, match="will not download an unverified binary"):
        tools.ensure("kind", versions, tmp_path, HOST, f"{base}/kind-{{os}}-{{arch}}", False)


def test_a_sum_for_another_version_is_not_used():
    v = copy.deepcopy(load_versions())
    v["tools"]["kind"]["sha256"]["for_version"] = "v0.0.1"
    assert tools.spec_for("kind", v, HOST).sha256 is None


def test_every_platform_is_pinned_for_the_versions_in_versions_toml():
    for name in tools.TOOLS:
        for host in [
            ("linux", "amd64"),
            ("linux", "arm64"),
            ("darwin", "amd64"),
            ("darwin", "arm64"),
        ]:
            spec = tools.spec_for(name, host=host)
            assert spec.sha256 and len(spec.sha256) == 64, (name, host)
            assert spec.version in spec.url and f"{host[0]}" in spec.url


def test_a_tool_on_path_at_the_pinned_version_is_preferred(tmp_path, monkeypatch):
    version = tools.tool_version("helm")
    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert tools.ensure("helm", root=tmp_path / "cache") == fake
    fake.write_text("#!/bin/sh\necho v0.0.1\n")  # wrong version: not used
    assert tools.on_path(tools.spec_for("helm")) is None


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/kind-{{os}}-{{arch}}"  # nothing listens there any more


def test_a_release_file_fetched_by_hand_is_installed_without_the_network(tmp_path):
    # An offline machine: the learner copied kind-linux-amd64 into the tool folder.
    versions = pinned("kind", hashlib.sha256(BINARY).hexdigest())
    cache = tmp_path / "cache"
    cache.mkdir()
    url = _closed_port_url()
    spec = tools.spec_for("kind", versions, HOST, url)
    assert tools.prefetched_path(spec, cache) == cache / "kind-linux-amd64"
    (cache / "kind-linux-amd64").write_bytes(BINARY)
    path = tools.ensure("kind", versions, cache, HOST, url, False)
    assert path.read_bytes() == BINARY and os.access(path, os.X_OK)
    assert tools.verified_cache(spec, cache)


def test_a_tampered_file_fetched_by_hand_is_refused_and_named(tmp_path):
    versions = pinned("kind", hashlib.sha256(BINARY).hexdigest())
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "kind-linux-amd64").write_bytes(BINARY + b"# changed\n")
    url = _closed_port_url()
    with pytest.raises(tools.ToolError, match="checksum mismatch") as info:
        tools.ensure("kind", versions, cache, HOST, url, False)
    assert str(cache / "kind-linux-amd64") in str(info.value)
    assert not tools.cached_path(tools.spec_for("kind", versions, HOST, url), cache).exists()


def test_an_unreachable_download_says_how_to_fetch_it_by_hand(tmp_path):
    versions = pinned("kind", hashlib.sha256(BINARY).hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(tools.ToolError) as info:
        tools.ensure("kind", versions, cache, HOST, _closed_port_url(), False)
    message = str(info.value)
    assert "HTTPS_PROXY" in message and str(cache / "kind-linux-amd64") in message
