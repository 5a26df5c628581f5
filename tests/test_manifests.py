"""The offline manifest checks: the repository passes, and each check fails on a broken copy.

Every test that breaks something copies `manifests/` and `versions.toml` into tmp_path, changes
one fact the way a learner plausibly would, and asserts that exactly the matching check fails
with a message that names the problem and the fix.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from labconfig.versions import REPO_ROOT, load_versions
from validators import manifests
from validators.manifests import Finding, check_tree, main

VERSIONS = load_versions(REPO_ROOT / "versions.toml")


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of the repository's manifests and pins."""
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    shutil.copy(REPO_ROOT / "versions.toml", tmp_path / "versions.toml")
    return tmp_path


def edit_yaml(path: Path, change: Callable[[list], None]) -> None:
    """Load every document of `path`, let `change` mutate them, write them back."""
    docs = list(yaml.safe_load_all(path.read_text()))
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def doc(docs: list, kind: str, name: str) -> dict:
    return next(d for d in docs if d and d.get("kind") == kind and d["metadata"]["name"] == name)


def failures(findings: list[Finding], check: str | None = None) -> list[Finding]:
    return [f for f in findings if not f.ok and (check is None or f.check == check)]


def only_failing(findings: list[Finding], check: str) -> list[str]:
    """The messages of `check`'s failures, asserting no other check failed."""
    others = {f.check for f in failures(findings)} - {check}
    assert not others, f"unexpected failures in {others}: {failures(findings)}"
    msgs = [f.message for f in failures(findings, check)]
    assert msgs, f"{check} did not fail: {findings}"
    return msgs


def run(root: Path) -> list[Finding]:
    return check_tree(root, helm=False)


# --- the repository itself --------------------------------------------------------------------


def test_repository_manifests_pass_every_check():
    findings = run(REPO_ROOT)
    assert not failures(findings), failures(findings)
    checks = {f.check for f in findings}
    expected = {"yaml", "schema", "pss", "alloy", "kind", "nodeports", "versions"}
    assert expected | {"bookstore", "loki-endpoints"} <= checks


def test_copy_without_changes_passes(tree: Path):
    assert not failures(run(tree))


# --- yaml -------------------------------------------------------------------------------------


def test_unparsable_yaml_is_named_with_its_line(tree: Path):
    bad = tree / "manifests" / "bookstore" / "configmap.yaml"
    bad.write_text("data:\n  LOG_LEVEL: [INFO\n")
    findings = run(tree)
    msgs = [f.message for f in failures(findings, "yaml")]
    assert len(msgs) == 1
    assert re.match(r"manifests/bookstore/configmap\.yaml:3: not valid YAML at column \d+", msgs[0])


def test_missing_manifests_folder_is_reported(tmp_path: Path):
    findings = run(tmp_path)
    assert [f.check for f in failures(findings)] == ["yaml"]
    assert "manifests" in findings[0].message and "does not exist" in findings[0].message


# --- schema -----------------------------------------------------------------------------------


def test_unknown_field_fails_schema(tree: Path):
    def typo(docs):
        dep = doc(docs, "Deployment", "catalog")
        dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Never"

    edit_yaml(tree / "manifests/bookstore/catalog.yaml", typo)
    msgs = [f.message for f in failures(run(tree), "schema")]
    assert len(msgs) == 1
    assert "Deployment/catalog" in msgs[0] and "imagePullPolice" in msgs[0]
    assert "typo" in msgs[0]


def test_wrong_type_fails_schema_with_field_path(tree: Path):
    edit_yaml(
        tree / "manifests/bookstore/catalog.yaml",
        lambda docs: doc(docs, "Deployment", "catalog")["spec"].update(replicas="two"),
    )
    msgs = [f.message for f in failures(run(tree), "schema")]
    assert len(msgs) == 1 and "spec/replicas" in msgs[0]


def test_unknown_api_version_fails_schema(tree: Path):
    edit_yaml(
        tree / "manifests/bookstore/catalog.yaml",
        lambda docs: doc(docs, "Deployment", "catalog").update(apiVersion="apps/v1beta1"),
    )
    msgs = [f.message for f in failures(run(tree), "schema")]
    assert any("no schema for apiVersion 'apps/v1beta1'" in m for m in msgs)


