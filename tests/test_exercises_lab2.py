"""The learner's files of the extras agree with the manifests that load them and the checkers.

A rename on one side (ConfigMap, mount path, tenant, namespace, container name) would leave the
ruler reading an empty directory or a retention rule matching nothing, with every file valid on
its own; these tests tie the names together.
"""

from __future__ import annotations

import yaml

from checks.test_lab2_alerting import RULES_CONFIGMAP, RULES_DIR, RULES_FILE
from checks.test_lab2_incident import ANSWERS
from checks.test_lab2_node import MAX_LOG_SIZE, parse_quantity
from labconfig.versions import REPO_ROOT, load_versions

VERSIONS = load_versions()
EXERCISES = REPO_ROOT / RULES_DIR


def load(rel: str) -> dict:
    return yaml.safe_load((REPO_ROOT / rel).read_text())


def test_the_rules_configmap_is_what_loki_mounts_for_tenant_fake():
    kustomization = yaml.safe_load((EXERCISES / "kustomization.yaml").read_text())
    loki = load(VERSIONS["charts"]["loki"]["values"])
    [generator] = kustomization["configMapGenerator"]
    assert kustomization["namespace"] == VERSIONS["charts"]["loki"]["namespace"]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    assert generator["name"] == RULES_CONFIGMAP
    assert generator["files"] == [RULES_FILE.removeprefix(f"{RULES_DIR}/")]
    [volume] = loki["singleBinary"]["extraVolumes"]
    [mount] = loki["singleBinary"]["extraVolumeMounts"]
    assert volume["configMap"] == {"name": RULES_CONFIGMAP, "optional": True}
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    # Local rule store layout: <directory>/<tenant>/<file>; with auth off the tenant is `fake`.
    assert loki["loki"]["auth_enabled"] is False
    directory = loki["loki"]["rulerConfig"]["storage"]["local"]["directory"]
    assert mount["mountPath"] == f"{directory}/fake"


def test_the_starter_rules_parse_and_leave_both_rules_to_the_learner():
    doc = yaml.safe_load((REPO_ROOT / RULES_FILE).read_text())
    [group] = doc["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == {"BookstoreErrorRate", "BookstoreLogsMissing"}
    assert all(r["expr"] == "vector(0) > 1" for r in rules.values())  # valid, never true
    assert "TODO" in (REPO_ROOT / RULES_FILE).read_text()


def test_the_starter_answers_parse_with_both_todos():
    doc = yaml.safe_load((EXERCISES / ANSWERS).read_text())
    assert doc == {"failing_dependency": "TODO", "query": "TODO"}


def test_the_short_retention_selector_names_the_traffic_jobs_container():
    loki = load(VERSIONS["charts"]["loki"]["values"])
    [rule] = loki["loki"]["limits_config"]["retention_stream"]
    job = load("manifests/bookstore/loadgen.yaml")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert f'container="{container["name"]}"' in rule["selector"]
    assert f'namespace="{VERSIONS["bookstore"]["namespace"]}"' in rule["selector"]


def test_the_kind_config_rotates_small_enough_for_the_node_checker():
    kind = load("manifests/kind/cluster.yaml")
    [patch] = [yaml.safe_load(p) for p in kind["kubeadmConfigPatches"]]
    assert patch["kind"] == "KubeletConfiguration"
    assert patch["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
    assert parse_quantity(patch["containerLogMaxSize"]) <= MAX_LOG_SIZE
    assert patch["containerLogMaxFiles"] >= 2  # the kubelet's minimum
