"""A kubeconfig is vetted before any client sees it: nothing it names is run, and the grader
connects only to lab clusters and reads no file outside the class folder."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
import yaml

from checks import kubeconfig as kc
from checks.kube import Kube, KubeError


def config(server="https://127.0.0.1:6443", user=None, cluster_extra=None, **top) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "lab",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster_extra or {})}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t0k"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
        **top,
    }


def canary_exec(tmp_path: Path) -> tuple[dict, Path]:
    """An exec plugin that would leave a file behind if anything ran it."""
    canary = tmp_path / "ran"
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": sys.executable,
        "args": ["-c", f"open({str(canary)!r}, 'w').write('pwned'); print('{{}}')"],
    }
    return {"exec": plugin}, canary


def write(path: Path, doc) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def grading(tmp_path, *allow, any_server=False):
    return kc.grading_policy(tmp_path, allow, any_server)


def test_exec_plugin_is_refused_and_never_run_by_the_grader_or_the_checkers(tmp_path):
    user, canary = canary_exec(tmp_path)
    path = write(tmp_path / "ada.yaml", config(user=user))
    with pytest.raises(kc.KubeconfigRefused, match=r"user 'u' has `exec`.*run a program"):
        kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    with pytest.raises(KubeError, match="`exec`"):
        Kube(path)  # a learner's own `pytest checks` loads through the same vetting
    assert not canary.exists()


def test_a_plugin_on_a_user_the_context_does_not_use_is_refused_by_the_grader(tmp_path):
    user, canary = canary_exec(tmp_path)
    doc = config()
    doc["users"].append({"name": "other", "user": user})
    path = write(tmp_path / "ada.yaml", doc)
    with pytest.raises(kc.KubeconfigRefused, match="user 'other'"):
        kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    # A learner's own ~/.kube/config may hold a cloud user beside the lab's: the vetted copy
    # holds only the user in use, so nothing of the other one can run.
    vetted = kc.vet(kc.read(path), source=path, policy=kc.LEARNER)
    assert [u["name"] for u in vetted["users"]] == ["u"]
    assert not canary.exists()


@pytest.mark.parametrize("provider", [{"name": "gcp", "config": {"cmd-path": "/bin/touch x"}},
                                      {"name": "oidc", "config": {}}])  # fmt: skip
def test_auth_provider_is_refused(tmp_path, provider):
    path = write(tmp_path / "ada.yaml", config(user={"auth-provider": provider}))
    with pytest.raises(kc.KubeconfigRefused, match=f"`auth-provider` \\('{provider['name']}'\\)"):
        kc.vet(kc.read(path), source=path, policy=kc.LEARNER)


@pytest.mark.parametrize(
    "server",
    ["https://127.0.0.1:6443", "https://127.3.4.5:1", "https://localhost:6443",
     "https://[::1]:6443", "https://[::ffff:127.0.0.1]:6443", "http://LOCALHOST."],
)  # fmt: skip
def test_loopback_servers_are_lab_clusters(tmp_path, server):
    path = write(tmp_path / "ada.yaml", config(server=server))
    vetted = kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    assert vetted["clusters"][0]["cluster"]["server"] == server


@pytest.mark.parametrize(
    "server",
    ["https://10.0.0.5:6443", "https://kubernetes.default.svc", "https://localhost.evil.test",
     "https://127.0.0.1.nip.io:6443", "https://169.254.169.254", "https://0.0.0.0:6443",
     # URLs two parsers could read as two hosts: refused, whatever Python makes of them
     "https://evil.test\\@127.0.0.1:6443", "https://127.0.0.1:6443@evil.test",
     "https://evil.test#@127.0.0.1", "https://127.0.0.1 .evil.test", "https://127.0.0.1:99999"],
)  # fmt: skip
def test_other_servers_are_refused_unless_allowed(tmp_path, server):
    path = write(tmp_path / "ada.yaml", config(server=server))
    with pytest.raises(kc.KubeconfigRefused, match="not a lab cluster.*--allow-server"):
        kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    kc.vet(kc.read(path), source=path, policy=grading(tmp_path, any_server=True))
    kc.vet(kc.read(path), source=path, policy=kc.LEARNER)  # a learner's own cluster: any


def test_the_allow_list_matches_host_and_port(tmp_path):
    path = write(tmp_path / "ada.yaml", config(server="https://10.0.0.5:6443"))
    doc = kc.read(path)
    for allowed in (["10.0.0.5"], ["10.0.0.5:6443"], ["https://10.0.0.5:6443"]):
        kc.vet(doc, source=path, policy=grading(tmp_path, *allowed))
    for other in (["10.0.0.5:443"], ["10.0.0.6"]):
        with pytest.raises(kc.KubeconfigRefused):
            kc.vet(doc, source=path, policy=grading(tmp_path, *other))
    named = write(tmp_path / "bob.yaml", config(server="https://Lab.Example.org"))
    kc.vet(kc.read(named), source=named, policy=grading(tmp_path, "lab.example.org:443"))


def test_allow_list_file_and_bad_entries(tmp_path):
    listing = tmp_path / "servers.txt"
    listing.write_text("# class 2026-11\n10.0.0.5:6443\n\n[fd00::1]:6443  # ipv6 box\n")
    assert kc.read_allow_file(listing) == ["10.0.0.5:6443", "[fd00::1]:6443"]
    assert kc.parse_server("[fd00::1]:6443") == ("fd00::1", 6443)
    with pytest.raises(kc.KubeconfigError, match="not a server"):
        kc.parse_server("10.0.0.5:port")


def test_a_proxy_url_must_be_a_lab_address_too(tmp_path):
    doc = config(cluster_extra={"proxy-url": "http://attacker.test:3128"})
    path = write(tmp_path / "ada.yaml", doc)
    with pytest.raises(kc.KubeconfigRefused, match="`proxy-url: http://attacker.test:3128`"):
        kc.vet(kc.read(path), source=path, policy=grading(tmp_path))


def test_files_outside_the_class_folder_are_never_read_for_the_grader(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    secret = tmp_path / "instructor-token"
    secret.write_text("instructors-own-token")
    (folder / "sneaky-link").symlink_to(secret)
    for field, value in (("tokenFile", str(secret)), ("tokenFile", "../instructor-token"),
                         ("tokenFile", "sneaky-link"), ("client-key", str(secret))):  # fmt: skip
        path = write(folder / "ada.yaml", config(user={field: value}))
        with pytest.raises(kc.KubeconfigRefused, match="outside the class folder"):
            kc.vet(kc.read(path), source=path, policy=kc.grading_policy(folder))
    ca = write(folder / "ada.yaml", config(cluster_extra={"certificate-authority": str(secret)}))
    with pytest.raises(kc.KubeconfigRefused, match="certificate-authority"):
        kc.vet(kc.read(ca), source=ca, policy=kc.grading_policy(folder))


def test_files_inside_the_folder_are_inlined_so_the_client_reads_nothing(tmp_path):
    (tmp_path / "ada.token").write_text("ada-token\n")
    (tmp_path / "ada.crt").write_bytes(b"CERT")
    (tmp_path / "ada.key").write_bytes(b"KEY")
    user = {"tokenFile": "ada.token", "client-certificate": "ada.crt", "client-key": "ada.key"}
    path = write(tmp_path / "ada.yaml", config(user=user))
    vetted = kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    assert vetted["users"][0]["user"] == {
        "token": "ada-token",
        "client-certificate-data": base64.b64encode(b"CERT").decode(),
        "client-key-data": base64.b64encode(b"KEY").decode(),
    }
    assert not any("File" in k or k in kc.FILE_FIELDS for k in vetted["users"][0]["user"])


def test_the_vetted_copy_holds_only_the_context_in_use(tmp_path):
    doc = config(cluster_extra={"insecure-skip-tls-verify": True, "extensions": [{"x": 1}]})
    doc["contexts"].append({"name": "prod", "context": {"cluster": "c", "user": "u"}})
    doc["preferences"] = {"colors": True}
    path = write(tmp_path / "ada.yaml", doc)
    vetted = kc.vet(kc.read(path), source=path, policy=grading(tmp_path))
    assert [c["name"] for c in vetted["contexts"]] == ["lab"]
    # insecure-skip-tls-verify is kept: it weakens only the learner's own connection.
    assert vetted["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "insecure-skip-tls-verify": True,
    }
    assert "preferences" not in vetted


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"- just\n- a list\n", "not a kubeconfig"),
        (b"clusters: [oops\n", "not valid YAML at line"),
        (b"key: \x80\x81 not utf-8\n", "not valid YAML"),
        (yaml.safe_dump(config(**{"current-context": "nope"})).encode(), "context 'nope'"),
        (yaml.safe_dump({**config(), "users": "u"}).encode(), "`users` is not a list"),
        (yaml.safe_dump(config(server="ftp://127.0.0.1")).encode(), "no https:// server"),
        (b"a: 1\n" + b"#" * (kc.MAX_BYTES + 1), "over 1024 KiB"),
        (b"a: " + b"[" * 50_000 + b"]" * 50_000, "nested too deeply|not valid YAML"),
        (yaml.safe_dump(config(user={"token": ["a", "b"]})).encode(), "`token` is not a str"),
        (
            yaml.safe_dump(config(user={"token": "&"}))
            .replace("'&'", "*b")
            .replace("apiVersion", "a: &a [x, x]\nb: &b [*a, *a]\napiVersion")
            .encode(),
            "not a str",
        ),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "ada.yaml"
    path.write_bytes(content)
    with pytest.raises(kc.KubeconfigError, match=message):
        kc.vet(kc.read(path), source=path, policy=grading(tmp_path))


def test_inline_data_wins_over_a_file_but_a_token_file_wins_over_a_token(tmp_path):
    (tmp_path / "ada.token").write_text("from-file\n")
    (tmp_path / "ada.crt").write_bytes(b"FILE")
    user = {"token": "inline", "tokenFile": "ada.token", "client-certificate": "ada.crt",
            "client-certificate-data": base64.b64encode(b"INLINE").decode()}  # fmt: skip
    path = write(tmp_path / "ada.yaml", config(user=user))
    vetted = kc.vet(kc.read(path), source=path, policy=grading(tmp_path))["users"][0]["user"]
    assert vetted["token"] == "from-file"
    assert vetted["client-certificate-data"] == base64.b64encode(b"INLINE").decode()
