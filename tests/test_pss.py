"""validators.pss: each Pod Security control passing and failing, where pod specs are found, CLI.

Each case starts from a pod spec that passes `restricted`, changes one field, and asserts the
exact control and field path reported (or that nothing is reported for an allowed value).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from validators import pss

REPO = Path(__file__).resolve().parents[1]


def container(name: str = "app") -> dict:
    return {
        "name": name,
        "image": "bookstore/catalog:0.1.0",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def good_pod(name: str = "web") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "bookstore"},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container()],
        },
    }


def put(obj: dict, path: str, value) -> dict:
    """Set a dotted path like `spec.containers[0].securityContext.privileged`, creating maps."""
    keys = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = obj
    for key, nxt in zip(keys, keys[1:] + [None], strict=True):
        index = int(key[1:-1]) if key.startswith("[") else key
        if nxt is None:
            node[index] = value
        else:
            if isinstance(index, str) and index not in node:
                node[index] = [] if nxt.startswith("[") else {}
            node = node[index]
    return obj


def pod_with(*changes: tuple[str, object]) -> dict:
    pod = good_pod()
    for path, value in changes:
        put(pod, path, value)
    return pod


def found(objects, level="restricted", version="latest") -> set[tuple[str, str, str]]:
    return {(v.level, v.control, v.path) for v in pss.evaluate(objects, level, version)}


def test_the_starting_pod_passes_every_level_and_version():
    for level in pss.LEVELS:
        for version in ("latest", "v1.19", "v1.25", "v1.34", "v1.35"):
            assert pss.evaluate([good_pod()], level, version) == []


C0 = "spec.containers[0].securityContext"
SC = "spec.securityContext"

# (change, control reported, field path reported) — each is a baseline control, so it fails at
# both levels.
BASELINE_FAILURES = [
    ((f"{SC}.windowsOptions.hostProcess", True), "HostProcess", f"{SC}.windowsOptions.hostProcess"),
    (
        (f"{C0}.windowsOptions.hostProcess", True),
        "HostProcess",
        f"{C0}.windowsOptions.hostProcess",
    ),
    (("spec.hostNetwork", True), "Host Namespaces", "spec.hostNetwork"),
    (("spec.hostPID", True), "Host Namespaces", "spec.hostPID"),
    (("spec.hostIPC", True), "Host Namespaces", "spec.hostIPC"),
    ((f"{C0}.privileged", True), "Privileged Containers", f"{C0}.privileged"),
    (
        ("spec.containers[0].ports", [{"containerPort": 8080, "hostPort": 8080}]),
        "Host Ports",
        "spec.containers[0].ports[0].hostPort",
    ),
    (
        (
            "metadata.annotations",
            {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"},
        ),
        "AppArmor",
        "metadata.annotations['container.apparmor.security.beta.kubernetes.io/app']",
    ),
    ((f"{SC}.appArmorProfile", {"type": "Unconfined"}), "AppArmor", f"{SC}.appArmorProfile.type"),
    ((f"{C0}.appArmorProfile", {"type": "Unconfined"}), "AppArmor", f"{C0}.appArmorProfile.type"),
    ((f"{SC}.seLinuxOptions", {"type": "spc_t"}), "SELinux", f"{SC}.seLinuxOptions.type"),
    ((f"{C0}.seLinuxOptions", {"user": "system_u"}), "SELinux", f"{C0}.seLinuxOptions.user"),
    ((f"{C0}.seLinuxOptions", {"role": "sysadm_r"}), "SELinux", f"{C0}.seLinuxOptions.role"),
    (
        (f"{SC}.sysctls", [{"name": "kernel.msgmax", "value": "65536"}]),
        "Sysctls",
        f"{SC}.sysctls[0].name",
    ),
    (
        ("spec.containers[0].livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}),
        "Host Probes / Lifecycle Hooks",
        "spec.containers[0].livenessProbe.httpGet.host",
    ),
    (
        ("spec.containers[0].readinessProbe", {"tcpSocket": {"host": "metadata", "port": 80}}),
        "Host Probes / Lifecycle Hooks",
        "spec.containers[0].readinessProbe.tcpSocket.host",
    ),
    (
        (
            "spec.containers[0].lifecycle",
            {"preStop": {"httpGet": {"host": "x.example", "port": 1}}},
        ),
        "Host Probes / Lifecycle Hooks",
        "spec.containers[0].lifecycle.preStop.httpGet.host",
    ),
]


@pytest.mark.parametrize("level", pss.LEVELS)
@pytest.mark.parametrize(("change", "control", "path"), BASELINE_FAILURES)
def test_baseline_controls_fail(level, change, control, path):
    assert found([pod_with(change)], level) == {("baseline", control, path)}


# Baseline-only failures whose restricted counterpart reports under the restricted control.
@pytest.mark.parametrize(
    ("change", "baseline", "restricted"),
    [
        (
            (f"{C0}.capabilities.add", ["SYS_ADMIN"]),
            ("baseline", "Capabilities", f"{C0}.capabilities.add[0]"),
            ("restricted", "Capabilities", f"{C0}.capabilities.add[0]"),
        ),
        (
            ("spec.volumes", [{"name": "logs", "hostPath": {"path": "/var/log"}}]),
            ("baseline", "HostPath Volumes", "spec.volumes[0].hostPath"),
            ("restricted", "Volume Types", "spec.volumes[0].hostPath"),
        ),
        (
            (f"{C0}.seccompProfile", {"type": "Unconfined"}),
            ("baseline", "Seccomp", f"{C0}.seccompProfile.type"),
            ("restricted", "Seccomp", f"{C0}.seccompProfile.type"),
        ),
        (
            (f"{C0}.procMount", "Unmasked"),
            ("baseline", "/proc Mount Type", f"{C0}.procMount"),
            ("restricted", "/proc Mount Type", f"{C0}.procMount"),
        ),
        (
            (f"{SC}.seccompProfile.type", "Unconfined"),
            ("baseline", "Seccomp", f"{SC}.seccompProfile.type"),
            ("restricted", "Seccomp", f"{SC}.seccompProfile.type"),
        ),
    ],
)
def test_restricted_replaces_the_baseline_control_on_the_same_field(change, baseline, restricted):
    pod = pod_with(change)
    assert found([pod], "baseline") == {baseline}
    assert restricted in found([pod], "restricted")
    assert baseline not in found([pod], "restricted")


# Values each control explicitly allows: nothing is reported at either level.
BASELINE_ALLOWED = [
    ("spec.hostNetwork", False),
    (f"{SC}.windowsOptions.hostProcess", False),
    (f"{C0}.privileged", False),
    ("spec.containers[0].ports", [{"containerPort": 8080, "hostPort": 0}]),
    (
        "metadata.annotations",
        {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"},
    ),
    ("metadata.annotations", {"container.apparmor.security.beta.kubernetes.io/app": "localhost/x"}),
    (f"{C0}.appArmorProfile", {"type": "Localhost", "localhostProfile": "x"}),
    (f"{SC}.appArmorProfile", {"type": "RuntimeDefault"}),
    (f"{SC}.seLinuxOptions", {"type": "container_t", "level": "s0:c123,c456"}),
    (f"{C0}.seLinuxOptions", {"type": "container_engine_t"}),
    (f"{C0}.procMount", "Default"),
    (f"{SC}.seccompProfile", {"type": "Localhost", "localhostProfile": "p.json"}),
    (f"{SC}.sysctls", [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]),
    (f"{SC}.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]),
    ("spec.containers[0].livenessProbe", {"httpGet": {"host": "", "path": "/healthz", "port": 80}}),
    (f"{C0}.capabilities.add", ["NET_BIND_SERVICE"]),
    ("spec.volumes", [{"name": "tmp", "emptyDir": {}}, {"name": "c", "configMap": {"name": "x"}}]),
    ("spec.volumes", [{"name": "defaulted-to-emptydir"}]),
    ("spec.volumes", [{"name": "p", "persistentVolumeClaim": {"claimName": "x"}}]),
    ("spec.volumes", [{"name": "s", "projected": {"sources": []}}, {"name": "t", "secret": {}}]),
    (f"{SC}.runAsUser", 10001),
]


@pytest.mark.parametrize("level", pss.LEVELS)
@pytest.mark.parametrize("change", BASELINE_ALLOWED, ids=lambda c: f"{c[0]}={c[1]}")
def test_allowed_values_pass(level, change):
    assert found([pod_with(change)], level) == set()


def test_baseline_allows_default_capabilities_that_restricted_forbids():
    pod = pod_with((f"{C0}.capabilities.add", ["CHOWN"]))
    assert found([pod], "baseline") == set()
    assert found([pod], "restricted") == {
        ("restricted", "Capabilities", f"{C0}.capabilities.add[0]")
    }


# Restricted-only controls: (change, path); baseline reports nothing for them.
RESTRICTED_FAILURES = [
    (("spec.volumes", [{"name": "n", "nfs": {"server": "s", "path": "/"}}]), "Volume Types"),
    (("spec.volumes", [{"name": "g", "gitRepo": {"repository": "r"}}]), "Volume Types"),
    ((f"{C0}.allowPrivilegeEscalation", True), "Privilege Escalation"),
    ((f"{C0}.allowPrivilegeEscalation", None), "Privilege Escalation"),
    ((f"{SC}.runAsNonRoot", False), "Running as Non-root"),
    ((f"{C0}.runAsNonRoot", False), "Running as Non-root"),
    ((f"{SC}.runAsUser", 0), "Running as Non-root user"),
    ((f"{C0}.runAsUser", 0), "Running as Non-root user"),
    ((f"{C0}.capabilities.drop", ["NET_RAW"]), "Capabilities"),
]


@pytest.mark.parametrize(("change", "control"), RESTRICTED_FAILURES)
def test_restricted_controls_fail_and_baseline_does_not_care(change, control):
    pod = pod_with(change)
    assert found([pod], "baseline") == set()
    controls = {c for _, c, _ in found([pod], "restricted")}
    assert controls == {control}


@pytest.mark.parametrize(
    ("remove", "control", "path"),
    [
        ("runAsNonRoot", "Running as Non-root", f"{C0}.runAsNonRoot"),
        ("seccompProfile", "Seccomp", f"{C0}.seccompProfile"),
    ],
)
def test_pod_level_setting_covers_containers_and_its_absence_is_reported_per_container(
    remove, control, path
):
    pod = good_pod()
    del pod["spec"]["securityContext"][remove]
    assert found([pod]) == {("restricted", control, path)}
    # Setting it on the one container instead satisfies the control.
    value = True if remove == "runAsNonRoot" else {"type": "RuntimeDefault"}
    put(pod, f"{C0}.{remove}", value)
    assert found([pod]) == set()


@pytest.mark.parametrize("list_name", ["initContainers", "ephemeralContainers"])
def test_init_and_ephemeral_containers_are_checked_like_containers(list_name):
    pod = good_pod()
    pod["spec"][list_name] = [container("extra")]
    assert found([pod]) == set()
    put(pod, f"spec.{list_name}[0].securityContext.allowPrivilegeEscalation", True)
    put(pod, f"spec.{list_name}[0].securityContext.privileged", True)
    assert found([pod]) == {
        (
            "restricted",
            "Privilege Escalation",
            f"spec.{list_name}[0].securityContext.allowPrivilegeEscalation",
        ),
        ("baseline", "Privileged Containers", f"spec.{list_name}[0].securityContext.privileged"),
    }


def test_an_unhardened_pod_gets_every_restricted_fix():
    pod = {"kind": "Pod", "metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c"}]}}
    controls = {c for _, c, _ in found([pod])}
    assert controls == {"Privilege Escalation", "Running as Non-root", "Seccomp", "Capabilities"}
    assert found([pod], "baseline") == set()


# --- versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "control", "fails_at", "passes_at"),
    [
        (
            ("spec.containers[0].startupProbe", {"tcpSocket": {"host": "h", "port": 1}}),
            "Host Probes / Lifecycle Hooks",
            "v1.34",
            "v1.33",
        ),
        ((f"{C0}.runAsUser", 0), "Running as Non-root user", "v1.23", "v1.22"),
        ((f"{C0}.allowPrivilegeEscalation", True), "Privilege Escalation", "v1.8", "v1.7"),
        ((f"{C0}.capabilities.drop", []), "Capabilities", "v1.22", "v1.21"),
        (
            (f"{SC}.sysctls", [{"name": "net.ipv4.tcp_wmem", "value": "1"}]),
            "Sysctls",
            "v1.31",
            "v1.32",
        ),
        (
            (f"{SC}.sysctls", [{"name": "net.ipv4.tcp_fin_timeout", "value": "1"}]),
            "Sysctls",
            "v1.28",
            "v1.29",
        ),
        (
            (f"{SC}.sysctls", [{"name": "net.ipv4.ip_local_reserved_ports", "value": "1"}]),
            "Sysctls",
            "v1.26",
            "v1.27",
        ),
        (
            (f"{SC}.sysctls", [{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]),
            "Sysctls",
            "v1.36",
            "latest",
        ),
        ((f"{C0}.seLinuxOptions", {"type": "container_engine_t"}), "SELinux", "v1.30", "v1.31"),
    ],
)
def test_controls_follow_the_version_they_changed_in(change, control, fails_at, passes_at):
    pod = pod_with(change)
    assert control in {c for _, c, _ in found([pod], version=fails_at)}
    assert control not in {c for _, c, _ in found([pod], version=passes_at)}


def test_user_namespace_pods_relax_root_controls_from_1_35_but_restricted_keeps_proc_mount():
    pod = pod_with(
        ("spec.hostUsers", False),
        (f"{SC}.runAsNonRoot", False),
        (f"{SC}.runAsUser", 0),
        (f"{C0}.procMount", "Unmasked"),
    )
    assert found([pod], "baseline", "v1.35") == set()
    assert found([pod], "restricted", "v1.35") == {
        ("restricted", "/proc Mount Type", f"{C0}.procMount")
    }
    old = {c for _, c, _ in found([pod], "restricted", "v1.34")}
    assert old == {"Running as Non-root", "Running as Non-root user", "/proc Mount Type"}


def test_windows_pods_skip_linux_only_restricted_controls_from_1_25():
    pod = {
        "kind": "Pod",
        "metadata": {"name": "win"},
        "spec": {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}},
    }
    pod["spec"]["containers"] = [{"name": "c"}]
    assert found([pod], version="v1.25") == set()
    assert {c for _, c, _ in found([pod], version="v1.24")} == {
        "Privilege Escalation",
        "Seccomp",
        "Capabilities",
    }


def test_before_1_19_seccomp_is_read_from_annotations():
    pod = pod_with(("metadata.annotations", {pss.SECCOMP_POD_ANNOTATION: "unconfined"}))
    assert found([pod], "baseline", "v1.18") == {
        ("baseline", "Seccomp", f"metadata.annotations['{pss.SECCOMP_POD_ANNOTATION}']")
    }
    assert found([pod], "baseline", "v1.19") == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("latest", pss.LATEST), ("v1.34", (1, 34)), ("1.30", (1, 30)), ("v1.34.2", (1, 34))],
)
def test_parse_version(text, expected):
    assert pss.parse_version(text) == expected


def test_versions_newer_than_the_known_rules_use_the_latest_rules():
    assert pss.parse_version("v1.99") == pss.LATEST


@pytest.mark.parametrize("text", ["v2.0", "1", "newest", ""])
def test_parse_version_rejects_nonsense(text):
    with pytest.raises(pss.InputError, match="unknown version"):
        pss.parse_version(text)


def test_pinned_version_is_the_minor_from_versions_toml():
    from labconfig.versions import load_versions

    full = load_versions()["kubernetes"]["version"]
    assert full.startswith(pss.pinned_version() + ".")
    assert pss.parse_version("pinned") == pss.parse_version(pss.pinned_version())


# --- where pod specs live ---------------------------------------------------------------------


def wrap(kind: str, pod: dict) -> tuple[dict, str]:
    template = {"metadata": pod.get("metadata", {}), "spec": pod["spec"]}
    meta = {"name": "w", "namespace": "bookstore"}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
        return {"kind": kind, "metadata": meta, "spec": spec}, "spec.jobTemplate.spec.template."
    if kind == "PodTemplate":
        return {"kind": kind, "metadata": meta, "template": template}, "template."
    return {"kind": kind, "metadata": meta, "spec": {"template": template}}, "spec.template."


@pytest.mark.parametrize(
    "kind",
    [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "PodTemplate",
    ],
)
def test_every_workload_kind_is_found_with_its_full_field_path(kind):
    bad = pod_with((f"{C0}.privileged", True))
    obj, prefix = wrap(kind, bad)
    (violation,) = pss.evaluate([obj], "baseline")
    assert violation.path == f"{prefix}{C0}.privileged"
    assert (violation.kind, violation.namespace, violation.name) == (kind, "bookstore", "w")
    assert violation.object == f"{kind} bookstore/w"
    assert pss.evaluate([wrap(kind, good_pod())[0]]) == []


def test_template_annotations_are_read_for_apparmor():
    bad = pod_with(("metadata.annotations", {pss.APPARMOR_ANNOTATION_PREFIX + "app": "unconfined"}))
    obj, prefix = wrap("Deployment", bad)
    (violation,) = pss.evaluate([obj])
    assert violation.path.startswith(f"{prefix}metadata.annotations[")


def test_objects_without_pod_specs_are_ignored_and_lists_are_flattened():
    service = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    bad = pod_with(("spec.hostPID", True))
    listing = {"kind": "List", "items": [service, bad]}
    assert found([listing], "baseline") == {("baseline", "Host Namespaces", "spec.hostPID")}


def test_a_workload_without_a_pod_template_is_bad_input():
    with pytest.raises(pss.InputError, match="has no pod spec at spec.template.spec"):
        pss.evaluate([{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}])


def test_something_that_is_not_an_object_is_bad_input():
    with pytest.raises(pss.InputError, match="expected a Kubernetes object"):
        pss.evaluate(["kind: Pod"])


def test_a_field_of_the_wrong_type_is_bad_input():
    pod = pod_with(("spec.containers", {"name": "not-a-list"}))
    with pytest.raises(pss.InputError, match=r"spec.containers should be a list"):
        pss.evaluate([pod])


def test_violation_message_names_object_field_finding_and_fix():
    (v,) = pss.evaluate([pod_with((f"{C0}.allowPrivilegeEscalation", True))])
    text = str(v)
    assert text.startswith("Pod bookstore/web: spec.containers[0].securityContext")
    assert "is true" in text and "allows false" in text
    assert "Fix: set securityContext.allowPrivilegeEscalation: false" in text
    assert v.to_dict()["object"] == "Pod bookstore/web"
    assert set(v.to_dict()) >= {"kind", "namespace", "name", "control", "path", "found", "fix"}


def test_unknown_level_is_bad_input():
    with pytest.raises(pss.InputError, match="unknown level"):
        pss.evaluate([good_pod()], level="privileged-ish")


# --- files and the command line ---------------------------------------------------------------


def write_docs(path: Path, *docs: dict) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def test_load_objects_reads_files_and_directories_recursively(tmp_path):
    write_docs(tmp_path / "a.yaml", good_pod("a"), good_pod("b"))
    (tmp_path / "sub").mkdir()
    write_docs(tmp_path / "sub" / "c.yml", good_pod("c"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    (tmp_path / "empty.yaml").write_text("---\n---\n")
    names = [o["metadata"]["name"] for o in pss.load_objects([tmp_path])]
    assert names == ["a", "b", "c"]


def test_cli_clean_manifests_exit_0(tmp_path, capsys):
    write_docs(tmp_path / "ok.yaml", good_pod())
    assert pss.main([str(tmp_path / "ok.yaml")]) == 0
    assert "ok: 1 pod spec(s) pass Pod Security restricted" in capsys.readouterr().out


def test_cli_violations_exit_1_with_object_source_path_and_fix(tmp_path, capsys):
    bad = pod_with((f"{C0}.allowPrivilegeEscalation", True))
    file = write_docs(tmp_path / "bad.yaml", good_pod("first"), bad)
    assert pss.main([str(file)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL Pod bookstore/web  ({file}:" in out
    assert "[restricted: Privilege Escalation] spec.containers[0].securityContext" in out
    assert "fix:      set securityContext.allowPrivilegeEscalation: false" in out
    assert "1 violation(s) in 1 object(s); 2 pod spec(s) checked" in out


def test_cli_baseline_level_ignores_restricted_controls(tmp_path):
    file = write_docs(tmp_path / "p.yaml", pod_with((f"{C0}.allowPrivilegeEscalation", True)))
    assert pss.main(["--level", "baseline", str(file)]) == 0


def test_cli_json_output(tmp_path, capsys):
    file = write_docs(tmp_path / "p.yaml", pod_with(("spec.hostIPC", True)))
    assert pss.main(["--json", "--version", "v1.34", "--level", "baseline", str(file)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert (report["level"], report["version"], report["pod_specs_checked"]) == (
        "baseline",
        "v1.34",
        1,
    )
    (v,) = report["violations"]
    assert v["path"] == "spec.hostIPC" and v["control"] == "Host Namespaces"
    assert v["source"] == f"{file}:1"


def test_cli_source_line_points_at_the_document(tmp_path, capsys):
    file = tmp_path / "two.yaml"
    file.write_text(
        "kind: ConfigMap\nmetadata: {name: c}\n---\n"
        + yaml.safe_dump(pod_with(("spec.hostPID", True)))
    )
    pss.main(["--json", str(file)])
    (v,) = json.loads(capsys.readouterr().out)["violations"]
    assert v["source"] == f"{file}:4"


def test_cli_invalid_yaml_exits_2_naming_file_and_line(tmp_path, capsys):
    file = tmp_path / "broken.yaml"
    file.write_text("kind: Pod\nmetadata:\n  name: x\n spec: [\n")
    assert pss.main([str(file)]) == 2
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(file))}:\d+: not valid YAML", err)


def test_cli_missing_file_exits_2(tmp_path, capsys):
    assert pss.main([str(tmp_path / "nope.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_cli_non_mapping_document_exits_2(tmp_path, capsys):
    file = tmp_path / "list.yaml"
    file.write_text("- a\n- b\n")
    assert pss.main([str(file)]) == 2
    assert f"{file}:1: document 1 is a list" in capsys.readouterr().err


def test_cli_bad_version_exits_2(tmp_path, capsys):
    file = write_docs(tmp_path / "ok.yaml", good_pod())
    assert pss.main(["--version", "v2.1", str(file)]) == 2
    assert "unknown version" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    file = write_docs(tmp_path / "p.yaml", pod_with(("spec.hostNetwork", True)))
    result = subprocess.run(
        [sys.executable, "-m", "validators.pss", "--level", "baseline", str(file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "spec.hostNetwork" in result.stdout


BOOKSTORE = REPO / "manifests" / "bookstore"


@pytest.mark.skipif(not BOOKSTORE.is_dir(), reason="manifests/bookstore not written yet")
@pytest.mark.parametrize("version", ["latest", "pinned"])
def test_bookstore_pod_templates_pass_restricted(version):
    objects = pss.load_objects([BOOKSTORE])
    assert pss.count_pod_specs(objects) >= 3  # catalog, orders, loadgen
    assert [str(v) for v in pss.evaluate(objects, "restricted", version)] == []


def test_evaluate_does_not_modify_its_input():
    pod = pod_with(("spec.hostPID", True))
    before = copy.deepcopy(pod)
    pss.evaluate([pod])
    assert pod == before