def test_extra_objects_in_values_are_schema_checked(tree: Path):
    def typo(docs):
        docs[0]["extraObjects"][0]["spec"]["ports"][0]["nodeport"] = 30310

    edit_yaml(tree / "manifests/logging/loki-values.yaml", typo)
    msgs = [f.message for f in failures(run(tree), "schema")]
    assert any("Service/loki-nodeport" in m and "nodeport" in m for m in msgs)


# --- Pod Security -----------------------------------------------------------------------------


def test_privilege_escalation_fails_restricted(tree: Path):
    def allow(docs):
        c = doc(docs, "Deployment", "orders")["spec"]["template"]["spec"]["containers"][0]
        del c["securityContext"]["allowPrivilegeEscalation"]

    edit_yaml(tree / "manifests/bookstore/orders.yaml", allow)
    msgs = only_failing(run(tree), "pss")
    assert any("allowPrivilegeEscalation" in m and "orders" in m for m in msgs)


def test_loadgen_job_is_held_to_restricted_too(tree: Path):
    def root(docs):
        docs[0]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = False

    edit_yaml(tree / "manifests/bookstore/loadgen.yaml", root)
    msgs = only_failing(run(tree), "pss")
    assert any("loadgen" in m and "runAsNonRoot" in m for m in msgs)


# --- Alloy ------------------------------------------------------------------------------------


def test_alloy_lint_failure_is_reported(tree: Path):
    def drop_write(docs):
        content = docs[0]["alloy"]["configMap"]["content"]
        docs[0]["alloy"]["configMap"]["content"] = content.replace("stage.cri {}", "")

    edit_yaml(tree / "manifests/logging/alloy-values.yaml", drop_write)
    msgs = [f.message for f in failures(run(tree), "alloy")]
    assert msgs and all(m.startswith("manifests/logging/alloy-values.yaml: ") for m in msgs)
    assert any("stage.cri" in m for m in msgs)


# --- kind -------------------------------------------------------------------------------------


def test_kind_cluster_name_must_match_versions(tree: Path):
    edit_yaml(tree / "manifests/kind/cluster.yaml", lambda docs: docs[0].update(name="lab"))
    msgs = only_failing(run(tree), "kind")
    assert "cluster_name is 'lab2-logging'" in msgs[0]


def test_kind_needs_a_worker(tree: Path):
    edit_yaml(tree / "manifests/kind/cluster.yaml", lambda docs: docs[0]["nodes"].pop())
    msgs = only_failing(run(tree), "kind")
    assert "at least one worker" in msgs[0]


def test_kind_node_image_other_than_pinned_fails(tree: Path):
    def pin(docs):
        docs[0]["nodes"][1]["image"] = "kindest/node:v1.30.0"

    edit_yaml(tree / "manifests/kind/cluster.yaml", pin)
    msgs = only_failing(run(tree), "kind")
    assert "kindest/node:v1.30.0" in msgs[0] and VERSIONS["kind"]["node_image"] in msgs[0]


def test_kind_node_image_equal_to_pinned_is_fine(tree: Path):
    def pin(docs):
        docs[0]["nodes"][1]["image"] = VERSIONS["kind"]["node_image"]

    edit_yaml(tree / "manifests/kind/cluster.yaml", pin)
    assert not failures(run(tree))


# --- NodePorts --------------------------------------------------------------------------------


def test_grafana_nodeport_without_mapping_fails_both_ways(tree: Path):
    edit_yaml(
        tree / "manifests/logging/grafana-values.yaml",
        lambda docs: docs[0]["service"].update(nodePort=30301),
    )
    msgs = only_failing(run(tree), "nodeports")
    text = "\n".join(msgs)
    assert "NodePort 30301 but manifests/kind/cluster.yaml has no extraPortMappings" in text
    assert "maps port 30300 but no Service uses NodePort 30300" in text
    assert "NodePort 30300 (grafana) is missing" in text


def test_host_port_must_equal_node_port(tree: Path):
    def shift(docs):
        docs[0]["nodes"][0]["extraPortMappings"][0]["hostPort"] = 8080

    edit_yaml(tree / "manifests/kind/cluster.yaml", shift)
    msgs = only_failing(run(tree), "nodeports")
    assert any("maps host 8080 to node 30080" in m for m in msgs)


def test_orders_nodeport_removed_fails(tree: Path):
    def cluster_ip(docs):
        svc = doc(docs, "Service", "orders")
        svc["spec"]["type"] = "ClusterIP"
        del svc["spec"]["ports"][0]["nodePort"]

    edit_yaml(tree / "manifests/bookstore/orders.yaml", cluster_ip)
    msgs = only_failing(run(tree), "nodeports")
    assert any("NodePort 30080 (orders) is missing" in m for m in msgs)


# --- versions ---------------------------------------------------------------------------------


def test_enforce_version_must_be_the_pinned_minor(tree: Path):
    def older(docs):
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce-version"] = "v1.30"

    edit_yaml(tree / "manifests/bookstore/namespace.yaml", older)
    msgs = only_failing(run(tree), "versions")
    minor = manifests.kube_minor(VERSIONS["kubernetes"]["version"])
    assert f"set it to '{minor}'" in msgs[0]


def test_bookstore_namespace_relaxed_to_baseline_fails(tree: Path):
    def relax(docs):
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"

    edit_yaml(tree / "manifests/bookstore/namespace.yaml", relax)
    msgs = only_failing(run(tree), "versions")
    assert "enforce is 'baseline'; set it to restricted" in msgs[0]


def test_logging_namespace_must_be_privileged(tree: Path):
    def tighten(docs):
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"

    edit_yaml(tree / "manifests/logging/namespace.yaml", tighten)
    msgs = only_failing(run(tree), "versions")
    assert "hostPath" in msgs[0] and "privileged" in msgs[0]


def test_deployment_image_must_match_versions(tree: Path):
    def retag(docs):
        c = doc(docs, "Deployment", "catalog")["spec"]["template"]["spec"]["containers"][0]
        c["image"] = "bookstore/catalog:latest"

    edit_yaml(tree / "manifests/bookstore/catalog.yaml", retag)
    msgs = only_failing(run(tree), "versions")
    assert "bookstore/catalog:latest" in msgs[0] and VERSIONS["images"]["catalog"] in msgs[0]


def test_loadgen_must_run_a_bookstore_image(tree: Path):
    def curl(docs):
        docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "curlimages/curl:8.10.1"

    edit_yaml(tree / "manifests/bookstore/loadgen.yaml", curl)
    msgs = only_failing(run(tree), "versions")
    assert "curlimages/curl" in msgs[0] and "never pulled" in msgs[0]


def test_versions_pins_are_read_from_the_submission(tree: Path):
    text = (tree / "versions.toml").read_text()
    pinned = VERSIONS["images"]["orders"]
    (tree / "versions.toml").write_text(text.replace(f'"{pinned}"', '"bookstore/orders:9.9.9"'))
    msgs = only_failing(run(tree), "versions")
    assert any("bookstore/orders:9.9.9" in m for m in msgs)


def test_submission_without_versions_uses_the_repository_pins(tree: Path):
    (tree / "versions.toml").unlink()
    assert not failures(run(tree))


def test_broken_versions_file_is_a_finding(tree: Path):
    (tree / "versions.toml").write_text("[kind\n")
    findings = run(tree)
    bad = failures(findings, "versions")
    assert bad and "not valid TOML" in bad[0].message
    assert [f.check for f in failures(findings)] == ["versions"]


# --- bookstore contract -----------------------------------------------------------------------


def test_one_replica_and_wrong_probe_fail_the_contract(tree: Path):
    def weaken(docs):
        dep = doc(docs, "Deployment", "orders")
        dep["spec"]["replicas"] = 1
        dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/"

    edit_yaml(tree / "manifests/bookstore/orders.yaml", weaken)
    text = "\n".join(only_failing(run(tree), "bookstore"))
    assert "replicas is 1; the lab expects 2" in text
    assert "readinessProbe must be httpGet /readyz on port http" in text


def test_loadgen_listed_in_kustomization_fails(tree: Path):
    edit_yaml(
        tree / "manifests/bookstore/kustomization.yaml",
        lambda docs: docs[0]["resources"].append("loadgen.yaml"),
    )
    msgs = only_failing(run(tree), "bookstore")
    assert "must not be in kustomization.yaml" in msgs[0]


def test_file_missing_from_kustomization_fails(tree: Path):
    edit_yaml(
        tree / "manifests/bookstore/kustomization.yaml",
        lambda docs: docs[0]["resources"].remove("configmap.yaml"),
    )
    msgs = only_failing(run(tree), "bookstore")
    assert "configmap.yaml: not listed in kustomization.yaml" in msgs[0]


def test_configmap_key_and_log_sidecar_fail_the_contract(tree: Path):
    def change(docs):
        del docs[0]["data"]["CATALOG_URL"]

    edit_yaml(tree / "manifests/bookstore/configmap.yaml", change)

    def sidecar(docs):
        spec = doc(docs, "Deployment", "catalog")["spec"]["template"]["spec"]
        spec["containers"].append(dict(spec["containers"][0], name="shipper"))

    edit_yaml(tree / "manifests/bookstore/catalog.yaml", sidecar)
    text = "\n".join(f.message for f in failures(run(tree), "bookstore"))
    assert "ConfigMap bookstore-config lacks CATALOG_URL" in text
    assert "has 2 containers; one app container and no log sidecar" in text


# --- Loki endpoints ---------------------------------------------------------------------------


def test_alloy_push_to_wrong_port_fails(tree: Path):
    def port(docs):
        c = docs[0]["alloy"]["configMap"]["content"]
        docs[0]["alloy"]["configMap"]["content"] = c.replace(":3100/", ":3101/")

    edit_yaml(tree / "manifests/logging/alloy-values.yaml", port)
    msgs = [f.message for f in failures(run(tree), "loki-endpoints")]
    assert msgs == [
        "Alloy pushes to http://loki.logging.svc.cluster.local:3101/loki/api/v1/push; Loki's "
        "push API is http://loki.logging.svc.cluster.local:3100/loki/api/v1/push"
    ]


def test_grafana_datasource_to_gateway_fails(tree: Path):
    def gateway(docs):
        ds = docs[0]["datasources"]["datasources.yaml"]["datasources"][0]
        ds["url"] = "http://loki-gateway.logging.svc.cluster.local"

    edit_yaml(tree / "manifests/logging/grafana-values.yaml", gateway)
    msgs = only_failing(run(tree), "loki-endpoints")
    assert "Grafana's Loki datasource points at http://loki-gateway" in msgs[0]


def test_loki_port_change_must_be_followed_by_clients(tree: Path):
    edit_yaml(
        tree / "manifests/logging/loki-values.yaml",
        lambda docs: docs[0]["loki"].update(server={"http_listen_port": 3200}),
    )
    text = "\n".join(f.message for f in failures(run(tree), "loki-endpoints"))
    assert "Alloy pushes to" in text and ":3200" in text
    assert "Grafana's Loki datasource" in text


def test_gateway_left_on_fails(tree: Path):
    edit_yaml(
        tree / "manifests/logging/loki-values.yaml",
        lambda docs: docs[0].pop("gateway"),
    )
    findings = run(tree)
    # validators.alloy_lint reports the same mistake from Alloy's side (push URL != gateway).
    assert {f.check for f in failures(findings)} == {"loki-endpoints", "alloy"}
    assert "gateway.enabled: false" in failures(findings, "loki-endpoints")[0].message


# --- robustness -------------------------------------------------------------------------------


def test_malformed_file_does_not_hide_other_checks(tree: Path):
    (tree / "manifests/kind/cluster.yaml").write_text("- just\n- a list\n")
    findings = run(tree)
    assert failures(findings, "kind")
    assert {f.check for f in findings if f.ok} >= {"schema", "pss", "versions", "bookstore"}


# --- command line -----------------------------------------------------------------------------


def test_cli_passes_on_the_repository(capsys):
    assert main([str(REPO_ROOT), "--no-helm"]) == 0
    out = capsys.readouterr().out
    assert "ok   [nodeports]" in out and "0 failed" in out


def test_cli_json_and_exit_status_on_failure(tree: Path, capsys):
    edit_yaml(tree / "manifests/kind/cluster.yaml", lambda docs: docs[0].update(name="x"))
    assert main([str(tree), "--no-helm", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {"check", "ok", "message", "file", "skipped"} <= set(data[0])
    assert any(d["check"] == "kind" and not d["ok"] for d in data)


def test_cli_human_output_marks_failures(tree: Path, capsys):
    edit_yaml(tree / "manifests/kind/cluster.yaml", lambda docs: docs[0].update(name="x"))
    assert main([str(tree), "--no-helm"]) == 1
    out = capsys.readouterr().out
    assert "FAIL [kind]" in out and "1 failed" in out


def test_kubernetes_newer_than_the_installed_schemas_is_explained(tree: Path):
    text = (tree / "versions.toml").read_text()
    pinned = VERSIONS["kubernetes"]["version"]
    (tree / "versions.toml").write_text(text.replace(f'"{pinned}"', '"v1.99.0"'))
    findings = run(tree)
    (schema,) = failures(findings, "schema")
    assert "schemas up to" in schema.message and "v1.99.0" in schema.message
    assert "pip install -U kubernetes-validate" in schema.message


def _replace_pin(tree: Path, old: str, new: str) -> None:
    text = (tree / "versions.toml").read_text()
    assert f'"{old}"' in text
    (tree / "versions.toml").write_text(text.replace(f'"{old}"', f'"{new}"'))


def test_node_image_must_run_the_pinned_kubernetes(tree: Path):
    image = VERSIONS["kind"]["node_image"]
    digest = image.split("@", 1)[1]
    _replace_pin(tree, image, f"kindest/node:v1.35.0@{digest}")
    msgs = only_failing(run(tree), "versions")
    assert "runs Kubernetes v1.35.0 but [kubernetes].version is" in msgs[0]


def test_node_image_must_be_pinned_by_digest(tree: Path):
    image = VERSIONS["kind"]["node_image"]
    _replace_pin(tree, image, image.split("@", 1)[0])
    msgs = only_failing(run(tree), "versions")
    assert "pin the image by digest" in msgs[0]


def test_kubectl_skew_beyond_one_minor_fails(tree: Path):
    text = (tree / "versions.toml").read_text()
    head, _, tail = text.partition("[tools.kubectl]")
    kubectl = f'version = "{VERSIONS["tools"]["kubectl"]["version"]}"'
    tail = tail.replace(kubectl, 'version = "v1.20.0"', 1)
    (tree / "versions.toml").write_text(head + "[tools.kubectl]" + tail)
    msgs = only_failing(run(tree), "versions")
    assert "more than one minor away" in msgs[0]


def test_kubernetes_older_than_the_installed_schemas_is_explained(tree: Path):
    text = (tree / "versions.toml").read_text()
    pinned = VERSIONS["kubernetes"]["version"]
    (tree / "versions.toml").write_text(text.replace(f'version = "{pinned}"', 'version = "v1.2.0"'))
    (schema,) = failures(run(tree), "schema")
    assert "older than the oldest schemas" in schema.message


def test_kustomization_namespace_must_be_the_app_namespace(tree: Path):
    edit_yaml(
        tree / "manifests/bookstore/kustomization.yaml",
        lambda docs: docs[0].update(namespace="default"),
    )
    msgs = only_failing(run(tree), "versions")
    assert "namespace: 'default' would move every object out of 'bookstore'" in msgs[0]


def test_loadgen_job_command_is_what_the_bookstore_cli_accepts(monkeypatch):
    """The Job's argv goes through `python -m bookstore loadgen`'s own parser unchanged."""
    from bookstore import loadgen

    job = yaml.safe_load((REPO_ROOT / "manifests/bookstore/loadgen.yaml").read_text())
    argv = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert argv[:4] == ["python", "-m", "bookstore", "loadgen"]
    seen = {}

    async def fake_run(catalog_url, orders_url, *rest):  # no traffic: only the parsed values
        seen.update(catalog=catalog_url, orders=orders_url)
        return 0

    monkeypatch.setattr(loadgen, "run", fake_run)
    assert loadgen.main(argv[4:]) == 0
    # Short Service names: the Job runs in the bookstore namespace, Services listen on port 80.
    assert seen == {"catalog": "http://catalog", "orders": "http://orders"}
